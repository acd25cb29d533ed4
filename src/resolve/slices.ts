// Per-host slices of a mesh network and the WireGuard tunnel addresses: explicit, locked, then allocated.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { contains, formatCidr, formatIp, lastAddress, overlaps, parseCidr, parseIp, split, type Cidr } from '../../constructs/core/ip.ts';
import type { SegmentPlan } from './allocate.ts';

/** A network as slice planning sees it. */
export interface SliceRequest {
  readonly name: string;
  readonly path: string;
  readonly cidr: Cidr;
  /** Hosts with services on the network, in host order. */
  readonly hosts: readonly string[];
  /** Every host of the stack (explicit slices may name a host that runs nothing here yet). */
  readonly knownHosts: readonly string[];
  readonly explicit: Readonly<Record<string, string>>;
  readonly locked: Readonly<Record<string, string>>;
  /** Explicit gateway, only valid on single-host networks. */
  readonly gateway?: string;
}

/**
 * Gives each host of a multi-host network its own slice: the stack's explicit slice, else the
 * slice in the lock file, else the first free block of the equal-split size. A slice's gateway is
 * its first address. A single-host network is one segment over the whole subnet.
 */
export function planSlices(req: SliceRequest, issues: IssueCollector): SegmentPlan[] | undefined {
  for (const host of Object.keys(req.explicit)) {
    if (!req.knownHosts.includes(host)) {
      issues.add(req.path, `has a slice for unknown host "${host}". Known hosts: ${req.knownHosts.join(', ')}.`);
    }
  }
  if (req.hosts.length <= 1 && Object.keys(req.explicit).length === 0) return singleSegment(req, issues);
  if (req.gateway !== undefined) {
    issues.add(req.path, `gateway ${req.gateway} is set, but the network spans hosts ${req.hosts.join(', ')}: each host's slice has its own gateway (its first address). Remove gateway.`);
  }
  const hosts = [...new Set([...req.hosts, ...Object.keys(req.explicit).filter((h) => req.knownHosts.includes(h))])];
  const failed = issues.issues.length;
  const taken = explicitSlices(req, hosts, issues);
  const pieces = split(req.cidr, hosts.length);
  if (!pieces) {
    issues.add(req.path, `subnet ${formatCidr(req.cidr)} is too small to give each of its ${hosts.length} hosts a slice. Use a larger subnet, or set slices explicitly.`);
    return undefined;
  }
  for (const host of hosts) {
    if (req.explicit[host] !== undefined) continue;
    const lockedText = req.locked[host];
    const r = lockedText === undefined ? undefined : parseCidr(lockedText);
    if (r?.ok && contains(req.cidr, r.cidr.base) && contains(req.cidr, lastAddress(r.cidr)) && !taken.some((t) => overlaps(t.cidr, r.cidr))) {
      taken.push({ host, cidr: r.cidr });
    }
  }
  freeSlices(req, hosts, pieces[0]!.prefix, taken, issues);
  if (issues.issues.length > failed) return undefined;
  return hosts
    .filter((h) => req.hosts.includes(h) || req.explicit[h] !== undefined)
    .map((host) => {
      const cidr = taken.find((t) => t.host === host)!.cidr;
      return { host, cidr, gateway: cidr.base + 1 };
    });
}

/** The one segment of a single-host network: the whole subnet, its gateway given or the first address. */
function singleSegment(req: SliceRequest, issues: IssueCollector): SegmentPlan[] | undefined {
  const host = req.hosts[0] ?? req.knownHosts[0]!;
  const gateway = req.gateway === undefined ? req.cidr.base + 1 : parseIp(req.gateway);
  if (gateway === undefined) return undefined;
  if (gateway <= req.cidr.base || gateway >= lastAddress(req.cidr)) {
    issues.add(req.path, `gateway ${req.gateway} is not a usable address of ${formatCidr(req.cidr)}. Pick one in ${formatIp(req.cidr.base + 1)}-${formatIp(lastAddress(req.cidr) - 1)} or leave gateway unset.`);
    return undefined;
  }
  return [{ host, cidr: req.cidr, gateway }];
}

/** The slices the stack gives: inside the subnet, overlapping no other, large enough for a bridge. */
function explicitSlices(req: SliceRequest, hosts: readonly string[], issues: IssueCollector): { host: string; cidr: Cidr }[] {
  const taken: { host: string; cidr: Cidr }[] = [];
  for (const host of hosts) {
    const text = req.explicit[host];
    if (text === undefined) continue;
    const r = parseCidr(text);
    if (!r.ok) continue; // reported by the prop check
    if (!contains(req.cidr, r.cidr.base) || !contains(req.cidr, lastAddress(r.cidr))) {
      issues.add(req.path, `slice ${text} of host ${host} is outside the network's subnet ${formatCidr(req.cidr)}. Pick a block inside it.`);
      continue;
    }
    const clash = taken.find((t) => overlaps(t.cidr, r.cidr));
    if (clash) {
      issues.add(req.path, `slice ${text} of host ${host} overlaps the slice ${formatCidr(clash.cidr)} of host ${clash.host}. Give each host its own block.`);
      continue;
    }
    if (r.cidr.prefix > 30) {
      issues.add(req.path, `slice ${text} of host ${host} is too small for a bridge (a /30 holds one container). Use /29 or larger.`);
      continue;
    }
    taken.push({ host, cidr: r.cidr });
  }
  return taken;
}

