// The `diff` and `apply` commands: argv in, text out; the only place apply's systemctl runs.
import { UsageError } from './options.ts';
import { execa } from 'execa';
import { type ParseArgsConfig } from 'node:util';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { executeApply, formatPlan, formatResult, planApply, type CommandRunner } from '../ops/apply.ts';
import { diffStacks, formatDiff } from '../ops/diff.ts';
import { checkPlan, planSynth, resolveStacks, selectStacks } from '../synth.ts';
import { loadStacks } from './load.ts';

/** Runs systemctl for real. */
export const execaRunner: CommandRunner = async (argv) => {
  await execa(argv[0]!, argv.slice(1), { stdio: 'inherit' });
};

/** Options the two commands share with every other command. */
type Common = { stack?: string[]; out: string; state?: string; stacks: string; help: boolean };

type Parse = <O extends NonNullable<ParseArgsConfig['options']>>(args: readonly string[], options: O) => { values: Common & Record<string, unknown> };

/** `podmesh diff`: exit 0 when synth would change nothing, 1 otherwise. */
export async function diffCommand(args: readonly string[], parse: Parse, stateDir: (flag: string | undefined) => string, parseNow: (t: string | undefined) => Date | undefined): Promise<number> {
  const { values } = parse(args, { now: { type: 'string' } });
  const state = stateDir(values.state);
  const app = await loadStacks(values.stacks);
  const now = parseNow(values.now as string | undefined);
  const result = await diffStacks(app, { outDir: values.out, stateDir: state, stacks: values.stack ?? [], ...(now ? { now } : {}) });
  process.stdout.write(formatDiff(result, { outDir: values.out, stateDir: state, color: process.stdout.isTTY === true }));
  return result.changed ? 1 : 0;
}

/** `podmesh apply --stack S --host H`: install, prune, restart what changed. */
export async function applyCommand(args: readonly string[], parse: Parse, stateDir: (flag: string | undefined) => string, runner: CommandRunner = execaRunner): Promise<number> {
  const { values } = parse(args, {
    host: { type: 'string' },
    root: { type: 'string', default: '/' },
    home: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    'no-systemctl': { type: 'boolean', default: false },
  });
  const host = values.host as string | undefined;
  if (!values.stack || values.stack.length !== 1 || !host) {
    throw new UsageError('apply needs one --stack and one --host, e.g. podmesh apply --stack ashchan-prod --host app [--root DIR] [--dry-run].');
  }
  const state = stateDir(values.state);
  const app = await loadStacks(values.stacks);
  const stackName = values.stack[0]!;
  // Install only what synth would write now: a stale out/ would deploy yesterday's stack.
  const check = checkPlan(await planSynth(app, { outDir: values.out, stateDir: state, stacks: [stackName] }));
  if (check.stale) {
    const files = check.reports.flatMap((r) => [...r.added, ...r.modified, ...r.removed].map((p) => `${values.out}/${r.stack}/${p}`));
    throw PodmeshError.at(`${values.out}/${stackName}`, `is stale (${files.slice(0, 5).join(', ')}${files.length > 5 ? ', …' : ''}): run \`podmesh synth --stack ${stackName}\` and commit the result before applying.`);
  }
  const [stack] = await resolveStacks(selectStacks(app, [stackName]), values.out);
  const plan = planApply({
    stack: stack!,
    host,
    outDir: values.out,
    stateDir: state,
    root: values.root as string,
    ...(values.home !== undefined ? { home: values.home as string } : {}),
  });
  process.stdout.write(formatPlan(plan));
  if (values['dry-run'] || !plan.changed) return 0;
  const result = await executeApply(plan, values['no-systemctl'] ? undefined : runner);
  const report = formatResult(plan, result);
  (result.failed ? process.stderr : process.stdout).write(report);
  return result.failed ? 1 : 0;
}
