// Phase: the WireGuard tunnel joining the hosts that run services, when there is more than one:
// endpoints, the tunnel subnet, and each host's tunnel address.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import type { Cidr } from '../../constructs/core/ip.ts';
import { formatCidr } from '../../constructs/core/ip.ts';
import type { Host } from '../../constructs/model/host.ts';
import type { Inventory } from './inventory.ts';
import type { AllocationLock } from './model.ts';
import type { NetworkPlan } from './networks.ts';
import type { Placement } from './placement.ts';
import { allocateTunnel, pickTunnelSubnet } from './slices.ts';

/** The tunnel's subnet and the address of each host that got one. */
export interface TunnelPlan {
  readonly subnet: Cidr;
  /** Tunnel address by host id. */
  readonly addresses: ReadonlyMap<string, string>;
}

/** Plans the tunnel of a multi-host stack; undefined for one host, or when no subnet could be picked (reported). */
export function planTunnel(
  inv: Inventory,
  placement: Placement,
  nets: NetworkPlan,
  lock: AllocationLock | undefined,
  issues: IssueCollector,
): TunnelPlan | undefined {
  const { activeHosts } = placement;
  if (activeHosts.length <= 1) return undefined;
  checkEndpoints(activeHosts, issues);
  const subnet = pickTunnelSubnet(
    inv.stack.wireguard.subnet,
    lock?.wireguard?.subnet,
    inv.networks.flatMap((n) => (nets.cidrOf.has(n) ? [{ name: n.networkName, cidr: nets.cidrOf.get(n)! }] : [])),
    inv.stack.node.path,
    issues,
  );
  if (!subnet) return undefined;
  const locked = lock?.wireguard && lock.wireguard.subnet === formatCidr(subnet) ? lock.wireguard.hosts : {};
  const addresses = allocateTunnel(
    subnet,
    activeHosts.map((h) => ({ host: h.node.id, path: h.node.path, ...(h.tunnelAddress ? { explicit: h.tunnelAddress } : {}) })),
    Object.fromEntries(Object.entries(locked).map(([h, v]) => [h, v.address])),
    issues,
  );
  return { subnet, addresses };
}

/** Whether every host of a multi-host stack has what its peers need: an endpoint and a tunnel address. */
export function tunnelComplete(placement: Placement, tunnel: TunnelPlan | undefined): boolean {
  if (placement.activeHosts.length <= 1) return true;
  return tunnel !== undefined && placement.activeHosts.every((h) => h.endpoint !== undefined && tunnel.addresses.has(h.node.id));
}

/** Each host has its own endpoint and is rootful (a rootless bridge is out of the tunnel's reach). */
function checkEndpoints(activeHosts: readonly Host[], issues: IssueCollector): void {
  const endpoints = new Map<string, Host>();
  for (const h of activeHosts) {
    if (!h.endpoint) {
      issues.add(h.node.path, `has no endpoint, but the stack spans ${activeHosts.length} hosts joined by WireGuard. Set endpoint: "<address or name>:<port>", e.g. "198.51.100.10:51820".`);
      continue;
    }
    if (h.rootless === true) {
      issues.add(h.node.path, `is rootless, but the stack spans ${activeHosts.length} hosts joined by WireGuard: a rootless Podman bridge lives in the user's network namespace, where the tunnel's routes to this host's slice cannot reach it. Remove rootless (multi-host hosts default to rootful) or set rootless: false.`);
    }
    const other = endpoints.get(h.endpoint);
    if (other) issues.add(h.node.path, `endpoint ${h.endpoint} is already the endpoint of ${other.node.path}. Each host needs its own address or port.`);
    else endpoints.set(h.endpoint, h);
  }
}
