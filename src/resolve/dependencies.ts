// Phase: start dependencies and start order. A workload starts after what it lists in dependsOn
// and after the services it calls. A call that closes a loop (two services calling each other,
// or a longer loop of calls and dependencies) implies no order, so it is never a cycle; a cycle of
// dependsOn entries is an error, and construct order stands in where it leaves the order undefined.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { closest } from '../../constructs/core/names.ts';
import { Minio, MinioSetup, Postgres, Redis } from '../../constructs/model/infra.ts';
import { Workload, type DependencyProps } from '../../constructs/model/workload.ts';
import { components, topologicalOrder } from './graph.ts';
import { healthOf } from './health.ts';
import type { Inventory } from './inventory.ts';
import type { ResolvedDependency } from './model.ts';
import type { Names } from './naming.ts';
import { resolveCalls, type CallGraph } from './policy.ts';

/** Who waits for whom, who calls whom, and the start order that follows. */
export interface ServiceGraph {
  /** Each workload's dependsOn entries, then the services it calls, in declaration order. */
  readonly depsOf: ReadonlyMap<Workload, readonly ResolvedDependency[]>;
  readonly calls: CallGraph;
  /** Dependencies first; construct order among workloads that are ready together. */
  readonly order: readonly Workload[];
  /** The PostgreSQL, Redis and MinIO each workload depends on. */
  readonly infraOf: ReadonlyMap<Workload, InfraDependencies>;
  /** Calls (`[caller, callee]`) that imply no start order because they close a loop, in construct order of the caller. */
  readonly unorderedCalls: readonly (readonly [string, string])[];
}

/** Resolves dependencies, the call policy and the start order of a stack's workloads. */
export function resolveGraph(inv: Inventory, names: Names, issues: IssueCollector): ServiceGraph {
  const hasHealth = (w: Workload) => healthOf(w, names.dnsOf.get(w)) !== undefined;
  const explicit = explicitDependencies(inv, hasHealth, issues);
  const calls = resolveCalls(inv.workloads, issues);
  const { depsOf, unorderedCalls } = withCallDependencies(inv, explicit, calls, hasHealth);
  const nodes = inv.workloads.map((w) => w.name);
  const ordering = topologicalOrder(nodes, new Map(inv.workloads.map((w) => [w.name, depsOf.get(w)!.map((d) => d.service)])));
  // Calls that close a loop were left out above, so every cycle left is one of dependsOn entries.
  for (const cycle of ordering.cycles) {
    issues.add(inv.byName.get(cycle[0]!)!.node.path, `dependency cycle: ${cycle.join(' → ')}. Services cannot wait for each other; remove one of these dependsOn entries.`);
  }
  const infraOf = new Map(inv.workloads.map((w) => [w, infraDependencies(w, depsOf.get(w)!, inv.byName, issues)]));
  return { depsOf, calls, order: ordering.order.map((n) => inv.byName.get(n)!), infraOf, unorderedCalls };
}

/** The dependsOn entries of every workload, checked: known, not itself, a health check to wait for. */
function explicitDependencies(inv: Inventory, hasHealth: (w: Workload) => boolean, issues: IssueCollector): Map<Workload, ResolvedDependency[]> {
  const { workloads, byName } = inv;
  // Membership by a set: a scan of the workloads per dependency grew with the square of the stack.
  const members: ReadonlySet<Workload> = new Set(workloads);
  const depsOf = new Map<Workload, ResolvedDependency[]>();
  for (const w of workloads) {
    const deps: ResolvedDependency[] = [];
    for (const d of w.props.dependsOn ?? []) {
      const spec: DependencyProps = typeof d === 'string' || d instanceof Workload ? { service: d } : d;
      const target = typeof spec.service === 'string' ? byName.get(spec.service) : spec.service;
      const label = typeof spec.service === 'string' ? spec.service : spec.service.node.path;
      if (!target || !members.has(target)) {
        const hint = typeof spec.service === 'string' ? closest(spec.service, [...byName.keys()]) : undefined;
        issues.add(w.node.path, `depends on unknown service "${label}"${target ? ' (it belongs to another stack)' : ''}. ${hint ? `Did you mean "${hint}"? ` : ''}Known services: ${[...byName.keys()].join(', ')}.`);
        continue;
      }
      if (target === w) {
        issues.add(w.node.path, 'depends on itself. Remove it from dependsOn.');
        continue;
      }
      const condition = spec.condition ?? (hasHealth(target) ? 'healthy' : 'started');
      if (condition === 'healthy' && !hasHealth(target)) {
        issues.add(w.node.path, `waits for ${target.name} to be healthy, but ${target.name} has no health check. Give it one, or use condition: 'started'.`);
      }
      if (!deps.some((x) => x.service === target.name)) deps.push({ service: target.name, condition });
    }
    // A MinIO client starts once MinIO's setup created its user and the bucket.
    for (const d of [...deps]) {
      const target = byName.get(d.service);
      if (target instanceof Minio && !(w instanceof MinioSetup) && !deps.some((x) => x.service === target.setup.name)) {
        deps.push({ service: target.setup.name, condition: 'completed' });
      }
    }
    depsOf.set(w, deps);
  }
  return depsOf;
}

