// `podmesh --version`: the version of this podmesh, from its package.json.
import { HELP, type Command } from '../command.ts';
import { parseOptions } from '../options.ts';
import { podmeshPackage } from '../version.ts';

export const versionCommand: Command<Record<string, never>> = {
  name: '--version',
  usage: '  --version                      print the version of podmesh\n',
  options: {},
  writes: false,
  parse(argv) {
    return parseOptions(argv, {}).values.help ? HELP : {};
  },
  async run(_a, io) {
    io.out(`${podmeshPackage().version}\n`);
    return 0;
  },
};
