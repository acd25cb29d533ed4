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
import { compareVersions, formatPodmanVersion, readPodmanVersion, type PodmanVersion } from '../../constructs/core/podman-version.ts';
import type { WireguardMode } from '../../constructs/core/wireguard-mode.ts';

/** The tunnel's subnet and the address of each host that got one. */
export interface TunnelPlan {
  readonly subnet: Cidr;
  /** Tunnel address by host id. */
  readonly addresses: ReadonlyMap<string, string>;
  /** Where each host's endpoint runs, by host id. */
  readonly modes: ReadonlyMap<string, WireguardMode>;
}

/** Podman 4.6: `podman network create --route` and a `.network`'s `PodmanArgs=`, which carry the gateway's routes. */
export const CONTAINER_MODE_SINCE: PodmanVersion = { major: 4, minor: 6 };

/** Where a host's WireGuard endpoint runs: the host's own choice, else the stack's, else by the host's kind. */
export function wireguardModeOf(inv: Inventory, placement: Placement, h: Host): WireguardMode {
  const rootless = h.rootless ?? placement.activeHosts.length <= 1;
  return h.wireguardMode ?? inv.stack.wireguard.mode ?? (rootless ? 'container' : 'host');
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
  const modes = new Map(activeHosts.map((h) => [h.node.id, wireguardModeOf(inv, placement, h)]));
  checkEndpoints(activeHosts, modes, issues);
  checkGateways(inv, placement, modes, issues);
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
  return { subnet, addresses, modes };
}

/** Whether every host of a multi-host stack has what its peers need: an endpoint and a tunnel address. */
export function tunnelComplete(placement: Placement, tunnel: TunnelPlan | undefined): boolean {
  if (placement.activeHosts.length <= 1) return true;
  return tunnel !== undefined && placement.activeHosts.every((h) => h.endpoint !== undefined && tunnel.addresses.has(h.node.id));
}

/** Each host has its own endpoint; a host-mode host is rootful (a rootless bridge is out of the host tunnel's reach). */
function checkEndpoints(activeHosts: readonly Host[], modes: ReadonlyMap<string, WireguardMode>, issues: IssueCollector): void {
  const endpoints = new Map<string, Host>();
  for (const h of activeHosts) {
    if (!h.endpoint) {
      issues.add(h.node.path, `has no endpoint, but the stack spans ${activeHosts.length} hosts joined by WireGuard. Set endpoint: "<address or name>:<port>", e.g. "198.51.100.10:51820".`);
      continue;
    }
    if (h.rootless === true && modes.get(h.node.id) === 'host') {
      issues.add(h.node.path, `is rootless with wireguard mode 'host', but the stack spans ${activeHosts.length} hosts joined by WireGuard: a rootless Podman bridge lives in the user's network namespace, where a host interface's routes to this host's slice cannot reach it. Use wireguard: { mode: 'container' } (a gateway container on the stack's network; the default on rootless hosts) or set rootless: false.`);
    }
    const other = endpoints.get(h.endpoint);
    if (other) issues.add(h.node.path, `endpoint ${h.endpoint} is already the endpoint of ${other.node.path}. Each host needs its own address or port.`);
    else endpoints.set(h.endpoint, h);
  }
}

/**
 * What `container` mode needs of a host: Podman 4.6 or later (the network's routes through the
 * gateway), and one network with a slice there (the gateway joins it and the network routes the
 * other hosts' slices through it).
 */
function checkGateways(inv: Inventory, placement: Placement, modes: ReadonlyMap<string, WireguardMode>, issues: IssueCollector): void {
  for (const h of placement.activeHosts) {
    if (modes.get(h.node.id) !== 'container') continue;
    const version = readPodmanVersion(h.podmanVersion);
    if (version && compareVersions(version, CONTAINER_MODE_SINCE) < 0) {
      issues.add(
        h.node.path,
        `runs WireGuard in a gateway container (wireguard mode 'container'${h.rootless === true ? ', as rootless hosts must' : ''}), which needs Podman ${formatPodmanVersion(CONTAINER_MODE_SINCE)} or later for the network's routes through the gateway (podman network create --route, Podman 4.6.0 release notes), but podmanVersion is ${h.podmanVersion}. Raise podmanVersion to ${formatPodmanVersion(CONTAINER_MODE_SINCE)} or later, or make the host rootful (rootless: false) with wireguard: { mode: 'host' }.`,
      );
    }
    const networks = new Set(inv.workloads.filter((w) => placement.hostOf.get(w) === h).map((w) => placement.networkOf.get(w)));
    if (networks.size > 1) {
      const names = [...networks].flatMap((n) => (n ? [n.networkName] : [])).sort();
      issues.add(h.node.path, `runs WireGuard in a gateway container (wireguard mode 'container'), which joins one network, but the host's services are on ${networks.size} networks (${names.join(', ')}). Put this host's services on one network, or make the host rootful (rootless: false) with wireguard: { mode: 'host' }.`);
    }
  }
}
