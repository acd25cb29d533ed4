// synth and synth --check: the no-change fast path first, then plan and apply. Only a run the fast
// path cannot serve loads the planner, the renderers and the state engines (plan.ts, apply.ts,
// check.ts and what they import): a no-change synth never needs them.
import type { App } from '../../constructs/core/app.ts';
import type { Stack } from '../../constructs/core/stack.ts';
import { pruneStacks } from '../io/writer.ts';
import { MANIFEST } from '../render/manifest.ts';
import type { ResolveOutcome } from '../resolve/resolve.ts';
import type { StateWriter } from '../io/atomic.ts';
import type { SynthResult } from './apply.ts';
import type { CheckResult } from './check.ts';
import { beforePlan, byInputs, byModel, fastResult, keptStates, printsOf, recordSynth, startBeforePlan, type FastPathOptions, type Previous, type Prints } from './fastpath.ts';
import type { StagingPolicy, SynthOptions, SynthPlan } from './plan.ts';
import type { StateChecks } from './state-check.ts';
import { resolveWithLock, selectStacks, stacksOf, validateConstructs } from './select.ts';

/** The slow path's modules, loaded at first use. */
const slow = () =>
  Promise.all([import('./plan.ts'), import('./apply.ts'), import('./check.ts'), import('../io/atomic.ts')]).then(([plan, apply, check, atomic]) => ({ ...plan, ...apply, ...check, sharedFlushWriter: atomic.sharedFlushWriter, recordingWriter: atomic.recordingWriter }));

/** The fast path's options when a run may take it: `cache` given, and no clock, randomness, key source, state-only run or rotation injected. */
function fastPathOf(options: SynthOptions): FastPathOptions | undefined {
  const c = options.cache;
  if (!c) return undefined;
  if (options.now || options.random || options.keys || options.stateOnly) return undefined;
  if (Object.keys(options.rotateWireguard ?? {}).length > 0 || Object.keys(options.rotateSecrets ?? {}).length > 0) return undefined;
  return c;
}

/** A run's attempt at the fast path: its result, or why not and the stacks it resolved (for the slow path). */
type Attempt =
  | { readonly result: SynthResult; readonly by: 'constructs' | 'model' }
  | { readonly reason: string; readonly stacks: readonly Stack[]; readonly resolved: ReadonlyMap<Stack, ResolveOutcome>; readonly entries: Previous; readonly prints: Prints; readonly checks?: StateChecks };

/**
 * The fast path in two steps: without resolving, when every stack's constructs stand for its model
 * and print as recorded; else resolving, when every model fingerprints as recorded (an entry then
 * learns its constructs' print). Constructs with problems are always resolved (and so reported).
 */
async function attempt(app: App, options: SynthOptions, plans = false): Promise<Attempt> {
  const given = { outDir: options.outDir ?? 'out', stateDir: options.stateDir ?? '.podmesh' };
  const o = fastPathOf(options)!;
  const stacks = selectStacks(app, options.stacks);
  const picked = options.stacks !== undefined && options.stacks.length > 0;
  const prune = !picked && (await pruneStacks(given.outDir, new Set(stacksOf(app).map((s) => s.node.id)), MANIFEST, { check: true })).length > 0;
  // Taken only when an entry's cheap checks pass (an emptied out/ never needs them).
  const prints = printsOf(stacks, given);
  let entries: Previous = new Map();
  if (!prune && validateConstructs(stacks).length === 0) {
    const fast = await fastResult(stacks.map((s) => ({ name: s.node.id, vouch: byInputs(prints) })), given, o);
    if ('result' in fast) return { result: fast.result, by: 'constructs' };
    entries = fast.entries;
  }
  // A run that goes on to plan checks its state folders before the plan: started now, on a worker
  // thread, while this one resolves the stacks (stopped should the resolved models serve the run).
  let checks: StateChecks | undefined;
  if (plans) ({ entries, checks } = startBeforePlan(stacks.map((s) => s.node.id), given, o, entries));
  try {
    const resolved = new Map<Stack, ResolveOutcome>();
    for (const s of stacks) resolved.set(s, await resolveWithLock(s, given.outDir));
    if (prune) return { reason: 'out/ has folders of stacks to prune', stacks, resolved, entries, prints, checks };
    const fast = await fastResult(stacks.map((s) => ({ name: s.node.id, vouch: byModel(s, resolved.get(s), given, prints) })), given, o, entries);
    if ('result' in fast) checks?.stop();
    return 'result' in fast ? { result: fast.result, by: 'model' } : { reason: fast.reason, stacks, resolved, entries: new Map([...entries, ...fast.entries]), prints, checks };
  } catch (e) {
    checks?.stop();
    throw e;
  }
}

