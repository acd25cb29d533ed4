// The TBS encoder (tbs.ts) assembles certificates from DER pieces, encoding what repeats once: its
// bytes must be exactly those of the whole TBSCertificate built from the @peculiar/asn1-x509
// classes (the encoder before it), for every profile, key type and optional part.
import { generateKeyPairSync } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AccessDescription,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  Extension,
  Extensions,
  GeneralName,
  id_ad_ocsp,
  id_ce_authorityKeyIdentifier,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_pe_authorityInfoAccess,
  KeyIdentifier,
  Name,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  AlgorithmIdentifier,
} from '@peculiar/asn1-x509';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIp } from '../../src/state/pki/names.ts';
import { keyIdentifier, keyIdentifierOfDer, subjectName, tbsDer, type CertProfile, type IssuerSpec, type TbsSpec } from '../../src/state/pki/tbs.ts';
import type { KeyType } from '../../src/state/pki/types.ts';

const ext = (extnID: string, critical: boolean, value: unknown): Extension => new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

/** The whole TBSCertificate as the ASN.1 classes encode it (the encoder tbs.ts had before), given the profile's fixed extensions. */
function reference(spec: TbsSpec, spkiDer: Uint8Array, issuer: IssuerSpec | undefined, fixed: Extension[]): Buffer {
  const spki = AsnConvert.parse(spkiDer, SubjectPublicKeyInfo);
  const subject = subjectName(spec.commonName, spec.organization);
  const extensions = [...fixed];
  if (spec.profile === 'leaf') {
    const names = [
      ...spec.dnsNames.map((dNSName) => new GeneralName({ dNSName })),
      ...spec.ipAddresses.map((ip) => new GeneralName({ iPAddress: canonicalIp(ip) })),
      ...(spec.uris ?? []).map((uniformResourceIdentifier) => new GeneralName({ uniformResourceIdentifier })),
    ];
    extensions.push(ext(id_ce_subjectAltName, false, new SubjectAlternativeName(names)));
  }
  extensions.push(ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(Buffer.from(keyIdentifier(spki), 'hex'))));
  if (issuer) extensions.push(ext(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(Buffer.from(issuer.keyId, 'hex')) })));
  if (spec.profile === 'leaf' && spec.ocspUrl !== undefined) {
    const ad = new AccessDescription({ accessMethod: id_ad_ocsp, accessLocation: new GeneralName({ uniformResourceIdentifier: spec.ocspUrl }) });
    extensions.push(ext(id_pe_authorityInfoAccess, false, new AuthorityInfoAccessSyntax([ad])));
  }
  const kt = issuer ? issuer.keyType : spec.keyType;
  const algorithm = kt === 'ecdsa-p256' ? new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }) : new AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.11', parameters: Uint8Array.of(5, 0).buffer });
  const hex = Buffer.from(spec.serial, 'hex');
  const serial = hex[0]! > 0x7f ? Buffer.concat([Buffer.of(0), hex]) : hex;
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serial.buffer.slice(serial.byteOffset, serial.byteOffset + serial.byteLength) as ArrayBuffer,
    signature: algorithm,
    issuer: issuer ? AsnConvert.parse(issuer.nameDer, Name) : subject,
    validity: new Validity({ notBefore: new Date(spec.notBefore), notAfter: new Date(spec.notAfter) }),
    subject,
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(extensions),
  });
  return Buffer.from(AsnConvert.serialize(tbs));
}

/** The fixed extensions of each profile, read back from a certificate the encoder made (their own bytes are compared in encoding.test.ts). */
function fixedOf(spec: TbsSpec, spkiDer: Uint8Array, issuer: IssuerSpec | undefined): Extension[] {
  const tbs = AsnConvert.parse(tbsDer(spec, spkiDer, issuer), TBSCertificate);
  const varying = new Set([id_ce_subjectAltName, id_ce_subjectKeyIdentifier, id_ce_authorityKeyIdentifier, id_pe_authorityInfoAccess]);
  return [...(tbs.extensions ?? [])].filter((e) => !varying.has(e.extnID));
}

