// WireGuard keys in wg's own text form: 32 raw bytes as standard base64 (44 characters).
// Node's x25519 keys are WireGuard keys; only the encoding differs (JWK base64url, DER).
// @see https://www.wireguard.com/protocol/#key-exchange-and-data-packets
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';

/** PKCS#8 DER prefix of an X25519 private key: what precedes its 32 raw bytes (RFC 8410). */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A WireGuard key as `wg genkey`, `wg pubkey` and `wg genpsk` print it. */
const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Where new keys come from; injected so tests can control them. */
export interface WireguardKeySource {
  /** A new private key in wg's base64 form. */
  privateKey(): string;
  /** A new preshared key in wg's base64 form. */
  presharedKey(): string;
}

/** Keys from Node's crypto: x25519 private keys, 32 random bytes for preshared keys. */
export const nodeKeySource: WireguardKeySource = {
  privateKey(): string {
    const { privateKey } = generateKeyPairSync('x25519');
    const d = Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url');
    // Clamped as `wg genkey` does; X25519 clamps on use anyway, so the public key is the same.
    d[0]! &= 248;
    d[31] = (d[31]! & 127) | 64;
    return d.toString('base64');
  },
  presharedKey(): string {
    return randomBytes(32).toString('base64');
  },
};

/** Clamps 32 random bytes as `wg genkey` does (X25519 clamps on use anyway, so the public key is the same). */
function clamp(raw: Uint8Array): string {
  const d = Buffer.from(raw);
  d[0]! &= 248;
  d[31] = (d[31]! & 127) | 64;
  return d.toString('base64');
}

/** Keys drawn from a source of random bytes (the state context's): any 32 bytes, clamped, are an X25519 private key. */
export function wireguardKeySource(random: { bytes(n: number): Uint8Array }): WireguardKeySource {
  return {
    privateKey: () => clamp(random.bytes(32)),
    presharedKey: () => Buffer.from(random.bytes(32)).toString('base64'),
  };
}

/** Whether `text` is a key in wg's form (44 base64 characters encoding exactly 32 bytes). */
export function isWireguardKey(text: string): boolean {
  return WG_KEY.test(text);
}

/** The public key of a private key, both in wg's base64 form (what `wg pubkey` prints). */
export function publicKeyOf(privateKey: string): string {
  if (!isWireguardKey(privateKey)) throw new Error('not a WireGuard key (44 base64 characters)');
  const der = Buffer.concat([PKCS8_X25519_PREFIX, Buffer.from(privateKey, 'base64')]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url').toString('base64');
}
