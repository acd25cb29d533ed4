// Issuing on worker threads changes nothing but keys and signatures: serials, names, validity,
// extensions, inventory, files and modes are those of the main thread's run; workers that fail
// fail the run before anything is written, and no worker outlives a run.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, id_ce_authorityKeyIdentifier, id_ce_subjectKeyIdentifier } from '@peculiar/asn1-x509';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { parseCertificate } from '../../src/state/pki/certificate.ts';
import { privateKeyMatchesCertificate } from '../../src/state/pki/keys.ts';
import { issueInWorkers, liveWorkers } from '../../src/state/pki/pool.ts';
import { KIND_FILES, reconcilePki, webCryptoKeySource, type CertBinding, type KeySource, type KeyType, type ReconcileOptions } from '../../src/state/pki/index.ts';
import type { RandomSource } from '../../src/state/random.ts';
import { AUTHORITY, modes, openssl, pemCerts, readState, tempState } from './helpers.ts';

// A switch for one test: the pool is handed a CA key no worker can read, so every worker fails.
const sabotage = vi.hoisted(() => ({ on: false }));
vi.mock('../../src/state/pki/pool.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/state/pki/pool.ts')>();
  return {
    ...real,
    issueInWorkers: (jobs: Parameters<typeof real.issueInWorkers>[0], issuers: Parameters<typeof real.issueInWorkers>[1], options?: Parameters<typeof real.issueInWorkers>[2]) =>
      real.issueInWorkers(jobs, sabotage.on ? issuers.map((i) => ({ ...i, keyDer: Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00) })) : issuers, options),
  };
});

/** A deterministic RandomSource: SHA-256 of seed and counter, as many blocks as asked. */
function seeded(seed: string): RandomSource {
  let counter = 0;
  return {
    bytes(n: number): Uint8Array {
      const out = Buffer.alloc(n);
      for (let off = 0; off < n; ) off += createHash('sha256').update(`${seed}:${counter++}`).digest().copy(out, off);
      return out;
    },
  };
}

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');
const SERVICES = 100;
const ORGANIZATION = 'Acme, Inc. + "R&D" été';
const now = new Date('2026-03-01T00:00:00Z');
/** 200 leaves: a server and a client certificate per service, IPv4 and IPv6 SANs, one service with RSA keys. */
const bindings: CertBinding[] = Array.from({ length: SERVICES }, (_, i) => {
  const service = `svc${String(i).padStart(3, '0')}`;
  const dns = `${service}.mesh.local`;
  return (['server', 'client'] as const).map((kind) => ({
    service,
    kind,
    commonName: dns,
    dnsNames: [dns, service],
    ipAddresses: [`10.90.${Math.floor(i / 250)}.${(i % 250) + 2}`, ...(i % 3 === 0 ? [`FD00::${i.toString(16)}`] : [])],
    keyType: (i === 7 ? 'rsa-2048' : 'ecdsa-p256') as KeyType,
    lifetimeDays: 365,
  }));
}).flat();

/** One reconcile into a fresh state folder; random bytes from `seed`. */
async function run(over: Partial<ReconcileOptions> & { seed: string }): Promise<{ stateDir: string; root: string; result: Awaited<ReturnType<typeof reconcilePki>> }> {
  const t = tempState();
  cleanups.push(t.cleanup);
  const { seed, ...rest } = over;
  const result = await reconcilePki({ stateDir: t.stateDir, authority: { ...AUTHORITY, organization: ORGANIZATION }, bindings, now, random: seeded(seed), ...rest });
  return { stateDir: t.stateDir, root: t.root, result };
}
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((c) => c()));

/** The DER of a certificate's TBS with what depends on keys blanked: the subject key, the SKI and the AKI values. */
function tbsWithoutKeys(pem: string): string {
  const cert = AsnConvert.parse(parseCertificate(pem).x509.raw, Certificate);
  const tbs = cert.tbsCertificate;
  tbs.subjectPublicKeyInfo.subjectPublicKey = new ArrayBuffer(0);
  for (const e of tbs.extensions ?? []) {
    if (e.extnID === id_ce_subjectKeyIdentifier || e.extnID === id_ce_authorityKeyIdentifier) e.extnValue.buffer = new ArrayBuffer(0);
  }
  return Buffer.from(AsnConvert.serialize(tbs)).toString('hex');
}

