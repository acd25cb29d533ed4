// Certificate benchmark: the certificates of 1,000 services (2,000 leaves) through reconcilePki as
// the podmesh command runs it (the built engine in dist/, workers from dist/pki-worker.mjs), a
// second reconcile with nothing to change, where the time goes (issuing in memory on one thread
// and on worker threads; writing), the cost of fsync per file against one batch made durable at
// once (io/atomic.ts writeBatch: syncfs), and the same leaf work through the openssl CLI and through
// Node's native crypto (the floor). Prints one JSON line.
// Environment: BENCH_CERTS_SERVICES (default 1000: 2,000 leaves), BENCH_CERTS_OPENSSL (leaves
// sampled through the openssl CLI, default 100; 0 skips it, the slowest part), BENCH_CERTS_ONLY=
// reconcile (only the two reconciles, each process one sample of them: bench/run.ts takes medians).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
// @ts-expect-error: a plain JavaScript module without types
import { build, isStale } from '../scripts/build.mjs';
import { writeBatch } from '../src/io/atomic.ts';
import type { AuthoritySpec, CertBinding } from '../src/state/pki/index.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
if ((isStale as () => boolean)()) await (build as () => Promise<unknown>)();
const chunk = readdirSync(join(repo, 'dist')).find((n) => /^pki-[A-Z0-9]+\.mjs$/.test(n));
if (!chunk) throw new Error('dist/ holds no pki chunk: run node scripts/build.mjs');
const pki = (await import(pathToFileURL(join(repo, 'dist', chunk)).href)) as typeof import('../src/state/pki/index.ts');

const SERVICES = Number(process.env.BENCH_CERTS_SERVICES ?? 1000);
const OPENSSL_SAMPLE = Number(process.env.BENCH_CERTS_OPENSSL ?? 100);
const FSYNC_SAMPLE = 1000;
const authority: AuthoritySpec = { rootCommonName: 'bench-ca', rootLifetimeDays: 3650, clientCaCommonName: 'bench.local', clientCaLifetimeDays: 1825, keyType: 'ecdsa-p256' };
const bindings: CertBinding[] = [];
for (let i = 0; i < SERVICES; i++) {
  const dns = `svc-${i}.bench.local`;
  const ip = `10.64.${Math.floor(i / 250)}.${(i % 250) + 2}`;
  for (const kind of ['server', 'client'] as const) bindings.push({ service: `svc-${i}`, kind, commonName: dns, dnsNames: [dns], ipAddresses: [ip], keyType: 'ecdsa-p256', lifetimeDays: 365 });
}

/** CPU time of this process (every thread) since `from`, in ms. */
const cpuMs = (from: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
};

// BENCH_WORK: a folder to work in that the caller deletes later (bench/run.ts: when the whole bench
// ends, so no measured run follows the deletion of thousands of files; see moveAside there).
const dir = mkdtempSync(join(process.env.BENCH_WORK ?? tmpdir(), 'podmesh-bench-certs-'));
try {
  const state = join(dir, 'bench');
  const now = new Date();
  // The whole run as synth runs it (auto: worker threads for 2,000 leaves on more than one core).
  let t = performance.now();
  let cpu = process.cpuUsage();
  await pki.reconcilePki({ stateDir: state, authority, bindings, now });
  const issueMs = performance.now() - t;
  const issueCpuMs = cpuMs(cpu);
  t = performance.now();
  cpu = process.cpuUsage();
  await pki.reconcilePki({ stateDir: state, authority, bindings, now });
  const noopMs = performance.now() - t;
  const noopCpuMs = cpuMs(cpu);
  const reconciles = { leaves: bindings.length, issueMs, issueCpuMs, noopMs, noopCpuMs };
  process.stdout.write(`${JSON.stringify(process.env.BENCH_CERTS_ONLY === 'reconcile' ? reconciles : { ...reconciles, ...(await breakdown(now)), cores: availableParallelism() })}\n`);
} finally {
  if (process.env.BENCH_WORK === undefined) rmSync(dir, { recursive: true, force: true });
}

/** Where the first run's time goes, fsync's share, the openssl CLI and the native floor, in `dir`. */
async function breakdown(now: Date) {
  // Where the first run goes: issuing in memory (plan), on one thread and on the workers, then writing.
  const input = { stateDir: join(dir, 'split'), authority, bindings };
  // The dist engine's own default key source (the engine generates its keys natively, on any thread).
  const ctx = { now, keys: pki.webCryptoKeySource, random: { bytes: (n: number) => randomBytes(n) } };
  let t = performance.now();
  await pki.planPki(input, ctx, false, { issueMode: 'serial' });
  const planSerialMs = performance.now() - t;
  t = performance.now();
  const plan = await pki.planPki(input, ctx, false, { issueMode: 'parallel' });
  const planParallelMs = performance.now() - t;
  t = performance.now();
  await pki.applyPkiPlan(plan);
  const writeMs = performance.now() - t;
  const files = plan.result.files.length;

  // fsync's share of an atomic write (temp file, write, chmod, fsync, close, rename), 8 at a time as apply writes.
  const writeFiles = async (sync: boolean): Promise<number> => {
    const d = join(dir, `fsync-${sync}`);
    mkdirSync(d);
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < FSYNC_SAMPLE) {
          const p = join(d, `f${next++}`);
          const fh = await open(`${p}.tmp`, 'wx', 0o600);
          await fh.writeFile(randomBytes(350).toString('hex'));
          await fh.chmod(0o600);
          if (sync) await fh.sync();
          await fh.close();
          await rename(`${p}.tmp`, p);
        }
      }),
    );
    return (performance.now() - start) / FSYNC_SAMPLE;
  };
  const fsyncFileMs = await writeFiles(true);
  const noFsyncFileMs = await writeFiles(false);
  // The same files as one batch: temps without fsync, one syncfs, renames, one syncfs.
  const batchDir = join(dir, 'batch');
  mkdirSync(batchDir);
  t = performance.now();
  await writeBatch(Array.from({ length: FSYNC_SAMPLE }, (_, i) => ({ abs: join(batchDir, `f${i}`), content: randomBytes(350).toString('hex'), mode: 0o600 })));
  const batchFileMs = (performance.now() - t) / FSYNC_SAMPLE;

  // openssl: per leaf a P-256 key and a CA-signed certificate with the same extensions.
  const o = join(dir, 'openssl');
  mkdirSync(o);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: o, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=bench-ca', '-days', '3650');
  t = performance.now();
  for (let i = 0; i < OPENSSL_SAMPLE; i++) {
    writeFileSync(join(o, 'ext.cnf'), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:svc-${i}.bench.local,IP:10.64.0.${(i % 250) + 2}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
    run('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=svc-${i}.bench.local`);
    run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${(i + 1).toString(16)}`, '-days', '365', '-sha256', '-extfile', 'ext.cnf', '-out', 'leaf.crt');
  }
  const opensslMs = OPENSSL_SAMPLE > 0 ? ((performance.now() - t) / OPENSSL_SAMPLE) * bindings.length : null;

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
  return { planSerialMs, planParallelMs, writeMs, files, fsyncFileMs, noFsyncFileMs, batchFileMs, opensslMs, opensslSample: OPENSSL_SAMPLE, nativeMs };
}
