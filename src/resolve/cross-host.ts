// Phase: dependencies across hosts. systemd orders units of one host only; a dependency (dependsOn
// entry or call) on a service of another host becomes a bounded wait for that service's address
// and port to accept connections through the tunnel, which the dependent's unit runs before it starts.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { durationSeconds } from '../../constructs/core/names.ts';
import { Service } from '../../constructs/model/service.ts';
import { Workload, type DependencyProps } from '../../constructs/model/workload.ts';
import type { Inventory } from './inventory.ts';
import type { ResolvedDependency, ResolvedPort } from './model.ts';
import type { Placement } from './placement.ts';

/** How long a unit waits for a dependency on another host when nothing says otherwise. */
export const DEFAULT_DEPENDENCY_WAIT = '300s';

/** The facts the waits are built from. */
export interface CrossHostFacts {
  readonly inv: Inventory;
  readonly placement: Placement;
  readonly ipOf: ReadonlyMap<Workload, string>;
  readonly portsOf: ReadonlyMap<Workload, readonly ResolvedPort[]>;
}

/**
 * The dependencies of `w`, those on another host marked with the address, port and bound of their
 * wait. A dependency on another host with no TCP port to wait for is a problem.
 */
export function withRemoteWaits(w: Workload, deps: readonly ResolvedDependency[], facts: CrossHostFacts, issues: IssueCollector): ResolvedDependency[] {
  const { inv, placement } = facts;
  const host = placement.hostOf.get(w);
  return deps.flatMap((d) => {
    const target = inv.byName.get(d.service)!;
    const there = placement.hostOf.get(target);
    const ip = facts.ipOf.get(target);
    if (!host || !there || there === host || !ip) return [d];
    // A one-shot container on another host (MinIO's setup) has no port to wait for: the client
    // waits for MinIO's own port, and reaches MinIO with its user once the setup ran there.
    if (d.condition === 'completed') return [];
    const port = waitPort(target, facts.portsOf.get(target) ?? []);
    if (port === undefined) {
      issues.add(w.node.path, `depends on ${target.name} on host ${there.node.id}, which listens on no TCP port: from host ${host.node.id} podmesh can only wait for a port to accept connections through the tunnel. Give ${target.name} a TCP port, or remove the dependency.`);
      return [d];
    }
    const wait = explicitWait(w, target) ?? inv.stack.wireguard.dependencyWait ?? DEFAULT_DEPENDENCY_WAIT;
    return [{ ...d, remote: { host: there.node.id, ip, port, timeoutSeconds: durationSeconds(wait) } }];
  });
}

/** The mTLS port callers use, else the first TCP port. */
function waitPort(target: Workload, ports: readonly ResolvedPort[]): number | undefined {
  if (target instanceof Service) return target.mtlsPort;
  return ports.find((p) => p.protocol === 'tcp')?.port;
}

/** The `crossHostWait` of w's dependsOn entry naming `target`, if it has one. */
function explicitWait(w: Workload, target: Workload): string | undefined {
  for (const d of w.props.dependsOn ?? []) {
    if (typeof d === 'string' || d instanceof Workload) continue;
    const spec: DependencyProps = d;
    const named = typeof spec.service === 'string' ? spec.service === target.name : spec.service === target;
    if (named && spec.crossHostWait !== undefined) return spec.crossHostWait;
  }
  return undefined;
}
