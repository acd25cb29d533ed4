// planSynth: everything a synth would do, as plain data, with every problem of every stack; writes nothing.
import { findLeftovers } from '../state/leftovers.ts';
import { join } from 'node:path';
import type { App } from '../../constructs/core/app.ts';
import { PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import type { Stack } from '../../constructs/core/stack.ts';
import { StagedOutput } from '../io/staged.ts';
import { compareStackOutput, pruneStacks, type Comparison, type WriteReport } from '../io/writer.ts';
import { LOCK_FILE } from '../resolve/lock.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import type { ResolveOutcome } from '../resolve/resolve.ts';
import type { StateReport } from './apply.ts';
import type { FastPathOptions } from './fastpath.ts';
import type { RenderedFile } from '../render/file.ts';
import { MANIFEST } from '../render/manifest.ts';
import { contents, renderStack } from '../render/stack.ts';
import type { PkiPlan } from '../state/pki/index.ts';
import type { KeySource } from '../state/pki/types.ts';
import type { RandomSource } from '../state/random.ts';
import { stateContext, type StateContext } from '../state/reconciler.ts';
import { secretsReconciler, type SecretsPlan } from '../state/secrets/reconcile.ts';
import { tunnelHosts, withPublicKeys, wireguardReconciler, type WireguardPlan } from '../state/wireguard/index.ts';
import { resolveWithLock, selectStacks, stacksOf } from './select.ts';

/** Options of a synth run (and of its plan). */
export interface SynthOptions {
  /** Output folder. @default 'out' */
  readonly outDir?: string;
  /** State folder (keys, certificates). @default '.podmesh' */
  readonly stateDir?: string;
  /** Names of the stacks to synthesize. @default - every stack of the app */
  readonly stacks?: readonly string[];
  /** Compare only: write nothing and report what differs. @default false */
  readonly check?: boolean;
  /** Clock for certificate decisions. @default - the current time */
  readonly now?: Date;
  /** Reconcile the state folder only; leave `out/` alone (`podmesh certs issue`). @default false */
  readonly stateOnly?: boolean;
  /**
   * WireGuard keys to replace now, as host names by stack name (`podmesh wireguard rotate`).
   * @default - none: existing keys are reused
   */
  readonly rotateWireguard?: Readonly<Record<string, readonly string[]>>;
  /**
   * Services whose generated secrets get new values now, by stack name (`podmesh secrets rotate`).
   * @default - none: existing values are kept
   */
  readonly rotateSecrets?: Readonly<Record<string, readonly string[]>>;
  /** Random bytes for keys, secrets and serials. @default - Node's CSPRNG */
  readonly random?: RandomSource;
  /** Certificate key pairs. @default - WebCrypto */
  readonly keys?: KeySource;
  /**
   * The verified no-change fast path of {@link synth} (src/synth/fastpath.ts): an object turns it
   * on (the CLI's default), false or absent runs every step. Runs with `now`, `random`, `keys`,
   * `stateOnly` or rotations always take the slow path.
   * @default - off
   */
  readonly cache?: false | FastPathOptions;
}

/** The state changes of one stack, each reconciler's plan with its new material. */
export interface StatePlan {
  /** The stack's state folder, `<stateDir>/<stack>`. */
  readonly dir: string;
  readonly pki: PkiPlan;
  readonly secrets: SecretsPlan;
  /** Multi-host stacks only. */
  readonly wireguard?: WireguardPlan;
  /** Temporaries an interrupted run left (relative to `dir`), removed first on apply. */
  readonly leftovers: readonly string[];
}

/** Everything synth would do to one stack. */
export interface StackPlan {
  readonly stack: string;
  /** Absent when a state reconciler found a problem (it is in the plan's problems), or when the state is {@link kept}. */
  readonly state?: StatePlan;
  /**
   * The state folder as the last synth left it, which this plan did not read: the no-change report
   * its cache entry vouches for (src/synth/fastpath.ts, keptStates). Nothing of it is applied.
   */
  readonly kept?: StateReport;
  /** Every file of `out/<stack>/`, rendered with the WireGuard public keys as they will be after apply. */
  readonly files: ReadonlyMap<string, RenderedFile>;
  /** The rendered files against `out/<stack>/` now. */
  readonly comparison: WriteReport;
  /** What that comparison saw of `out/<stack>/` (see {@link Comparison}): apply reuses it while nothing there changed. */
  readonly seenInOut: Comparison['seen'];
  /** Things a person should know that do not stop the run. */
  readonly warnings: readonly string[];
  /**
   * `out/<stack>/` as rendered, being written to its staging folder meanwhile (see
   * {@link StagingPolicy}): apply swaps it in, or the run discards it ({@link discardStaged}).
   */
  readonly staged?: StagedOutput;
}

/**
 * Whether planning may write a stack's new out/ folder to its staging copy while rendering it
 * (src/io/staged.ts): for stacks of at least `minServices` services whose out/ folder is absent,
 * on more than one core. Only {@link synth} asks for it, and it swaps the copy in or discards it;
 * without it planning writes nothing.
 */
export interface StagingPolicy {
  readonly minServices: number;
}

/** Ends the staging copies of a plan that apply did not swap in (a refused plan, a failed apply). */
export async function discardStaged(plan: Pick<SynthPlan, 'stacks'>): Promise<void> {
  for (const s of plan.stacks) await s.staged?.discard();
}

/** A synth, decided: apply it with {@link applySynth}, compare it, or format it. */
export interface SynthPlan {
  readonly outDir: string;
  readonly stateDir: string;
  /** Apply reconciles the state folder only (`podmesh certs issue`). */
  readonly stateOnly: boolean;
  /** Stacks planned, in construct order. */
  readonly stacks: readonly StackPlan[];
  /** Whether `out/` folders of stacks the app no longer has are removed (not when stacks were picked). */
  readonly prune: boolean;
  /** Every stack of the app (what pruning keeps). */
  readonly keep: readonly string[];
  /** `out/` folders of stacks that no longer exist. */
  readonly prunedStacks: readonly string[];
  /** Every problem found; a plan with problems is never applied. */
  readonly problems: readonly Issue[];
}

/** The certificate engine (and its X.509 library), loaded by the first state plan or apply: a synth whose every state is kept never needs it. */
export const pkiEngine = () => import('../state/pki/reconcile.ts');

/** Collects a PodmeshError's issues; anything else is rethrown. */
async function collect<T>(problems: Issue[], f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof PodmeshError)) throw e;
    problems.push(...e.issues);
    return undefined;
  }
}

