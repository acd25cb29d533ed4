// IP allocation: explicit addresses kept, locked ones never moved, the rest lowest-free first.
import { contains, formatCidr, formatIp, lastAddress, parseIp, size, type Cidr } from '../../constructs/core/ip.ts';
import type { IssueCollector } from '../../constructs/core/errors.ts';

/** One host's part of a network, as numbers. */
export interface SegmentPlan {
  readonly host: string;
  readonly cidr: Cidr;
  readonly gateway: number;
}

/** A workload asking for an address. */
export interface AddressRequest {
  readonly name: string;
  readonly path: string;
  readonly host: string;
  readonly explicitIp?: string;
}

/** The network being allocated, as messages name it. */
export interface NetworkRef {
  readonly name: string;
  readonly path: string;
  readonly cidr: Cidr;
  /** The network's key under `networks` in the lock file. */
  readonly lockKey?: string;
}

/** Where a network's addresses went. */
export interface Allocation {
  /** Address per workload name. */
  readonly addresses: ReadonlyMap<string, string>;
}

/**
 * Allocates addresses on one network.
 * Order of precedence: the address the stack gives; the address in the lock file; the lowest free
 * address of the host's segment (requests in construct order). Never the network, broadcast or
 * gateway address of the network or of any segment.
 */
export function allocateAddresses(
  network: NetworkRef,
  segments: readonly SegmentPlan[],
  requests: readonly AddressRequest[],
  locked: Readonly<Record<string, string>>,
  issues: IssueCollector,
): Allocation {
  const reserved = reservedAddresses(network.cidr, segments);
  const segmentOf = new Map(segments.map((s) => [s.host, s]));
  const taken = new Map<number, string>();
  const result = new Map<string, string>();

  // 1. Explicit addresses.
  const pathOf = new Map(requests.map((r) => [r.name, r.path]));
  for (const r of requests) {
    if (r.explicitIp === undefined) continue;
    const ip = parseIp(r.explicitIp);
    const seg = segmentOf.get(r.host);
    if (ip === undefined || !seg) continue; // reported by prop checks / placement checks
    const pick = `Pick an address in ${usableRange(seg.cidr, reserved)}`;
    const holder = lockHolder(r, ip, requests, locked, segmentOf, reserved);
    if (!contains(network.cidr, ip)) {
      issues.add(r.path, `ip ${r.explicitIp} is outside network ${network.name} (${formatCidr(network.cidr)}). ${pick} or leave ip unset.`);
    } else if (!contains(seg.cidr, ip)) {
      issues.add(r.path, `ip ${r.explicitIp} is outside host ${r.host}'s slice of network ${network.name} (${formatCidr(seg.cidr)}). ${pick}, place the service on the host that owns it, or leave ip unset.`);
    } else if (reserved.has(ip)) {
      issues.add(r.path, `ip ${r.explicitIp} is ${reserved.get(ip)} of network ${network.name} (${formatCidr(seg.cidr)}). ${pick} or leave ip unset.`);
    } else if (taken.has(ip)) {
      issues.add(r.path, `ip ${r.explicitIp} is already given to ${taken.get(ip)}. Give each service its own address, or leave ip unset to allocate one.`);
    } else if (holder) {
      // Taking it would silently move the holder to another address and reissue its certificates
      // (their SANs name the address): that must be a deliberate step on the holder itself.
      const entry = `networks.${network.lockKey ?? network.name}.addresses.${holder.name}`;
      issues.add(
        r.path,
        `ip ${r.explicitIp} is locked to ${pathOf.get(holder.name)} in podmesh.lock.json (network ${network.name}); taking it would move that service and reissue its certificates. ` +
          `To move it deliberately, first give ${holder.name} an explicit other ip (or delete ${entry} from the lock file) and synthesize; else pick a free address or leave ip unset.`,
      );
    } else {
      taken.set(ip, r.path);
      result.set(r.name, r.explicitIp);
    }
  }

  // 2. Addresses from the lock file, while still valid.
  for (const r of requests) {
    if (r.explicitIp !== undefined) continue;
    const lockedIp = locked[r.name];
    const ip = lockedIp === undefined ? undefined : parseIp(lockedIp);
    const seg = segmentOf.get(r.host);
    if (ip === undefined || !seg || !contains(seg.cidr, ip) || reserved.has(ip) || taken.has(ip)) continue;
    taken.set(ip, r.path);
    result.set(r.name, formatIp(ip));
  }

  // 3. Lowest free address of the segment, in construct order.
  const cursor = new Map<string, number>();
  for (const r of requests) {
    if (result.has(r.name) || r.explicitIp !== undefined) continue;
    const seg = segmentOf.get(r.host);
    if (!seg) continue;
    let ip = cursor.get(r.host) ?? seg.cidr.base + 1;
    const end = lastAddress(seg.cidr);
    while (ip < end && (reserved.has(ip) || taken.has(ip))) ip++;
    if (ip >= end) {
      const needed = requests.filter((q) => q.host === r.host).length;
      const usable = size(seg.cidr) - 2 - [...reserved.keys()].filter((a) => contains(seg.cidr, a) && a !== seg.cidr.base && a !== end).length;
      issues.add(
        network.path,
        `network ${network.name} has ${usable} usable addresses in ${formatCidr(seg.cidr)} (host ${seg.host}) but ${needed} services need one. ` +
          (segments.length > 1
            ? `Give host ${seg.host} a larger slice (at least /${suggestPrefix(needed + 3, seg.cidr.prefix)}) in slices, or move services to another host.`
            : `Use a larger subnet (at least /${suggestPrefix(needed + 3, seg.cidr.prefix)}) or move services elsewhere.`),
      );
      break;
    }
    taken.set(ip, r.path);
    result.set(r.name, formatIp(ip));
    cursor.set(r.host, ip + 1);
  }
  return { addresses: result };
}

