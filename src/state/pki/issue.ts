// Issues certificates in memory: the root CA, the client CA and service leaves, with the seed's
// properties. Contents are decided first (tbsSpec: serial, validity, names), then encoded and
// signed (tbs.ts: @peculiar/asn1-x509 and Node's sign), in the main thread or in workers (pool.ts).
// @peculiar/x509 reads CA certificates and builds CSRs (external.ts).
import { createPrivateKey, createPublicKey, KeyObject, type webcrypto } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import type { ParsedCertificate } from './certificate.ts';
import { keyMaterial, keyTypeOf, signingKeyOf, type KeyMaterial } from './keys.ts';
import { canonicalIp } from './names.ts';
import { buildCertificate, keyIdentifier, pemOf, type CertProfile, type IssuerSpec, type TbsSpec } from './tbs.ts';
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
   * What the engine records of a new certificate, from what it was built of (not read back: the
   * encoder writes exactly these; test/pki/parallel.test.ts compares them with Node's reading).
   */
  readonly cert: CertFacts;
  /** The certificate alone, PEM. */
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

/** The fields of a certificate the engine decides on and caches (ParsedCertificate without the native object). */
export type CertFacts = Omit<ParsedCertificate, 'x509'>;

/** The facts of a certificate built from `spec`, whose own PEM is `pem`; equal to what parseCertificate reads from it. */
export function factsOf(spec: TbsSpec, pem: string): CertFacts {
  return {
    pem,
    serial: spec.serial,
    commonName: spec.commonName,
    organization: spec.organization,
    notBefore: new Date(spec.notBefore),
    notAfter: new Date(spec.notAfter),
    isCa: spec.profile !== 'leaf' && spec.profile !== 'ocsp',
    dnsNames: spec.dnsNames,
    ipAddresses: spec.ipAddresses.map(canonicalIp),
    uris: spec.uris ?? [],
    ocspUrls: spec.ocspUrl === undefined ? [] : [spec.ocspUrl],
    keyType: spec.keyType,
  };
}

/** What signing a CRL with a CA needs in WebCrypto terms; prepared once per CA, on its first CRL. */
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
  /** The WebCrypto key and key identifier (CRLs), prepared on first use and then reused. */
  readonly signer: () => Promise<CaSigner>;
  /** The issuer as certificate encoding needs it (name DER, key identifier, key type). */
  readonly spec: IssuerSpec;
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
  // Read with @peculiar/x509 at first use (issuing, signing or checking a CRL): a run with nothing
  // to change needs none of it (its first parse in a process costs about 25 ms).
  let read: { name: x509.Name; subject: Uint8Array; publicKeyInfo: x509.PublicKey; keyId: string } | undefined;
  const parts = () => {
    if (!read) {
      const full = new x509.X509Certificate(new Uint8Array(cert.x509.raw));
      // The AKI of what it signs: its SKI, or (a CA without one) the RFC 5280 hash of its key.
      const keyId = full.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? keyIdentifier(AsnConvert.parse(full.publicKey.rawData, SubjectPublicKeyInfo));
      read = { name: full.subjectName, subject: new Uint8Array(full.subjectName.toArrayBuffer()), publicKeyInfo: full.publicKey, keyId };
    }
    return read;
  };
  let prepared: Promise<CaSigner> | undefined;
  let spec: IssuerSpec | undefined;
  return {
    cert,
    certPem,
    key,
    publicKey: createPublicKey(key),
    keyType,
    get name() {
      return parts().name;
    },
    get subject() {
      return parts().subject;
    },
    get publicKeyInfo() {
      return parts().publicKeyInfo;
    },
    signer: () => (prepared ??= (async () => ({ key: await signingKeyOf(key, keyType), keyId: parts().keyId }))()),
    get spec() {
      return (spec ??= { nameDer: parts().subject, keyId: parts().keyId, keyType });
    },
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

/** The self-signed root's, the client CA's or a leaf's contents, decided now: serial, validity, names. */
export function tbsSpec(
  profile: CertProfile,
  subject: { readonly commonName: string; readonly organization?: string | undefined; readonly keyType: KeyType },
  lifetimeDays: number,
  now: Date,
  serial: string,
  san: { readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[]; readonly uris?: readonly string[] } = { dnsNames: [], ipAddresses: [] },
): TbsSpec {
  const { notBefore, notAfter } = validityAt(now, lifetimeDays);
  return {
    profile,
    serial,
    notBefore: notBefore.getTime(),
    notAfter: notAfter.getTime(),
    commonName: subject.commonName,
    ...(subject.organization === undefined ? {} : { organization: subject.organization }),
    keyType: subject.keyType,
    dnsNames: san.dnsNames,
    ipAddresses: san.ipAddresses,
    ...(san.uris && san.uris.length > 0 ? { uris: san.uris } : {}),
  };
}

/** SAN URIs of a binding: its SPIFFE ID, the one URI an X509-SVID carries, if it has one. */
export function sanUris(b: Pick<CertBinding, 'spiffeId'>): string[] {
  return b.spiffeId === undefined ? [] : [b.spiffeId];
}

/** The spec of a leaf: CN, SAN = CN + DNS names, IPs, the SPIFFE ID; the AIA OCSP URL. */
export function leafSpec(req: LeafRequest, now: Date, serial: string): TbsSpec {
  const spec = tbsSpec('leaf', req, req.lifetimeDays, now, serial, { dnsNames: sanDnsNames(req), ipAddresses: req.ipAddresses, uris: sanUris(req) });
  return req.ocspUrl === undefined ? spec : { ...spec, ocspUrl: req.ocspUrl };
}

/** OCSP URLs a binding's leaf carries: its responder URL, if OCSP is on. */
export function aiaOcspUrls(b: Pick<CertBinding, 'ocspUrl'>): string[] {
  return b.ocspUrl === undefined ? [] : [b.ocspUrl];
}

/** A certificate for `spec` and the key `key`, signed by `issuer` (self-signed when undefined: `key` must then be given privately). */
export function issueWith(spec: TbsSpec, key: KeyMaterial, issuer: { readonly spec: IssuerSpec; readonly key: KeyObject } | undefined): IssuedCert {
  const signingKey = issuer ? issuer.key : createPrivateKey(key.keyPem);
  const certPem = pemOf(buildCertificate(spec, key.spkiDer, issuer?.spec, signingKey), 'CERTIFICATE');
  return { cert: factsOf(spec, certPem), certPem, keyPem: key.keyPem };
}

async function issue(profile: CertProfile, spec: (serial: string) => TbsSpec, issuer: SigningCa | undefined, keys: KeySource, random: RandomSource): Promise<IssuedCert> {
  // The serial is drawn before the key is requested: callers draw in a fixed order.
  const s = spec(randomSerial(random));
  if (s.profile !== profile) throw new Error(`internal: ${s.profile} spec for a ${profile}`);
  return issueWith(s, await keyMaterial(keys, s.keyType), issuer && { spec: issuer.spec, key: issuer.key });
}

/** The self-signed root: CA:TRUE pathlen:1 (room for the client CA), keyCertSign + cRLSign, SKI. */
export function createRootCa(spec: AuthoritySpec, keys: KeySource, now: Date, random: RandomSource = nodeRandom): Promise<IssuedCert> {
  const subject = { commonName: spec.rootCommonName, organization: spec.organization, keyType: spec.keyType };
  return issue('root', (serial) => tbsSpec('root', subject, spec.rootLifetimeDays, now, serial), undefined, keys, random);
}

/** The client CA, signed by the root: CA:TRUE pathlen:0, keyCertSign + cRLSign, SKI + AKI. */
export function createClientCa(spec: AuthoritySpec, root: SigningCa, keys: KeySource, now: Date, random: RandomSource = nodeRandom): Promise<IssuedCert> {
  const subject = { commonName: spec.clientCaCommonName, organization: spec.organization, keyType: spec.keyType };
  return issue('client-ca', (serial) => tbsSpec('client-ca', subject, spec.clientCaLifetimeDays, now, serial), root, keys, random);
}

export const LEAF_EKU = new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
export const LEAF_USAGE: Readonly<Record<KeyType, x509.KeyUsagesExtension>> = {
  // RFC 5480 / RFC 8813: keyEncipherment is meaningless (and forbidden) for EC keys.
  'ecdsa-p256': new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
  'rsa-2048': new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
};

/** subjectAltName (not critical: the subject is not empty): dNSName entries, then iPAddress entries, then URIs. */
export function subjectAltName(dnsNames: readonly string[], ipAddresses: readonly string[], uris: readonly string[] = []): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension([
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    // Canonical text: @peculiar/x509 misreads an embedded IPv4 tail (::ffff:10.0.0.1).
    ...ipAddresses.map((ip) => ({ type: 'ip' as const, value: canonicalIp(ip) })),
    ...uris.map((value) => ({ type: 'url' as const, value })),
  ]);
}

/**
 * A service certificate: CA:FALSE; digitalSignature (+ keyEncipherment for RSA); serverAuth + clientAuth;
 * SAN = CN, DNS names, IPs; SKI + AKI.
 */
export function issueLeaf(req: LeafRequest, issuer: SigningCa, keys: KeySource, now: Date, random: RandomSource = nodeRandom): Promise<IssuedCert> {
  return issue('leaf', (serial) => leafSpec(req, now, serial), issuer, keys, random);
}
