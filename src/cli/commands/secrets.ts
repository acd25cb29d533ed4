// `podmesh secrets rotate`: new values for a service's generated secrets, on purpose, then a synth.
import type { ResolvedStack } from '../../resolve/model.ts';
import { HELP, type Command } from '../command.ts';
import { parseOptions, stateDir, UsageError } from '../options.ts';

/** What `podmesh secrets rotate` was asked to do. */
export interface SecretsRotateArgs {
  readonly stacksDir: string;
  readonly stacks: readonly string[] | undefined;
  readonly out: string;
  readonly state: string | undefined;
  readonly services: readonly string[];
}

const options = { service: { type: 'string', multiple: true } } as const;

export const secretsRotateCommand: Command<SecretsRotateArgs> = {
  name: 'secrets rotate',
  usage: `  secrets rotate --service S [--service S2]
                                 new generated passwords for services (ids <service>/…) and the
                                 secret files that carry them; also the fix for a lost secrets/values.json
`,
  options,
  writes: true,
  guarded: true,
  parse(argv) {
    const { values: v } = parseOptions(argv, options);
    if (v.help) return HELP;
    if (!v.service || v.service.length === 0) throw new UsageError('secrets rotate needs --service S (repeatable), e.g. podmesh secrets rotate --stack ashchan-dev --service postgres');
    return { stacksDir: v.stacks, stacks: v.stack, out: v.out, state: v.state, services: [...new Set(v.service)] };
  },
  async run(a, io) {
    const [{ resolveStacks, selectStacks, synth }, { describeSynth }, { loadStacks }, { afterRotation }] = await Promise.all([
      import('../../synth.ts'),
      import('../describe.ts'),
      import('../load.ts'),
      import('../../ops/rotation.ts'),
    ]);
    const state = stateDir(a.state, io.env);
    const app = await loadStacks(a.stacksDir);
    const stack = owningStack(await resolveStacks(selectStacks(app, a.stacks), a.out), a.services);
    const result = await synth(app, { outDir: a.out, stateDir: state, stacks: [stack.name], rotateSecrets: { [stack.name]: a.services } });
    io.out(describeSynth(result, { out: a.out, state, check: false }));
    const rotated = result.state.flatMap((r) => r.secrets.rotated);
    io.out(`${stack.name}: rotated ${rotated.join(', ')}.\n${afterRotation(stack, rotated).join('\n')}\n`);
    return 0;
  },
};

/** The one selected stack that has every named service with generated secrets. */
function owningStack(resolved: readonly ResolvedStack[], services: readonly string[]): ResolvedStack {
  const owns = (s: ResolvedStack, name: string) => s.services.some((v) => v.secrets.some((f) => f.id.startsWith(`${name}/`)));
  const owners = resolved.filter((s) => services.every((name) => owns(s, name)));
  if (owners.length === 1) return owners[0]!;
  if (owners.length > 1) throw new UsageError(`stacks ${owners.map((s) => s.name).join(', ')} all have secrets of ${services.join(', ')}: pick one with --stack.`);
  const known = [...new Set(resolved.flatMap((s) => s.services.flatMap((v) => v.secrets.map((f) => f.id.split('/')[0]!))))];
  throw new UsageError(`no selected stack has generated secrets of ${services.join(', ')}. Services with secrets: ${known.join(', ') || '(none)'}.`);
}
