// parseLock reads locks of the usual shape without zod's walk; what it returns must be exactly what
// zod returns (values and key order), and anything else must still get zod's verdict and words.
import { describe, expect, it } from 'vitest';
import { LOCK_SCHEMA, parseLock } from '../src/resolve/lock.ts';

const ordered = (v: unknown) => JSON.stringify(v);

const valid: unknown[] = [
  { version: 1, networks: {} },
  { version: 1, networks: { mesh: { subnet: '10.64.0.0/16', addresses: { b: '10.64.0.3', a: '10.64.0.2', '10': '10.64.0.9' } } } },
  { version: 1, networks: { mesh: { subnet: '10.64.0.0/16', slices: { h1: '10.64.0.0/24' }, addresses: {} } }, wireguard: { subnet: '10.99.0.0/24', hosts: { h1: { address: '10.99.0.1', publicKey: 'k=' }, h0: { address: '10.99.0.2' } } } },
  // Keys in another order and keys the schema does not name (zod drops them).
  { wireguard: { hosts: { h: { publicKey: 'k', address: 'a', extra: 1 } }, subnet: 's', x: [] }, networks: { n: { addresses: { a: 'b' }, subnet: 's', note: 'x' } }, version: 1, comment: 'hand-edited' },
];

const invalid: unknown[] = [
  { version: 2, networks: {} },
  { version: 1 },
  { version: 1, networks: [] },
  { version: 1, networks: { n: { subnet: 1, addresses: {} } } },
  { version: 1, networks: { n: { subnet: 's', addresses: { a: 1 } } } },
  { version: 1, networks: { n: { subnet: 's', slices: [], addresses: {} } } },
  { version: 1, networks: { n: { subnet: 's', addresses: {} } }, wireguard: { subnet: 's', hosts: { h: { address: 'a', publicKey: null } } } },
  { version: 1, networks: { n: { subnet: 's', addresses: {} } }, wireguard: null },
  [],
  'lock',
];

describe('parseLock', () => {
  it('gives, for every well-formed lock, what zod gives: the same values in the same key order', () => {
    for (const data of valid) {
      const zod = LOCK_SCHEMA.safeParse(data);
      expect(zod.success).toBe(true);
      const ours = parseLock(JSON.stringify(data), 'out/s/podmesh.lock.json');
      expect(ours).toStrictEqual(zod.data);
      expect(ordered(ours)).toBe(ordered(zod.data));
    }
  });

  it('refuses what zod refuses, in zod words, naming the file', () => {
    for (const data of invalid) {
      const zod = LOCK_SCHEMA.safeParse(data);
      expect(zod.success).toBe(false);
      const first = zod.error!.issues[0]!;
      expect(() => parseLock(JSON.stringify(data), 'out/s/podmesh.lock.json')).toThrow(`is not a podmesh lock file (at "${first.path.join('.')}": ${first.message}). Restore it from git.`);
    }
  });
});
