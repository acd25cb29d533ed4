// Issues certificates in memory with @peculiar/x509: the root CA, the client CA and service leaves, with the seed's properties.
import { createPublicKey, KeyObject, type webcrypto } from 'node:crypto';
import type { ParsedCertificate } from './certificate.ts';
import { keyTypeOf, leafKeyOf, SIGNATURE, signingKeyOf } from './keys.ts';
import { canonicalIp } from './names.ts';
import type { AuthoritySpec, CertBinding, KeySource, KeyType } from './types.ts';
import { x509 } from './x509.ts';
import { nodeRandom, type RandomSource } from '../random.ts';

/** One day in milliseconds. */
export const DAY = 86_400_000;
/** notBefore is backdated by this much so that hosts whose clocks lag a little accept new certificates. */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** A certificate and its private key as written to the state folder. */
export interface IssuedCert {
  /**
   * What the engine records of a new certificate, as @peculiar/x509 read it back while creating it
   * (reading it again natively costs ~0.8 ms while keys are being generated on other threads).
   */
  readonly cert: Pick<ParsedCertificate, 'serial' | 'notBefore' | 'notAfter'>;
  /** The certificate alone, PEM. */
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

/** What signing with a CA needs in WebCrypto terms; prepared once per CA, on its first signature. */
export interface CaSigner {
  /** The CA's private key, imported for SHA-256 signatures. */
  readonly key: webcrypto.CryptoKey;
  /** Hex key identifier of the CA (its SKI): the AKI of everything it signs. */
  readonly keyId: string;
}

/** A CA able to sign. */
export interface SigningCa {
  /** The CA certificate. */
  readonly cert: ParsedCertificate;
  /** Its PEM. */
  readonly certPem: string;
  /** Its private key. */
  readonly key: KeyObject;
  /** Its public key: verifies what it signed. */
  readonly publicKey: KeyObject;
  /** Type of its key, which fixes the signature algorithm. */
  readonly keyType: KeyType;
  /** The CA's subject as @peculiar/x509 read it, copied unchanged as the issuer of everything it signs. */
  readonly name: x509.Name;
  /** DER of that subject, to compare with the issuer of a CRL. */
  readonly subject: Uint8Array;
  /** Its public key as @peculiar/x509 holds it, to verify CRLs. */
  readonly publicKeyInfo: x509.PublicKey;
  /** The WebCrypto key and key identifier, prepared on first use and then reused. */
  readonly signer: () => Promise<CaSigner>;
}

/** What a leaf certificate contains: the binding plus the subject's organization. */
export interface LeafRequest extends CertBinding {
  /** @default - no O= attribute */
  readonly organization?: string;
}

/**
 * A CA from its certificate and private key. Node has no accessor for the raw subject or the
 * subjectKeyIdentifier, so the CA certificate (two per run) is also read with @peculiar/x509.
 * @throws Error when the key is not of a supported type (callers check key/cert match first).
 */
export function signingCa(cert: ParsedCertificate, certPem: string, key: KeyObject): SigningCa {
  const keyType = keyTypeOf(key);
  if (!keyType) throw new Error('unsupported CA key type');
  const full = new x509.X509Certificate(new Uint8Array(cert.x509.raw));
  const ski = full.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  let prepared: Promise<CaSigner> | undefined;
  return {
    cert,
    certPem,
    key,
    publicKey: createPublicKey(key),
    keyType,
    name: full.subjectName,
    subject: new Uint8Array(full.subjectName.toArrayBuffer()),
    publicKeyInfo: full.publicKey,
    signer: () =>
      (prepared ??= (async () => ({
        key: await signingKeyOf(key, keyType),
        keyId: ski ?? Buffer.from(await full.publicKey.getKeyIdentifier()).toString('hex'),
      }))()),
  };
}

/** A random positive 128-bit serial as lower-case hex: 16 random bytes, top bit cleared, never zero. */
export function randomSerial(random: RandomSource = nodeRandom): string {
  for (;;) {
    const bytes = Uint8Array.from(random.bytes(16));
    bytes[0] = (bytes[0] as number) & 0x7f;
    const hex = Buffer.from(bytes).toString('hex').replace(/^(00)+/, '');
    if (hex !== '') return hex;
  }
}

/** Rounds down to whole seconds: X.509 times carry no milliseconds, so planned and parsed dates compare equal. */
export function floorToSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** The validity of a certificate issued at `now`: backdated by the clock skew, exactly `lifetimeDays` long. */
export function validityAt(now: Date, lifetimeDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = floorToSecond(new Date(now.getTime() - CLOCK_SKEW_MS));
  return { notBefore, notAfter: new Date(notBefore.getTime() + lifetimeDays * DAY) };
}

/** SAN DNS names of a binding: the CN first, then the binding's names without duplicates. */
export function sanDnsNames(b: Pick<CertBinding, 'commonName' | 'dnsNames'>): string[] {
  return [...new Set([b.commonName, ...b.dnsNames])];
}

/** Subject or issuer name: `O=organization` (if any), then `CN=commonName`, as UTF8Strings (RFC 5280 §4.1.2.6). */
export function nameOf(commonName: string, organization?: string): x509.Name {
  const rdns = [{ CN: [{ utf8String: commonName }] }];
  return new x509.Name(organization ? [{ O: [{ utf8String: organization }] }, ...rdns] : rdns);
}

async function issue(params: {
  subject: x509.Name;
  keyType: KeyType;
  keys: KeySource;
  /** Undefined for the self-signed root. */
  issuer: SigningCa | undefined;
  lifetimeDays: number;
  now: Date;
  extensions: readonly x509.Extension[];
  random: RandomSource;
}): Promise<IssuedCert> {
  const { issuer, keyType } = params;
  // Serial and key are requested before the first await: concurrent issues draw in call order, so
  // injected sources give every certificate the same serial and key on every run.
  const serialNumber = randomSerial(params.random);
  const leaf = leafKeyOf(await params.keys.generate(keyType), keyType);
  const { notBefore, notAfter } = validityAt(params.now, params.lifetimeDays);
  // Exported once: the generator and the SKI would each export the CryptoKey again.
  const spki = await globalThis.crypto.subtle.exportKey('spki', leaf.pair.publicKey);
  const extensions = [...params.extensions, await x509.SubjectKeyIdentifierExtension.create(spki)];
  let signingKey: webcrypto.CryptoKey;
  if (issuer) {
    const signer = await issuer.signer();
    extensions.push(new x509.AuthorityKeyIdentifierExtension(signer.keyId));
    signingKey = signer.key;
  } else {
    // The root signs itself; importing through Node fixes SHA-256 whatever hash the key source chose.
    signingKey = await signingKeyOf(KeyObject.from(leaf.pair.privateKey), keyType);
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: params.subject,
    issuer: issuer ? issuer.name : params.subject,
    notBefore,
    notAfter,
    publicKey: spki,
    signingKey,
    signingAlgorithm: SIGNATURE[issuer ? issuer.keyType : keyType],
    extensions,
  });
  return {
    cert: { serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter },
    // The same text OpenSSL writes: 64-character lines and a final newline.
    certPem: `${cert.toString('pem')}\n`,
    keyPem: leaf.pem,
  };
}

