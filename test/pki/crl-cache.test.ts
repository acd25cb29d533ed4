// The CRLs' facts in pki-verified.json (src/state/pki/verified.ts, VerifiedCrl): a run with nothing
// to change neither parses nor verifies crl.pem (nor reads the CAs with @peculiar/x509), and every
// decision is the one the full reading makes: a CRL that changed, a CA that changed, a CRL not in
// the engine's own form, a damaged cache.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as crl from '../../src/state/pki/crl.ts';
import { clockHorizon } from '../../src/state/pki/horizon.ts';
import { reconcilePki, type PkiResult } from '../../src/state/pki/index.ts';
import { AUTHORITY, meshBindings, readState, tempState, treeState } from './helpers.ts';

vi.mock('../../src/state/pki/crl.ts', async (original) => {
  const m = await original<typeof import('../../src/state/pki/crl.ts')>();
  return { ...m, parseCrl: vi.fn(m.parseCrl), isCrlSignedBy: vi.fn(m.isCrlSignedBy) };
});

const DAY = 86_400_000;
const T0 = new Date('2026-03-01T12:00:00Z');
const at = (days: number): Date => new Date(T0.getTime() + days * DAY);

describe('the CRLs\' cached facts', () => {
  let t: ReturnType<typeof tempState>;
  const bindings = meshBindings();
  const run = (now: Date = T0): Promise<PkiResult> => reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now });
  const cacheFile = () => join(t.stateDir, 'pki-verified.json');
  const crlFacts = () => (JSON.parse(readFileSync(cacheFile(), 'utf8')) as { crls?: Record<string, { serials: string[]; number: number }> }).crls ?? {};
  const calls = () => vi.mocked(crl.parseCrl).mock.calls.length + vi.mocked(crl.isCrlSignedBy).mock.calls.length;

  beforeEach(() => {
    t = tempState();
    vi.mocked(crl.parseCrl).mockClear();
    vi.mocked(crl.isCrlSignedBy).mockClear();
  });
  afterEach(() => t.cleanup());

  it('a run with nothing to change reads no CRL and writes nothing; the CRL is still re-signed at half its validity', async () => {
    // GIVEN a first run: both CRLs signed, their facts cached
    await run();
    expect(Object.keys(crlFacts())).toHaveLength(2);
    const before = treeState(t.stateDir);
    await new Promise((r) => setTimeout(r, 20));
    // WHEN it runs again unchanged
    const n = calls();
    const again = await run(at(1));
    // THEN neither CRL was parsed or verified, nothing written, the CRL kept
    expect(calls()).toBe(n);
    expect(again.crl.action).toBe('keep');
    expect(treeState(t.stateDir)).toEqual(before);
    // AND past half its 30 days, the cached dates decide as the parsed ones would: re-signed
    const later = await run(at(16));
    expect(later.crl.action).toBe('resign');
    expect(later.crl.reason).toContain('past half its validity');
  });

  it('a CRL whose text changed, or a cache entry for another CA, is read and verified in full', async () => {
    await run();
    const crlPath = join(t.stateDir, 'pki/crl.pem');
    const [rootCrl, clientCrl] = crl.splitCrlPem(readState(t.stateDir, 'pki/crl.pem'));
    // WHEN the client CA's CRL is replaced by the root's (valid PEM, wrong issuer)
    writeFileSync(crlPath, `${rootCrl}${rootCrl}`);
    const n = vi.mocked(crl.isCrlSignedBy).mock.calls.length;
    const r = await run(at(1));
    // THEN it was verified the long way and re-signed, as without a cache
    expect(vi.mocked(crl.isCrlSignedBy).mock.calls.length).toBeGreaterThan(n);
    expect(r.crl.action).toBe('resign');
    expect(r.crl.reason).toContain('client CA CRL: not signed by the current client CA');
    expect(crl.splitCrlPem(readState(t.stateDir, 'pki/crl.pem'))[1]).not.toBe(clientCrl);
    // AND a cache entry that names another CA for the same text makes it verify in full again
    const doc = JSON.parse(readFileSync(cacheFile(), 'utf8')) as { crls: Record<string, { issuer: string }> };
    for (const c of Object.values(doc.crls)) c.issuer = '0'.repeat(64);
    writeFileSync(cacheFile(), JSON.stringify(doc));
    const m = vi.mocked(crl.isCrlSignedBy).mock.calls.length;
    const kept = await run(at(2));
    expect(vi.mocked(crl.isCrlSignedBy).mock.calls.length).toBe(m + 2);
    expect(kept.crl.action).toBe('keep');
    // and the facts are cached again for the CA that signed them
    const n2 = calls();
    await run(at(3));
    expect(calls()).toBe(n2);
  });

  it('a CRL not in the engine\'s own form is read, kept and written back in it; a damaged cache is only a slower run', async () => {
    await run();
    const crlPath = join(t.stateDir, 'pki/crl.pem');
    // WHEN crl.pem is rewritten with CRLF line ends (the same CRLs)
    writeFileSync(crlPath, readState(t.stateDir, 'pki/crl.pem').replaceAll('\n', '\r\n'));
    const lf = readState(t.stateDir, 'pki/crl.pem').replaceAll('\r\n', '\n');
    let n = vi.mocked(crl.parseCrl).mock.calls.length;
    const first = await run(at(1));
    // THEN both CRLs were read (their text is not the one cached), kept, and written back in the
    // engine's form, whose facts are cached: the next run reads nothing
    expect(vi.mocked(crl.parseCrl).mock.calls.length).toBe(n + 2);
    expect(first.crl.action).toBe('keep');
    expect(readState(t.stateDir, 'pki/crl.pem')).toBe(lf);
    expect(Object.keys(crlFacts())).toHaveLength(2);
    n = vi.mocked(crl.parseCrl).mock.calls.length;
    await run(at(2));
    expect(vi.mocked(crl.parseCrl).mock.calls.length).toBe(n);
    // WHEN the cache's CRL part is damaged
    const doc = JSON.parse(readFileSync(cacheFile(), 'utf8')) as { crls: Record<string, unknown> };
    for (const k of Object.keys(doc.crls)) doc.crls[k] = { issuer: 7 };
    writeFileSync(cacheFile(), JSON.stringify(doc));
    const r = await run(at(4));
    // THEN the CRLs are read and verified, kept, and the cache rewritten whole
    expect(r.crl.action).toBe('keep');
    expect(Object.values(crlFacts()).every((c) => Array.isArray(c.serials) && typeof c.number === 'number')).toBe(true);
    expect(Object.keys(crlFacts())).toHaveLength(2);
  });

  it('the fast path\'s clock horizon takes the CRLs\' dates from the cache: the same horizon, no CRL parsed', async () => {
    await run();
    const n = vi.mocked(crl.parseCrl).mock.calls.length;
    const cached = clockHorizon(t.stateDir, at(1).getTime());
    expect(vi.mocked(crl.parseCrl).mock.calls.length).toBe(n);
    // The CRLs' half-way point (15 days) comes before any certificate's renewal.
    expect(cached).toBe(T0.getTime() + 15 * DAY - (T0.getTime() % 1000));
    const doc = JSON.parse(readFileSync(cacheFile(), 'utf8')) as { crls?: unknown };
    delete doc.crls;
    writeFileSync(cacheFile(), JSON.stringify(doc));
    expect(clockHorizon(t.stateDir, at(1).getTime())).toBe(cached);
    expect(vi.mocked(crl.parseCrl).mock.calls.length).toBe(n + 2);
  });
});
