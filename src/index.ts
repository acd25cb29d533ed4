// The package `podmesh`: the constructs stack files use, and the engine that renders them.
export * from '../constructs/index.ts';
export { synth, renderStack, resolveStacks, type SynthOptions, type SynthResult } from './synth.ts';
export { resolveStack } from './resolve/resolve.ts';
export type * from './resolve/model.ts';
