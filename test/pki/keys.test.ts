// Fresh P-256 keys are encoded by podmesh (src/state/pki/keys.ts), not by OpenSSL's encoders: the
// bytes must be exactly OpenSSL's, whatever the key (a private scalar with leading zero bytes too),
// and OpenSSL itself must read them back as the same key.
import { createECDH, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { keyTypeOf, nativeKey, nativeKeySync, p256Material } from '../../src/state/pki/keys.ts';
import { pemOf } from '../../src/state/pki/pem.ts';
import { openssl, scratch } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'podmesh-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** OpenSSL's own PKCS#8 PEM and SPKI DER of the key with private scalar `d` (32 bytes), imported as a JWK (not from podmesh's bytes). */
function opensslEncodings(d: Buffer): { pem: string; spki: Buffer; point: Buffer } {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(d);
  const point = ecdh.getPublicKey();
  const jwk = { kty: 'EC', crv: 'P-256', d: d.toString('base64url'), x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') };
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  return { pem: key.export({ type: 'pkcs8', format: 'pem' }) as string, spki: createPublicKey(key).export({ type: 'spki', format: 'der' }), point };
}

/** The P-256 group order: private scalars lie in [1, n). */
const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
const scalar = (v: bigint): Buffer => Buffer.from(v.toString(16).padStart(64, '0'), 'hex');
/** BN_bn2bin's form: no leading zero bytes. */
const stripped = (b: Buffer): Buffer => b.subarray(b.findIndex((x) => x !== 0));

describe('P-256 keys encoded by podmesh', () => {
  it('are byte for byte what OpenSSL writes, for any scalar (with leading zero bytes too)', () => {
    const arb = fc.tuple(fc.bigInt({ min: 1n, max: N - 1n }), fc.integer({ min: 0, max: 31 })).map(([v, zeros]) => {
      // Clear the top `zeros` bytes: scalars that OpenSSL hands over shorter than 32 bytes.
      const b = scalar(v);
      b.fill(0, 0, zeros);
      return b.every((x) => x === 0) ? scalar(1n) : b;
    });
    fc.assert(
      fc.property(arb, (d) => {
        const want = opensslEncodings(d);
        const got = p256Material(stripped(d), want.point);
        expect(got.keyPem).toBe(want.pem);
        expect(Buffer.from(got.spkiDer).equals(want.spki)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('fresh keys: OpenSSL reads them back as the same key, a key pair that signs and verifies', async () => {
    const keys = [...Array.from({ length: 200 }, () => nativeKeySync('ecdsa-p256')), await nativeKey('ecdsa-p256')];
    for (const k of keys) {
      const priv = createPrivateKey(k.keyPem);
      expect(keyTypeOf(priv)).toBe('ecdsa-p256');
      expect(priv.export({ type: 'pkcs8', format: 'pem' })).toBe(k.keyPem);
      const pub = createPublicKey({ key: Buffer.from(k.spkiDer), format: 'der', type: 'spki' });
      expect(createPublicKey(priv).export({ type: 'spki', format: 'der' }).equals(Buffer.from(k.spkiDer))).toBe(true);
      const sig = sign('sha256', Buffer.from('podmesh'), priv);
      expect(verify('sha256', Buffer.from('podmesh'), pub, sig)).toBe(true);
    }
    // Each key is new.
    expect(new Set(keys.map((k) => k.keyPem)).size).toBe(keys.length);
  });

  it('the openssl CLI checks the key and prints it back unchanged', () => {
    const short = scalar(1n);
    short.fill(0x5a, 2); // two leading zero bytes
    const cases = [nativeKeySync('ecdsa-p256'), p256Material(stripped(short), opensslEncodings(short).point)];
    for (const [i, k] of cases.entries()) {
      const file = scratch(dir, `key-${i}.pem`, k.keyPem);
      const check = openssl(['pkey', '-in', file, '-check', '-noout']);
      expect(check.code, check.out).toBe(0);
      expect(check.out).toMatch(/valid/i);
      const again = openssl(['pkey', '-in', file]);
      expect(again.code, again.out).toBe(0);
      expect(again.out).toBe(k.keyPem);
      const pub = openssl(['pkey', '-in', file, '-pubout']);
      expect(pub.code, pub.out).toBe(0);
      expect(pub.out).toBe(pemOf(k.spkiDer, 'PUBLIC KEY'));
    }
  });

  it('refuses parts that are not a P-256 key', () => {
    const { point } = opensslEncodings(scalar(7n));
    expect(() => p256Material(Buffer.alloc(33, 1), point)).toThrow(/P-256/);
    expect(() => p256Material(Buffer.alloc(0), point)).toThrow(/P-256/);
    expect(() => p256Material(scalar(7n), point.subarray(1))).toThrow(/P-256/);
    expect(() => p256Material(scalar(7n), Buffer.concat([Buffer.of(0x02), point.subarray(1)]))).toThrow(/P-256/);
  });
});
