// Graph algorithms on service names: a stable topological order that survives cycles, the
// cycles themselves named in full, and strongly connected components (loops of any length).

/** Edges as adjacency lists: each node to the nodes it depends on (or points at). */
export type Edges = ReadonlyMap<string, readonly string[]>;

/** A topological order, and the cycles that kept part of it undefined. */
export interface Ordering {
  /** Every node once: dependencies first, construct order among nodes that are ready together and where a cycle leaves the order undefined. */
  readonly order: readonly string[];
  /** One cycle per loop of the graph, each a list of names ending where it started. */
  readonly cycles: readonly (readonly string[])[];
}

/**
 * Orders `nodes` so that every node comes after the nodes it depends on. Among nodes that are
 * ready at the same time, the earlier in `nodes` goes first, so the order is stable. A cycle does
 * not stop the order: when nothing is ready, the earliest node of a loop that waits for nothing
 * outside it goes next (construct order stands in for the order the loop leaves undefined).
 */
export function topologicalOrder(given: readonly string[], edges: Edges): Ordering {
  const nodes = [...new Set(given)];
  const index = new Map(nodes.map((n, i) => [n, i]));
  const waitingOn = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const n of nodes) {
    const deps = [...new Set((edges.get(n) ?? []).filter((d) => index.has(d) && d !== n))];
    waitingOn.set(n, deps.length);
    for (const d of deps) (dependents.get(d) ?? dependents.set(d, []).get(d)!).push(n);
  }
  // Ready nodes kept sorted by construct index (binary insertion): O(n log n) overall.
  const ready = nodes.filter((n) => waitingOn.get(n) === 0).map((n) => index.get(n)!);
  const done = new Set<string>();
  const order: string[] = [];
  const emit = (n: string) => {
    done.add(n);
    order.push(n);
    for (const m of dependents.get(n) ?? []) {
      const left = waitingOn.get(m)! - 1;
      waitingOn.set(m, left);
      if (left === 0 && !done.has(m)) insertSorted(ready, index.get(m)!);
    }
  };
  const component = components(nodes, edges);
  // Waits only on its own loop: the order inside the loop is undefined, everything else is done.
  const onlyLoopLeft = (n: string) => !done.has(n) && (edges.get(n) ?? []).every((d) => done.has(d) || !index.has(d) || component.get(d) === component.get(n));
  while (order.length < nodes.length) {
    const next = ready.shift();
    if (next !== undefined) {
      if (!done.has(nodes[next]!)) emit(nodes[next]!);
      continue;
    }
    // Only cycles and what waits for them are left: the earliest node of a loop goes next.
    emit(nodes.find(onlyLoopLeft)!);
  }
  return { order, cycles: cyclesOf(nodes, edges, component) };
}

/**
 * Strongly connected components (Tarjan): the component number of each node. Two nodes share a
 * number exactly when each reaches the other.
 */
export function components(nodes: readonly string[], edges: Edges): Map<string, number> {
  const known = new Set(nodes);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const component = new Map<string, number>();
  let counter = 0;
  let count = 0;
  const visit = (n: string): void => {
    index.set(n, counter);
    low.set(n, counter++);
    stack.push(n);
    onStack.add(n);
    for (const d of edges.get(n) ?? []) {
      if (!known.has(d)) continue;
      if (!index.has(d)) {
        visit(d);
        low.set(n, Math.min(low.get(n)!, low.get(d)!));
      } else if (onStack.has(d)) low.set(n, Math.min(low.get(n)!, index.get(d)!));
    }
    if (low.get(n) !== index.get(n)) return;
    for (let m = stack.pop()!; ; m = stack.pop()!) {
      onStack.delete(m);
      component.set(m, count);
      if (m === n) break;
    }
    count++;
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return component;
}

/** One cycle per component that has one, found from the component's first node in `nodes`. */
function cyclesOf(nodes: readonly string[], edges: Edges, component: ReadonlyMap<string, number>): string[][] {
  const seen = new Set<number>();
  const cycles: string[][] = [];
  for (const n of nodes) {
    const c = component.get(n)!;
    if (seen.has(c)) continue;
    seen.add(c);
    const inside = (x: string) => component.get(x) === c;
    const cycle = findCycle(n, (x) => (edges.get(x) ?? []).filter(inside));
    if (cycle) cycles.push(cycle);
  }
  return cycles;
}

/** The shortest cycle through `start` (breadth-first), or undefined when `start` is on none. */
function findCycle(start: string, next: (n: string) => readonly string[]): string[] | undefined {
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i]!;
    for (const d of next(n)) {
      if (d === start) {
        const path = [start];
        for (let x = n; x !== start; x = parent.get(x)!) path.splice(1, 0, x);
        return [...path, start];
      }
      if (parent.has(d)) continue;
      parent.set(d, n);
      queue.push(d);
    }
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
