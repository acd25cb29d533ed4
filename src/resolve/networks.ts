// Phase: each network's subnet (no overlaps, unique names), its bridge interface, and its
// segments (one per host: the whole subnet, or the host's slice in multi-host stacks).
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { formatCidr, overlaps, parseCidr, type Cidr } from '../../constructs/core/ip.ts';
import { INTERFACE_NAME } from '../../constructs/core/names.ts';
import type { Network } from '../../constructs/model/network.ts';
import type { SegmentPlan } from './allocate.ts';
import type { Inventory } from './inventory.ts';
import type { AllocationLock } from './model.ts';
import type { Placement } from './placement.ts';
import { planSlices } from './slices.ts';

/** The address plan of every network; a network missing from a map has a problem (reported). */
export interface NetworkPlan {
  readonly cidrOf: ReadonlyMap<Network, Cidr>;
  readonly bridgeOf: ReadonlyMap<Network, string>;
  readonly segmentsOf: ReadonlyMap<Network, readonly SegmentPlan[]>;
}

/** Plans every network of the stack. */
export function planNetworks(inv: Inventory, placement: Placement, lock: AllocationLock | undefined, issues: IssueCollector): NetworkPlan {
  const cidrOf = checkSubnets(inv.networks, issues);
  return { cidrOf, bridgeOf: bridgeNames(inv.networks, issues), segmentsOf: planSegments(inv, placement, cidrOf, lock, issues) };
}

/** Parsed subnets (a bad one is a prop problem, already recorded), each overlapping no other; names unique. */
function checkSubnets(networks: readonly Network[], issues: IssueCollector): Map<Network, Cidr> {
  const cidrOf = new Map<Network, Cidr>();
  for (const n of networks) {
    const r = parseCidr(n.subnet);
    if (r.ok) cidrOf.set(n, r.cidr);
  }
  networks.forEach((n, i) => {
    const c = cidrOf.get(n);
    if (!c) return;
    for (const m of networks.slice(0, i)) {
      const d = cidrOf.get(m);
      if (d && overlaps(c, d)) {
        issues.add(n.node.path, `subnet ${n.subnet} overlaps network ${m.networkName} (${m.subnet}). Give each network its own range, e.g. ${suggestFreeSubnet(c, [...cidrOf.values()])}.`);
      }
    }
    for (const m of networks.slice(0, i)) {
      if (m.networkName === n.networkName) issues.add(n.node.path, `network name "${n.networkName}" is already used by ${m.node.path}. Rename one of them.`);
    }
  });
  return cidrOf;
}

/** The Linux bridge of each network: its bridgeName, else its network name, which must fit IFNAMSIZ. */
function bridgeNames(networks: readonly Network[], issues: IssueCollector): Map<Network, string> {
  const bridgeOf = new Map<Network, string>();
  for (const n of networks) {
    const bridge = n.bridgeName ?? n.networkName;
    if (!INTERFACE_NAME.test(bridge)) {
      issues.add(n.node.path, `bridge interface name "${bridge}" is not a valid Linux interface name (at most 15 characters of letters, digits, "_", "." and "-"). Set bridgeName, e.g. "${bridge.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 15)}".`);
    }
    bridgeOf.set(n, bridge);
  }
  return bridgeOf;
}

/** Segments per network: explicit slices, then the lock's, then equal slices in host order. */
function planSegments(
  inv: Inventory,
  placement: Placement,
  cidrOf: ReadonlyMap<Network, Cidr>,
  lock: AllocationLock | undefined,
  issues: IssueCollector,
): Map<Network, readonly SegmentPlan[]> {
  const { hosts, workloads } = inv;
  const usedHosts = (n: Network) =>
    hosts.filter((h) => workloads.some((w) => placement.networkOf.get(w) === n && placement.hostOf.get(w) === h)).map((h) => h.node.id);
  const segmentsOf = new Map<Network, readonly SegmentPlan[]>();
  for (const n of inv.networks) {
    const cidr = cidrOf.get(n);
    if (!cidr) continue;
    const previous = lock?.networks[n.node.id];
    const segments = planSlices(
      {
        name: n.networkName,
        path: n.node.path,
        cidr,
        hosts: usedHosts(n),
        knownHosts: hosts.map((h) => h.node.id),
        explicit: n.slices,
        locked: previous && previous.subnet === formatCidr(cidr) ? (previous.slices ?? {}) : {},
        ...(n.gateway !== undefined ? { gateway: n.gateway } : {}),
      },
      issues,
    );
    if (segments) segmentsOf.set(n, segments);
  }
  return segmentsOf;
}

/** A block of the same size as `c` that overlaps none of `taken`, for error hints. */
function suggestFreeSubnet(c: Cidr, taken: readonly Cidr[]): string {
  const step = 2 ** (32 - c.prefix);
  for (let base = c.base + step, i = 0; i < 256; base += step, i++) {
    const candidate = { base: base >>> 0, prefix: c.prefix };
    if (!taken.some((t) => overlaps(t, candidate))) return formatCidr(candidate);
  }
  return 'another private range';
}
