// Certificate benchmark: the certificates of 1,000 services (2,000 leaves) through reconcilePki,
// a second reconcile with nothing to change, and the same leaf work through the openssl CLI and
// through Node's native crypto (the floor).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reconcilePki, type AuthoritySpec, type CertBinding } from '../src/state/pki/index.ts';

const SERVICES = 1000;
const OPENSSL_SAMPLE = 100;
const authority: AuthoritySpec = { rootCommonName: 'bench-ca', rootLifetimeDays: 3650, clientCaCommonName: 'bench.local', clientCaLifetimeDays: 1825, keyType: 'ecdsa-p256' };
const bindings: CertBinding[] = [];
for (let i = 0; i < SERVICES; i++) {
  const dns = `svc-${i}.bench.local`;
  const ip = `10.64.${Math.floor(i / 250)}.${(i % 250) + 2}`;
  for (const kind of ['server', 'client'] as const) bindings.push({ service: `svc-${i}`, kind, commonName: dns, dnsNames: [dns], ipAddresses: [ip], keyType: 'ecdsa-p256', lifetimeDays: 365 });
}

const dir = mkdtempSync(join(tmpdir(), 'podmesh-bench-certs-'));
try {
  const state = join(dir, 'bench');
  const now = new Date();
  let t = performance.now();
  await reconcilePki({ stateDir: state, authority, bindings, now });
  const issueMs = performance.now() - t;
  t = performance.now();
  await reconcilePki({ stateDir: state, authority, bindings, now });
  const noopMs = performance.now() - t;

  // openssl: per leaf a P-256 key and a CA-signed certificate with the same extensions.
  const o = join(dir, 'openssl');
  execFileSync('mkdir', ['-p', o]);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: o, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=bench-ca', '-days', '3650');
  t = performance.now();
  for (let i = 0; i < OPENSSL_SAMPLE; i++) {
    writeFileSync(join(o, 'ext.cnf'), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:svc-${i}.bench.local,IP:10.64.0.${(i % 250) + 2}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
    run('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=svc-${i}.bench.local`);
    run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${(i + 1).toString(16)}`, '-days', '365', '-sha256', '-extfile', 'ext.cnf', '-out', 'leaf.crt');
  }
  const opensslMs = ((performance.now() - t) / OPENSSL_SAMPLE) * bindings.length;

  // The native floor: per leaf what cannot be avoided, a P-256 key pair and one ECDSA signature
  // (over a 400-byte stand-in for the to-be-signed certificate), with Node's own crypto.
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const tbs = randomBytes(400);
  t = performance.now();
  for (let i = 0; i < bindings.length; i++) {
    generateKeyPairSync('ec', { namedCurve: 'P-256' });
    sign('sha256', tbs, ca.privateKey);
  }
  const nativeMs = performance.now() - t;
  process.stdout.write(`${JSON.stringify({ leaves: bindings.length, issueMs, noopMs, opensslMs, opensslSample: OPENSSL_SAMPLE, nativeMs })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
