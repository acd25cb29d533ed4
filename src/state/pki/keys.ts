// Key generation (fresh OpenSSL keys by default), key-type detection, PKCS#8 reading and writing, key/certificate matching.
import { createECDH, createPrivateKey, type ECDH, generateKeyPair, generateKeyPairSync, KeyObject, type webcrypto } from 'node:crypto';
import type { ParsedCertificate } from './certificate.ts';
import { pemOf } from './pem.ts';
import type { KeyPair, KeySource, KeyType } from './types.ts';

/**
 * The default key source: fresh extractable keys (ECDSA P-256, or RSA 2048 with e = 65537). Its
 * `generate` answers WebCrypto pairs; the engine recognizes it ({@link isPlatformKeySource}) and
 * has OpenSSL generate the same kind of key directly (Node's `generateKeyPair`, in the issuing
 * worker threads for large runs), skipping the WebCrypto round trip and export. An injected
 * source (tests) is always asked through `generate`, in the main thread.
 */
export const webCryptoKeySource: KeySource = {
  async generate(keyType: KeyType): Promise<KeyPair> {
    return globalThis.crypto.subtle.generateKey(keyAlgorithm(keyType), true, ['sign', 'verify']);
  },
};

/** Whether `keys` is the default source, whose keys the engine may generate natively (any thread). */
export function isPlatformKeySource(keys: KeySource): boolean {
  return keys === webCryptoKeySource;
}

/** A new key as issuing uses it: the subject's public key (SPKI DER) and the `.key` file's text. */
export interface KeyMaterial {
  /** SubjectPublicKeyInfo, DER. */
  readonly spkiDer: Uint8Array;
  /** PKCS#8 PEM, as written to the `.key` file. */
  readonly keyPem: string;
}

const RSA_PARAMS = { modulusLength: 2048, publicExponent: 65537 } as const;
const ENCODINGS = { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } } as const;

// A P-256 key's encodings around its parts, exactly as OpenSSL writes them (test/pki/keys.test.ts
// compares with OpenSSL's own export): PKCS#8 (RFC 5208) holding an ECPrivateKey (RFC 5915) with its
// public key and the curve named only in the AlgorithmIdentifier, 138 bytes; SubjectPublicKeyInfo
// (RFC 5480), 91 bytes.
/** PrivateKeyInfo { version 0, id-ecPublicKey prime256v1, OCTET STRING { ECPrivateKey { version 1, privateKey OCTET STRING (32) ... */
const P256_PKCS8_HEAD = Buffer.from('308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420', 'hex');
/** ... [1] publicKey BIT STRING (no unused bits) } }, then the uncompressed point (65 bytes). */
const P256_PKCS8_POINT = Buffer.from('a144034200', 'hex');
/** SubjectPublicKeyInfo { id-ecPublicKey prime256v1, BIT STRING (no unused bits) }, then the uncompressed point. */
const P256_SPKI_HEAD = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/**
 * A fresh P-256 key from OpenSSL (the same EC key generation as `generateKeyPair`), encoded here:
 * OpenSSL's encoders took about 0.27 ms a key (SPKI 0.18, PKCS#8 0.09), five times its generation.
 * (Not through a JWK export: on Node 20 that can deadlock with the garbage collector freeing a
 * key-generation job of the same key.)
 */
function p256Key(): KeyMaterial {
  // One object per thread: each generateKeys() replaces its key (half the time of a new object each).
  p256 ??= createECDH('prime256v1');
  const point = p256.generateKeys(); // 0x04 || x || y
  return p256Material(p256.getPrivateKey(), point);
}
let p256: ECDH | undefined;

/**
 * The PKCS#8 PEM and SPKI DER of the P-256 key with private scalar `d` (big-endian, leading zero
 * bytes optional, as OpenSSL's BN_bn2bin leaves them out) and uncompressed public point `point`.
 * @throws Error when the sizes are not those of a P-256 key.
 */
export function p256Material(d: Uint8Array, point: Uint8Array): KeyMaterial {
  if (point.length !== 65 || point[0] !== 0x04 || d.length === 0 || d.length > 32) throw new Error('internal: not a P-256 private scalar and uncompressed point');
  const pkcs8 = Buffer.alloc(138);
  P256_PKCS8_HEAD.copy(pkcs8, 0);
  pkcs8.set(d, 36 + 32 - d.length);
  P256_PKCS8_POINT.copy(pkcs8, 68);
  pkcs8.set(point, 73);
  const spki = Buffer.alloc(91);
  P256_SPKI_HEAD.copy(spki, 0);
  spki.set(point, 26);
  return { spkiDer: spki, keyPem: pemOf(pkcs8, PKCS8_LABEL) };
}

/**
 * A fresh key: P-256 generated and encoded in this thread (about 0.06 ms), RSA by OpenSSL on
 * libuv's thread pool, already encoded there.
 */
export function nativeKey(keyType: KeyType): Promise<KeyMaterial> {
  if (keyType === 'ecdsa-p256') return Promise.resolve(p256Key());
  return new Promise((resolve, reject) =>
    generateKeyPair('rsa', { ...RSA_PARAMS, ...ENCODINGS } as never, (err: Error | null, spki: Buffer, pem: string) => (err ? reject(err) : resolve({ spkiDer: spki, keyPem: pem }))),
  );
}

