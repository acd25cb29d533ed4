// Runs one command line against the table: pick the row, parse, run, and turn errors into exit codes.
import { PodmeshError, formatIssues, type Issue } from '../../constructs/core/errors.ts';
import { HELP, type AnyCommand, type Group, type Io } from './command.ts';
import { COMMANDS, GROUPS } from './commands/index.ts';
import { usageText } from './help.ts';
import { resolve } from 'node:path';
import { lockBeside, withLock } from '../io/lock.ts';
import { gitExposureIssues, locationIssues } from './locations.ts';
import { UsageError, workspaceOf, type Workspace } from './options.ts';


/** The table a run uses (tests may pass their own). */
export interface CliTable {
  readonly commands: readonly AnyCommand[];
  readonly groups: readonly Group[];
}

/** What argv selects: usage text with an exit code, or a row and the arguments after its name. */
type Selection = { readonly usage: number } | { readonly command: AnyCommand; readonly args: readonly string[] };

/** Picks the row argv names; pure. Throws UsageError for an unknown command. */
export function select(argv: readonly string[], table: CliTable): Selection {
  const [first, ...rest] = argv;
  if (first === undefined) return { usage: 2 };
  if (first === '--help' || first === '-h' || first === 'help') return { usage: 0 };
  const group = table.groups.find((g) => g.name === first);
  if (group) {
    const [sub, ...more] = rest;
    if (sub === undefined) return { usage: 2 };
    if (sub === '--help' || sub === '-h') return { usage: 0 };
    const command = table.commands.find((c) => c.name === `${first} ${sub}`);
    if (!command) throw new UsageError(group.unknown(sub));
    return { command, args: more };
  }
  const command = table.commands.find((c) => c.name === first);
  if (!command) {
    const names = [...new Set(table.commands.map((c) => c.name.split(' ')[0]!).filter((n) => !n.startsWith('-')))];
    throw new UsageError(`unknown command "${first}". Commands: ${names.join(', ')}. See podmesh --help.`);
  }
  return { command, args: rest };
}

/** Runs `podmesh ARGV`; returns the exit code. Every output goes through `io`. */
export async function runCli(argv: readonly string[], io: Io, table: CliTable = { commands: COMMANDS, groups: GROUPS }): Promise<number> {
  let command: AnyCommand | undefined;
  try {
    const picked = select(argv, table);
    if ('usage' in picked) {
      io.out(usageText(table.commands));
      return picked.usage;
    }
    command = picked.command;
    const data: unknown = command.parse(picked.args);
    if (data === HELP) {
      io.out(usageText(table.commands));
      return 0;
    }
    if (!command.guarded) return await command.run(data, io);
    const chosen = command;
    return await guarded(workspaceOf(picked.args, io.env), io, command.name, () => chosen.run(data, io));
  } catch (e) {
    return reportError(e, { writes: command?.writes ?? true, debug: argv.includes('--debug') }, io);
  }
}

/**
 * Runs a command that writes the state folder or out/: refuses folders that would expose or lose
 * keys, then holds both folders' locks (state first, always in that order) while it runs.
 */
async function guarded(ws: Workspace, io: Io, name: string, run: () => Promise<number>): Promise<number> {
  // Empty names are refused as given: resolved, '' would become the working directory.
  const empty = locationIssues({ outDir: ws.out, stateDir: ws.state, stateSource: ws.stateSource }).filter((i) => / is empty\./.test(i.message));
  if (empty.length > 0) throw new PodmeshError(empty);
  const where = { outDir: resolve(io.cwd, ws.out), stateDir: resolve(io.cwd, ws.state), stateSource: ws.stateSource };
  const issues = locationIssues(where);
  if (issues.length === 0) issues.push(...(await gitExposureIssues(where)));
  if (issues.length > 0) throw new PodmeshError(issues);
  const options = { command: `podmesh ${name}`, timeoutSeconds: ws.lockTimeoutSeconds, onWait: (m: string) => io.err(`podmesh: ${m}\n`) };
  return withLock(lockBeside(where.stateDir), options, () => withLock(lockBeside(where.outDir), { ...options, dirMode: 0o755 }, run));
}


/** What the file system said, in words a user can act on; by errno code. */
const FILE_SYSTEM: Readonly<Record<string, string>> = {
  EACCES: 'is not accessible to this user (permission denied). Fix its owner or mode, or run as the user who owns it',
  EPERM: 'may not be changed by this user (operation not permitted). Fix its owner or mode, or run as the user who owns it',
  EROFS: 'is on a read-only file system. Use a writable folder (--out, --state)',
  ENOTDIR: 'is a file where a folder is needed. Move it away or point --out/--state elsewhere',
  EISDIR: 'is a folder where a file is needed. Move it away',
  EEXIST: 'already exists where podmesh needs to create something. Move it away',
  ENOSPC: 'has no space left on its device. Free some space and run again',
  EDQUOT: 'is over its disk quota. Free some space and run again',
  ENAMETOOLONG: 'has a name too long for the file system. Use a shorter --out/--state path',
  ELOOP: 'has too many symbolic links in its path. Resolve them',
};

/** An error from the environment (a file podmesh could not read or write): the user's to fix, exit 1. */
function environmentProblem(e: unknown): Issue | undefined {
  const err = e as NodeJS.ErrnoException;
  // mkdir over a file says EEXIST: what the user sees is a file where a folder belongs.
  const code = err?.code === 'EEXIST' && err.syscall === 'mkdir' ? 'ENOTDIR' : err?.code;
  const what = typeof code === 'string' ? FILE_SYSTEM[code] : undefined;
  if (!what || typeof err.path !== 'string') return undefined;
  return { path: err.path, message: `${what} (${err.code}${err.syscall ? ` in ${err.syscall}` : ''}).` };
}

/** Exit codes: 1 for problems in stacks or state, 2 for a wrong command line, 70 for a bug. */
function reportError(e: unknown, o: { readonly writes: boolean; readonly debug: boolean }, io: Io): number {
  if (e instanceof PodmeshError) {
    const n = e.issues.length;
    io.err(`podmesh: ${n} problem${n === 1 ? '' : 's'}${o.writes ? '; nothing was written.' : '.'}\n${formatIssues(e.issues)}\n`);
    return 1;
  }
  if (e instanceof UsageError) {
    io.err(`podmesh: ${e.message}\n`);
    return 2;
  }
  const env = environmentProblem(e);
  if (env) {
    io.err(`podmesh: 1 problem.\n${formatIssues([env])}\n`);
    return 1;
  }
  const err = e as Error;
  io.err(`podmesh: unexpected error: ${o.debug ? err.stack : err.message}\n${o.debug ? '' : 'Run again with --debug for the stack trace, and report it.\n'}`);
  return 70;
}
