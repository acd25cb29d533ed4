// Command-line options shared by every podmesh command, and the pure helpers that read them.
import { parseArgs, type ParseArgsConfig } from 'node:util';

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
} as const satisfies Options;

/** How --help describes the options every command takes (flag column, then text). */
export const COMMON_HELP: readonly (readonly [string, string])[] = [
  ['--stack NAME', 'only this stack (repeatable)'],
  ['--out DIR', 'output folder (default: out)'],
  ['--state DIR', 'state folder for keys and certificates (default: .podmesh, or $PODMESH_STATE_DIR)'],
  ['--stacks DIR', 'folder of stack files (default: stacks)'],
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

/** `--now ISO-8601`, or undefined when not given. */
export function parseNow(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const d = new Date(text);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new UsageError(`--now "${text}" is not an ISO-8601 time, e.g. 2027-01-31T12:00:00Z.`);
  }
  return d;
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
