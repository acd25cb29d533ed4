// Command-line options shared by every podmesh command, and the pure helpers that read them.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseIsoTime } from './locations.ts';

/** A parseArgs option table. */
export type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes. */
export const COMMON = {
  stack: { type: 'string', multiple: true },
  out: { type: 'string', default: 'out' },
  state: { type: 'string' },
  stacks: { type: 'string', default: 'stacks' },
  help: { type: 'boolean', short: 'h', default: false },
  debug: { type: 'boolean', default: false },
  'lock-timeout': { type: 'string' },
} as const satisfies Options;

/** How --help describes the options every command takes (flag column, then text). */
export const COMMON_HELP: readonly (readonly [string, string])[] = [
  ['--stack NAME', 'only this stack (repeatable)'],
  ['--out DIR', 'output folder (default: out)'],
  ['--state DIR', 'state folder for keys and certificates (default: .podmesh, or $PODMESH_STATE_DIR)'],
  ['--stacks DIR', 'folder of stack files (default: stacks)'],
  ['--lock-timeout S', 'seconds to wait for another podmesh run holding the state folder or out/ (default: 60)'],
  ['--debug', 'print stack traces of unexpected errors'],
  ['-h, --help', 'this help'],
];

/** A wrong command line: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

/** The values of the options every command takes, as parseArgs returns them. */
export interface CommonValues {
  readonly stack?: string[];
  readonly out: string;
  readonly state?: string;
  readonly stacks: string;
  readonly help: boolean;
}

/**
 * Strict parseArgs over COMMON plus `options`; a wrong option is a UsageError pointing to --help.
 * Pure: reads only `args`.
 */
export function parseOptions<O extends Options>(args: readonly string[], options: O, positionals = false) {
  try {
    return parseArgs({ args: [...args], options: { ...COMMON, ...options }, allowPositionals: positionals, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}. See podmesh --help.`);
  }
}

/** `--now ISO-8601`, strictly (no 30 February, a zone with every time), or undefined when not given. */
export function parseNow(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const d = parseIsoTime(text);
  if (typeof d === 'string') throw new UsageError(`--now ${d}`);
  return d;
}

/** Where a guarded command works, read from its arguments and the environment; pure. */
export interface Workspace {
  readonly out: string;
  readonly state: string;
  /** Which flag or variable named the state folder. */
  readonly stateSource: string;
  readonly lockTimeoutSeconds: number;
}

/** The common options of a command line, read leniently (the command's own parse is the strict one). */
export function workspaceOf(args: readonly string[], env: Readonly<Record<string, string | undefined>>): Workspace {
  const { values: v } = parseArgs({ args: [...args], options: COMMON, allowPositionals: true, strict: false });
  const state = typeof v.state === 'string' ? v.state : undefined;
  const timeout = typeof v['lock-timeout'] === 'string' ? v['lock-timeout'] : '60';
  const seconds = Number(timeout);
  if (timeout.trim() === '' || !Number.isFinite(seconds) || seconds < 0) throw new UsageError(`--lock-timeout "${timeout}" is not a number of seconds, e.g. --lock-timeout 120.`);
  return {
    out: typeof v.out === 'string' ? v.out : 'out',
    state: stateDir(state, env),
    stateSource: state !== undefined ? '--state' : env.PODMESH_STATE_DIR !== undefined ? '$PODMESH_STATE_DIR' : '--state',
    lockTimeoutSeconds: seconds,
  };
}

/** A whole number of days (`--warn-days`). */
export function parseDays(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} "${text}" is not a whole number of days.`);
  return n;
}

/** One of `allowed`, or a UsageError naming them. */
export function oneOf<T extends string>(value: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag} "${value}" is not one of ${allowed.join(', ')}.`);
  return value as T;
}

/** The state folder: `--state`, else $PODMESH_STATE_DIR, else `.podmesh`. */
export function stateDir(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  return flag ?? env.PODMESH_STATE_DIR ?? '.podmesh';
}
