// Key generation (WebCrypto by default), key-type detection, PKCS#8 reading and writing, key/certificate matching.
import { createPrivateKey, KeyObject, type webcrypto } from 'node:crypto';
import type { ParsedCertificate } from './certificate.ts';
import type { KeyPair, KeySource, KeyType } from './types.ts';

/** The default key source: extractable WebCrypto keys (ECDSA P-256, or RSA 2048 with e = 65537). */
export const webCryptoKeySource: KeySource = {
  async generate(keyType: KeyType): Promise<KeyPair> {
    return globalThis.crypto.subtle.generateKey(keyAlgorithm(keyType), true, ['sign', 'verify']);
  },
};

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
