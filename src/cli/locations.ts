// Checks of where a command reads and writes: the output and state folders, and the --now clock.
import { execFile } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { Issue } from '../../constructs/core/errors.ts';

/** Where a command works, as given on the command line or by the environment. */
export interface Locations {
  readonly outDir: string;
  readonly stateDir: string;
  /** Which flag or variable named the state folder, for messages (`--state`, `$PODMESH_STATE_DIR`). */
  readonly stateSource: string;
}

/** The path with symlinks resolved as far as it exists, so `out/../out` and a link to out/ compare equal. */
function canonical(path: string): string {
  const abs = resolve(path);
  const existing = existingDir(abs);
  try {
    return resolve(realpathSync(existing), relative(existing, abs));
  } catch {
    return abs;
  }
}

/** Whether `inner` is `outer` or below it. */
function within(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

/**
 * Problems with the pair of folders: empty names, and a state folder equal to, inside or around the
 * output folder (its private keys would be committed with out/, or synth would delete them on
 * every run). Pure apart from resolving symlinks.
 */
export function locationIssues(where: Locations): Issue[] {
  const issues: Issue[] = [];
  if (where.outDir.trim() === '') issues.push({ path: '--out', message: 'the output folder is empty. Give a folder, e.g. --out out.' });
  if (where.stateDir.trim() === '') issues.push({ path: where.stateSource, message: 'the state folder is empty. Give a folder, e.g. --state .podmesh, or leave it unset.' });
  if (issues.length > 0) return issues;
  const out = canonical(where.outDir);
  const state = canonical(where.stateDir);
  const fix = 'Keep the state folder (private keys, passwords) apart from out/, which is committed: e.g. --state .podmesh.';
  if (out === state) issues.push({ path: where.stateSource, message: `the state folder ${where.stateDir} is the output folder. ${fix}` });
  else if (within(state, out)) issues.push({ path: where.stateSource, message: `the state folder ${where.stateDir} is inside the output folder ${where.outDir}. ${fix}` });
  else if (within(out, state)) issues.push({ path: where.stateSource, message: `the state folder ${where.stateDir} contains the output folder ${where.outDir}. ${fix}` });
  return issues;
}

/**
 * A state folder inside a git work tree that git does not ignore would be committed with its keys.
 * Asks git itself (`git check-ignore`), so every ignore rule counts; outside a work tree, or without
 * git, there is nothing to check.
 */
export async function gitExposureIssues(where: Locations): Promise<Issue[]> {
  const state = canonical(where.stateDir);
  const dir = existingDir(dirname(state));
  // A trailing slash asks about the folder itself, whether or not it exists yet.
  const probe = `${relative(dir, state) || '.'}/`;
  // Ignored is the usual answer, and settles it: one git process (a writing command waits for it,
  // and starting one costs the main thread 10 to 20 ms here). Otherwise check-ignore's answer
  // counts only inside a work tree, which rev-parse tells.
  const ignored = await git(['check-ignore', '-q', '--no-index', probe], dir);
  if (ignored.exitCode === 0) return [];
  const top = await git(['rev-parse', '--show-toplevel'], dir);
  if (top.exitCode !== 0 || top.stdout === '') return [];
  if (!within(state, canonical(top.stdout))) return [];
  return [{
    path: where.stateSource,
    message: `the state folder ${where.stateDir} is inside the git work tree ${top.stdout} and git does not ignore it, so its private keys and passwords could be committed. Add "${relative(top.stdout, state)}/" to .gitignore, or put the state folder outside the work tree.`,
  }];
}

/**
 * A git command's exit code and trimmed output (127 when git is not installed). Node's own
 * child_process: this runs before every writing command, and loading execa costs more than git.
 */
function git(args: readonly string[], cwd: string): Promise<{ exitCode: number; stdout: string }> {
  return new Promise((done) => {
    execFile('git', [...args], { cwd, encoding: 'utf8' }, (error, stdout) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 127) : 0;
      done({ exitCode: code, stdout: stdout.trim() });
    });
  });
}

/** The nearest existing path at or above `dir`. */
function existingDir(dir: string): string {
  let d = dir;
  for (let i = 0; i < 256; i++) {
    try {
      realpathSync(d);
      return d;
    } catch {
      const up = dirname(d);
      if (up === d) return d;
      d = up;
    }
  }
  return d;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * A strict ISO-8601 time (`2027-01-31`, `2027-01-31T12:00Z`, `2027-01-31T12:00:00.5+01:00`), or a
 * message saying what is wrong. A date that does not exist (`2027-02-30`) is refused instead of
 * rolling over into the next month, and a time needs its zone, so the clock never depends on the
 * machine's.
 */
export function parseIsoTime(text: string): Date | string {
  const m = ISO.exec(text);
  const example = 'e.g. 2027-01-31 or 2027-01-31T12:00:00Z';
  if (!m) return `"${text}" is not an ISO-8601 date or time with a zone, ${example}.`;
  const [, y = '', mo = '', d = '', h = '00', mi = '00', s = '00'] = m;
  const year = Number(y), month = Number(mo), day = Number(d);
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12) return `"${text}" has month ${mo}; months run 01-12.`;
  if (day < 1 || day > days) return `"${text}" has day ${d}, but ${y}-${mo} has ${days} days.`;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return `"${text}" has time ${h}:${mi}:${s}; hours run 00-23, minutes and seconds 00-59.`;
  const zone = m[8];
  if (zone && zone !== 'Z' && (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4)) > 59)) return `"${text}" has zone ${zone}, which is not a UTC offset.`;
  return new Date(m[4] === undefined ? `${text}T00:00:00Z` : text);
}
