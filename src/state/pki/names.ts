// DNS-name and IP-address checks and the canonical forms the engine compares SANs in.
import { isIPv4, isIPv6 } from 'node:net';

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'i');

/** Whether `name` is a hostname (letters, digits, hyphens; labels of 1-63; at most 253 characters). */
export function isHostname(name: string): boolean {
  return name.length <= 253 && HOSTNAME.test(name);
}

/** Whether `name` may go into a SAN dNSName: a hostname, or `*.` followed by one. */
export function isSanDnsName(name: string): boolean {
  return isHostname(name.startsWith('*.') ? name.slice(2) : name);
}

/** Whether `ip` is an IPv4 or IPv6 address (no zone, no prefix). */
export function isIp(ip: string): boolean {
  return isIPv4(ip) || isIPv6(ip);
}

/** The 4 or 16 bytes of an IP address, as the SAN iPAddress field holds them. */
export function ipToBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  // An embedded IPv4 tail (`::ffff:10.0.0.1`) becomes its two hex groups first.
  const text = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const [head, rest] = text.split('::') as [string, string | undefined];
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const groups = rest === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** Canonical text of 4 or 16 address bytes: dotted IPv4, or RFC 5952 IPv6 (lower case, longest zero run as `::`). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new Error(`IP address of ${bytes.length} bytes`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  let bestStart = -1;
  let bestLen = 1; // RFC 5952 §4.2.2: a single zero group is not shortened
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an IP address, so that `fd00::1` and `FD00:0:0::1` compare equal. */
export function canonicalIp(ip: string): string {
  return bytesToIp(ipToBytes(ip));
}
