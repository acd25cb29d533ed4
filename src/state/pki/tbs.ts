// Builds and signs certificates with the ASN.1 classes @peculiar/x509 itself is built on
// (@peculiar/asn1-x509), without its wrapper (which parses every extension, name and key it was
// given and the finished certificate again), and signs with Node's native `sign`. The encoding is
// byte for byte what @peculiar/x509's generator wrote (test/pki/encoding.test.ts compares the two).
// What repeats across certificates (algorithm, issuer name, validity, the fixed extensions, AKI,
// AIA) is encoded once and reused as DER; the new key's SPKI goes in as OpenSSL encoded it; only
// serial, subject, SAN and SKI are encoded per certificate (test/pki/tbs-pieces.test.ts compares
// the result with the whole TBSCertificate encoded by the classes).
// Worker-safe: plain data in, DER and PEM out; no @peculiar/x509, no WebCrypto.
import { createHash, sign, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AccessDescription,
  AlgorithmIdentifier,
  AuthorityInfoAccessSyntax,
  AttributeTypeAndValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_ad_ocsp,
  id_kp_clientAuth,
  id_kp_OCSPSigning,
  id_kp_serverAuth,
  id_pe_authorityInfoAccess,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { canonicalIp, ipToBytes } from './names.ts';
import type { KeyType } from './types.ts';

export { pemOf } from './pem.ts';

/**
 * What kind of certificate a job builds: its basicConstraints and keyUsage. `ocsp` is a delegated
 * OCSP responder (RFC 6960 §4.2.2.2): not a CA, digitalSignature, id-kp-OCSPSigning only,
 * id-pkix-ocsp-nocheck.
 */
export type CertProfile = 'root' | 'client-ca' | 'leaf' | 'ocsp';

/**
 * Everything of one certificate except its key and signature, decided before any key exists (in
 * the main thread, in a fixed order): plain data, so it can be posted to a worker.
 */
export interface TbsSpec {
  readonly profile: CertProfile;
  /** Serial, lower-case hex of whole bytes, top bit clear (see randomSerial). */
  readonly serial: string;
  /** Epoch milliseconds, whole seconds. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly commonName: string;
  readonly organization?: string;
  /** Type of the subject's new key. */
  readonly keyType: KeyType;
  /** SAN dNSName entries (leaves only), in certificate order. */
  readonly dnsNames: readonly string[];
  /** SAN iPAddress entries (leaves only), as the binding spells them. */
  readonly ipAddresses: readonly string[];
  /** SAN uniformResourceIdentifier entries (leaves only: the SPIFFE ID), after DNS names and IPs. */
  readonly uris?: readonly string[];
  /**
   * The OCSP responder URL of an Authority Information Access extension (leaves only), after the SKI and AKI.
   * @default - no AIA extension
   */
  readonly ocspUrl?: string;
}

/** The issuing CA as encoding needs it: plain data (a worker gets it once). */
export interface IssuerSpec {
  /** DER of the CA's subject, copied unchanged as the issuer. */
  readonly nameDer: Uint8Array;
  /** Hex key identifier of the CA (its SKI): the AKI of everything it signs. */
  readonly keyId: string;
  /** Type of the CA key: fixes the signature algorithm. */
  readonly keyType: KeyType;
}

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const DER_NULL = Uint8Array.of(0x05, 0x00).buffer;

/** The AlgorithmIdentifier of the SHA-256 signature a key of each type makes (RSA with explicit NULL parameters). */
function signatureAlgorithm(keyType: KeyType): AlgorithmIdentifier {
  return keyType === 'ecdsa-p256'
    ? new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 })
    : new AlgorithmIdentifier({ algorithm: SHA256_WITH_RSA, parameters: DER_NULL });
}

const extension = (extnID: string, critical: boolean, value: unknown): Extension =>
  new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

/** id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): its value is NULL. */
export const ID_PKIX_OCSP_NOCHECK = '1.3.6.1.5.5.7.48.1.5';

