// Runs one command line against the table: pick the row, parse, run, and turn errors into exit codes.
import { PodmeshError, formatIssues } from '../../constructs/core/errors.ts';
import { HELP, type AnyCommand, type Group, type Io } from './command.ts';
import { COMMANDS, GROUPS } from './commands/index.ts';
import { usageText } from './help.ts';
import { UsageError } from './options.ts';

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
    return await command.run(data, io);
  } catch (e) {
    return reportError(e, { writes: command?.writes ?? true, debug: argv.includes('--debug') }, io);
  }
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
  const err = e as Error;
  io.err(`podmesh: unexpected error: ${o.debug ? err.stack : err.message}\n${o.debug ? '' : 'Run again with --debug for the stack trace, and report it.\n'}`);
  return 70;
}