const leafFiles = (): string[] => bindings.map((b) => `pki/services/${b.service}/${KIND_FILES[b.kind].cert}`);

describe('issuing on worker threads', () => {
  it('issues what the main thread issues, but for keys and signatures', async () => {
    // GIVEN the same bindings, clock and random bytes
    // WHEN one run issues in the main thread and one on two worker threads
    const serial = await run({ seed: 's', issueMode: 'serial' });
    const parallel = await run({ seed: 's', issueMode: 'parallel', workers: 2 });
    expect(liveWorkers()).toBe(0);
    // THEN the plans, inventories, file names and modes are identical
    expect(parallel.result).toEqual(serial.result);
    expect(parallel.result.certificates.every((c) => c.action === 'create')).toBe(true);
    expect(readState(parallel.stateDir, 'pki/inventory.json')).toBe(readState(serial.stateDir, 'pki/inventory.json'));
    expect([...modes(parallel.stateDir)]).toEqual([...modes(serial.stateDir)]);
    // AND every certificate has the same contents apart from the keys (serial, names, validity, extensions)
    for (const file of leafFiles()) {
      const [a, b] = [readState(serial.stateDir, file), readState(parallel.stateDir, file)];
      expect(pemCerts(b)).toHaveLength(pemCerts(a).length);
      expect(tbsWithoutKeys(b), file).toBe(tbsWithoutKeys(a));
    }
    // AND the keys differ (fresh ones), and each belongs to its certificate
    const one = bindings[1] as CertBinding;
    const keyFile = `pki/services/${one.service}/${KIND_FILES[one.kind].key}`;
    expect(readState(parallel.stateDir, keyFile)).not.toBe(readState(serial.stateDir, keyFile));
    for (const b of bindings) {
      const dir = `pki/services/${b.service}`;
      const cert = parseCertificate(readState(parallel.stateDir, `${dir}/${KIND_FILES[b.kind].cert}`));
      expect(privateKeyMatchesCertificate(readState(parallel.stateDir, `${dir}/${KIND_FILES[b.kind].key}`), cert)).toBe(true);
      expect(cert.keyType).toBe(b.keyType);
    }
  });

  it('writes certificates openssl verifies against the CA, and facts equal to what Node reads from them', async () => {
    const { stateDir, root } = await run({ seed: 'v', issueMode: 'parallel', workers: 2 });
    // THEN openssl verifies every leaf (client certificates through the client CA)
    const ca = join(stateDir, 'pki/ca.crt');
    const r = openssl(['verify', '-CAfile', ca, '-untrusted', join(stateDir, 'pki/client-ca.crt'), ...leafFiles().map((f) => join(stateDir, f))]);
    expect(r.code, r.out).toBe(0);
    expect(r.out.split('\n').filter((l) => l.endsWith(': OK'))).toHaveLength(bindings.length);
    // AND the facts cached without reading the new certificates back are what Node reads from them
    const cache = JSON.parse(readFileSync(join(stateDir, 'pki-verified.json'), 'utf8')) as { entries: Record<string, Record<string, unknown>> };
    for (const b of bindings) {
      const cert = parseCertificate(readState(stateDir, `pki/services/${b.service}/${KIND_FILES[b.kind].cert}`));
      const e = cache.entries[`${b.service}/${b.kind}`];
      expect(e, `${b.service}/${b.kind}`).toMatchObject({
        pemLength: cert.pem.length,
        serial: cert.serial,
        commonName: cert.commonName,
        organization: cert.organization,
        notBefore: cert.notBefore.getTime(),
        notAfter: cert.notAfter.getTime(),
        isCa: cert.isCa,
        dnsNames: cert.dnsNames,
        ipAddresses: cert.ipAddresses,
        keyType: cert.keyType,
      });
    }
    // AND a second run (in auto mode) keeps everything and writes nothing
    const again = await reconcilePki({ stateDir, authority: { ...AUTHORITY, organization: ORGANIZATION }, bindings, now });
    expect(again.certificates.every((c) => c.action === 'keep')).toBe(true);
    expect(again.files).toEqual([]);
    expect(root).not.toBe('');
  });

  it('draws the same serials whatever the scheduling, from the same random bytes only', async () => {
    // 80 leaves: three batches, spread differently over two and three workers
    const some = bindings.slice(0, 80);
    const two = await run({ seed: 'd', issueMode: 'parallel', workers: 2, bindings: some });
    const three = await run({ seed: 'd', issueMode: 'parallel', workers: 3, bindings: some });
    const other = await run({ seed: 'e', issueMode: 'serial', bindings: some });
    const inventory = (s: { stateDir: string }): string => readState(s.stateDir, 'pki/inventory.json');
    expect(inventory(three)).toBe(inventory(two));
    expect(three.result.certificates).toEqual(two.result.certificates);
    // A different seed: different serials (so the comparison above can fail).
    expect(inventory(other)).not.toBe(inventory(two));
    expect(liveWorkers()).toBe(0);
  });

  it('asks an injected key source for every key, in the main thread, even when parallel is asked for', async () => {
    const asked: KeyType[] = [];
    const counting: KeySource = {
      generate: (k) => {
        asked.push(k);
        return webCryptoKeySource.generate(k);
      },
    };
    const { result } = await run({ seed: 'k', issueMode: 'parallel', workers: 2, keys: counting, bindings: bindings.slice(0, 6) });
    expect(result.certificates).toHaveLength(6);
    expect(asked).toEqual(['ecdsa-p256', 'ecdsa-p256', ...bindings.slice(0, 6).map((b) => b.keyType)]);
  });

  it('fails the run when a worker fails: an error, nothing written, no worker left', async () => {
    sabotage.on = true;
    const t = tempState();
    cleanups.push(t.cleanup);
    try {
      await expect(reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now, issueMode: 'parallel', workers: 2 })).rejects.toThrow(/issuing worker failed/);
    } finally {
      sabotage.on = false;
    }
    expect(liveWorkers()).toBe(0);
    expect(existsSync(t.stateDir)).toBe(false);
  });

  it('runs its workers from the build (dist/pki-worker.mjs), and the process ends when done', () => {
    // GIVEN the built engine (the global set-up builds dist/ from these sources), run as podmesh runs it
    const t = tempState();
    cleanups.push(t.cleanup);
    const chunk = readdirSync(join(REPO, 'dist')).find((n) => /^pki-[A-Z0-9]+\.mjs$/.test(n));
    expect(chunk, 'the pki chunk of dist/').toBeDefined();
    const code = `
      const { reconcilePki } = await import(${JSON.stringify(pathToFileURL(join(REPO, 'dist', chunk as string)).href)});
      const bindings = ${JSON.stringify(bindings.slice(0, 40))};
      const r = await reconcilePki({ stateDir: ${JSON.stringify(t.stateDir)}, authority: ${JSON.stringify(AUTHORITY)}, bindings, now: new Date(${now.getTime()}), issueMode: 'parallel', workers: 2 });
      console.log(r.certificates.filter((c) => c.action === 'create').length);`;
    // WHEN (a worker left running would keep the process alive past the time limit)
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
    // THEN
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('40');
    const leaves = bindings.slice(0, 40).map((b) => join(t.stateDir, `pki/services/${b.service}/${KIND_FILES[b.kind].cert}`));
    const v = openssl(['verify', '-CAfile', join(t.stateDir, 'pki/ca.crt'), '-untrusted', join(t.stateDir, 'pki/client-ca.crt'), ...leaves]);
    expect(v.code, v.out).toBe(0);
  });

  it('rejects a job a worker cannot issue, and ends every worker', async () => {
    const spec = { profile: 'leaf', serial: '01', notBefore: now.getTime(), notAfter: now.getTime() + 86_400_000, commonName: 'a', keyType: 'dsa' as KeyType, dnsNames: ['a'], ipAddresses: [] } as const;
    const caKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    const issuer = { spec: { nameDer: Uint8Array.of(0x30, 0x00), keyId: '01', keyType: 'ecdsa-p256' as KeyType }, keyDer: new Uint8Array(caKey) };
    await expect(issueInWorkers([{ spec, issuer: 0 }], [issuer], { workers: 2 })).rejects.toThrow(/issuing worker failed/);
    expect(liveWorkers()).toBe(0);
  });
});
