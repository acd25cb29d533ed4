// The text of `podmesh --help`, generated from the command table.
import type { AnyCommand } from './command.ts';
import { COMMON_HELP } from './options.ts';

const rows = (list: readonly (readonly [string, string])[]): string => list.map(([flag, text]) => `  ${flag.padEnd(15)}${text}\n`).join('');

/** The usage of every command in table order, the options all take, then each command's own options. */
export function usageText(table: readonly AnyCommand[]): string {
  const own = table.filter((c) => c.optionsHelp && c.optionsHelp.length > 0).map((c) => `\n${c.name} options:\n${rows(c.optionsHelp!)}`);
  return [
    'podmesh: Podman service meshes from TypeScript stacks\n',
    '\nUsage: podmesh <command> [options]\n',
    '\nCommands:\n',
    ...table.map((c) => c.usage),
    '\nOptions for every command:\n',
    rows(COMMON_HELP),
    ...own,
  ].join('');
}
