// The pipeline: plan (validate, resolve, plan state, render, compare), then apply; check and diff read the plan.
import type { App } from '../../constructs/core/app.ts';
import { applySynth, type SynthResult } from './apply.ts';
import { checkPlan } from './check.ts';
import { planSynth, type SynthOptions } from './plan.ts';

export { applySynth, type StateReport, type SynthResult } from './apply.ts';
export { changesOf, checkPlan, describeStateChange, stateChanges, type CheckResult, type StateChange } from './check.ts';
export { planSynth, type StackPlan, type StatePlan, type SynthOptions, type SynthPlan } from './plan.ts';
export { resolveStacks, resolveWithLock, selectStacks, stacksOf, validateConstructs } from './select.ts';
export { renderStack, type Locations } from '../render/stack.ts';

/**
 * Synthesizes stacks into `outDir`: plan, then apply. Throws a PodmeshError (and writes nothing)
 * when any stack has a problem. With `check`, writes nothing and reports what differs in `out/`.
 */
export async function synth(app: App, options: SynthOptions = {}): Promise<SynthResult> {
  const plan = await planSynth(app, options);
  if (!options.check) return applySynth(plan);
  const check = checkPlan(plan);
  return { reports: check.reports, state: [], prunedStacks: check.prunedStacks, changed: check.stale };
}
