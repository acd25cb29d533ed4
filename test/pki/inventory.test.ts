// pki/inventory.json is read by a field-by-field check of the usual shape before zod's schema
// (src/state/pki/inventory.ts): it must never accept what the schema refuses, and must give what
// the schema gives.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inventorySchema, parseInventory, serializeInventory, wellFormedInventory } from '../../src/state/pki/inventory.ts';
import { REVOCATION_REASONS } from '../../src/state/pki/types.ts';

/** A field's valid values, and now and then a near miss (each invalid alone, so that many generated inventories are valid). */
const field = <T, U>(valid: fc.Arbitrary<T>, miss: fc.Arbitrary<U>) => fc.oneof({ arbitrary: valid, weight: 24 }, { arbitrary: miss, weight: 1 });
const anyOf = <T>(...xs: T[]) => fc.constantFrom(...xs);
const date = field(
  fc.date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.oneof(anyOf('2026-13-45T00:00:00Z', '', 'yesterday', '2026-12-03', 'Thu, 03 Dec 2026 01:00:00 GMT', '0'), fc.integer()),
);
const entry = fc.record(
  {
    service: field(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), fc.oneof(anyOf(''), fc.integer())),
    kind: field(anyOf('server', 'client', 'public'), anyOf('Server', 'ocsp', '', null)),
    serial: field(fc.stringMatching(/^[0-9a-f]{1,32}$/), fc.oneof(anyOf('ABCDEF', '', '0x1f', '12 34'), fc.nat())),
    issuer: field(anyOf('root', 'client-ca'), anyOf('client', '')),
    notBefore: date,
    notAfter: date,
    status: field(anyOf('active', 'superseded', 'revoked'), anyOf('expired', 'Active')),
    revokedAt: date,
    reason: field(anyOf(...REVOCATION_REASONS), anyOf('because', '')),
    extra: fc.jsonValue({ maxDepth: 1 }),
  },
  // Optional ones may be absent; a missing required one or an extra key is a near miss too.
  { requiredKeys: [] },
).chain((e) =>
  fc.nat(99).map((roll) => {
    const { extra, ...rest } = e;
    return roll < 4 ? e : roll < 8 ? { ...rest, service: undefined } : (rest as Record<string, unknown>);
  }),
);
const count = field(fc.nat(), fc.oneof<[fc.Arbitrary<number>, fc.Arbitrary<string>]>(anyOf(-1, 1.5, 2 ** 53, 2 ** 60, Number.MAX_SAFE_INTEGER), fc.string({ maxLength: 2 })));
const inventory = fc.record({
  version: field(anyOf(1), anyOf<unknown>(2, '1', 0)),
  crlNumbers: field(fc.record({ root: count, 'client-ca': count }), fc.oneof(fc.record({ root: count }), fc.record({ root: count, 'client-ca': count, more: count }), fc.jsonValue({ maxDepth: 1 }))),
  certificates: field(fc.array(entry, { maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })),
});

describe('the inventory read without zod', () => {
  it('accepts only what the schema accepts, and gives what it gives', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(inventory, fc.jsonValue({ maxDepth: 3 })), (data) => {
        const json = JSON.parse(JSON.stringify(data)) as unknown;
        const zod = inventorySchema.safeParse(json);
        const fast = wellFormedInventory(json);
        if (fast !== undefined) {
          accepted++;
          expect(zod.success).toBe(true);
          expect(fast).toStrictEqual(zod.data);
        }
        // Whatever path reads it, the answer is the schema's.
        const parsed = parseInventory(JSON.stringify(data));
        if (zod.success) expect(parsed).toStrictEqual(zod.data);
        else {
          refused++;
          expect(typeof parsed).toBe('string');
        }
      }),
      { numRuns: 3000 },
    );
    // The generator reaches both paths often enough for this to mean something.
    expect(accepted).toBeGreaterThan(150);
    expect(refused).toBeGreaterThan(300);
  });

  it('refuses an inventory with any one field of any entry made wrong, as the schema does', () => {
    const valid = {
      service: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
      kind: anyOf('server', 'client', 'public'),
      serial: fc.stringMatching(/^[0-9a-f]{1,32}$/),
      issuer: anyOf('root', 'client-ca'),
      notBefore: fc.date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
      notAfter: fc.date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
      status: anyOf('active', 'superseded', 'revoked'),
    };
    const misses: Record<string, readonly unknown[]> = {
      service: ['', 7, null],
      kind: ['Server', 'ocsp', ''],
      serial: ['ABCDEF', '', '0x1f', '12 34', 255],
      issuer: ['client', ''],
      notBefore: ['2026-13-45T00:00:00Z', 'yesterday', 0],
      notAfter: ['', 'soon'],
      status: ['expired', 'Active'],
      revokedAt: ['later', 5],
      reason: ['because', ''],
      extra: ['an unknown key'],
    };
    const good = fc.array(fc.record(valid), { minLength: 1, maxLength: 4 });
    const wrong = fc.tuple(good, fc.nat(), fc.constantFrom(...Object.keys(misses)), fc.nat()).map(([entries, at, key, pick]) => {
      const i = at % entries.length;
      const values = misses[key]!;
      const certificates = entries.map((e, j) => (j === i ? { ...e, [key]: values[pick % values.length] } : e));
      return { version: 1, crlNumbers: { root: 1, 'client-ca': 2 }, certificates };
    });
    fc.assert(
      fc.property(good, (certificates) => {
        const json = { version: 1, crlNumbers: { root: 1, 'client-ca': 2 }, certificates };
        expect(wellFormedInventory(json)).toStrictEqual(inventorySchema.parse(json));
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(wrong, (json) => {
        expect(inventorySchema.safeParse(json).success).toBe(false);
        expect(wellFormedInventory(json)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('reads the inventory the engine writes (2,000 entries, revoked ones too) on the fast path, as zod does', () => {
    const certificates = Array.from({ length: 2000 }, (_, i) => ({
      service: `svc-${Math.floor(i / 2)}`,
      kind: i % 2 === 0 ? ('server' as const) : ('client' as const),
      serial: (0x1000 + i).toString(16),
      issuer: i % 2 === 0 ? ('root' as const) : ('client-ca' as const),
      notBefore: '2026-12-03T00:00:00.000Z',
      notAfter: '2027-12-03T00:00:00.000Z',
      status: i % 7 === 0 ? ('revoked' as const) : ('active' as const),
      ...(i % 7 === 0 ? { revokedAt: '2026-12-04T00:00:00.000Z', reason: 'keyCompromise' as const } : {}),
    }));
    const text = serializeInventory({ version: 1, crlNumbers: { root: 3, 'client-ca': 4 }, certificates });
    const json = JSON.parse(text) as unknown;
    expect(wellFormedInventory(json)).toBeDefined();
    expect(wellFormedInventory(json)).toStrictEqual(inventorySchema.parse(json));
    expect(serializeInventory(parseInventory(text) as never)).toBe(text);
  });
});
