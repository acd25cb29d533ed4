// Certificates as openssl and @peculiar/x509 read them: chains, extensions, validity, keys, serials.
import { PKCS8_LABEL } from '../../src/state/pki/keys.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcilePki, type PkiResult } from '../../src/state/pki/index.ts';
import { AUTHORITY, binding, meshBindings, openssl, pemCerts, readState, scratch, tempState, x509Text } from './helpers.ts';
import { x509 } from './peculiar.ts';

const DAY = 86_400_000;

function validityDays(text: string): number {
  const nb = /Not Before: (.+ GMT)/.exec(text)?.[1];
  const na = /Not After : (.+ GMT)/.exec(text)?.[1];
  return (Date.parse(na ?? '') - Date.parse(nb ?? '')) / DAY;
}

describe('issued certificates', () => {
  const t = tempState();
  const now = new Date();
  let result: PkiResult;
  const svc = (s: string, f: string): string => readState(t.stateDir, `pki/services/${s}/${f}`);
  const pki = (f: string): string => readState(t.stateDir, `pki/${f}`);

  beforeAll(async () => {
    // GIVEN the seed's services, the gateway's public certificate, and one RSA service
    const bindings = [...meshBindings(), binding('media', 'server', { keyType: 'rsa-2048' })];
    // WHEN the PKI is reconciled for the first time
    result = await reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now });
  });
  afterAll(() => t.cleanup());

  it('creates both CAs and every certificate', () => {
    expect(result.cas.map((c) => `${c.ca}:${c.action}`)).toEqual(['root:create', 'client-ca:create']);
    expect(result.certificates.map((c) => `${c.service}/${c.kind}:${c.action}`)).toEqual([
      'auth/client:create',
      'auth/server:create',
      'boards/client:create',
      'boards/server:create',
      'gateway/client:create',
      'gateway/public:create',
      'gateway/server:create',
      'media/server:create',
    ]);
  });

  it('openssl verifies every server and public certificate against the root alone', () => {
    for (const [s, f] of [['gateway', 'server.crt'], ['auth', 'server.crt'], ['boards', 'server.crt'], ['media', 'server.crt'], ['gateway', 'public.crt']] as const) {
      // THEN
      const r = openssl(['verify', '-CAfile', `${t.stateDir}/pki/services/${s}/ca.crt`, `${t.stateDir}/pki/services/${s}/${f}`]);
      expect(r.out, `${s}/${f}`).toContain(': OK');
      expect(r.code).toBe(0);
    }
  });

  it('openssl verifies every client certificate with the chain client.crt carries', () => {
    for (const s of ['gateway', 'auth', 'boards']) {
      // GIVEN client.crt is the leaf followed by the client CA
      const blocks = pemCerts(svc(s, 'client.crt'));
      expect(blocks).toHaveLength(2);
      expect(blocks[1]).toBe(pki('client-ca.crt'));
      // WHEN openssl verifies the leaf with the chain as untrusted intermediates
      const leaf = scratch(t.root, 'leaf.pem', blocks[0] as string);
      const chain = scratch(t.root, 'chain.pem', blocks[1] as string);
      const r = openssl(['verify', '-CAfile', `${t.stateDir}/pki/services/${s}/ca.crt`, '-untrusted', chain, leaf]);
      // THEN
      expect(r.out).toContain(': OK');
      // AND without the chain it cannot reach the root
      expect(openssl(['verify', '-CAfile', `${t.stateDir}/pki/ca.crt`, leaf]).code).not.toBe(0);
    }
  });

  it('gives an EC server certificate the seed properties (openssl text)', () => {
    // WHEN
    const text = x509Text(t.root, svc('auth', 'server.crt'));
    // THEN
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text).toContain('ASN1 OID: prime256v1');
    expect(text).toContain('Subject: CN = auth.ashchan.local');
    expect(text).toContain('Issuer: CN = ashchan-ca');
    expect(text).toMatch(/X509v3 Subject Alternative Name: *\n\s+DNS:auth.ashchan.local, DNS:auth, IP Address:10.90.0.21\n/);
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    expect(text).not.toContain('Key Encipherment');
    expect(text).toMatch(/X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    expect(text).toContain('X509v3 Subject Key Identifier');
    expect(text).toContain('X509v3 Authority Key Identifier');
    expect(validityDays(text)).toBe(365);
  });

  it('gives an RSA 2048 certificate keyEncipherment as well', () => {
    const text = x509Text(t.root, svc('media', 'server.crt'));
    expect(text).toContain('Public-Key: (2048 bit)');
    expect(text).toContain('Public Key Algorithm: rsaEncryption');
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
    // signed by the EC root
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
  });

  it('makes the root a 10-year self-signed CA with pathlen 1 and the client CA a pathlen 0 CA under it', () => {
    const root = x509Text(t.root, pki('ca.crt'));
    expect(root).toContain('Subject: CN = ashchan-ca');
    expect(root).toContain('Issuer: CN = ashchan-ca');
    expect(root).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:1\n/);
    expect(root).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    expect(root).toContain('X509v3 Subject Key Identifier');
    expect(validityDays(root)).toBe(3650);

    const client = x509Text(t.root, pki('client-ca.crt'));
    expect(client).toContain('Subject: CN = ashchan.local');
    expect(client).toContain('Issuer: CN = ashchan-ca');
    expect(client).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    expect(client).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    expect(validityDays(client)).toBe(1825);
    expect(openssl(['verify', '-CAfile', `${t.stateDir}/pki/ca.crt`, `${t.stateDir}/pki/client-ca.crt`]).out).toContain(': OK');
  });

  it('reads back with @peculiar/x509 as an independent parser', async () => {
    // WHEN
    const root = new x509.X509Certificate(pki('ca.crt'));
    const clientCa = new x509.X509Certificate(pki('client-ca.crt'));
    const leaf = new x509.X509Certificate(svc('gateway', 'server.crt'));
    const client = new x509.X509Certificate(pemCerts(svc('gateway', 'client.crt'))[0] as string);
    // THEN names, SAN, usages and links match
    expect(leaf.subject).toBe('CN=gateway.ashchan.local');
    expect(leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()).toEqual([
      { type: 'dns', value: 'gateway.ashchan.local' },
      { type: 'dns', value: 'gateway' },
      { type: 'ip', value: '10.90.0.10' },
    ]);
    expect(leaf.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    expect(leaf.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    expect(client.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(clientCa.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    expect(root.getExtension(x509.BasicConstraintsExtension)?.pathLength).toBe(1);
    expect(clientCa.getExtension(x509.BasicConstraintsExtension)?.pathLength).toBe(0);
    expect(await leaf.verify({ publicKey: root.publicKey, signatureOnly: true })).toBe(true);
    expect(await client.verify({ publicKey: clientCa.publicKey, signatureOnly: true })).toBe(true);
    expect(await root.isSelfSigned()).toBe(true);
    // AND validity starts 5 minutes before `now` (clock skew) and lasts 365 days
    expect(Math.abs(leaf.notBefore.getTime() - (now.getTime() - 5 * 60_000))).toBeLessThan(1000);
    expect(leaf.notAfter.getTime() - leaf.notBefore.getTime()).toBe(365 * DAY);
  });

  it('uses random positive serials of at most 128 bits, all different', () => {
    const serials = result.certificates.map((c) => c.serial).concat(result.cas.map((c) => c.serial));
    expect(new Set(serials).size).toBe(serials.length);
    for (const s of serials) {
      expect(s).toMatch(/^[0-9a-f]+$/);
      expect(s.length).toBeLessThanOrEqual(32);
      expect(BigInt(`0x${s}`)).toBeGreaterThan(0n);
      expect(BigInt(`0x${s}`) < 1n << 127n).toBe(true);
    }
    const leaf = new x509.X509Certificate(svc('auth', 'server.crt'));
    expect(leaf.serialNumber).toBe(result.certificates.find((c) => c.service === 'auth' && c.kind === 'server')?.serial);
  });

  it('writes PKCS#8 keys that belong to their certificates', () => {
    for (const [s, k] of [['auth', 'server'], ['auth', 'client'], ['media', 'server'], ['gateway', 'public']] as const) {
      const keyPem = svc(s, `${k}.key`);
      expect(keyPem.startsWith(`-----BEGIN ${PKCS8_LABEL}-----\n`)).toBe(true);
      const fromKey = openssl(['pkey', '-pubout', '-in', `${t.stateDir}/pki/services/${s}/${k}.key`]);
      const fromCert = openssl(['x509', '-pubkey', '-noout', '-in', scratch(t.root, 'c.pem', pemCerts(svc(s, `${k}.crt`))[0] as string)]);
      expect(fromKey.code).toBe(0);
      expect(fromKey.out).toBe(fromCert.out);
    }
    for (const f of ['ca.key', 'client-ca.key']) expect(openssl(['pkey', '-noout', '-in', `${t.stateDir}/pki/${f}`]).code).toBe(0);
  });

  it('copies the root into every service folder as ca.crt', () => {
    for (const s of ['gateway', 'auth', 'boards', 'media']) expect(svc(s, 'ca.crt')).toBe(pki('ca.crt'));
  });
});