/** Gives every host still without a slice the first free block of `prefix`, adding it to `taken`. */
function freeSlices(req: SliceRequest, hosts: readonly string[], prefix: number, taken: { host: string; cidr: Cidr }[], issues: IssueCollector): void {
  const step = 2 ** (32 - prefix);
  for (const host of hosts) {
    if (taken.some((t) => t.host === host) || req.explicit[host] !== undefined) continue;
    let found: Cidr | undefined;
    for (let base = req.cidr.base; base + step - 1 <= lastAddress(req.cidr); base += step) {
      const candidate = { base, prefix };
      if (!taken.some((t) => overlaps(t.cidr, candidate))) {
        found = candidate;
        break;
      }
    }
    if (!found) {
      issues.add(req.path, `no free /${prefix} slice is left in ${formatCidr(req.cidr)} for host ${host}. Use a larger subnet, or set slices explicitly.`);
      continue;
    }
    taken.push({ host, cidr: found });
  }
}

/** A host asking for a tunnel address. */
export interface TunnelRequest {
  readonly host: string;
  readonly path: string;
  readonly explicit?: string;
}

/** Picks the tunnel subnet: the stack's, the locked one, or the first 10.255.N.0/24 clear of every network. */
export function pickTunnelSubnet(
  explicit: string | undefined,
  locked: string | undefined,
  networks: readonly { name: string; cidr: Cidr }[],
  stackPath: string,
  issues: IssueCollector,
): Cidr | undefined {
  const clear = (c: Cidr) => networks.find((n) => overlaps(n.cidr, c));
  if (explicit !== undefined) {
    const r = parseCidr(explicit);
    if (!r.ok) return undefined;
    const clash = clear(r.cidr);
    if (clash) {
      issues.add(stackPath, `wireguard.subnet ${explicit} overlaps network ${clash.name} (${formatCidr(clash.cidr)}). Tunnel addresses need a range of their own, e.g. ${formatCidr(firstClear(networks) ?? r.cidr)}.`);
      return undefined;
    }
    return r.cidr;
  }
  if (locked !== undefined) {
    const r = parseCidr(locked);
    if (r.ok && !clear(r.cidr)) return r.cidr;
  }
  const c = firstClear(networks);
  if (!c) issues.add(stackPath, 'no 10.255.N.0/24 is clear of the stack\'s networks for the tunnel. Set wireguard.subnet.');
  return c;
}

function firstClear(networks: readonly { cidr: Cidr }[]): Cidr | undefined {
  for (let n = 0; n < 256; n++) {
    const c = { base: parseIp(`10.255.${n}.0`)!, prefix: 24 };
    if (!networks.some((x) => overlaps(x.cidr, c))) return c;
  }
  return undefined;
}

/** Tunnel addresses: explicit, locked, else lowest free, in host order. */
export function allocateTunnel(
  subnet: Cidr,
  requests: readonly TunnelRequest[],
  locked: Readonly<Record<string, string>>,
  issues: IssueCollector,
): Map<string, string> {
  const result = new Map<string, string>();
  const taken = new Map<number, string>();
  const usable = (ip: number) => ip > subnet.base && ip < lastAddress(subnet);
  for (const r of requests) {
    if (r.explicit === undefined) continue;
    const ip = parseIp(r.explicit);
    if (ip === undefined) continue;
    if (!usable(ip)) issues.add(r.path, `tunnelAddress ${r.explicit} is not a usable address of the tunnel subnet ${formatCidr(subnet)}. Pick one in ${formatIp(subnet.base + 1)}-${formatIp(lastAddress(subnet) - 1)} or leave it unset.`);
    else if (taken.has(ip)) issues.add(r.path, `tunnelAddress ${r.explicit} is already used by ${taken.get(ip)}. Give each host its own.`);
    else {
      taken.set(ip, r.path);
      result.set(r.host, r.explicit);
    }
  }
  for (const r of requests) {
    if (r.explicit !== undefined) continue;
    const ip = locked[r.host] === undefined ? undefined : parseIp(locked[r.host]!);
    if (ip !== undefined && usable(ip) && !taken.has(ip)) {
      taken.set(ip, r.path);
      result.set(r.host, formatIp(ip));
    }
  }
  let next = subnet.base + 1;
  for (const r of requests) {
    if (result.has(r.host) || r.explicit !== undefined) continue;
    while (usable(next) && taken.has(next)) next++;
    if (!usable(next)) {
      issues.add(r.path, `the tunnel subnet ${formatCidr(subnet)} has no free address left. Set a larger wireguard.subnet.`);
      break;
    }
    taken.set(next, r.path);
    result.set(r.host, formatIp(next));
  }
  return result;
}