/**
 * The workload that keeps `ip` from the lock and would be moved if `r` took it: one without an
 * explicit ip (an explicit other ip is a deliberate move) whose locked address is still valid.
 */
function lockHolder(
  r: AddressRequest,
  ip: number,
  requests: readonly AddressRequest[],
  locked: Readonly<Record<string, string>>,
  segmentOf: ReadonlyMap<string, SegmentPlan>,
  reserved: ReadonlyMap<number, string>,
): AddressRequest | undefined {
  return requests.find((q) => {
    if (q.name === r.name || q.explicitIp !== undefined || locked[q.name] === undefined) return false;
    const seg = segmentOf.get(q.host);
    return parseIp(locked[q.name]!) === ip && seg !== undefined && contains(seg.cidr, ip) && !reserved.has(ip);
  });
}

/**
 * The addresses of a segment a workload may take, for messages: network, broadcast and gateway
 * left out, so a gateway at either end narrows the range and one inside it is named as excluded.
 */
function usableRange(cidr: Cidr, reserved: ReadonlyMap<number, string>): string {
  const end = lastAddress(cidr);
  let first = cidr.base + 1;
  let last = end - 1;
  while (first <= last && reserved.has(first)) first++;
  while (last >= first && reserved.has(last)) last--;
  if (first > last) return `no address of ${formatCidr(cidr)} (all are reserved)`;
  const inside = [...reserved.keys()].filter((a) => a > first && a < last).sort((a, b) => a - b);
  const range = first === last ? formatIp(first) : `${formatIp(first)}-${formatIp(last)}`;
  return inside.length === 0 ? range : `${range} except ${inside.map(formatIp).join(', ')}`;
}

/** Addresses no workload may have, each with why: network, broadcast and gateway of the network and of every slice. */
function reservedAddresses(cidr: Cidr, segments: readonly SegmentPlan[]): Map<number, string> {
  const reserved = new Map<number, string>();
  reserved.set(cidr.base, 'the network address');
  reserved.set(lastAddress(cidr), 'the broadcast address');
  for (const s of segments) {
    if (segments.length > 1) {
      reserved.set(s.cidr.base, `the network address of host ${s.host}'s slice`);
      reserved.set(lastAddress(s.cidr), `the broadcast address of host ${s.host}'s slice`);
    }
    reserved.set(s.gateway, segments.length > 1 ? `the gateway of host ${s.host}'s slice` : 'the gateway address');
  }
  return reserved;
}

/** Longest prefix whose block holds `n` addresses, and at least one bit shorter than `current`. */
function suggestPrefix(n: number, current: number): number {
  const bits = Math.ceil(Math.log2(n));
  return Math.min(32 - bits, current - 1);
}
