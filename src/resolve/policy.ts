// The call policy: which service may call which over mTLS. Declared on the caller (`calls`),
// checked here, and turned into each callee's list of accepted client identities.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { closest } from '../../constructs/core/names.ts';
import { Service } from '../../constructs/model/service.ts';
import type { DependencyProps, Workload } from '../../constructs/model/workload.ts';

/** Calls and callers by workload name, in the stack's service order. */
export interface CallGraph {
  readonly calls: ReadonlyMap<string, readonly string[]>;
  /** The same calls in the order each caller declares them: the order of the start dependencies they imply. */
  readonly declared: ReadonlyMap<string, readonly string[]>;
  readonly callers: ReadonlyMap<string, readonly string[]>;
}

/**
 * Checks every declared call (the target exists in the stack, is an mTLS service, is not the
 * caller) and that every dependency on an mTLS service is a declared call.
 */
export function resolveCalls(workloads: readonly Workload[], issues: IssueCollector): CallGraph {
  const byName = new Map(workloads.map((w) => [w.name, w]));
  const order = new Map(workloads.map((w, i) => [w.name, i]));
  // Membership by a set: a scan of the workloads per call grew with the square of the stack.
  const members: ReadonlySet<Workload> = new Set(workloads);
  const calls = new Map<string, string[]>();
  const declared = new Map<string, string[]>();
  for (const w of workloads) {
    const targets = new Set<string>();
    if (w instanceof Service) {
      for (const c of w.calls) {
        const target = typeof c === 'string' ? byName.get(c) : c;
        const label = typeof c === 'string' ? c : c.node.path;
        if (!target || !members.has(target)) {
          const hint = typeof c === 'string' ? closest(c, [...byName.keys()]) : undefined;
          issues.add(w.node.path, `calls unknown service "${label}"${target ? ' (it belongs to another stack)' : ''}. ${hint ? `Did you mean "${hint}"? ` : ''}Services with mTLS: ${mtlsNames(workloads)}.`);
          continue;
        }
        if (target === w) {
          issues.add(w.node.path, 'calls itself. Remove it from calls: a service reaches itself without the mesh.');
          continue;
        }
        if (!(target instanceof Service)) {
          issues.add(w.node.path, `calls ${target.name} through mTLS, but ${target.name} is infrastructure without an mTLS listener. Remove it from calls and list it in dependsOn: podmesh generates its connection settings.`);
          continue;
        }
        targets.add(target.name);
      }
    }
    // Waiting for an mTLS service means talking to it: that must be a declared call.
    for (const d of w.props.dependsOn ?? []) {
      const spec: DependencyProps = typeof d === 'string' || isWorkload(d) ? { service: d as Workload | string } : (d as DependencyProps);
      const target = typeof spec.service === 'string' ? byName.get(spec.service) : spec.service;
      if (target instanceof Service && target !== w && !targets.has(target.name)) {
        issues.add(
          w.node.path,
          w instanceof Service
            ? `depends on ${target.name}, an mTLS service, but its call policy does not allow calling it. Add it to calls (calls: [${target.name}, …]) or remove the dependency.`
            : `depends on ${target.name}, an mTLS service, but infrastructure has no client certificate to call it with. Remove the dependency.`,
        );
      }
    }
    declared.set(w.name, [...targets]);
    calls.set(w.name, [...targets].sort((a, b) => order.get(a)! - order.get(b)!));
  }
  const callers = new Map<string, string[]>(workloads.map((w) => [w.name, []]));
  for (const w of workloads) for (const t of calls.get(w.name)!) callers.get(t)!.push(w.name);
  return { calls, declared, callers };
}

function isWorkload(x: unknown): boolean {
  return typeof x === 'object' && x !== null && 'node' in x;
}

function mtlsNames(workloads: readonly Workload[]): string {
  return workloads.filter((w) => w instanceof Service).map((w) => w.name).join(', ') || '(none)';
}