const CA_USAGE = KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;
/** Extensions every certificate of a profile carries, first in its extension list (built once). */
const FIXED: Readonly<Record<CertProfile, (keyType: KeyType) => Extension[]>> = (() => {
  const root = [extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: true, pathLenConstraint: 1 })), extension(id_ce_keyUsage, true, new KeyUsage(CA_USAGE))];
  const client = [extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: true, pathLenConstraint: 0 })), extension(id_ce_keyUsage, true, new KeyUsage(CA_USAGE))];
  const leafConstraints = extension(id_ce_basicConstraints, true, new BasicConstraints({}));
  const eku = extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth, id_kp_clientAuth]));
  const leaf: Record<KeyType, Extension[]> = {
    // RFC 5480 / RFC 8813: keyEncipherment is meaningless (and forbidden) for EC keys.
    'ecdsa-p256': [leafConstraints, extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)), eku],
    'rsa-2048': [leafConstraints, extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment)), eku],
  };
  const ocsp = [
    leafConstraints,
    extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)),
    extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_OCSPSigning])),
    new Extension({ extnID: ID_PKIX_OCSP_NOCHECK, critical: false, extnValue: new OctetString(DER_NULL) }),
  ];
  return { root: () => root, 'client-ca': () => client, leaf: (k) => leaf[k], ocsp: () => ocsp };
})();

/** Subject name: `O=organization` (if any), then `CN=commonName`, as UTF8Strings (RFC 5280 §4.1.2.6). */
export function subjectName(commonName: string, organization?: string): Name {
  const rdn = (type: string, value: string): RelativeDistinguishedName => {
    const attr = new AttributeTypeAndValue({ type });
    attr.value.utf8String = value;
    return new RelativeDistinguishedName([attr]);
  };
  const cn = rdn('2.5.4.3', commonName);
  return new Name(organization ? [rdn('2.5.4.10', organization), cn] : [cn]);
}

/** SHA-1 of the subjectPublicKey bits: the key identifier of RFC 5280 §4.2.1.2 (1). */
export function keyIdentifier(spki: SubjectPublicKeyInfo): string {
  return createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest('hex');
}

/**
 * A DER TLV with definite length around `parts` (already DER): how the certificate's own SEQUENCEs,
 * its [0]/[3] wrappers, the serial INTEGER and the signature BIT STRING are put around contents
 * the ASN.1 classes encoded. DER has one encoding per value, so this is byte for byte what the
 * classes write for the same structure (test/pki/encoding.test.ts, test/pki/tbs-pieces.test.ts).
 */
function tlv(tag: number, parts: readonly Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.byteLength;
  const head =
    len < 0x80 ? [tag, len] : len < 0x100 ? [tag, 0x81, len] : len < 0x10000 ? [tag, 0x82, len >> 8, len & 0xff] : [tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  return Buffer.concat([Uint8Array.from(head), ...parts], head.length + len);
}

/** Where one TLV's contents start and end, at `offset` of a DER buffer (definite lengths only). */
function contentsAt(der: Uint8Array, offset: number): { start: number; end: number } {
  const first = der[offset + 1] as number;
  let start = offset + 2;
  let len = first;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 3) throw new Error('internal: unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | (der[start + i] as number);
    start += n;
  }
  if (start + len > der.byteLength) throw new Error('internal: truncated DER');
  return { start, end: start + len };
}

/**
 * The subjectPublicKey bits of a SubjectPublicKeyInfo (SEQUENCE { algorithm, BIT STRING }), read
 * from its DER without decoding it into objects: the key identifier hashes them.
 */
export function subjectPublicKeyOf(spkiDer: Uint8Array): Uint8Array {
  const outer = contentsAt(spkiDer, 0);
  const alg = contentsAt(spkiDer, outer.start);
  if (spkiDer[0] !== 0x30 || spkiDer[outer.start] !== 0x30 || spkiDer[alg.end] !== 0x03) throw new Error('internal: not a SubjectPublicKeyInfo');
  const bits = contentsAt(spkiDer, alg.end);
  // The first content byte counts unused bits (0 for keys).
  return spkiDer.subarray(bits.start + 1, bits.end);
}

/** SHA-1 of the subjectPublicKey bits of an SPKI in DER: the key identifier of RFC 5280 §4.2.1.2 (1). */
export function keyIdentifierOfDer(spkiDer: Uint8Array): string {
  return createHash('sha1').update(subjectPublicKeyOf(spkiDer)).digest('hex');
}

