// `podmesh synth`: render every stack (or --stack NAME) into out/<stack>/, or with --check compare only.
import type { CheckResult, FastPathOptions } from '../../synth.ts';
import { HELP, type Command, type Io } from '../command.ts';
import { parseNow, parseOptions, stateDir } from '../options.ts';

/** What `podmesh synth` was asked to do. */
export interface SynthArgs {
  readonly stacksDir: string;
  readonly stacks: readonly string[] | undefined;
  readonly out: string;
  readonly state: string | undefined;
  readonly check: boolean;
  readonly now: Date | undefined;
  /** `--no-cache`: always reconcile, render and compare. */
  readonly noCache: boolean;
}

const options = {
  check: { type: 'boolean', default: false },
  now: { type: 'string' },
  'no-cache': { type: 'boolean', default: false },
} as const;

export const synthCommand: Command<SynthArgs> = {
  name: 'synth',
  usage: '  synth                          render every stack (or --stack NAME) into out/<stack>/\n',
  options,
  optionsHelp: [
    ['--check', 'write nothing; exit 1 and list the files that differ when out/ is stale'],
    ['--now ISO', 'the clock used for certificate decisions (default: now)'],
    ['--no-cache', 'skip the no-change fast path: reconcile, render and compare every file (also PODMESH_NO_CACHE=1)'],
  ],
  writes: true,
  guarded: true,
  parse(argv) {
    const { values: v } = parseOptions(argv, options);
    if (v.help) return HELP;
    return { stacksDir: v.stacks, stacks: v.stack, out: v.out, state: v.state, check: v.check, now: parseNow(v.now), noCache: v['no-cache'] };
  },
  async run(a, io) {
    // The engine loads only when a command runs: --help and usage errors stay light. run.ts loads
    // the planner, renderers and state engines only when the no-change fast path cannot serve the run.
    const [{ checkSynth, synth }, { describeSynth }, { loadStacks }] = await Promise.all([import('../../synth/run.ts'), import('../describe.ts'), import('../load.ts')]);
    const state = stateDir(a.state, io.env);
    const app = await loadStacks(a.stacksDir);
    // The no-change fast path (src/synth/fastpath.ts) unless turned off; --now always runs every step.
    const debug =
      io.env.PODMESH_DEBUG_CACHE === '1'
        ? {
            onDecision: (d: { fast: boolean; reason: string; by?: string }) => io.err(`podmesh: ${d.fast ? `fast path (vouched by the ${d.by === 'constructs' ? 'constructs, nothing resolved' : 'resolved models'})` : 'slow path'}: ${d.reason}\n`),
            onKeptState: (stacks: readonly string[]) => io.err(`podmesh: state folder as the last synth left it, not planned again: ${stacks.join(', ')}\n`),
            onStaged: (stacks: readonly string[]) => io.err(`podmesh: out/ written while rendering, by a worker thread: ${stacks.join(', ')}\n`),
            onStateChecked: (stacks: readonly string[]) => io.err(`podmesh: state folder checked against its cache entry by a worker thread while the stacks resolved: ${stacks.join(', ')}\n`),
          }
        : {};
    const cache: false | FastPathOptions = a.noCache || io.env.PODMESH_NO_CACHE === '1' ? false : debug;
    const options = { outDir: a.out, stateDir: state, stacks: a.stacks, now: a.now, cache };
    if (a.check) return reportCheck(await checkSynth(app, options), a.out, state, io);
    io.out(describeSynth(await synth(app, options), { out: a.out, state, check: false }));
    return 0;
  },
};

/** `synth --check`: the state changes synth would make (information), then out/'s differences (the exit code). */
async function reportCheck(check: CheckResult, out: string, state: string, io: Io): Promise<number> {
  const [{ describeStateChange }, { describeWrite }] = await Promise.all([import('../../synth/check.ts'), import('../describe.ts')]);
  for (const c of check.stateChanges) io.out(`${describeStateChange(c, `${state}/${c.stack}`)}\n`);
  for (const r of check.reports) io.out(describeWrite(r, out, true));
  for (const s of check.prunedStacks) io.out(`${s}: stack no longer exists, out/${s} would be removed\n`);
  if (!check.stale) return 0;
  io.err(`${out}/ is stale: run \`npm run synth\` and commit the result.\n`);
  return 1;
}