/**
 * Synthesizes stacks into `outDir`: plan, then apply. Throws a PodmeshError (and writes nothing)
 * when any stack has a problem. With `check`, writes nothing and reports what differs in `out/`.
 * With `cache` (see {@link SynthOptions.cache}), a run with nothing to change since the last
 * recorded synth gives that synth's no-change result without reconciling, rendering or comparing.
 */
export async function synth(app: App, options: SynthOptions = {}): Promise<SynthResult> {
  const fast = fastPathOf(options);
  if (!fast) return slowSynth(app, options);
  const a = await attempt(app, options, !options.check);
  fast.onDecision?.('result' in a ? { fast: true, reason: 'nothing changed', by: a.by } : { fast: false, reason: a.reason });
  if ('result' in a) return a.result;
  if (options.check) return slowSynth(app, options, a.resolved);
  const { planSynth, sharedFlushWriter, recordingWriter } = await slow();
  const decidedAt = new Date();
  const names = [...a.resolved.values()].flatMap((r) => (r.resolved ? [r.resolved.name] : []));
  const given = { outDir: options.outDir ?? 'out', stateDir: options.stateDir ?? '.podmesh' };
  const before = await beforePlan(names, given, a.entries, a.checks);
  if (before.checkedAhead.length > 0) fast.onStateChecked?.(before.checkedAhead);
  // A state folder as the last synth left it, for the same model and clock, is not planned again.
  const kept = keptStates(a.resolved, given, fast, before, decidedAt.getTime());
  if (kept.size > 0) fast.onKeptState?.([...kept.keys()]);
  const plan = await planSynth(app, { ...options, now: decidedAt }, a.resolved, kept, STAGING);
  // What the state writes leave in each file: the record below hashes them without reading them back.
  const recording = recordingWriter(sharedFlushWriter());
  const result = await applied(plan, recording.writer);
  const staged = plan.stacks.filter((s) => s.staged?.writtenStats() !== undefined).map((s) => s.stack);
  if (staged.length > 0) fast.onStaged?.(staged);
  await recordSynth(plan, a.resolved, before, decidedAt, fast, a.prints, recording.written);
  return result;
}

/**
 * Large stacks with an absent out/ folder are written while they render (src/io/staged.ts): the
 * worker thread's start and its messages cost more than they save for a few dozen files.
 */
const STAGING: StagingPolicy = { minServices: 32 };

/**
 * Applies a plan, its state's batches sharing their flushes (src/io/atomic.ts, sharedFlushWriter);
 * staging copies it did not swap in are discarded however it ends.
 */
async function applied(plan: SynthPlan, writer?: StateWriter): Promise<SynthResult> {
  const { applySynth, discardStaged, sharedFlushWriter } = await slow();
  try {
    return await applySynth(plan, writer ?? sharedFlushWriter());
  } finally {
    await discardStaged(plan);
  }
}

async function slowSynth(app: App, options: SynthOptions, resolved?: ReadonlyMap<Stack, ResolveOutcome>): Promise<SynthResult> {
  const { planSynth, checkPlan } = await slow();
  if (!options.check) return applied(await planSynth(app, options, resolved, undefined, STAGING));
  const plan = await planSynth(app, options, resolved);
  const check = checkPlan(plan);
  return { reports: check.reports, state: [], prunedStacks: check.prunedStacks, changed: check.stale };
}

/**
 * `synth --check` (and what else compares only): the check of a fresh plan, or, with `cache`, the
 * no-change answer when the fast path vouches for it. Writes nothing but the cache.
 */
export async function checkSynth(app: App, options: SynthOptions = {}): Promise<CheckResult> {
  const fast = fastPathOf(options);
  if (fast) {
    const a = await attempt(app, options);
    fast.onDecision?.('result' in a ? { fast: true, reason: 'nothing changed', by: a.by } : { fast: false, reason: a.reason });
    if ('result' in a) return { reports: a.result.reports, prunedStacks: [], stateChanges: [], stale: false };
    const { planSynth, checkPlan } = await slow();
    return checkPlan(await planSynth(app, options, a.resolved));
  }
  const { planSynth, checkPlan } = await slow();
  return checkPlan(await planSynth(app, options));
}