const der = (value: unknown): Uint8Array => new Uint8Array(AsnConvert.serialize(value));

/** Memoizes the DER of pieces that repeat across certificates (per CA, per stack, per run). */
function memo<K, V>(make: (k: K) => V): (k: K) => V {
  const cache = new Map<K, V>();
  return (k) => {
    let v = cache.get(k);
    if (v === undefined) {
      v = make(k);
      if (cache.size > 256) cache.clear();
      cache.set(k, v);
    }
    return v;
  };
}

/** version [0] EXPLICIT INTEGER v3. */
const VERSION_V3 = tlv(0xa0, [tlv(0x02, [Uint8Array.of(Version.v3)])]);
/** The signature AlgorithmIdentifier of each key type. */
const ALGORITHM_DER: Readonly<Record<KeyType, Uint8Array>> = { 'ecdsa-p256': der(signatureAlgorithm('ecdsa-p256')), 'rsa-2048': der(signatureAlgorithm('rsa-2048')) };
/** The fixed extensions of each profile and key type, encoded once. */
const fixedDer = memo((key: string) => {
  const [profile, keyType] = key.split('|') as [CertProfile, KeyType];
  return FIXED[profile](keyType).map(der);
});
/** Validity by its two instants (a run issues with one or two lifetimes). */
const validityDer = memo((key: string) => {
  const [nb, na] = key.split('|').map(Number) as [number, number];
  return der(new Validity({ notBefore: new Date(nb), notAfter: new Date(na) }));
});
/** The AKI extension of everything a CA signs, by its key identifier. */
const akiDer = memo((keyId: string) =>
  der(extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(Buffer.from(keyId, 'hex')) }))),
);
/** The AIA extension of a leaf, by its OCSP URL (one per stack). */
const aiaDer = memo((url: string) =>
  der(
    extension(id_pe_authorityInfoAccess, false, new AuthorityInfoAccessSyntax([new AccessDescription({ accessMethod: id_ad_ocsp, accessLocation: new GeneralName({ uniformResourceIdentifier: url }) })])),
  ),
);
/** The SKI extension of a 20-byte key identifier: encoded once, then only its last 20 bytes differ. */
const SKI_TEMPLATE = der(extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(new Uint8Array(20))));
function skiDer(keyIdHex: string): Uint8Array {
  const out = Buffer.from(SKI_TEMPLATE);
  if (out.write(keyIdHex, out.length - 20, 'hex') !== 20) throw new Error('internal: a key identifier is 20 bytes');
  return out;
}

/** The serial's INTEGER content: its bytes, with a 0x00 first when the top bit is set (positive, as @peculiar/x509 wrote it). */
function serialBytes(hex: string): Uint8Array {
  const b = Buffer.from(hex, 'hex');
  return b.length > 0 && (b[0] as number) > 0x7f ? Buffer.concat([Buffer.of(0), b]) : b;
}

/** Text DER can carry byte for byte as its characters: names and URIs of a stack are plain ASCII. */
const ASCII = /^[\x00-\x7f]*$/;
/** OBJECT IDENTIFIER TLVs of the per-certificate pieces built here (2.5.29.17, 2.5.4.3, 2.5.4.10). */
const OID_SAN = Uint8Array.of(0x06, 0x03, 0x55, 0x1d, 0x11);
const OID_CN = Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x03);
const OID_O = Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x0a);
const ascii = (text: string): Buffer => Buffer.from(text, 'latin1');

/**
 * The DER of {@link subjectName}: SEQUENCE OF RDN, each a SET of one SEQUENCE { type, UTF8String }.
 * Built with {@link tlv} for ASCII text (a few microseconds, where the classes take a tenth of a
 * millisecond per certificate); anything else goes through the classes.
 */
function subjectDer(commonName: string, organization: string | undefined): Uint8Array {
  if (!ASCII.test(commonName) || (organization !== undefined && !ASCII.test(organization))) return der(subjectName(commonName, organization));
  const rdn = (oid: Uint8Array, value: string): Buffer => tlv(0x31, [tlv(0x30, [oid, tlv(0x0c, [ascii(value)])])]);
  return tlv(0x30, organization ? [rdn(OID_O, organization), rdn(OID_CN, commonName)] : [rdn(OID_CN, commonName)]);
}

