// Measures issuing 2,000 leaf certificates (1,000 services × server + client) and reconciling them again; run: npx tsx test/pki/measure-issuance.ts
// Prints figures only: timing is not asserted anywhere (targets: issuance under 3 s, a reconcile with nothing to change well under 1.5 s).
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSignedBy, parseCertificate } from '../../src/state/pki/certificate.ts';
import { createClientCa, createRootCa, issueLeaf, signingCa } from '../../src/state/pki/issue.ts';
import { parsePrivateKeyPem, privateKeyMatchesCertificate } from '../../src/state/pki/keys.ts';
import { KIND_FILES, reconcilePki, webCryptoKeySource, type CertBinding } from '../../src/state/pki/index.ts';
import { AUTHORITY } from './helpers.ts';

const SERVICES = 1000;
const now = new Date();
const bindings: CertBinding[] = [];
for (let i = 0; i < SERVICES; i++) {
  const name = `svc${String(i).padStart(4, '0')}`;
  const dns = `${name}.ashchan.local`;
  const ip = `10.${90 + Math.floor(i / 250)}.${Math.floor(i / 250) % 256}.${(i % 250) + 2}`;
  for (const kind of ['server', 'client'] as const) {
    bindings.push({ service: name, kind, commonName: dns, dnsNames: [dns, name], ipAddresses: [ip], keyType: 'ecdsa-p256', lifetimeDays: 365 });
  }
}

async function time<T>(label: string, f: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  const r = await f();
  console.log(`${label.padEnd(70)} ${(performance.now() - t0).toFixed(0).padStart(6)} ms`);
  return r;
}

async function pool<T>(n: number, limit: number, f: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < n) await f(next++);
  }));
}

// Warm-up (JIT, OpenSSL tables, the library's DI container), not measured.
const rootIssued = await createRootCa(AUTHORITY, webCryptoKeySource, now);
const root = signingCa(parseCertificate(rootIssued.certPem), rootIssued.certPem, parsePrivateKeyPem(rootIssued.keyPem));
const clientIssued = await createClientCa(AUTHORITY, root, webCryptoKeySource, now);
const clientCa = signingCa(parseCertificate(clientIssued.certPem), clientIssued.certPem, parsePrivateKeyPem(clientIssued.keyPem));
await pool(200, 8, (i) => issueLeaf(bindings[i] as CertBinding, root, webCryptoKeySource, now));

console.log(`node ${process.version}, OpenSSL ${process.versions.openssl}, ${bindings.length} leaf certificates (ECDSA P-256)`);
await time('WebCrypto generateKey only (8 in flight; the engine generates natively)', () => pool(bindings.length, 8, () => webCryptoKeySource.generate('ecdsa-p256')));
await time('issueLeaf: native keygen + asn1-x509 encoding + native sign', () =>
  pool(bindings.length, 8, (i) => {
    const b = bindings[i] as CertBinding;
    return issueLeaf(b, b.kind === 'client' ? clientCa : root, webCryptoKeySource, now);
  }),
);

const dir = mkdtempSync(join(tmpdir(), 'podmesh-measure-'));
try {
  const stateDir = join(dir, '.podmesh', 'bench');
  await time('reconcilePki, empty state: CAs + 2,000 leaves + files', () => reconcilePki({ stateDir, authority: AUTHORITY, bindings, now }));
  await time('reconcilePki again, nothing to change (reads, checks, writes 0)', () => reconcilePki({ stateDir, authority: AUTHORITY, bindings, now }));
  await time('reconcilePki dry run at 71% of the lifetime (plans 2,000 renewals)', () =>
    reconcilePki({ stateDir, authority: AUTHORITY, bindings, now: new Date(now.getTime() + 0.71 * 365 * 86_400_000), dryRun: true }),
  );

  // Where the no-change run goes: the native reads it makes for every certificate.
  const files = bindings.map((b) => {
    const f = KIND_FILES[b.kind];
    const at = (name: string): string => readFileSync(join(stateDir, 'pki/services', b.service, name), 'utf8');
    return { cert: at(f.cert), key: at(f.key), kind: b.kind };
  });
  const stateRoot = signingCa(parseCertificate(readFileSync(join(stateDir, 'pki/ca.crt'), 'utf8')), '', parsePrivateKeyPem(readFileSync(join(stateDir, 'pki/ca.key'), 'utf8')));
  const stateClient = signingCa(parseCertificate(readFileSync(join(stateDir, 'pki/client-ca.crt'), 'utf8')), '', parsePrivateKeyPem(readFileSync(join(stateDir, 'pki/client-ca.key'), 'utf8')));
  const parsed = await time('  of which: new X509Certificate + fields, 2,000 certificates', () => files.map((f) => parseCertificate(f.cert)));
  await time('  of which: checkIssued + verify against the CA', () => parsed.forEach((c, i) => isSignedBy(c, files[i]?.kind === 'client' ? stateClient : stateRoot)));
  await time('  of which: createPrivateKey (PKCS#8 PEM) + checkPrivateKey', () => parsed.forEach((c, i) => privateKeyMatchesCertificate(files[i]?.key ?? '', c)));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
