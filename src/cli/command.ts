// The shape every podmesh command has: a pure parse from argv to data, and a run step that does the work.
import type { Options } from './options.ts';

/** What a command may touch of the outside world besides files: its output streams and environment. */
export interface Io {
  /** Writes to standard output. */
  readonly out: (text: string) => void;
  /** Writes to standard error. */
  readonly err: (text: string) => void;
  /** The environment (`PODMESH_STATE_DIR`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The working directory relative paths start from. */
  readonly cwd: string;
  /** Standard output is a terminal (colours in `diff`). */
  readonly tty: boolean;
}

/** `parse` saw `--help`: the runner prints the usage and exits 0. */
export const HELP = Object.freeze({ help: true as const });
export type Help = typeof HELP;

/** One row of the command table. */
export interface Command<D> {
  /** The words that select it: `synth`, `certs status`. */
  readonly name: string;
  /** Its lines under "Commands:" in --help, each starting with two spaces, ending with a newline. */
  readonly usage: string;
  /** Options beyond COMMON, as parseArgs takes them. */
  readonly options: Options;
  /** A section "<name> options:" in --help, one `[flag, text]` per row. */
  readonly optionsHelp?: readonly (readonly [string, string])[];
  /**
   * Its problems leave nothing half-written (synth, certs, wireguard), so the error report says
   * "nothing was written"; commands that only read, or report their own progress, say nothing.
   */
  readonly writes: boolean;
  /**
   * It writes the state folder or `out/` (or installs from them): the runner refuses a state folder
   * inside, equal to or around out/ or one git would commit, and holds the lock of both folders
   * while it runs. @default false
   */
  readonly guarded?: boolean;
  /** argv after the command words to data; no I/O. Throws UsageError for a wrong command line. */
  readonly parse: (argv: readonly string[]) => D | Help;
  /** Does the work; returns the exit code. */
  readonly run: (data: D, io: Io) => Promise<number>;
}

/**
 * Any row of the table. The data type is private to each row (its parse feeds only its run), so
 * the table erases it; `unknown` would not do, as `run` takes the data as a parameter.
 */
export type AnyCommand = Command<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A command group (`certs`, `wireguard`): its sub-commands are the rows named `<group> <sub>`. */
export interface Group {
  readonly name: string;
  /** The message for an unknown sub-command. */
  readonly unknown: (sub: string) => string;
}
