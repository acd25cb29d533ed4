// Builds and signs certificates with the ASN.1 classes @peculiar/x509 itself is built on
// (@peculiar/asn1-x509), without its wrapper (which parses every extension, name and key it was
// given and the finished certificate again), and signs with Node's native `sign`. The encoding is
// byte for byte what @peculiar/x509's generator wrote (test/pki/encoding.test.ts compares the two).
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
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
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
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { canonicalIp } from './names.ts';
import type { KeyType } from './types.ts';

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

/** The issuer's name, parsed once per issuer and reused for every certificate it signs. */
const issuerNames = new WeakMap<Uint8Array, Name>();
function issuerName(der: Uint8Array): Name {
  let name = issuerNames.get(der);
  if (!name) {
    name = AsnConvert.parse(der, Name);
    issuerNames.set(der, name);
  }
  return name;
}

/** The serial's INTEGER content: its bytes, with a 0x00 first when the top bit is set (positive, as @peculiar/x509 wrote it). */
function serialBytes(hex: string): ArrayBuffer {
  const b = Buffer.from(hex, 'hex');
  const bytes = b.length > 0 && (b[0] as number) > 0x7f ? Buffer.concat([Buffer.of(0), b]) : b;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * The DER of a certificate for `spec` holding the public key `spkiDer`, signed by `signingKey`
 * (the issuer's key, or the subject's own for the self-signed root, whose `issuer` is undefined).
 */
export function buildCertificate(spec: TbsSpec, spkiDer: Uint8Array, issuer: IssuerSpec | undefined, signingKey: KeyObject): Buffer {
  const spki = AsnConvert.parse(spkiDer, SubjectPublicKeyInfo);
  const ski = keyIdentifier(spki);
  const subject = subjectName(spec.commonName, spec.organization);
  const extensions = [...FIXED[spec.profile](spec.keyType)];
  if (spec.profile === 'leaf') {
    const names = [
      ...spec.dnsNames.map((dNSName) => new GeneralName({ dNSName })),
      // Canonical text: the IP converter misreads an embedded IPv4 tail (::ffff:10.0.0.1).
      ...spec.ipAddresses.map((ip) => new GeneralName({ iPAddress: canonicalIp(ip) })),
      ...(spec.uris ?? []).map((uniformResourceIdentifier) => new GeneralName({ uniformResourceIdentifier })),
    ];
    extensions.push(extension(id_ce_subjectAltName, false, new SubjectAlternativeName(names)));
  }
  extensions.push(extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(Buffer.from(ski, 'hex'))));
  if (issuer) {
    extensions.push(extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(Buffer.from(issuer.keyId, 'hex')) })));
  }
  if (spec.profile === 'leaf' && spec.ocspUrl !== undefined) {
    const ocsp = new AccessDescription({ accessMethod: id_ad_ocsp, accessLocation: new GeneralName({ uniformResourceIdentifier: spec.ocspUrl }) });
    extensions.push(extension(id_pe_authorityInfoAccess, false, new AuthorityInfoAccessSyntax([ocsp])));
  }
  const algorithm = signatureAlgorithm(issuer ? issuer.keyType : spec.keyType);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialBytes(spec.serial),
    signature: algorithm,
    issuer: issuer ? issuerName(issuer.nameDer) : subject,
    validity: new Validity({ notBefore: new Date(spec.notBefore), notAfter: new Date(spec.notAfter) }),
    subject,
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(extensions),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  // ECDSA signatures in DER (Ecdsa-Sig-Value), as X.509 carries them; RSA: PKCS#1 v1.5.
  const signature = sign('sha256', tbsDer, { key: signingKey, dsaEncoding: 'der' });
  // The certificate around the TBS bytes just signed (the class keeps them as they are).
  const cert = new Certificate({ signatureAlgorithm: algorithm, signatureValue: signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength) as ArrayBuffer });
  cert.tbsCertificate = tbs;
  return Buffer.from(AsnConvert.serialize(cert));
}

/** PEM as OpenSSL writes it: 64-character lines, a final newline. */
export function pemOf(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}
