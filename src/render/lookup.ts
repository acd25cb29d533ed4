// Lookups renderers repeat per host, per flow and per certificate, built once per resolved stack
// (a model is never changed once resolved), so rendering stays linear in the number of services.
import type { ResolvedService, ResolvedStack } from '../resolve/model.ts';

const byName = new WeakMap<ResolvedStack, ReadonlyMap<string, ResolvedService>>();

/** The service of `stack` named `name`, if any. */
export function serviceNamed(stack: ResolvedStack, name: string): ResolvedService | undefined {
  let index = byName.get(stack);
  if (!index) {
    index = new Map(stack.services.map((s) => [s.name, s]));
    byName.set(stack, index);
  }
  return index.get(name);
}

/** `compute(stack)`, once per stack object: for derived lists several renderers read. */
export function memoized<T>(compute: (stack: ResolvedStack) => T): (stack: ResolvedStack) => T {
  const cache = new WeakMap<ResolvedStack, T>();
  return (stack) => {
    if (!cache.has(stack)) cache.set(stack, compute(stack));
    return cache.get(stack) as T;
  };
}