/** The state plans of one resolved stack (also the fast path's re-check after a synth that changed the state); undefined when any reconciler found a problem (in `problems`). */
export async function planState(s: ResolvedStack, where: { outDir: string; stateDir: string }, ctx: StateContext, rotate: { wireguard: readonly string[]; secrets: readonly string[] }, problems: Issue[]): Promise<StatePlan | undefined> {
  const dir = join(where.stateDir, s.name);
  const found: Issue[] = [];
  const wireguard = s.wireguard
    ? await collect(found, () =>
        wireguardReconciler.plan(
          { stateDir: dir, stackPath: s.name, lockFile: join(where.outDir, s.name, LOCK_FILE), hosts: tunnelHosts(s), presharedKeys: s.wireguard!.presharedKeys, rotate: rotate.wireguard },
          ctx,
        ),
      )
    : undefined;
  const { pkiReconciler } = await pkiEngine();
  const pki = await collect(found, () => pkiReconciler.plan({ stateDir: dir, authority: s.pki.authority, bindings: s.pki.bindings, ocsp: s.pki.ocsp !== undefined }, ctx));
  const secrets = await collect(found, () => secretsReconciler.plan({ stateDir: dir, stack: s.name, services: s.services, rotate: rotate.secrets }, ctx));
  problems.push(...found);
  if (found.length > 0 || !pki || !secrets) return undefined;
  return { dir, pki, secrets, ...(wireguard ? { wireguard } : {}), leftovers: findLeftovers(dir) };
}