const KEYS: Record<KeyType, Uint8Array[]> = {
  'ecdsa-p256': [0, 1, 2].map(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' })),
  'rsa-2048': [generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' })],
};

describe('tbsDer', () => {
  it('reads the key identifier from the SPKI DER as the parsed SubjectPublicKeyInfo gives it', () => {
    for (const der of [...KEYS['ecdsa-p256'], ...KEYS['rsa-2048']]) expect(keyIdentifierOfDer(der)).toBe(keyIdentifier(AsnConvert.parse(der, SubjectPublicKeyInfo)));
  });

  it('encodes the subject and SAN of non-ASCII text (built by the classes, not from pieces) as the classes do', () => {
    // GIVEN a leaf whose organization, common name and one DNS name are not ASCII, and one that is all ASCII
    const base: TbsSpec = { profile: 'leaf', serial: '7f01', notBefore: 1_700_000_000_000, notAfter: 1_731_536_000_000, commonName: 'api.mesh.local', keyType: 'ecdsa-p256', dnsNames: ['api.mesh.local'], ipAddresses: ['10.0.0.5', 'fd00::ffff:10.0.0.1'], uris: ['spiffe://mesh.local/api'] };
    const specs: TbsSpec[] = [base, { ...base, organization: 'Société Générale' }, { ...base, commonName: 'bücher.example', dnsNames: ['bücher.example', 'api.mesh.local'] }];
    const spki = KEYS['ecdsa-p256'][0]!;
    const issuer: IssuerSpec = { nameDer: new Uint8Array(AsnConvert.serialize(subjectName('Ünïcode CA', 'ACME'))), keyId: keyIdentifierOfDer(spki), keyType: 'ecdsa-p256' };
    for (const spec of specs) {
      // WHEN each is encoded
      const got = tbsDer(spec, spki, issuer);
      // THEN the bytes are those of the whole TBSCertificate of the classes
      expect(got.toString('hex')).toBe(reference(spec, spki, issuer, fixedOf(spec, spki, issuer)).toString('hex'));
    }
  });

  it('encodes every profile exactly as the whole TBSCertificate of the ASN.1 classes', () => {
    const text = fc.string({ minLength: 1, maxLength: 70 }).filter((s) => s.trim() !== '');
    const ip = fc.oneof(fc.ipV4(), fc.ipV6());
    const arb = fc.record({
      profile: fc.constantFrom<CertProfile>('root', 'client-ca', 'leaf', 'ocsp'),
      keyType: fc.constantFrom<KeyType>('ecdsa-p256', 'rsa-2048'),
      issuerKeyType: fc.constantFrom<KeyType>('ecdsa-p256', 'rsa-2048'),
      serial: fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex')).filter((h) => !h.startsWith('00')),
      notBefore: fc.integer({ min: 0, max: 4_000_000_000 }).map((s) => s * 1000),
      days: fc.integer({ min: 1, max: 40_000 }),
      commonName: text,
      organization: fc.option(text, { nil: undefined }),
      dnsNames: fc.array(fc.domain(), { maxLength: 4 }),
      ipAddresses: fc.array(ip, { maxLength: 3 }),
      uris: fc.array(fc.webUrl(), { maxLength: 1 }),
      ocspUrl: fc.option(fc.webUrl(), { nil: undefined }),
      issuerName: fc.option(fc.tuple(text, fc.option(text, { nil: undefined })), { nil: undefined }),
      key: fc.nat(2),
    });
    fc.assert(
      fc.property(arb, (a) => {
        const spec: TbsSpec = {
          profile: a.profile,
          serial: a.serial,
          notBefore: a.notBefore,
          notAfter: a.notBefore + a.days * 86_400_000,
          commonName: a.commonName,
          ...(a.organization === undefined ? {} : { organization: a.organization }),
          keyType: a.keyType,
          dnsNames: a.dnsNames,
          ipAddresses: a.ipAddresses,
          ...(a.uris.length > 0 ? { uris: a.uris } : {}),
          ...(a.ocspUrl === undefined ? {} : { ocspUrl: a.ocspUrl }),
        };
        const spki = KEYS[a.keyType][a.key % KEYS[a.keyType].length]!;
        const issuer: IssuerSpec | undefined =
          a.profile === 'root' || !a.issuerName
            ? undefined
            : { nameDer: new Uint8Array(AsnConvert.serialize(subjectName(a.issuerName[0], a.issuerName[1]))), keyId: keyIdentifierOfDer(KEYS[a.issuerKeyType][0]!), keyType: a.issuerKeyType };
        const got = tbsDer(spec, spki, issuer);
        expect(got.toString('hex')).toBe(reference(spec, spki, issuer, fixedOf(spec, spki, issuer)).toString('hex'));
      }),
      { numRuns: 300, seed: 17 },
    );
  });
});
