// Phase: every placed workload's address on its network (explicit, locked, else lowest free in
// its host's segment), and the lock entries that keep them put.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { formatCidr } from '../../constructs/core/ip.ts';
import type { Host } from '../../constructs/model/host.ts';
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
  /** The WireGuard gateway container's address and network id, by host id (`container` mode hosts). */
  readonly gatewayOf: ReadonlyMap<string, { readonly ip: string; readonly network: string }>;
  readonly lock: AllocationLock['networks'];
}

/** Allocates the addresses of every network whose segments are planned. */
export function allocateStackAddresses(
  inv: Inventory,
  placement: Placement,
  nets: NetworkPlan,
  lock: AllocationLock | undefined,
  issues: IssueCollector,
  gatewayHosts: readonly Host[] = [],
): AddressPlan {
  const ipOf = new Map<Workload, string>();
  const gatewayOf = new Map<string, { ip: string; network: string }>();
  const locked: Record<string, AllocationLock['networks'][string]> = {};
  for (const n of inv.networks) {
    const cidr = nets.cidrOf.get(n);
    const segments = nets.segmentsOf.get(n);
    if (!cidr || !segments) continue;
    const members = inv.workloads.filter((w) => placement.networkOf.get(w) === n && placement.hostOf.has(w));
    const previous = lock?.networks[n.node.id];
    // After the services, so that a host switching to container mode moves none of them.
    const gateways = gatewayHosts.filter((h) => members.some((w) => placement.hostOf.get(w) === h));
    const allocation = allocateAddresses(
      { name: n.networkName, path: n.node.path, cidr, lockKey: n.node.id },
      segments,
      [
        ...members.map((w) => ({ name: w.name, path: w.node.path, host: placement.hostOf.get(w)!.node.id, explicitIp: w.props.ip })),
        ...gateways.map((h) => ({ name: gatewayLockName(h.node.id), path: h.node.path, host: h.node.id })),
      ],
      previous && previous.subnet === formatCidr(cidr) ? previous.addresses : {},
      issues,
    );
    for (const w of members) {
      const ip = allocation.addresses.get(w.name);
      if (ip) ipOf.set(w, ip);
    }
    for (const h of gateways) {
      const ip = allocation.addresses.get(gatewayLockName(h.node.id));
      if (ip) gatewayOf.set(h.node.id, { ip, network: n.node.id });
    }
    locked[n.node.id] = {
      subnet: formatCidr(cidr),
      ...(segments.length > 1 || Object.keys(n.slices).length > 0
        ? { slices: Object.fromEntries(segments.map((g) => [g.host, formatCidr(g.cidr)]).sort(([a], [b]) => compare(a!, b!))) }
        : {}),
      addresses: Object.fromEntries([...allocation.addresses].sort(([a], [b]) => compare(a, b))),
    };
  }
  return { ipOf, gatewayOf, lock: locked };
}

/**
 * The WireGuard gateway's entry among a network's addresses in the lock: `wireguard-gateway@<host>`
 * (a service name is a DNS label, so no service can take it).
 */
export function gatewayLockName(host: string): string {
  return `wireguard-gateway@${host}`;
}
