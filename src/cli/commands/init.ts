// `podmesh init`: start a podmesh project in the current folder.
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { HELP, type Command } from '../command.ts';
import { applyInit, planInit, readInitInput, type InitPlan } from '../init.ts';
import { parseOptions } from '../options.ts';
import { podmeshPackage } from '../version.ts';

const options = { force: { type: 'boolean', default: false } } as const;

const VERBS = { create: 'wrote', overwrite: 'replaced', update: 'updated', keep: 'kept' } as const;

export const initCommand: Command<{ readonly force: boolean }> = {
  name: 'init',
  usage: `  init [--force]                 start a project here: package.json scripts, tsconfig.json, .gitignore,
                                 stacks/example.ts, README.md; refuses to overwrite a file without --force
`,
  options,
  optionsHelp: [['--force', 'overwrite files (and package.json entries) that differ from what init writes']],
  writes: true,
  parse(argv) {
    const { values: v } = parseOptions(argv, options);
    return v.help ? HELP : { force: v.force };
  },
  async run(a, io) {
    const plan = planInit(readInitInput(io.cwd, podmeshPackage(), a.force));
    if (plan.conflicts.length > 0) throw new PodmeshError(plan.conflicts);
    applyInit(io.cwd, plan);
    io.out(describeInit(plan));
    return 0;
  },
};

/** What init did, and what to run next. */
export function describeInit(plan: InitPlan): string {
  const lines = plan.files.map((f) => `  ${VERBS[f.action]} ${f.path}\n`).join('');
  const install = plan.added.length > 0 ? ` npm install (package.json now lists ${plan.added.join(', ')}), then` : '';
  return (
    `podmesh init:\n${lines}` +
    `Next:${install} npm run synth, and read out/example/TOPOLOGY.md.\n` +
    'Keep .podmesh/ (keys, certificates, secrets) out of git; commit stacks/ and out/.\n'
  );
}