/**
 * Adds a dependency on each called service, waiting for it the way a dependsOn entry without a
 * condition would (marked implied: a runtime that cannot wait for health waits for the start),
 * unless the call closes a loop of calls and dependencies (the caller and the callee reach each
 * other): such a call gives no order and is listed instead.
 */
function withCallDependencies(
  inv: Inventory,
  explicit: ReadonlyMap<Workload, readonly ResolvedDependency[]>,
  calls: CallGraph,
  hasHealth: (w: Workload) => boolean,
): { depsOf: Map<Workload, ResolvedDependency[]>; unorderedCalls: [string, string][] } {
  const nodes = inv.workloads.map((w) => w.name);
  const everything = new Map(inv.workloads.map((w) => [w.name, [...explicit.get(w)!.map((d) => d.service), ...(calls.declared.get(w.name) ?? [])]]));
  const loop = components(nodes, everything);
  const depsOf = new Map<Workload, ResolvedDependency[]>();
  const unorderedCalls: [string, string][] = [];
  for (const w of inv.workloads) {
    const deps = [...explicit.get(w)!];
    for (const callee of calls.declared.get(w.name) ?? []) {
      if (deps.some((d) => d.service === callee)) continue;
      if (loop.get(callee) === loop.get(w.name)) {
        unorderedCalls.push([w.name, callee]);
        continue;
      }
      deps.push({ service: callee, condition: hasHealth(inv.byName.get(callee)!) ? 'healthy' : 'started', implied: true });
    }
    depsOf.set(w, deps);
  }
  return { depsOf, unorderedCalls };
}

/** The infrastructure a workload depends on, one of each kind at most: its DB_*, REDIS_* and S3_* settings come from them. */
export interface InfraDependencies {
  readonly postgres?: Postgres;
  readonly redis?: Redis;
  readonly minio?: Minio;
}

/** The PostgreSQL, Redis and MinIO a workload depends on (one of each at most). */
function infraDependencies(
  w: Workload,
  deps: readonly ResolvedDependency[],
  byName: ReadonlyMap<string, Workload>,
  issues: IssueCollector,
): InfraDependencies {
  const found: { postgres?: Postgres; redis?: Redis; minio?: Minio } = {};
  const kinds = [
    ['postgres', Postgres, 'PostgreSQL', 'DB_*'],
    ['redis', Redis, 'Redis', 'REDIS_*'],
    ['minio', Minio, 'MinIO', 'S3_*'],
  ] as const;
  for (const d of deps) {
    const target = byName.get(d.service);
    for (const [key, type, label, vars] of kinds) {
      if (!(target instanceof type)) continue;
      // The setup connects to its MinIO as root with the script's own settings, not as a client.
      if (w instanceof MinioSetup) continue;
      const previous = found[key];
      if (previous) {
        issues.add(w.node.path, `depends on two ${label} services (${previous.name}, ${target.name}); podmesh generates one set of ${vars} settings. Keep one dependency and pass the other's settings in environment.`);
      } else {
        (found as Record<string, Workload>)[key] = target;
      }
    }
  }
  return found;
}
