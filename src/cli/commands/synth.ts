// `podmesh synth`: render every stack (or --stack NAME) into out/<stack>/, or with --check compare only.
import { synth } from '../../synth.ts';
import { HELP, type Command } from '../command.ts';
import { describeSynth } from '../describe.ts';
import { loadStacks } from '../load.ts';
import { parseNow, parseOptions, stateDir } from '../options.ts';

/** What `podmesh synth` was asked to do. */
export interface SynthArgs {
  readonly stacksDir: string;
  readonly stacks: readonly string[] | undefined;
  readonly out: string;
  readonly state: string | undefined;
  readonly check: boolean;
  readonly now: Date | undefined;
}

const options = {
  check: { type: 'boolean', default: false },
  now: { type: 'string' },
} as const;

export const synthCommand: Command<SynthArgs> = {
  name: 'synth',
  usage: '  synth                          render every stack (or --stack NAME) into out/<stack>/\n',
  options,
  optionsHelp: [
    ['--check', 'write nothing; exit 1 and list the files that differ when out/ is stale'],
    ['--now ISO', 'the clock used for certificate decisions (default: now)'],
  ],
  writes: true,
  parse(argv) {
    const { values: v } = parseOptions(argv, options);
    if (v.help) return HELP;
    return { stacksDir: v.stacks, stacks: v.stack, out: v.out, state: v.state, check: v.check, now: parseNow(v.now) };
  },
  async run(a, io) {
    const state = stateDir(a.state, io.env);
    const app = await loadStacks(a.stacksDir);
    const result = await synth(app, { outDir: a.out, stateDir: state, stacks: a.stacks, check: a.check, now: a.now });
    io.out(describeSynth(result, { out: a.out, state, check: a.check }));
    if (a.check && result.changed) {
      io.err(`${a.out}/ is stale: run \`npm run synth\` and commit the result.\n`);
      return 1;
    }
    return 0;
  },
};
