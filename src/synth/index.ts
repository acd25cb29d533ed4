// The pipeline: plan (validate, resolve, plan state, render, compare), then apply; check and diff read the plan.
// synth and checkSynth (run.ts) load the planning modules only when the fast path cannot serve a run.
export { checkSynth, synth } from './run.ts';
export { applySynth, type StateReport, type SynthResult } from './apply.ts';
export { changesOf, checkPlan, describeStateChange, stateChanges, type CheckResult, type StateChange } from './check.ts';
export { canonicalText, type FastPathOptions } from './fastpath.ts';
export { engineIdentity } from './engine-id.ts';
export { planSynth, type StackPlan, type StatePlan, type SynthOptions, type SynthPlan } from './plan.ts';
export { resolveStacks, resolveWithLock, selectStacks, stacksOf, validateConstructs } from './select.ts';
export { renderStack, type Locations } from '../render/stack.ts';
