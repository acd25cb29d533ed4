import { describe, expect, it } from 'vitest';
import { formatCidr, parseCidr, parseIp, split } from '../constructs/core/ip.ts';

describe('parseIp', () => {
  it.each([
    ['10.90.0.1', 0x0a5a0001],
    ['0.0.0.0', 0],
    ['255.255.255.255', 0xffffffff],
  ])('parses %s', (text, n) => {
    expect(parseIp(text)).toBe(n);
  });

  it.each(['10.90.0', '10.90.0.256', '10.090.0.1', 'a.b.c.d', '10.90.0.1 ', ''])('refuses %j', (text) => {
    expect(parseIp(text)).toBeUndefined();
  });
});

describe('parseCidr', () => {
  it('parses a block', () => {
    const r = parseCidr('10.90.0.0/24');
    expect(r.ok && formatCidr(r.cidr)).toBe('10.90.0.0/24');
  });

  it.each([
    ['10.90.0.1', 'CIDR mask is missing in "10.90.0.1". Did you mean "10.90.0.1/24"?'],
    ['10.90.0.5/24', '"10.90.0.5/24" has host bits set. Did you mean "10.90.0.0/24"?'],
    ['10.90.0.0/33', 'prefix length "/33" must be 0-32'],
    ['10.900.0.0/24', '"10.900.0.0" is not an IPv4 address'],
    ['10.90.0.0/24/1', '"10.90.0.0/24/1" is not a CIDR block (a.b.c.d/n)'],
  ])('explains why %s is not a block', (text, reason) => {
    const r = parseCidr(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(reason);
  });
});

describe('split', () => {
  it('gives equal power-of-two slices in order', () => {
    const r = parseCidr('10.90.0.0/24');
    if (!r.ok) throw new Error('bad');
    expect(split(r.cidr, 3)!.map(formatCidr)).toEqual(['10.90.0.0/26', '10.90.0.64/26', '10.90.0.128/26']);
  });

  it('refuses slices below /30', () => {
    const r = parseCidr('10.90.0.0/29');
    if (!r.ok) throw new Error('bad');
    expect(split(r.cidr, 4)).toBeUndefined();
  });
});