const CA_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;

/** The self-signed root: CA:TRUE pathlen:1 (room for the client CA), keyCertSign + cRLSign, SKI. */
export function createRootCa(spec: AuthoritySpec, keys: KeySource, now: Date, random: RandomSource = nodeRandom): Promise<IssuedCert> {
  return issue({
    subject: nameOf(spec.rootCommonName, spec.organization),
    keyType: spec.keyType,
    keys,
    issuer: undefined,
    lifetimeDays: spec.rootLifetimeDays,
    now,
    random,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(CA_USAGE, true)],
  });
}

/** The client CA, signed by the root: CA:TRUE pathlen:0, keyCertSign + cRLSign, SKI + AKI. */
export function createClientCa(spec: AuthoritySpec, root: SigningCa, keys: KeySource, now: Date, random: RandomSource = nodeRandom): Promise<IssuedCert> {
  return issue({
    subject: nameOf(spec.clientCaCommonName, spec.organization),
    keyType: spec.keyType,
    keys,
    issuer: root,
    lifetimeDays: spec.clientCaLifetimeDays,
    now,
    random,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(CA_USAGE, true)],
  });
}

const LEAF_CONSTRAINTS = new x509.BasicConstraintsExtension(false, undefined, true);
export const LEAF_EKU = new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
export const LEAF_USAGE: Readonly<Record<KeyType, x509.KeyUsagesExtension>> = {
  // RFC 5480 / RFC 8813: keyEncipherment is meaningless (and forbidden) for EC keys.
  'ecdsa-p256': new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
  'rsa-2048': new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
};

/** subjectAltName (not critical: the subject is not empty): dNSName entries, then iPAddress entries. */
export function subjectAltName(dnsNames: readonly string[], ipAddresses: readonly string[]): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension([
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    // Canonical text: @peculiar/x509 misreads an embedded IPv4 tail (::ffff:10.0.0.1).
    ...ipAddresses.map((ip) => ({ type: 'ip' as const, value: canonicalIp(ip) })),
  ]);
}

/**
 * A service certificate: CA:FALSE; digitalSignature (+ keyEncipherment for RSA); serverAuth + clientAuth;
 * SAN = CN, DNS names, IPs; SKI + AKI.
 */
export function issueLeaf(req: LeafRequest, issuer: SigningCa, keys: KeySource, now: Date, random: RandomSource = nodeRandom): Promise<IssuedCert> {
  return issue({
    subject: nameOf(req.commonName, req.organization),
    keyType: req.keyType,
    keys,
    issuer,
    lifetimeDays: req.lifetimeDays,
    now,
    random,
    extensions: [LEAF_CONSTRAINTS, LEAF_USAGE[req.keyType], LEAF_EKU, subjectAltName(sanDnsNames(req), req.ipAddresses)],
  });
}