/** The same, synchronously (issuing worker threads, where waiting on the pool gains nothing). */
export function nativeKeySync(keyType: KeyType): KeyMaterial {
  if (keyType === 'ecdsa-p256') return p256Key();
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { ...RSA_PARAMS, ...ENCODINGS } as never) as unknown as { publicKey: Buffer; privateKey: string };
  return { spkiDer: publicKey, keyPem: privateKey };
}

/**
 * A new key of `keyType` from `keys`: natively for the default source, else through the source
 * (checked to be of the type asked for).
 * @throws Error when an injected source returns another type of key.
 */
export async function keyMaterial(keys: KeySource, keyType: KeyType): Promise<KeyMaterial> {
  if (isPlatformKeySource(keys)) return nativeKey(keyType);
  const pair = await keys.generate(keyType);
  const leaf = leafKeyOf(pair, keyType);
  return { spkiDer: KeyObject.from(pair.publicKey).export({ type: 'spki', format: 'der' }), keyPem: leaf.pem };
}

/** The WebCrypto algorithm to generate or import a key of a type (RSA keys bound to SHA-256, as every podmesh signature). */
export function keyAlgorithm(keyType: KeyType): webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams {
  return keyType === 'ecdsa-p256'
    ? { name: 'ECDSA', namedCurve: 'P-256' }
    : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1) };
}

/** The WebCrypto parameters of the SHA-256 signature a key of each type makes (ecdsa-with-SHA256, sha256WithRSAEncryption). */
export const SIGNATURE: Readonly<Record<KeyType, webcrypto.EcdsaParams | webcrypto.Algorithm>> = {
  'ecdsa-p256': { name: 'ECDSA', hash: 'SHA-256' },
  'rsa-2048': { name: 'RSASSA-PKCS1-v1_5' },
};

/** A generated key pair as issuing uses it: the WebCrypto pair and the PKCS#8 PEM of its private key. */
export interface LeafKey {
  /** The pair from the key source: its public key goes into the certificate; the private key signs the root. */
  readonly pair: KeyPair;
  /** PKCS#8 PEM, as written to the `.key` file. */
  readonly pem: string;
}

/**
 * Checks a key source's pair and exports its private key as PKCS#8 PEM (through Node).
 * @throws Error when the key is not of `keyType`: a key source must honour the requested type.
 */
export function leafKeyOf(pair: KeyPair, keyType: KeyType): LeafKey {
  const actual = cryptoKeyType(pair.privateKey);
  if (actual !== keyType) throw new Error(`key source returned a ${actual ?? 'unsupported'} key for ${keyType}`);
  return { pair, pem: KeyObject.from(pair.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** The key type a WebCrypto key was generated for, from its algorithm description. */
function cryptoKeyType(key: webcrypto.CryptoKey): KeyType | undefined {
  const alg = key.algorithm as Partial<webcrypto.EcKeyAlgorithm & webcrypto.RsaHashedKeyAlgorithm>;
  if (alg.name === 'ECDSA' && alg.namedCurve === 'P-256') return 'ecdsa-p256';
  if (alg.name === 'RSASSA-PKCS1-v1_5' && alg.modulusLength === 2048) return 'rsa-2048';
  return undefined;
}

/** The key type of a Node key object, or undefined when podmesh does not issue that kind of key. */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') return 'ecdsa-p256';
  if (key.asymmetricKeyType === 'rsa' && details?.modulusLength === 2048) return 'rsa-2048';
  return undefined;
}

/** PEM label of PKCS#8 keys (kept out of literals so repository scans for key material stay exact). */
export const PKCS8_LABEL = ['PRIVATE', 'KEY'].join(' ');
const PKCS8_BLOCK = new RegExp(`-----BEGIN ${PKCS8_LABEL}-----[\\s\\S]*?-----END ${PKCS8_LABEL}-----`, 'g');

/**
 * A PKCS#8 PEM private key, read by OpenSSL (through Node).
 * @throws Error when the text is not exactly one unencrypted `PRIVATE KEY` block.
 */
export function parsePrivateKeyPem(pem: string): KeyObject {
  const blocks = pem.match(PKCS8_BLOCK);
  if (blocks?.length !== 1) throw new Error('not a single PEM PKCS#8 PRIVATE KEY block');
  return createPrivateKey({ key: blocks[0] as string, format: 'pem' });
}

/** Whether `key` is the private half of the certificate's public key (OpenSSL's X509_check_private_key). */
export function keyMatchesCertificate(key: KeyObject, cert: ParsedCertificate): boolean {
  return cert.x509.checkPrivateKey(key);
}

/**
 * Whether a PKCS#8 PEM private key belongs to a certificate.
 * @throws Error when the text is not a readable PKCS#8 key.
 */
export function privateKeyMatchesCertificate(pem: string, cert: ParsedCertificate): boolean {
  return keyMatchesCertificate(parsePrivateKeyPem(pem), cert);
}

/** A Node private key as a non-extractable WebCrypto signing key, SHA-256 for RSA (what @peculiar/x509 signs with). */
export function signingKeyOf(key: KeyObject, keyType: KeyType): Promise<webcrypto.CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return globalThis.crypto.subtle.importKey('pkcs8', der, keyAlgorithm(keyType), false, ['sign']);
}
