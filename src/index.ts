// The package `podmesh`: the constructs stack files use, and the engine that renders them.
// Every stack file imports this module, and a no-change synth runs nothing but the fast path
// (src/synth/run.ts): the planner, the renderers and the PKI engine (yaml, handlebars,
// @peculiar/x509) load only when planSynth or applySynth is first called.
import type { applySynth as ApplySynth } from './synth/apply.ts';
import type { planSynth as PlanSynth } from './synth/plan.ts';
export * from '../constructs/index.ts';
export { changesOf, checkPlan, type CheckResult, type StateChange } from './synth/check.ts';
export { resolveStacks } from './synth/select.ts';
export { synth } from './synth/run.ts';
export type { StackPlan, StatePlan, StateReport, SynthOptions, SynthPlan, SynthResult } from './synth.ts';
export { resolveStack } from './resolve/resolve.ts';

/** Plans a synth without writing anything (src/synth/plan.ts); the planner loads at the first call. */
export async function planSynth(...args: Parameters<typeof PlanSynth>): ReturnType<typeof PlanSynth> {
  return (await import('./synth/plan.ts')).planSynth(...args);
}

/** Applies a plan: the only code that writes (src/synth/apply.ts); it loads at the first call. */
export async function applySynth(...args: Parameters<typeof ApplySynth>): ReturnType<typeof ApplySynth> {
  return (await import('./synth/apply.ts')).applySynth(...args);
}
export type * from './resolve/model.ts';
export { stateContext, nodeRandom, type RandomSource, type Reconciler, type StateContext } from './state/reconciler.ts';
