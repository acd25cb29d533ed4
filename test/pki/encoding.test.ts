// The reading side and the keys: IP/DNS forms, names and SANs as Node reads them, key types, key/certificate matching, X.509 times, injected key sources.
import { PKCS8_LABEL } from '../../src/state/pki/keys.ts';
import { createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCertificate } from '../../src/state/pki/certificate.ts';
import { createClientCa, createRootCa, issueLeaf, LEAF_EKU, LEAF_USAGE, nameOf, sanDnsNames, signingCa, subjectAltName, validityAt } from '../../src/state/pki/issue.ts';
import { keyTypeOf, leafKeyOf, privateKeyMatchesCertificate, SIGNATURE, signingKeyOf } from '../../src/state/pki/keys.ts';
import type { RandomSource } from '../../src/state/random.ts';
import { x509 } from './peculiar.ts';
import { canonicalIp, isSanDnsName } from '../../src/state/pki/names.ts';
import { reconcilePki, webCryptoKeySource, type KeySource, type KeyType } from '../../src/state/pki/index.ts';
import { AUTHORITY, binding, pemCerts, readState, tempState, x509Text } from './helpers.ts';

describe('names', () => {
  it.each([
    ['10.90.0.21', '10.90.0.21'],
    ['FD00:0:0:0:0:0:0:21', 'fd00::21'],
    ['fd00::21', 'fd00::21'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:1:0:1:1:1:1', '2001:db8:1:0:1:1:1:1'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
  ])('canonicalIp(%s) = %s', (ip, want) => {
    expect(canonicalIp(ip)).toBe(want);
  });

  it.each([
    ['auth.ashchan.local', true],
    ['*.ashchan.local', true],
    ['auth', true],
    ['-auth.local', false],
    ['auth..local', false],
    ['a b', false],
    ['*', false],
  ])('isSanDnsName(%s) = %s', (name, want) => {
    expect(isSanDnsName(name)).toBe(want);
  });
});

describe('reading certificates natively', () => {
  const t = tempState();
  afterAll(() => t.cleanup());
  const organization = 'Acme, Inc. + "R&D" <x>;#\\ été';

  it('reads back organizations with RFC 2253 specials and IPv6 SANs, and keeps them on the next run', async () => {
    // GIVEN an organization full of characters Node escapes, and IPv6 addresses in two spellings
    const authority = { ...AUTHORITY, organization };
    const bindings = [binding('auth', 'server', { ipAddresses: ['FD00:0:0::21', '::ffff:10.0.0.1', '10.90.0.21'] }), binding('auth', 'client')];
    const now = new Date('2026-03-01T00:00:00Z');
    // WHEN
    await reconcilePki({ stateDir: t.stateDir, authority, bindings, now });
    const second = await reconcilePki({ stateDir: t.stateDir, authority, bindings, now: new Date('2026-03-02T00:00:00Z') });
    // THEN the certificate reads back exactly
    const server = parseCertificate(readState(t.stateDir, 'pki/services/auth/server.crt'));
    expect(server.organization).toBe(organization);
    expect(server.commonName).toBe('auth.ashchan.local');
    expect(server.dnsNames).toEqual(['auth.ashchan.local', 'auth']);
    expect(server.ipAddresses).toEqual(['fd00::21', '::ffff:a00:1', '10.90.0.21']);
    expect(x509Text(t.root, server.pem)).toContain('IP Address:FD00:0:0:0:0:0:0:21, IP Address:0:0:0:0:0:FFFF:A00:1, IP Address:10.90.0.21');
    // AND nothing is reissued or written on the second run
    expect(second.certificates.map((c) => c.action)).toEqual(['keep', 'keep']);
    expect(second.warnings).toEqual([]);
    expect(second.files).toEqual([]);
  });

  it('reads the leaf of a chain file, not the CA that follows it', () => {
    const text = readState(t.stateDir, 'pki/services/auth/client.crt');
    expect(pemCerts(text)).toHaveLength(2);
    const leaf = parseCertificate(text);
    expect(leaf.commonName).toBe('auth.ashchan.local');
    expect(leaf.isCa).toBe(false);
    expect(leaf.pem).toBe(pemCerts(text)[0]);
    expect(leaf.keyType).toBe('ecdsa-p256');
  });

  it('refuses text that holds no certificate', () => {
    expect(() => parseCertificate('garbage')).toThrow();
    expect(() => parseCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toThrow();
  });
});

describe('keys', () => {
  const fixed = (pair: { publicKey: KeyObject; privateKey: KeyObject }, keyType: KeyType): KeySource => ({
    generate: async () => {
      const algorithm = keyType === 'ecdsa-p256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
      const der = (k: KeyObject, type: 'pkcs8' | 'spki'): Buffer => k.export({ type, format: 'der' } as never) as Buffer;
      return {
        privateKey: await globalThis.crypto.subtle.importKey('pkcs8', der(pair.privateKey, 'pkcs8'), algorithm, true, ['sign']),
        publicKey: await globalThis.crypto.subtle.importKey('spki', der(pair.publicKey, 'spki'), algorithm, true, ['verify']),
      };
    },
  });

  it('exports a key source pair as the PKCS#8 PEM OpenSSL writes', async () => {
    // GIVEN a WebCrypto P-256 pair
    const pair = await webCryptoKeySource.generate('ecdsa-p256');
    // WHEN
    const key = leafKeyOf(pair, 'ecdsa-p256');
    // THEN
    expect(key.pem).toBe(KeyObject.from(pair.privateKey).export({ type: 'pkcs8', format: 'pem' }));
    expect(key.pem.startsWith(`-----BEGIN ${PKCS8_LABEL}-----\n`)).toBe(true);
  });

  it('rejects a key source that returns another key type', async () => {
    const pair = await webCryptoKeySource.generate('ecdsa-p256');
    expect(() => leafKeyOf(pair, 'rsa-2048')).toThrow('key source returned a ecdsa-p256 key for rsa-2048');
  });

  it.each([
    ['ec P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ecdsa-p256'],
    ['ec P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }), undefined],
    ['rsa 2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 }), 'rsa-2048'],
    ['rsa 3072', () => generateKeyPairSync('rsa', { modulusLength: 3072 }), undefined],
    ['ed25519', () => generateKeyPairSync('ed25519'), undefined],
  ] as const)('keyTypeOf(%s)', (_name, make, want) => {
    const { privateKey, publicKey } = make();
    expect(keyTypeOf(privateKey)).toBe(want);
    expect(keyTypeOf(publicKey)).toBe(want);
  });

  it.each(['ecdsa-p256', 'rsa-2048'] as const)('matches a %s private key to its own certificate only', async (keyType) => {
    // GIVEN a root certificate made from a known pair, and another pair of the same type
    const make = (): { publicKey: KeyObject; privateKey: KeyObject } =>
      keyType === 'ecdsa-p256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const own = make();
    const other = make();
    const root = parseCertificate((await createRootCa({ ...AUTHORITY, keyType }, fixed(own, keyType), new Date())).certPem);
    const pem = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }) as string;
    // THEN
    expect(root.keyType).toBe(keyType);
    expect(privateKeyMatchesCertificate(pem(own.privateKey), root)).toBe(true);
    expect(privateKeyMatchesCertificate(pem(other.privateKey), root)).toBe(false);
    expect(() => privateKeyMatchesCertificate('garbage', root)).toThrow();
    expect(() => privateKeyMatchesCertificate(pem(own.privateKey) + pem(other.privateKey), root)).toThrow('not a single PEM PKCS#8');
  });
});

describe('X.509 times', () => {
  const t = tempState();
  afterAll(() => t.cleanup());

  it('switches to GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', async () => {
    // GIVEN a root created in 2045 for 10 years
    const root = await createRootCa(AUTHORITY, webCryptoKeySource, new Date('2045-06-01T00:00:00Z'));
    // THEN openssl and Node agree on both dates
    const text = x509Text(t.root, root.certPem);
    expect(text).toContain('Not Before: May 31 23:55:00 2045 GMT');
    expect(text).toContain('Not After : May 29 23:55:00 2055 GMT');
    const back = parseCertificate(root.certPem);
    expect(back.notBefore.toISOString()).toBe('2045-05-31T23:55:00.000Z');
    expect(back.notAfter.toISOString()).toBe('2055-05-29T23:55:00.000Z');
  });
});

describe('injected key source', () => {
  it('is used for every key reconcile generates', async () => {
    const t = tempState();
    const asked: KeyType[] = [];
    const counting: KeySource = {
      generate: (k) => {
        asked.push(k);
        return webCryptoKeySource.generate(k);
      },
    };
    try {
      await reconcilePki({
        stateDir: t.stateDir,
        authority: AUTHORITY,
        bindings: [binding('auth', 'server'), binding('auth', 'client', { keyType: 'rsa-2048' })],
        now: new Date('2026-03-01T00:00:00Z'),
        keys: counting,
      });
    } finally {
      t.cleanup();
    }
    expect(asked.sort()).toEqual(['ecdsa-p256', 'ecdsa-p256', 'ecdsa-p256', 'rsa-2048']);
  });
});

describe('encoding', () => {
  // The reference: the certificate @peculiar/x509's generator made before the engine encoded with
  // @peculiar/asn1-x509 itself (same subject, issuer, serial, validity, key and extensions).
  async function reference(p: {
    serial: string;
    subject: string;
    issuer: { name: x509.Name; key: KeyObject; keyId: string; keyType: KeyType } | undefined;
    key: { publicKey: KeyObject; privateKey: KeyObject };
    keyType: KeyType;
    lifetimeDays: number;
    extensions: x509.Extension[];
  }): Promise<x509.X509Certificate> {
    const { notBefore, notAfter } = validityAt(NOW, p.lifetimeDays);
    const spki = p.key.publicKey.export({ type: 'spki', format: 'der' });
    const extensions = [...p.extensions, await x509.SubjectKeyIdentifierExtension.create(spki)];
    if (p.issuer) extensions.push(new x509.AuthorityKeyIdentifierExtension(p.issuer.keyId));
    const signer = p.issuer?.key ?? p.key.privateKey;
    const signerType = p.issuer?.keyType ?? p.keyType;
    return x509.X509CertificateGenerator.create({
      serialNumber: p.serial,
      subject: nameOf(p.subject, ORG),
      issuer: p.issuer ? p.issuer.name : nameOf(p.subject, ORG),
      notBefore,
      notAfter,
      publicKey: spki,
      signingKey: await signingKeyOf(signer, signerType),
      signingAlgorithm: SIGNATURE[signerType],
      extensions,
    });
  }
  const NOW = new Date('2026-03-01T00:00:00Z');
  const ORG = 'Acme, Inc. + "R&D" été';
  const tbsHex = (der: ArrayBuffer | Buffer): string => Buffer.from(AsnConvert.parse(der, Certificate).tbsCertificateRaw as ArrayBuffer).toString('hex');
  const fixedKeys = (pair: { publicKey: KeyObject; privateKey: KeyObject }, keyType: KeyType): KeySource => ({
    generate: async () => {
      const algorithm = keyType === 'ecdsa-p256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
      return {
        privateKey: await globalThis.crypto.subtle.importKey('pkcs8', pair.privateKey.export({ type: 'pkcs8', format: 'der' }), algorithm, true, ['sign']),
        publicKey: await globalThis.crypto.subtle.importKey('spki', pair.publicKey.export({ type: 'spki', format: 'der' }), algorithm, true, ['verify']),
      };
    },
  });
  const bytesOf = (hex: string): RandomSource => ({ bytes: (n) => Buffer.from(hex.padStart(n * 2, '0'), 'hex') });

  it.each(['ecdsa-p256', 'rsa-2048'] as const)('encodes %s certificates exactly as @peculiar/x509 did (root, client CA, leaf)', async (keyType) => {
    const gen = (): { publicKey: KeyObject; privateKey: KeyObject } =>
      keyType === 'ecdsa-p256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const [rootKey, clientKey, leafKey] = [gen(), gen(), gen()];
    const spec = { ...AUTHORITY, keyType, organization: ORG };
    // A serial whose first byte has its top bit set (encoded with a leading zero byte), and a short one.
    const root = await createRootCa(spec, fixedKeys(rootKey, keyType), NOW, bytesOf('009f0102030405060708090a0b0c0d0e'));
    expect(root.cert.serial).toBe('9f0102030405060708090a0b0c0d0e');
    const rootCa = signingCa(parseCertificate(root.certPem), root.certPem, rootKey.privateKey);
    const client = await createClientCa(spec, rootCa, fixedKeys(clientKey, keyType), NOW, bytesOf('0a0b0c'));
    const req = { ...binding('auth', 'server', { ipAddresses: ['10.90.0.21', 'FD00:0:0::21', '::ffff:10.0.0.1'], dnsNames: ['auth.ashchan.local', 'auth', '*.auth.ashchan.local'], keyType }), organization: ORG };
    const leaf = await issueLeaf(req, rootCa, fixedKeys(leafKey, keyType), NOW, bytesOf('7f'));
    const rootIssuer = { name: rootCa.name, key: rootKey.privateKey, keyId: rootCa.spec.keyId, keyType };
    const want = {
      root: await reference({ serial: '9f0102030405060708090a0b0c0d0e', subject: spec.rootCommonName, issuer: undefined, key: rootKey, keyType, lifetimeDays: spec.rootLifetimeDays, extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)] }),
      client: await reference({ serial: '0a0b0c', subject: spec.clientCaCommonName, issuer: rootIssuer, key: clientKey, keyType, lifetimeDays: spec.clientCaLifetimeDays, extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)] }),
      leaf: await reference({ serial: '7f', subject: req.commonName, issuer: rootIssuer, key: leafKey, keyType, lifetimeDays: 365, extensions: [new x509.BasicConstraintsExtension(false, undefined, true), LEAF_USAGE[keyType], LEAF_EKU, subjectAltName(sanDnsNames(req), req.ipAddresses)] }),
    };
    // THEN the signed bytes are identical (signatures differ: ECDSA is randomized), the signatures verify
    const got = { root, client, leaf };
    for (const k of ['root', 'client', 'leaf'] as const) {
      const mine = parseCertificate(got[k].certPem);
      expect(tbsHex(mine.x509.raw), k).toBe(tbsHex(want[k].rawData));
      expect(mine.x509.verify(createPublicKey(rootKey.privateKey)), k).toBe(true);
      expect(got[k].certPem).toBe(mine.pem);
    }
  });
});
