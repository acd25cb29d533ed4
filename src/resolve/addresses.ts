// Phase: every placed workload's address on its network (explicit, locked, else lowest free in
// its host's segment), and the lock entries that keep them put.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { formatCidr } from '../../constructs/core/ip.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import { compare } from '../io/sort.ts';
import { allocateAddresses } from './allocate.ts';
import type { Inventory } from './inventory.ts';
import type { AllocationLock } from './model.ts';
import type { NetworkPlan } from './networks.ts';
import type { Placement } from './placement.ts';

/** Addresses of the workloads that got one, and the lock's network entries. */
export interface AddressPlan {
  readonly ipOf: ReadonlyMap<Workload, string>;
  readonly lock: AllocationLock['networks'];
}

/** Allocates the addresses of every network whose segments are planned. */
export function allocateStackAddresses(
  inv: Inventory,
  placement: Placement,
  nets: NetworkPlan,
  lock: AllocationLock | undefined,
  issues: IssueCollector,
): AddressPlan {
  const ipOf = new Map<Workload, string>();
  const locked: Record<string, AllocationLock['networks'][string]> = {};
  for (const n of inv.networks) {
    const cidr = nets.cidrOf.get(n);
    const segments = nets.segmentsOf.get(n);
    if (!cidr || !segments) continue;
    const members = inv.workloads.filter((w) => placement.networkOf.get(w) === n && placement.hostOf.has(w));
    const previous = lock?.networks[n.node.id];
    const allocation = allocateAddresses(
      { name: n.networkName, path: n.node.path, cidr, lockKey: n.node.id },
      segments,
      members.map((w) => ({ name: w.name, path: w.node.path, host: placement.hostOf.get(w)!.node.id, explicitIp: w.props.ip })),
      previous && previous.subnet === formatCidr(cidr) ? previous.addresses : {},
      issues,
    );
    for (const w of members) {
      const ip = allocation.addresses.get(w.name);
      if (ip) ipOf.set(w, ip);
    }
    locked[n.node.id] = {
      subnet: formatCidr(cidr),
      ...(segments.length > 1 || Object.keys(n.slices).length > 0
        ? { slices: Object.fromEntries(segments.map((g) => [g.host, formatCidr(g.cidr)]).sort(([a], [b]) => compare(a!, b!))) }
        : {}),
      addresses: Object.fromEntries([...allocation.addresses].sort(([a], [b]) => compare(a, b))),
    };
  }
  return { ipOf, lock: locked };
}
