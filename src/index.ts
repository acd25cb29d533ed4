// The package `podmesh`: the constructs stack files use, and the engine that renders them.
export * from '../constructs/index.ts';
export {
  applySynth,
  changesOf,
  checkPlan,
  planSynth,
  renderStack,
  resolveStacks,
  synth,
  type CheckResult,
  type StackPlan,
  type StateChange,
  type StatePlan,
  type StateReport,
  type SynthOptions,
  type SynthPlan,
  type SynthResult,
} from './synth.ts';
export { resolveStack } from './resolve/resolve.ts';
export type * from './resolve/model.ts';
export { stateContext, nodeRandom, type RandomSource, type Reconciler, type StateContext } from './state/reconciler.ts';