/**
 * The SAN extension of a leaf: dNSName entries ([2] IA5String), then iPAddress entries ([7] the 4
 * or 16 bytes), then URIs ([6] IA5String); critical FALSE, the DER default, is left out. Built with
 * {@link tlv} when the names are ASCII (as a stack's always are), else by the classes.
 */
function sanDer(spec: TbsSpec): Uint8Array {
  const uris = spec.uris ?? [];
  if (!spec.dnsNames.every((n) => ASCII.test(n)) || !uris.every((u) => ASCII.test(u))) return sanDerOfClasses(spec);
  const names = [
    ...spec.dnsNames.map((n) => tlv(0x82, [ascii(n)])),
    ...spec.ipAddresses.map((ip) => tlv(0x87, [ipToBytes(ip)])),
    ...uris.map((u) => tlv(0x86, [ascii(u)])),
  ];
  return tlv(0x30, [OID_SAN, tlv(0x04, [tlv(0x30, names)])]);
}

/** {@link sanDer} by the ASN.1 classes. */
function sanDerOfClasses(spec: TbsSpec): Uint8Array {
  const names = [
    ...spec.dnsNames.map((dNSName) => new GeneralName({ dNSName })),
    // Canonical text: the IP converter misreads an embedded IPv4 tail (::ffff:10.0.0.1).
    ...spec.ipAddresses.map((ip) => new GeneralName({ iPAddress: canonicalIp(ip) })),
    ...(spec.uris ?? []).map((uniformResourceIdentifier) => new GeneralName({ uniformResourceIdentifier })),
  ];
  return der(extension(id_ce_subjectAltName, false, new SubjectAlternativeName(names)));
}

/**
 * The DER of the to-be-signed part of a certificate for `spec` holding the public key `spkiDer`
 * (as OpenSSL encoded it: carried over unchanged), issued by `issuer` (self-signed when undefined).
 * What varies per certificate (serial, subject, SAN, SKI) is put together from DER pieces each
 * time; what repeats (algorithm, issuer name, validity, fixed extensions, AKI, AIA) is encoded once.
 */
export function tbsDer(spec: TbsSpec, spkiDer: Uint8Array, issuer: IssuerSpec | undefined): Buffer {
  const subject = subjectDer(spec.commonName, spec.organization);
  const extensions = [...fixedDer(`${spec.profile}|${spec.keyType}`)];
  if (spec.profile === 'leaf') extensions.push(sanDer(spec));
  extensions.push(skiDer(keyIdentifierOfDer(spkiDer)));
  if (issuer) extensions.push(akiDer(issuer.keyId));
  if (spec.profile === 'leaf' && spec.ocspUrl !== undefined) extensions.push(aiaDer(spec.ocspUrl));
  return tlv(0x30, [
    VERSION_V3,
    tlv(0x02, [serialBytes(spec.serial)]),
    ALGORITHM_DER[issuer ? issuer.keyType : spec.keyType],
    issuer ? issuer.nameDer : subject,
    validityDer(`${spec.notBefore}|${spec.notAfter}`),
    subject,
    spkiDer,
    tlv(0xa3, [tlv(0x30, extensions)]),
  ]);
}

/**
 * The DER of a certificate for `spec` holding the public key `spkiDer`, signed by `signingKey`
 * (the issuer's key, or the subject's own for the self-signed root, whose `issuer` is undefined).
 */
export function buildCertificate(spec: TbsSpec, spkiDer: Uint8Array, issuer: IssuerSpec | undefined, signingKey: KeyObject): Buffer {
  const tbs = tbsDer(spec, spkiDer, issuer);
  // ECDSA signatures in DER (Ecdsa-Sig-Value), as X.509 carries them; RSA: PKCS#1 v1.5.
  const signature = sign('sha256', tbs, { key: signingKey, dsaEncoding: 'der' });
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING (no unused bits) }
  return tlv(0x30, [tbs, ALGORITHM_DER[issuer ? issuer.keyType : spec.keyType], tlv(0x03, [Uint8Array.of(0), signature])]);
}

