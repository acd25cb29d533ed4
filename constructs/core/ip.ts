// IPv4 addresses and CIDR blocks as numbers: parsing, containment, overlap, splitting.

/** An IPv4 network in CIDR form, with its address as a 32-bit unsigned number. */
export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  readonly base: number;
  /** Prefix length, 0-32. */
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses dotted-quad IPv4, or returns undefined. Leading zeros are refused (ambiguous octal). */
export function parseIp(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** Dotted-quad form of a 32-bit address. */
export function formatIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** Result of parsing a CIDR: the block, or why it is not one (with a suggestion). */
export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; reason: string };

/** Parses `a.b.c.d/n`. Host bits must be zero: `10.90.0.5/24` suggests `10.90.0.0/24`. */
export function parseCidr(text: string): CidrParse {
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) return { ok: false, reason: `"${text}" is not a CIDR block (a.b.c.d/n)` };
  const base = parseIp(addr);
  if (base === undefined) return { ok: false, reason: `"${addr}" is not an IPv4 address` };
  if (len === undefined) {
    return { ok: false, reason: `CIDR mask is missing in "${text}". Did you mean "${text}/24"?` };
  }
  if (!/^(3[0-2]|[12]?\d)$/.test(len)) return { ok: false, reason: `prefix length "/${len}" must be 0-32` };
  const prefix = Number(len);
  const masked = (base & mask(prefix)) >>> 0;
  if (masked !== base) {
    return { ok: false, reason: `"${text}" has host bits set. Did you mean "${formatIp(masked)}/${prefix}"?` };
  }
  return { ok: true, cidr: { base, prefix } };
}

/** Netmask of a prefix length as an unsigned number. */
export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Number of addresses in the block. */
export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** Last address (broadcast for prefixes below /31). */
export function lastAddress(c: Cidr): number {
  return c.base + size(c) - 1;
}

export function contains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip <= lastAddress(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= lastAddress(b) && b.base <= lastAddress(a);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

/**
 * Splits a block into `count` equal sub-blocks, the smallest power of two at least `count`.
 * Returns undefined when the pieces would be smaller than /30.
 */
export function split(c: Cidr, count: number): Cidr[] | undefined {
  const bits = Math.ceil(Math.log2(Math.max(1, count)));
  const prefix = c.prefix + bits;
  if (prefix > 30) return undefined;
  const step = 2 ** (32 - prefix);
  return Array.from({ length: count }, (_, i) => ({ base: c.base + i * step, prefix }));
}
