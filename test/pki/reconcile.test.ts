// reconcilePki: reuse, reissue, renewal, CA protection, file modes, pruning, dry runs and validation.
import { PKCS8_LABEL } from '../../src/state/pki/keys.ts';
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { reconcilePki, type CertBinding, type CertKind, type PkiResult } from '../../src/state/pki/index.ts';
import { readPkiSnapshot } from '../../src/state/pki/store.ts';
import { AUTHORITY, binding, meshBindings, modes, readState, tempState, treeState } from './helpers.ts';

const DAY = 86_400_000;
const T0 = new Date('2026-03-01T12:00:00Z');
const at = (days: number): Date => new Date(T0.getTime() + days * DAY);

const serials = (r: PkiResult): Record<string, string> =>
  Object.fromEntries(r.certificates.map((c) => [`${c.service}/${c.kind}`, c.serial]));
const actions = (r: PkiResult): Record<string, string> =>
  Object.fromEntries(r.certificates.map((c) => [`${c.service}/${c.kind}`, c.action]));

async function expectPodmeshError(p: Promise<unknown>): Promise<PodmeshError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PodmeshError);
  return e as PodmeshError;
}

describe('reconcilePki', () => {
  let t: ReturnType<typeof tempState>;
  let pki: string;
  const bindings = meshBindings();
  const run = (over: { bindings?: readonly CertBinding[]; now?: Date; dryRun?: boolean } = {}): Promise<PkiResult> =>
    reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings: over.bindings ?? bindings, now: over.now ?? T0, dryRun: over.dryRun ?? false });

  beforeEach(() => {
    t = tempState();
    pki = join(t.stateDir, 'pki');
  });
  afterEach(() => t.cleanup());

  it('keeps every serial and writes nothing when run again unchanged', async () => {
    // GIVEN a reconciled state
    const first = await run();
    const before = treeState(t.stateDir);
    await new Promise((r) => setTimeout(r, 20)); // a rewrite would change mtimes
    // WHEN it runs again a day later with the same bindings
    const second = await run({ now: at(1) });
    // THEN nothing was decided or written
    expect(Object.values(actions(second))).toEqual(Array(bindings.length).fill('keep'));
    expect(second.cas.map((c) => c.action)).toEqual(['keep', 'keep']);
    expect(second.crl.action).toBe('keep');
    expect(second.files).toEqual([]);
    expect(serials(second)).toEqual(serials(first));
    expect(treeState(t.stateDir)).toEqual(before);
  });

  it('reissues only the certificate whose IP changed, and says why', async () => {
    // GIVEN
    const first = await run();
    // WHEN auth's server certificate gets another static IP
    const changed = bindings.map((b) => (b.service === 'auth' && b.kind === 'server' ? { ...b, ipAddresses: ['10.90.0.30'] } : b));
    const second = await run({ bindings: changed, now: at(1) });
    // THEN only that one is reissued
    const a = actions(second);
    expect(a['auth/server']).toBe('reissue');
    expect(Object.entries(a).filter(([, v]) => v !== 'keep').map(([k]) => k)).toEqual(['auth/server']);
    expect(second.certificates.find((c) => c.service === 'auth' && c.kind === 'server')?.reason).toBe('SAN IPs changed: +10.90.0.30 -10.90.0.21');
    const s1 = serials(first);
    const s2 = serials(second);
    expect(s2['auth/server']).not.toBe(s1['auth/server']);
    expect({ ...s2, 'auth/server': '' }).toEqual({ ...s1, 'auth/server': '' });
    expect(second.files.map((f) => `${f.change} ${f.path}`)).toEqual([
      'update pki/inventory.json',
      'update pki/services/auth/server.crt',
      'update pki/services/auth/server.key',
    ]);
    // AND the inventory keeps the old serial as superseded
    const inv = JSON.parse(readState(t.stateDir, 'pki/inventory.json')) as { certificates: { serial: string; status: string }[] };
    expect(inv.certificates.find((e) => e.serial === s1['auth/server'])?.status).toBe('superseded');
    expect(inv.certificates.find((e) => e.serial === s2['auth/server'])?.status).toBe('active');
  });

  it('reissues on DNS name, CN and key type changes', async () => {
    await run();
    const changed = bindings.map((b) => {
      if (b.service === 'boards' && b.kind === 'server') return { ...b, dnsNames: [...b.dnsNames, 'threads.ashchan.local'] };
      if (b.service === 'boards' && b.kind === 'client') return { ...b, keyType: 'rsa-2048' as const };
      if (b.service === 'gateway' && b.kind === 'public') return { ...b, commonName: 'www.ashchan.example' };
      return b;
    });
    const r = await run({ bindings: changed, now: at(1) });
    const reason = (k: string): string | undefined => r.certificates.find((c) => `${c.service}/${c.kind}` === k)?.reason;
    expect(reason('boards/server')).toBe('SAN DNS changed: +threads.ashchan.local');
    expect(reason('boards/client')).toBe('key type changed: ecdsa-p256 → rsa-2048');
    expect(reason('gateway/public')).toBe('CN changed: ashchan.example → www.ashchan.example');
    expect(actions(r)['auth/server']).toBe('keep');
  });

  it('renews once 70% of the lifetime has passed, not before', async () => {
    // GIVEN certificates issued at T0 (notBefore = T0 - 5 min, 365 days)
    const first = await run();
    // WHEN reconciling just before and just after 70% of 365 days
    const before = await run({ now: new Date(T0.getTime() - 5 * 60_000 + 0.7 * 365 * DAY - 60_000) });
    expect(Object.values(actions(before)).every((a) => a === 'keep')).toBe(true);
    const after = await run({ now: new Date(T0.getTime() - 5 * 60_000 + 0.7 * 365 * DAY + 1000) });
    // THEN every leaf is renewed with a new serial and the reason names the threshold
    expect(Object.values(actions(after)).every((a) => a === 'renew')).toBe(true);
    expect(after.certificates[0]?.reason).toMatch(/^70% of its lifetime passed on /);
    for (const [k, s] of Object.entries(serials(after))) expect(s).not.toBe(serials(first)[k]);
    // AND the CAs are kept
    expect(after.cas.map((c) => c.action)).toEqual(['keep', 'keep']);
  });

  it('renews expired certificates and those whose lifetime changed', async () => {
    await run();
    const expired = await run({ now: at(400) });
    expect(expired.certificates.every((c) => c.action === 'renew' && c.reason.startsWith('expired on '))).toBe(true);
    const shorter = bindings.map((b) => (b.service === 'auth' && b.kind === 'client' ? { ...b, lifetimeDays: 90 } : b));
    const r = await run({ bindings: shorter, now: at(401) });
    expect(r.certificates.find((c) => c.service === 'auth' && c.kind === 'client')?.reason).toBe('lifetime changed: 365 → 90 days');
  });

  it('refuses a corrupt CA key, names the file and the fix, and changes no file', async () => {
    // GIVEN a reconciled state whose ca.key is damaged
    await run();
    writeFileSync(join(pki, 'ca.key'), `-----BEGIN ${PKCS8_LABEL}-----\nnot a key\n-----END ${PKCS8_LABEL}-----\n`);
    const before = treeState(t.stateDir);
    // WHEN reconciling with a change that would otherwise write files
    const e = await expectPodmeshError(run({ bindings: [...bindings, binding('media', 'server')], now: at(1) }));
    // THEN
    expect(e.issues).toHaveLength(1);
    expect(e.message).toBe(
      `[${join(pki, 'ca.key')}] cannot parse the CA private key (not PEM PKCS#8). Restore it from backup, or move pki/ away to create a new CA (every certificate will be reissued).`,
    );
    expect(treeState(t.stateDir)).toEqual(before);
  });

  it('refuses a CA with one half missing and changes no file', async () => {
    await run();
    unlinkSync(join(pki, 'ca.crt'));
    const before = treeState(t.stateDir);
    const e = await expectPodmeshError(run({ now: at(1) }));
    expect(e.issues[0]?.path).toBe(join(pki, 'ca.crt'));
    expect(e.issues[0]?.message).toBe(
      'the CA certificate is missing while ca.key exists. Restore ca.crt from backup, or move pki/ away to create a new CA (every certificate will be reissued).',
    );
    expect(treeState(t.stateDir)).toEqual(before);
  });

  it('refuses a CA key that does not belong to the certificate, and a client CA from another root', async () => {
    await run();
    const other = tempState();
    try {
      await reconcilePki({ stateDir: other.stateDir, authority: AUTHORITY, bindings: [], now: T0 });
      const ownKey = readState(t.stateDir, 'pki/ca.key');
      // GIVEN ca.key replaced by another stack's root key
      writeFileSync(join(pki, 'ca.key'), readState(other.stateDir, 'pki/ca.key'));
      let before = treeState(t.stateDir);
      // WHEN / THEN
      let e = await expectPodmeshError(run({ now: at(1) }));
      expect(e.issues.map((i) => i.path)).toEqual([join(pki, 'ca.key')]);
      expect(e.issues[0]?.message).toBe(
        'does not match ca.crt (different public key). Restore both files from the same backup, or move pki/ away to create a new CA (every certificate will be reissued).',
      );
      expect(treeState(t.stateDir)).toEqual(before);
      // GIVEN the right root key, but the other stack's client CA pair
      writeFileSync(join(pki, 'ca.key'), ownKey);
      for (const f of ['client-ca.crt', 'client-ca.key']) writeFileSync(join(pki, f), readState(other.stateDir, `pki/${f}`));
      before = treeState(t.stateDir);
      // WHEN / THEN
      e = await expectPodmeshError(run({ now: at(1) }));
      expect(e.issues.map((i) => i.path)).toEqual([join(pki, 'client-ca.crt')]);
      expect(e.issues[0]?.message).toMatch(/^was not issued by the root CA in pki\/ca.crt\. .*move pki\/client-ca.crt and pki\/client-ca.key away/);
      expect(treeState(t.stateDir)).toEqual(before);
    } finally {
      other.cleanup();
    }
  });

  it('creates a missing client CA pair under the existing root and reissues only client certificates', async () => {
    const first = await run();
    for (const f of ['client-ca.crt', 'client-ca.key']) unlinkSync(join(pki, f));
    const r = await run({ now: at(1) });
    expect(r.cas.map((c) => `${c.ca}:${c.action}`)).toEqual(['root:keep', 'client-ca:create']);
    expect(r.cas[0]?.serial).toBe(first.cas[0]?.serial);
    for (const c of r.certificates) {
      if (c.kind === 'client') {
        expect(c.action).toBe('reissue');
        expect(c.reason).toBe('issuer changed: not signed by the current client CA');
      } else expect(c.action).toBe('keep');
    }
  });

  it('sets modes 0600 for keys, 0700 for folders and 0644 for the rest, whatever the umask', async () => {
    for (const umask of [0o000, 0o077]) {
      const u = tempState();
      const old = process.umask(umask);
      try {
        await reconcilePki({ stateDir: u.stateDir, authority: AUTHORITY, bindings, now: T0 });
      } finally {
        process.umask(old);
      }
      const m = modes(join(u.stateDir, 'pki'));
      u.cleanup();
      for (const [path, mode] of m) {
        const want = path.endsWith('/') ? '700' : path.endsWith('.key') ? '600' : '644';
        expect(`${path} ${mode}`).toBe(`${path} ${want}`);
      }
      expect(m.get('services/gateway/public.key')).toBe('600');
    }
  });

  it('repairs a wrong mode with chmod alone', async () => {
    await run();
    chmodSync(join(pki, 'services/auth/server.key'), 0o644);
    const r = await run({ now: at(1) });
    expect(r.files).toEqual([{ path: 'pki/services/auth/server.key', change: 'chmod' }]);
    expect(modes(pki).get('services/auth/server.key')).toBe('600');
  });

  it('removes the folder of a service no binding needs and supersedes its serials', async () => {
    const first = await run();
    const r = await run({ bindings: bindings.filter((b) => b.service !== 'boards'), now: at(1) });
    expect(r.removedServices).toEqual(['boards']);
    expect(existsSync(join(pki, 'services/boards'))).toBe(false);
    const inv = JSON.parse(readState(t.stateDir, 'pki/inventory.json')) as { certificates: { serial: string; status: string }[] };
    expect(inv.certificates.find((e) => e.serial === serials(first)['boards/server'])?.status).toBe('superseded');
    // AND a kind no longer needed loses only its files
    const r2 = await run({ bindings: bindings.filter((b) => b.service !== 'boards' && !(b.service === 'gateway' && b.kind === 'public')), now: at(2) });
    expect(r2.files.map((f) => `${f.change} ${f.path}`)).toEqual([
      'update pki/inventory.json',
      'remove pki/services/gateway/public.crt',
      'remove pki/services/gateway/public.key',
    ]);
  });

  it('reads the same snapshot whether it lists each service folder or is told the kinds its bindings ask for, and prunes a stray managed file', async () => {
    await run();
    const service = (name: string, file: string) => join(pki, 'services', name, file);
    // A stray public pair where no binding asks for one, a key gone, a folder and a link where files belong.
    writeFileSync(service('auth', 'public.crt'), 'stray');
    writeFileSync(service('auth', 'public.key'), 'stray');
    unlinkSync(service('boards', 'server.key'));
    rmSync(service('boards', 'client.crt'));
    mkdirSync(service('boards', 'client.crt'));
    rmSync(service('gateway', 'ca.crt'));
    symlinkSync(join(pki, 'ca.crt'), service('gateway', 'ca.crt'));
    const kinds = new Map<string, Set<CertKind>>();
    for (const b of bindings) kinds.set(b.service, (kinds.get(b.service) ?? new Set()).add(b.kind));
    const listed = await readPkiSnapshot(t.stateDir);
    const told = await readPkiSnapshot(t.stateDir, { kinds });
    expect([...told.files]).toEqual([...listed.files]);
    expect([...told.dirs]).toEqual([...listed.dirs]);
    expect(told.services).toEqual(listed.services);
    expect(listed.files.get('pki/services/auth/public.crt')?.text).toBe('stray');
    expect(listed.files.get('pki/services/boards/client.crt')?.error).toBe('EISDIR');
    expect(listed.files.get('pki/services/gateway/ca.crt')?.error).toBe('a symbolic link');
    expect(listed.files.has('pki/services/boards/server.key')).toBe(false);
    // Reconcile sees them all: the stray pair goes, the rest is repaired.
    rmSync(service('boards', 'client.crt'), { recursive: true });
    rmSync(service('gateway', 'ca.crt'));
    const r = await run({ now: at(1) });
    expect(r.files.filter((f) => f.path.startsWith('pki/services/auth/')).map((f) => `${f.change} ${f.path}`)).toEqual(['remove pki/services/auth/public.crt', 'remove pki/services/auth/public.key']);
    expect(existsSync(service('auth', 'public.crt'))).toBe(false);
    expect(actions(r)['boards/server']).toBe('reissue');
  });

  it('reissues a leaf whose key file is damaged instead of failing', async () => {
    await run();
    // GIVEN one key damaged and another swapped with a different service's key
    writeFileSync(join(pki, 'services/auth/client.key'), 'garbage');
    writeFileSync(join(pki, 'services/auth/server.key'), readState(t.stateDir, 'pki/services/boards/server.key'));
    // WHEN
    const r = await run({ now: at(1) });
    // THEN both are reissued with the reason, the rest kept
    const got = r.certificates.filter((c) => c.action !== 'keep').map((c) => `${c.service}/${c.kind}: ${c.action}: ${c.reason}`);
    expect(got).toEqual(['auth/client: reissue: client.key cannot be parsed', 'auth/server: reissue: server.key does not match server.crt']);
  });

  it('keeps a cache of verified facts (0600, outside pki/) that only files with unchanged hashes use', async () => {
    // GIVEN a reconciled state with its cache
    const first = await run();
    const cache = join(t.stateDir, 'pki-verified.json');
    expect(modes(t.stateDir).get('pki-verified.json')).toBe('600');
    // WHEN a certificate is swapped for another valid one of the same CA, and a key for another service's
    writeFileSync(join(pki, 'services/auth/server.crt'), readState(t.stateDir, 'pki/services/boards/server.crt'));
    writeFileSync(join(pki, 'services/boards/client.key'), readState(t.stateDir, 'pki/services/auth/client.key'));
    const r = await run({ now: at(1) });
    // THEN both are read in full again and reissued; the rest kept
    const got = r.certificates.filter((c) => c.action !== 'keep').map((c) => `${c.service}/${c.kind}: ${c.action}: ${c.reason.split(';')[0]}`);
    expect(got).toEqual(['auth/server: reissue: server.key does not match server.crt', 'boards/client: reissue: client.key does not match client.crt']);
    // AND a damaged cache is only a slower run: same decisions, and it is rewritten
    writeFileSync(cache, '{not json');
    const again = await run({ now: at(2) });
    expect(Object.values(actions(again))).toEqual(Array(bindings.length).fill('keep'));
    expect(readState(t.stateDir, 'pki-verified.json')).toMatch(/^\{"version":1,/);
    rmSync(cache);
    const third = await run({ now: at(3) });
    expect(serials(third)).toEqual(serials(again));
    expect(Object.keys(serials(first))).toEqual(Object.keys(serials(third)));
  });

  it('plans without writing in a dry run', async () => {
    await run();
    const before = treeState(t.stateDir);
    const changed = bindings.map((b) => (b.service === 'auth' && b.kind === 'server' ? { ...b, ipAddresses: ['10.90.0.30'] } : b));
    const r = await run({ bindings: changed, now: at(1), dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(r.certificates.find((c) => c.service === 'auth' && c.kind === 'server')).toMatchObject({ action: 'reissue', serial: '' });
    expect(r.files.map((f) => f.path)).toEqual(['pki/inventory.json', 'pki/services/auth/server.crt', 'pki/services/auth/server.key']);
    expect(treeState(t.stateDir)).toEqual(before);
    // AND on an empty state it plans the CAs without creating anything
    rmSync(t.stateDir, { recursive: true });
    const fresh = await run({ dryRun: true });
    expect(fresh.cas.map((c) => `${c.ca}:${c.action}:${c.serial}`)).toEqual(['root:create:', 'client-ca:create:']);
    expect(existsSync(t.stateDir)).toBe(false);
  });

  it('reports every invalid binding together and writes nothing', async () => {
    const bad = [
      binding('auth', 'server', { ipAddresses: ['10.90.0.300'] }),
      binding('auth', 'server'),
      binding('../etc', 'client'),
      binding('boards', 'client', { lifetimeDays: 0, keyType: 'ed25519' as never }),
    ];
    const e = await expectPodmeshError(run({ bindings: bad }));
    expect(e.message.split('\n')).toEqual([
      `[ashchan-dev/auth] server certificate: ipAddresses entry "10.90.0.300" is not an IPv4 or IPv6 address. Use the service's static IP, e.g. '10.90.0.21', without a prefix length.`,
      `[ashchan-dev/auth] server certificate: bound twice. Keep one server certificate per service.`,
      `[ashchan-dev] service name "../etc" cannot be a folder under pki/services/. Use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit.`,
      `[ashchan-dev/boards] client certificate: keyType "ed25519" is not supported. Use 'ecdsa-p256' or 'rsa-2048'.`,
      `[ashchan-dev/boards] client certificate: lifetimeDays 0 is not a whole number of days from 1 to 36500. The seed uses 365 for services and 3650 for the root.`,
    ]);
    expect(existsSync(t.stateDir)).toBe(false);
  });

  it('warns, and keeps the CA, when the stack asks for another CA name', async () => {
    await run();
    const r = await reconcilePki({ stateDir: t.stateDir, authority: { ...AUTHORITY, rootCommonName: 'other-ca' }, bindings, now: at(1) });
    expect(r.cas[0]?.action).toBe('keep');
    expect(r.warnings).toEqual([
      'pki/ca.crt: kept the existing CA "CN=ashchan-ca"; the stack asks for "CN=other-ca". An existing CA is never replaced: move pki/ away to create a new CA (every certificate will be reissued).',
    ]);
    expect(r.files).toEqual([]);
  });

  it('records every serial in a sorted inventory and leaves no temp files', async () => {
    await run();
    await run({ now: at(300) });
    const inv = JSON.parse(readState(t.stateDir, 'pki/inventory.json')) as {
      certificates: { service: string; kind: string; notBefore: string; status: string }[];
    };
    expect(inv.certificates).toHaveLength(2 * bindings.length);
    const keys = inv.certificates.map((e) => `${e.service}/${e.kind}/${e.notBefore}`);
    expect(keys).toEqual([...keys].sort());
    expect(inv.certificates.filter((e) => e.status === 'active')).toHaveLength(bindings.length);
    expect([...treeState(t.stateDir).keys()].filter((p) => p.includes('.tmp') || p.includes('.removed'))).toEqual([]);
  });
});
