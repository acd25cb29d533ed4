// Dependency order: dependencies first, ties broken by construct order; cycles named in full.

/**
 * Orders `nodes` so that every node comes after the nodes it depends on. Among nodes that are
 * ready at the same time, the earlier in `nodes` goes first, so the order is stable.
 * Returns the order, or the first cycle found as a list of names ending where it started.
 */
export function topologicalOrder(
  nodes: readonly string[],
  edges: ReadonlyMap<string, readonly string[]>,
): { order: string[] } | { cycle: string[] } {
  const cycle = findCycle(nodes, edges);
  if (cycle) return { cycle };
  const index = new Map(nodes.map((n, i) => [n, i]));
  const waitingOn = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const n of nodes) {
    const deps = [...new Set((edges.get(n) ?? []).filter((d) => index.has(d)))];
    waitingOn.set(n, deps.length);
    for (const d of deps) (dependents.get(d) ?? dependents.set(d, []).get(d)!).push(n);
  }
  // Ready nodes kept sorted by construct index (binary insertion): O(n log n) overall.
  const ready = nodes.filter((n) => waitingOn.get(n) === 0).map((n) => index.get(n)!);
  const order: string[] = [];
  while (ready.length > 0) {
    const n = nodes[ready.shift()!]!;
    order.push(n);
    for (const m of dependents.get(n) ?? []) {
      const left = waitingOn.get(m)! - 1;
      waitingOn.set(m, left);
      if (left === 0) insertSorted(ready, index.get(m)!);
    }
  }
  return { order };
}

function findCycle(nodes: readonly string[], edges: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'visiting') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'visiting');
    stack.push(n);
    for (const d of edges.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of nodes) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

function insertSorted(list: number[], value: number): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, value);
}
