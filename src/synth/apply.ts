// applySynth: the only code that carries out a synth: the state folder first, then `out/`.
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { atomicWriter, type StateWriter } from '../io/atomic.ts';
import { changed, pruneStacks, writeStackOutput, type WriteReport } from '../io/writer.ts';
import { MANIFEST } from '../render/manifest.ts';
import { contents } from '../render/stack.ts';
import type { PkiResult } from '../state/pki/index.ts';
import { secretsReconciler, type SecretsResult } from '../state/secrets/reconcile.ts';
import { wireguardReconciler, type WireguardResult } from '../state/wireguard/index.ts';
import { pkiEngine, type SynthPlan } from './plan.ts';

/** What reconcile did to one stack's state folder. */
export interface StateReport {
  readonly stack: string;
  /** WireGuard keys, for stacks with more than one host. */
  readonly wireguard?: WireguardResult;
  readonly pki: PkiResult;
  readonly secrets: SecretsResult;
  /** Temporaries of an interrupted earlier run that were removed (relative to the stack's state folder). */
  readonly leftovers: readonly string[];
}

/** What a synth run did (or, with `check`, would do). */
export interface SynthResult {
  readonly reports: readonly WriteReport[];
  /** Certificates and keys reconciled in the state folder (empty with `check`). */
  readonly state: readonly StateReport[];
  /** Stacks whose whole output folder is (or would be) removed. */
  readonly prunedStacks: readonly string[];
  /** True when `out/` differs from what synth produces. */
  readonly changed: boolean;
}

/**
 * Writes the state of every stack (private folders, secrets, PKI; then WireGuard keys, after the
 * PKI of every stack as before) and, unless the plan is state-only, `out/`.
 */
async function applyState(plan: SynthPlan, writer: StateWriter): Promise<StateReport[]> {
  const reports: StateReport[] = [];
  for (const s of plan.stacks) {
    if (s.kept) {
      reports.push(s.kept);
      continue;
    }
    const state = s.state!;
    await writer.mkdir(state.dir, 0o700);
    for (const rel of state.leftovers) {
      const abs = join(state.dir, rel);
      if (lstatSync(abs, { throwIfNoEntry: false })?.isDirectory()) await writer.removeDir(abs);
      else await writer.unlink(abs);
    }
    // Secrets before the PKI: a state folder holding a CA but no secrets/values.json is refused
    // (the running services' passwords would be lost), so a run killed between the two must not
    // leave one. values.json exists no later than pki/ca.crt.
    const secrets = await secretsReconciler.apply(state.secrets, writer);
    const { pkiReconciler } = await pkiEngine();
    const pki = await pkiReconciler.apply(state.pki, writer);
    reports.push({ stack: s.stack, pki, secrets, leftovers: state.leftovers });
  }
  const withKeys: StateReport[] = [];
  for (const [i, r] of reports.entries()) {
    const wg = plan.stacks[i]!.state?.wireguard;
    withKeys.push(wg ? { ...r, wireguard: await wireguardReconciler.apply(wg, writer) } : r);
  }
  return withKeys;
}

/**
 * Runs `work` (writing the state) while the stacks' staging writers (src/io/staged.ts) get the
 * files they had to queue, every few milliseconds the main thread is free (the state's flushes
 * wait on the disk): their threads keep writing `out/` meanwhile instead of leaving it all to the
 * end, when this thread would write it beside them.
 */
async function whileFeeding<T>(plan: SynthPlan, work: () => Promise<T>): Promise<T> {
  const staged = plan.stacks.flatMap((s) => (s.staged ? [s.staged] : []));
  if (staged.length === 0) return work();
  const feed = (): void => staged.forEach((s) => s.progress());
  feed();
  const timer = setInterval(feed, FEED_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * Runs `work`, then makes durable what the writer's batches left for a later flush (StateWriter.settle,
 * see sharedFlushWriter in src/io/atomic.ts): before out/ is written, and also when the work failed
 * (what it wrote stays written).
 */
async function settled<T>(writer: StateWriter, work: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (e) {
    await writer.settle?.().catch(() => undefined);
    throw e;
  }
  await writer.settle?.();
  return result;
}

/** How often {@link whileFeeding} looks for room in the staging rings. */
const FEED_MS = 5;

/**
 * Carries out a plan. Refuses a plan with problems: a PodmeshError with all of them, nothing
 * written. `out/` folders are compared again as they are written unless nothing in them changed since
 * the plan compared them (the writer's own check), so a file changed since the plan is still
 * made right.
 */
export async function applySynth(plan: SynthPlan, writer: StateWriter = atomicWriter): Promise<SynthResult> {
  if (plan.problems.length > 0) throw new PodmeshError(plan.problems);
  const state = await whileFeeding(plan, () => settled(writer, () => applyState(plan, writer)));
  if (plan.stateOnly) return { reports: [], state, prunedStacks: [], changed: false };
  const reports: WriteReport[] = [];
  for (const s of plan.stacks) reports.push(await writeStackOutput(plan.outDir, s.stack, contents(s.files), { since: { report: s.comparison, seen: s.seenInOut }, ...(s.staged ? { staged: s.staged } : {}) }));
  const prunedStacks = plan.prune ? await pruneStacks(plan.outDir, new Set(plan.keep), MANIFEST) : [];
  return { reports, state, prunedStacks, changed: reports.some(changed) || prunedStacks.length > 0 };
}