/** Resolves, plans the state of (unless `kept`: see {@link StackPlan.kept}), renders and compares one stack. */
async function planStack(
  stack: Stack,
  where: { outDir: string; stateDir: string },
  ctx: StateContext,
  options: SynthOptions,
  problems: Issue[],
  pre?: ReadonlyMap<Stack, ResolveOutcome>,
  kept?: StateReport,
  staging?: StagingPolicy,
): Promise<StackPlan | undefined> {
  const outcome = pre?.get(stack) ?? (await resolveWithLock(stack, where.outDir));
  problems.push(...outcome.issues);
  const resolved = outcome.resolved;
  if (!resolved) return undefined;
  const rotate = { wireguard: options.rotateWireguard?.[resolved.name] ?? [], secrets: options.rotateSecrets?.[resolved.name] ?? [] };
  const state = kept ? undefined : await planState(resolved, where, ctx, rotate, problems);
  // Public keys as they will be after apply; the lock's when the key plan failed (render problems still show).
  // Nothing is worth staging for a stack whose state or constructs have problems: apply refuses the plan.
  const staged = staging && !options.check && !options.stateOnly && problems.length === 0 && resolved.services.length >= staging.minServices ? StagedOutput.start(where.outDir, resolved.name) : undefined;
  let rendered: ReturnType<typeof renderStack>;
  let compared: ReturnType<typeof compareStackOutput>;
  try {
    rendered = renderStack(withPublicKeys(resolved, (state ? state.wireguard?.result : kept?.wireguard)?.publicKeys ?? {}), where, staged && Object.assign((path: string, text: string) => staged.add(path, text), { progress: () => staged.progress() }));
    compared = compareStackOutput(where.outDir, resolved.name, contents(rendered.files));
  } catch (e) {
    await staged?.discard();
    throw e;
  }
  problems.push(...rendered.issues);
  if (rendered.issues.length > 0) await staged?.discard();
  const warnings = (state?.pki.result ?? kept?.pki)?.warnings ?? [];
  return {
    stack: resolved.name,
    ...(state ? { state } : {}),
    ...(kept ? { kept } : {}),
    files: rendered.files,
    comparison: compared.report,
    seenInOut: compared.seen,
    warnings,
    ...(staged && rendered.issues.length === 0 ? { staged } : {}),
  };
}

/**
 * Plans a synth: per stack the state changes (new material held in the plan), the rendered files,
 * their comparison with `out/`, warnings, the stacks to prune, and every problem of every stack
 * (construct validation, resolution, state, rendering). Reads `out/` and the state folder; writes
 * nothing, not even a folder, unless given `staging` (see {@link StagingPolicy}: then a large
 * stack's absent out/ folder is written to its staging copy, which the caller swaps in or
 * discards with {@link discardStaged}). `resolved`: stacks already validated and resolved with the lock of
 * `options.outDir` (the fast path's work, not done twice); `kept`: the stacks whose state is not
 * planned (see {@link StackPlan.kept}), by name.
 */
export async function planSynth(
  app: App,
  options: SynthOptions = {},
  resolved?: ReadonlyMap<Stack, ResolveOutcome>,
  kept?: ReadonlyMap<string, StateReport>,
  staging?: StagingPolicy,
): Promise<SynthPlan> {
  const where = { outDir: options.outDir ?? 'out', stateDir: options.stateDir ?? '.podmesh' };
  const ctx = stateContext({ ...(options.now ? { now: options.now } : {}), ...(options.random ? { random: options.random } : {}), ...(options.keys ? { keys: options.keys } : {}) });
  const picked = options.stacks !== undefined && options.stacks.length > 0;
  const problems: Issue[] = [];
  const stacks: StackPlan[] = [];
  try {
    for (const stack of selectStacks(app, options.stacks)) {
      const planned = await planStack(stack, where, ctx, options, problems, resolved, kept?.get(stack.node.id), staging);
      if (planned) stacks.push(planned);
    }
  } catch (e) {
    await discardStaged({ stacks });
    throw e;
  }
  const keep = stacksOf(app).map((s) => s.node.id);
  const prunedStacks = picked ? [] : await pruneStacks(where.outDir, new Set(keep), MANIFEST, { check: true });
  return { ...where, stateOnly: options.stateOnly ?? false, stacks, prune: !picked, keep, prunedStacks, problems };
}
