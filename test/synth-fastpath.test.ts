// Synth's no-change fast path (src/synth/fastpath.ts): a synth after a synth takes it and writes
// nothing; anything that could change the outcome (the stack, a file of out/ or of the state
// folder, the clock, the engine, the folders, the cache itself) sends the run down the slow path,
// whose outcome is then exactly that of a synth without the cache on a copy of the same folders.
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, renameSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { App, Host, Network, Postgres, Service, Stack } from 'podmesh';
import { describeSynth } from '../src/cli/describe.ts';
import type { Io } from '../src/cli/command.ts';
import { runCli } from '../src/cli/run.ts';
import { canonicalText, checkSynth, checkPlan, planSynth, synth, type FastPathOptions, type SynthResult } from '../src/synth.ts';
import { checkStamps, takeStamps, writtenStamps } from '../src/synth/fastpath.ts';
import { planState } from '../src/synth/plan.ts';
import { resolveWithLock } from '../src/synth/select.ts';
import { stateContext } from '../src/state/reconciler.ts';
import type { Issue } from '../constructs/core/errors.ts';
import { canonicalDigest } from '../src/synth/canonical.ts';
import { createHash } from 'node:crypto';
import * as horizon from '../src/state/pki/horizon.ts';
import { podmeshProject, tempDir } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';
import { repoRoot } from './helpers/tools.ts';

// clockHorizon counted: a record that takes the previous entry's horizon does not read the PKI folder.
vi.mock('../src/state/pki/horizon.ts', async (original) => {
  const m = await original<typeof import('../src/state/pki/horizon.ts')>();
  return { ...m, clockHorizon: vi.fn(m.clockHorizon) };
});

/** Two stacks: one host with a database (certificates, secrets), and two hosts joined by WireGuard. */
function makeApp(variant: { webImage?: string } = {}): App {
  const app = new App();
  const one = new Stack(app, 'one', { project: 'one' });
  new Host(one, 'local');
  const net = new Network(one, 'mesh', { subnet: '10.91.0.0/24', domain: 'one.local' });
  const db = new Postgres(one, 'db', { network: net });
  const api = new Service(one, 'api', { image: 'localhost/api:1', network: net, dependsOn: [db], ports: { http: 9000 } });
  new Service(one, 'web', { image: variant.webImage ?? 'localhost/web:1', network: net, dependsOn: [api], calls: [api], ports: { public: { port: 8080, publish: true } } });
  const two = new Stack(app, 'two', { project: 'two', wireguard: { presharedKeys: true } });
  const hosts = [0, 1].map((i) => new Host(two, `h${i}`, { endpoint: `198.51.100.${i + 1}:51820` }));
  const mesh = new Network(two, 'mesh', { subnet: '10.65.0.0/16', domain: 'two.local', bridgeName: 'two0' });
  const first = new Service(two, 'first', { host: hosts[0], network: mesh, image: 'localhost/first:1' });
  new Service(two, 'second', { host: hosts[1], network: mesh, image: 'localhost/second:1', dependsOn: [first], calls: [first] });
  return app;
}

const tmp = tempDir('podmesh-fastpath-');
afterAll(() => tmp.cleanup());
let n = 0;

/** A project folder (out/ and state/ inside, used relative to it) and its own cache folder. */
function project(): string {
  const dir = join(tmp.path, `p${n++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Runs `f` with `dir` as the working directory (the folders are given relative, as the CLI gives them). */
async function inDir<T>(dir: string, f: () => Promise<T>): Promise<T> {
  const before = process.cwd();
  process.chdir(dir);
  try {
    return await f();
  } finally {
    process.chdir(before);
  }
}

/** A synth of `dir` with the cache (in `dir`/../cache-<name> unless given); which path it took. */
async function cachedSynth(dir: string, o: { app?: App; cache?: Partial<FastPathOptions>; check?: boolean } = {}): Promise<{ result: SynthResult; fast: boolean | undefined; reason: string; kept: readonly string[] }> {
  const decisions: { fast: boolean; reason: string }[] = [];
  let kept: readonly string[] = [];
  const cache = { dir: `${dir}.cache`, onDecision: (d: { fast: boolean; reason: string }) => decisions.push(d), onKeptState: (k: readonly string[]) => (kept = k), ...o.cache };
  const result = await inDir(dir, () => synth(o.app ?? makeApp(), { outDir: 'out', stateDir: 'state', cache, ...(o.check ? { check: true } : {}) }));
  expect(decisions.length).toBeLessThanOrEqual(1);
  return { result, fast: decisions[0]?.fast, reason: decisions[0]?.reason ?? '', kept };
}

/** A synth of `dir` without the cache. */
const plainSynth = (dir: string, app: App = makeApp()) => inDir(dir, () => synth(app, { outDir: 'out', stateDir: 'state' }));

/** What a person sees of a synth. */
const text = (r: SynthResult) => describeSynth(r, { out: 'out', state: 'state', check: false });

/** Every file below `dir` by content and mode (not time): what two runs on copies must agree on. */
function contentOf(dir: string): Record<string, string> {
  return Object.fromEntries(Object.entries(treeState(dir)).map(([k, v]) => [k, v.split(' ').slice(0, 2).join(' ')]));
}

/**
 * Synthesizes `dir` until the fast path serves: the first synth writes out/ and the state folder
 * and records every stack (planning the state again and resolving with the new lock first); the
 * second is fast.
 */
async function settle(dir: string, o: { cache?: Partial<FastPathOptions> } = {}): Promise<void> {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const r = await cachedSynth(dir, o);
    runs.push(r.reason);
    if (r.fast) break;
  }
  expect(runs).toEqual(['one: no cache entry', 'nothing changed']);
}

/** A project that has been synthesized (and recorded), and a copy of it for the slow path to run on. */
async function recordedPair(): Promise<{ a: string; b: string }> {
  const a = project();
  await settle(a);
  const b = project();
  cpSync(join(a, 'out'), join(b, 'out'), { recursive: true, preserveTimestamps: true });
  cpSync(join(a, 'state'), join(b, 'state'), { recursive: true, preserveTimestamps: true });
  return { a, b };
}

/** `mutate` applied to both copies; the cached run must take the slow path and agree with the plain one. */
async function expectSlowAndSame(mutate: (dir: string) => void, o: { app?: () => App; reason?: RegExp; sameResult?: boolean } = {}): Promise<void> {
  const { a, b } = await recordedPair();
  mutate(a);
  mutate(b);
  const cached = await cachedSynth(a, { ...(o.app ? { app: o.app() } : {}) });
  const plain = await plainSynth(b, o.app?.());
  expect(cached.fast).toBe(false);
  if (o.reason) expect(cached.reason).toMatch(o.reason);
  expect(text(cached.result)).toBe(text(plain));
  if (o.sameResult !== false) expect(cached.result).toEqual(plain);
  expect(contentOf(join(a, 'out'))).toEqual(contentOf(join(b, 'out')));
  expect(Object.keys(treeState(join(a, 'state'))).sort()).toEqual(Object.keys(treeState(join(b, 'state'))).sort());
  // Recorded again: the next run is fast, and says what a plain run says.
  const again = await cachedSynth(a, { ...(o.app ? { app: o.app() } : {}) });
  expect(again.reason).toBe('nothing changed');
  const plainAgain = await plainSynth(b, o.app?.());
  // (Certificates issued again differ in serials and keys between the copies.)
  if (o.sameResult !== false) expect(again.result).toEqual(plainAgain);
  expect(text(again.result)).toBe(text(plainAgain));
}

/** Rewrites one byte of a file keeping its size and its mtime (to the nanosecond: touch -r). */
function sameSizeEdit(path: string): void {
  const st = statSync(path, { bigint: true });
  // The reference outside the folder, whose own stat must not change.
  const ref = join(tmp.path, 'mtime.ref');
  execFileSync('touch', ['-r', path, ref]);
  const data = readFileSync(path);
  data[0] = data[0] === 0x23 ? 0x24 : 0x23;
  writeFileSync(path, data);
  execFileSync('touch', ['-r', ref, path]);
  rmSync(ref);
  const after = statSync(path, { bigint: true });
  expect([after.mtimeNs, after.size]).toEqual([st.mtimeNs, st.size]);
}

const someFile = (dir: string, under: string, match: RegExp): string => {
  const found = Object.keys(treeState(join(dir, under))).filter((p) => match.test(p)).sort();
  expect(found.length).toBeGreaterThan(0);
  return join(dir, under, found[0]!);
};

describe('synth fast path', () => {
  afterEach(() => vi.useRealTimers());

  it('takes the fast path after a synth, writes nothing, and gives the slow path\'s result and report', async () => {
    const dir = project();
    await settle(dir);
    const out = treeState(join(dir, 'out'));
    const state = treeState(join(dir, 'state'));
    const fast = await cachedSynth(dir);
    expect(fast.reason).toBe('nothing changed');
    expect(fast.fast).toBe(true);
    expect(treeState(join(dir, 'out'))).toEqual(out);
    expect(treeState(join(dir, 'state'))).toEqual(state);
    const slow = await plainSynth(dir);
    expect(fast.result).toEqual(slow);
    expect(text(fast.result)).toBe(text(slow));
    expect(fast.result.changed).toBe(false);
    // --check: the same answer as a fresh plan's check.
    const decisions: boolean[] = [];
    const checked = await inDir(dir, () => checkSynth(makeApp(), { outDir: 'out', stateDir: 'state', cache: { dir: `${dir}.cache`, onDecision: (d) => decisions.push(d.fast) } }));
    expect(decisions).toEqual([true]);
    expect(checked).toEqual(await inDir(dir, async () => checkPlan(await planSynth(makeApp(), { outDir: 'out', stateDir: 'state' }))));
    expect(treeState(join(dir, 'out'))).toEqual(out);
    expect(treeState(join(dir, 'state'))).toEqual(state);
  });

  it('resolves nothing once an entry knows its constructs\' print; a stack whose constructs cannot stand for its model is still fast by its model', async () => {
    const dir = project();
    const by = async (app?: App) => {
      const seen: unknown[] = [];
      await inDir(dir, () => synth(app ?? makeApp(), { outDir: 'out', stateDir: 'state', cache: { dir: `${dir}.cache`, onDecision: (d) => seen.push(d.by ?? d.reason) } }));
      return seen[0];
    };
    // The first synth wrote a new lock: the next resolves (with it) and learns the constructs' print.
    expect(await by()).toBe('one: no cache entry');
    expect(await by()).toBe('model');
    expect(await by()).toBe('constructs');
    expect(await by()).toBe('constructs');
    const out = treeState(join(dir, 'out'));
    // A prop that changes the model: slow, then (the lock kept) the constructs vouch at once.
    expect(await by(makeApp({ webImage: 'localhost/web:2' }))).toBe('one: the stack or its folders changed');
    expect(await by(makeApp({ webImage: 'localhost/web:2' }))).toBe('constructs');
    expect(treeState(join(dir, 'out'))).not.toEqual(out);
    // A service class with a method of its own: every run resolves, and the model vouches.
    class Custom extends Service {
      override certificateKinds() {
        return super.certificateKinds();
      }
    }
    const custom = () => {
      const app = makeApp({ webImage: 'localhost/web:2' });
      const two = app.node.findChild('two') as Stack;
      new Custom(two, 'third', { host: two.node.findChild('h1') as Host, network: two.node.findChild('mesh') as Network, image: 'localhost/third:1' });
      return app;
    };
    expect(await by(custom())).toBe('two: the stack or its folders changed');
    expect(await by(custom())).toBe('model');
    expect(await by(custom())).toBe('model');
  });

  it('a changed prop in a stack takes the slow path', async () => {
    await expectSlowAndSame(() => {}, { app: () => makeApp({ webImage: 'localhost/web:2' }), reason: /one: the stack or its folders changed/ });
  });

  it('a file of out/ edited in place (same size, same mtime) takes the slow path', async () => {
    await expectSlowAndSame((d) => sameSizeEdit(someFile(d, 'out/one', /compose/)), { reason: /changed \((content|stat)\)/ });
  });

  it('a racy file (timestamps not safely old) is checked by content even when its stat is as recorded', async () => {
    const { a, b } = await recordedPair();
    const file = someFile(a, 'out/one', /compose/);
    const rel = file.slice(join(a, 'out/one/').length);
    // An mtime in the future keeps the file racy for as long as this test runs.
    const future = new Date(Date.now() + 3_600_000);
    for (const d of [a, b]) utimesSync(file.replace(a, d), future, future);
    expect((await cachedSynth(a)).fast).toBe(false);
    expect(await plainSynth(b)).toEqual((await cachedSynth(a)).result);
    sameSizeEdit(file);
    sameSizeEdit(file.replace(a, b));
    // As if the edit had come within the same clock tick as the stamp: the entry's stat made to match.
    const st = statSync(file);
    let patched = 0;
    for (const f of readdirSync(`${a}.cache`)) {
      // An entry's file: its head, then the stamps of out/<stack> and of the state folder and the report, a line each.
      const [head, outLine, stateLine, reportLine] = readFileSync(join(`${a}.cache`, f), 'utf8').split('\n');
      const entry = { ...(JSON.parse(head!) as { stack: string }), out: JSON.parse(outLine!) as [string, string, number, number, number, number, number, string?][] };
      if (entry.stack !== 'one') continue;
      for (const stamp of entry.out) {
        if (stamp[0] !== rel) continue;
        expect(stamp[7]).toMatch(/^[0-9a-f]{64}$/);
        stamp.splice(2, 5, st.size, st.mtimeMs, st.ctimeMs, st.ino, st.mode);
        patched++;
      }
      writeFileSync(join(`${a}.cache`, f), `${head}\n${JSON.stringify(entry.out)}\n${stateLine}\n${reportLine}\n`);
    }
    expect(patched).toBe(1);
    const cached = await cachedSynth(a);
    expect(cached.fast).toBe(false);
    expect(cached.reason).toMatch(/changed \(content\)/);
    expect(cached.result).toEqual(await plainSynth(b));
  });

  it('a file of out/ edited (same size, same mtime) after its stamp settled takes the slow path: ctime', async () => {
    const { a, b } = await recordedPair();
    await new Promise((r) => setTimeout(r, 2100));
    // Settled: this fast run drops the content hashes, so only the stat guards the files now.
    expect((await cachedSynth(a)).fast).toBe(true);
    const file = someFile(a, 'out/one', /compose/);
    sameSizeEdit(file);
    sameSizeEdit(file.replace(a, b));
    const cached = await cachedSynth(a);
    expect(cached.fast).toBe(false);
    expect(cached.reason).toMatch(/changed \(stat\)/);
    expect(cached.result).toEqual(await plainSynth(b));
    expect(cached.result.reports.find((r) => r.stack === 'one')!.modified).toHaveLength(1);
  });

  it('a removed file of out/ takes the slow path', async () => {
    await expectSlowAndSame((d) => rmSync(someFile(d, 'out/two', /wg0\.conf$/)), { reason: /an entry was removed|: changed \(stat\)/ });
  });

  it('an added file in out/<stack> takes the slow path (and is removed)', async () => {
    await expectSlowAndSame((d) => writeFileSync(join(d, 'out/one/stray.txt'), 'x\n'), { reason: /an entry was added|: changed \(stat\)/ });
  });

  it('a changed state file takes the slow path', async () => {
    await expectSlowAndSame((d) => chmodSync(join(d, 'state/one/secrets'), 0o755), { reason: /state\/one.*changed \(stat\)/ });
    await expectSlowAndSame((d) => sameSizeEdit(someFile(d, 'state/one/secrets', /password$/)), { reason: /state\/one\/secrets/ });
  });

  it('a removed state file takes the slow path (the certificate is issued again)', async () => {
    await expectSlowAndSame((d) => rmSync(someFile(d, 'state/one/pki/services', /server\.crt$/)), { reason: /an entry was removed|: changed \(stat\)/, sameResult: false });
  });

  it('a clock past a renewal threshold takes the slow path', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now());
    const { a, b } = await recordedPair();
    // 70% of a 365-day leaf is 255.5 days.
    vi.setSystemTime(Date.now() + 260 * 86_400_000);
    const cached = await cachedSynth(a);
    const plain = await plainSynth(b);
    expect(cached.fast).toBe(false);
    expect(cached.reason).toMatch(/clock/);
    expect(text(cached.result)).toBe(text(plain));
    expect(text(plain)).toMatch(/renewed/);
    expect((await cachedSynth(a)).reason).toBe('nothing changed');
  });

  it('an injected clock, key source, random source, state-only run or rotation never takes the fast path', async () => {
    const { a } = await recordedPair();
    const decisions: unknown[] = [];
    const cache = { dir: `${a}.cache`, onDecision: (d: unknown) => decisions.push(d) };
    const base = { outDir: 'out', stateDir: 'state', cache };
    await inDir(a, async () => {
      await synth(makeApp(), { ...base, now: new Date() });
      await synth(makeApp(), { ...base, random: { bytes: (size: number) => new Uint8Array(size).fill(7) } });
      await synth(makeApp(), { ...base, stateOnly: true });
      await synth(makeApp(), { ...base, rotateSecrets: { one: ['api'] } });
    });
    expect(decisions).toEqual([]);
  });

  it('another engine identity takes the slow path', async () => {
    const dir = project();
    await settle(dir, { cache: { engine: 'engine-a' } });
    const other = await cachedSynth(dir, { cache: { engine: 'engine-b' } });
    expect(other.fast).toBe(false);
    expect(other.reason).toMatch(/another engine/);
    expect(other.result).toEqual(await plainSynth(dir));
  });

  it('other folders, or the same folders named differently, take the slow path', async () => {
    const { a } = await recordedPair();
    const moved = project();
    cpSync(join(a, 'out'), join(moved, 'out'), { recursive: true, preserveTimestamps: true });
    cpSync(join(a, 'state'), join(moved, 'state'), { recursive: true, preserveTimestamps: true });
    const there = await cachedSynth(moved, { cache: { dir: `${a}.cache` } });
    expect(there.fast).toBe(false);
    expect(there.reason).toMatch(/no cache entry/);
    const decisions: { fast: boolean; reason: string }[] = [];
    await inDir(a, () => synth(makeApp(), { outDir: './out', stateDir: 'state', cache: { dir: `${a}.cache`, onDecision: (d) => decisions.push(d) } }));
    expect(decisions[0]).toEqual({ fast: false, reason: 'one: the stack or its folders changed' });
  });

  it('an entry for folders whose names are not ASCII is written as ASCII and read back; a file that is not ASCII is no entry', async () => {
    const dir = join(project(), 'prøject ☃');
    mkdirSync(dir);
    await settle(dir);
    const files = readdirSync(`${dir}.cache`).map((f) => join(`${dir}.cache`, f));
    for (const f of files) {
      const bytes = readFileSync(f);
      expect(bytes.every((b) => b < 0x80)).toBe(true);
      expect(bytes.toString('latin1')).toContain('pr\\u00f8ject \\u2603');
      expect((JSON.parse(bytes.toString('latin1').split('\n')[0]!) as { outDir: string }).outDir).toBe(join(dir, 'out'));
    }
    // The same entry with a character written as UTF-8 instead of its escape: not read, the slow path.
    for (const f of files) writeFileSync(f, readFileSync(f, 'latin1').replace('pr\\u00f8ject', 'prøject'));
    expect((await cachedSynth(dir)).reason).toBe('one: no cache entry');
    expect((await cachedSynth(dir)).fast).toBe(true);
  });

  it('a corrupt or missing cache takes the slow path, silently', async () => {
    const { a, b } = await recordedPair();
    for (const f of readdirSync(`${a}.cache`)) writeFileSync(join(`${a}.cache`, f), '{"format": 1, "out": [');
    const corrupt = await cachedSynth(a);
    expect(corrupt.fast).toBe(false);
    expect(corrupt.result).toEqual(await plainSynth(b));
    // Recorded again by the slow run (the lock did not change this time).
    expect((await cachedSynth(a)).fast).toBe(true);
    rmSync(`${a}.cache`, { recursive: true });
    expect((await cachedSynth(a)).fast).toBe(false);
    expect((await cachedSynth(a)).fast).toBe(true);
  });

  it('a pruned stack\'s folder in out/ takes the slow path', async () => {
    const { a, b } = await recordedPair();
    const onlyOne = () => {
      const app = makeApp();
      return app;
    };
    for (const d of [a, b]) cpSync(join(d, 'out/two'), join(d, 'out/three'), { recursive: true });
    const cached = await cachedSynth(a, { app: onlyOne() });
    expect(cached.fast).toBe(false);
    expect(cached.reason).toMatch(/prune/);
    expect(cached.result).toEqual(await plainSynth(b, onlyOne()));
    expect(existsSync(join(a, 'out/three'))).toBe(false);
  });

  it('an out/ moved aside takes the slow path (told before the model is fingerprinted), does not plan the state again, and is recorded again', async () => {
    const { a, b } = await recordedPair();
    for (const d of [a, b]) renameSync(join(d, 'out'), join(d, 'out-aside'));
    const state = treeState(join(a, 'state'));
    const cached = await cachedSynth(a);
    expect(cached.fast).toBe(false);
    expect(cached.reason).toBe(`${join(a, 'out/one')}: an entry was removed`);
    // Stack one's state folder is as its entry stamped it, for the same model: kept, not read.
    // Stack two's model differs without its lock (no WireGuard public keys in it): planned.
    expect(cached.kept).toEqual(['one']);
    expect(treeState(join(a, 'state'))).toEqual(state);
    expect(cached.result).toEqual(await plainSynth(b));
    expect(contentOf(join(a, 'out'))).toEqual(contentOf(join(b, 'out')));
    expect((await cachedSynth(a)).reason).toBe('nothing changed');
  });

  it('an emptied out/ plans the state of a stack whose state folder changed, whose model changed, or whose clock passed a threshold', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now());
    // A removed certificate: planned (issued again).
    await expectSlowAndSame(
      (d) => {
        renameSync(join(d, 'out'), join(d, 'out-aside'));
        rmSync(someFile(d, 'state/one/pki/services', /server\.crt$/));
      },
      { sameResult: false },
    );
    const removed = await recordedPair();
    renameSync(join(removed.a, 'out'), join(removed.a, 'out-aside'));
    rmSync(someFile(removed.a, 'state/one/pki/services', /server\.crt$/));
    expect((await cachedSynth(removed.a)).kept).toEqual([]);
    // Another image for web: stack one's model changed, so its state is planned.
    const edited = await recordedPair();
    renameSync(join(edited.a, 'out'), join(edited.a, 'out-aside'));
    expect((await cachedSynth(edited.a, { app: makeApp({ webImage: 'localhost/web:2' }) })).kept).toEqual([]);
    // Past the renewal threshold of the leaves (70% of 365 days): nothing kept, certificates renewed.
    const late = await recordedPair();
    for (const d of [late.a, late.b]) renameSync(join(d, 'out'), join(d, 'out-aside'));
    vi.setSystemTime(Date.now() + 260 * 86_400_000);
    const cached = await cachedSynth(late.a);
    expect(cached.kept).toEqual([]);
    expect(text(cached.result)).toBe(text(await plainSynth(late.b)));
    expect(text(cached.result)).toMatch(/renew/);
  });

  it('the horizon recorded (the previous entry\'s when the state is as it stamped) is clockHorizon\'s, with renewals due or not', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    vi.setSystemTime(t0);
    const dir = project();
    await settle(dir);
    const entries = () =>
      readdirSync(`${dir}.cache`)
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse(readFileSync(join(`${dir}.cache`, f), 'utf8').split('\n')[0]!) as { stack: string; decidedAt: number; horizon: number | null });
    const agree = () => {
      const es = entries();
      expect(es.map((e) => e.stack).sort()).toEqual(['one', 'two']);
      for (const e of es) expect(e.horizon ?? Infinity).toBe(horizon.clockHorizon(join(dir, 'state', e.stack), e.decidedAt));
      return es;
    };
    const first = agree();
    // An hour later (a fast run settles the racy stamps), out/ moved aside: the state is as
    // stamped, the horizon is taken over without reading the PKI folder.
    vi.setSystemTime(t0 + 3_600_000);
    expect((await cachedSynth(dir)).fast).toBe(true);
    renameSync(join(dir, 'out'), join(dir, `out-${n++}`));
    const calls = vi.mocked(horizon.clockHorizon).mock.calls.length;
    expect((await cachedSynth(dir)).fast).toBe(false);
    expect(vi.mocked(horizon.clockHorizon).mock.calls.length).toBe(calls);
    const later = agree();
    for (const e of later) {
      expect(e.decidedAt).toBeGreaterThanOrEqual(t0 + 3_600_000);
      expect(e.horizon).toBe(first.find((f) => f.stack === e.stack)!.horizon);
    }
    // Past the leaves' renewal (70% of 365 days): renewed, the horizon read again.
    vi.setSystemTime(t0 + 260 * 86_400_000);
    renameSync(join(dir, 'out'), join(dir, `out-${n++}`));
    const renewed = await cachedSynth(dir);
    expect(renewed.fast).toBe(false);
    expect(text(renewed.result)).toMatch(/renewed/);
    for (const e of agree()) expect(e.horizon ?? Infinity).toBeGreaterThan(t0 + 260 * 86_400_000);
    expect((await cachedSynth(dir)).reason).toBe('nothing changed');
  });

  it('the stamps of a just-written out/ are those a full walk takes, racy or settled', async () => {
    const dir = project();
    await settle(dir);
    const at = join(dir, 'out/one');
    const rendered = new Map(Object.keys(treeState(at)).map((rel) => [rel, { content: readFileSync(join(at, rel), 'utf8') }]));
    // Stamped at 0 everything is racy (hashes of the rendered texts, folders marked); a minute from now nothing is.
    for (const since of [0, Date.now() + 60_000]) expect(writtenStamps(at, since, rendered)).toEqual(takeStamps(at, since));
    // An entry more than rendered in a settled folder, or a rendered file missing: nothing is stamped.
    const later = Date.now() + 60_000;
    writeFileSync(join(at, 'extra.txt'), 'x');
    expect(writtenStamps(at, later, rendered)).toBeUndefined();
    rmSync(join(at, 'extra.txt'));
    rmSync(join(at, [...rendered.keys()][0]!));
    expect(writtenStamps(at, 0, rendered)).toBeUndefined();
    // The state folder checked against stamps taken earlier (racy then): its next stamps are a walk's now.
    const state = join(dir, 'state/one');
    const earlier = takeStamps(state, 0);
    for (const since of [0, Date.now() + 60_000]) {
      const checked = checkStamps(state, earlier, since);
      expect(checked.ok && checked.next).toEqual(takeStamps(state, since));
    }
  });

  it('state stamps and a horizon taken from what the synth wrote are the disk\'s; a claim the disk does not back fails the check', async () => {
    const dir = project();
    await settle(dir);
    const state = join(dir, 'state/one');
    // What a recording writer would claim: every file as it is.
    const disk = new Map(Object.keys(treeState(state)).map((rel) => [join(state, rel), readFileSync(join(state, rel))]));
    expect(takeStamps(state, 0, disk)).toEqual(takeStamps(state, 0));
    // A claim the disk does not back: stamped as claimed, and the check against the disk fails.
    const cert = [...disk.keys()].find((abs) => abs.endsWith('.crt'))!;
    const lie = new Map<string, string | Uint8Array>(disk).set(cert, 'not this certificate');
    const stamps = takeStamps(state, 0, lie);
    expect(checkStamps(state, stamps, 0)).toEqual({ ok: false, reason: `${cert}: changed (content)` });
    // The horizon's boundaries from the contents given are the disk's; a file given is not read.
    const boundaries = horizon.clockBoundaries(state);
    expect(boundaries).not.toBe('unreadable');
    expect(horizon.clockBoundaries(state, disk)).toEqual(boundaries);
    // Given the files as the stamps list them, the same boundaries (in the stamps' order), the PKI folder not listed again.
    const files = takeStamps(state, 0).flatMap(([rel, type]) => (type === 'f' && rel.startsWith('pki/') ? [rel] : []));
    expect(files.length).toBeGreaterThan(5);
    const sorted = (b: number[] | 'unreadable') => (b === 'unreadable' ? b : [...b].sort((x, y) => x - y));
    expect(sorted(horizon.clockBoundaries(state, disk, files))).toEqual(sorted(boundaries));
    expect(sorted(horizon.clockBoundaries(state, undefined, files))).toEqual(sorted(boundaries));
    // A file listed is read (or taken from the contents), one not listed is not.
    expect(horizon.clockBoundaries(state, undefined, [...files, 'pki/services/gone/server.crt'])).toBe('unreadable');
    writeFileSync(cert, '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n');
    expect(horizon.clockBoundaries(state)).toBe('unreadable');
    expect(horizon.clockBoundaries(state, undefined, files)).toBe('unreadable');
    expect(horizon.clockBoundaries(state, disk)).toEqual(boundaries);
    expect(sorted(horizon.clockBoundaries(state, disk, files))).toEqual(sorted(boundaries));
    expect(horizon.clockBoundaries(state, disk, files.filter((f) => !cert.endsWith(f)))).not.toBe('unreadable');
  });

  it('the state plan notes every file it reads, and the check after it holds racy files against the stamps as the plan read them', async () => {
    const dir = project();
    await settle(dir);
    for (const name of ['one', 'two']) {
      const state = resolve(dir, 'state', name);
      const stack = makeApp().node.findChild(name) as Stack;
      const outcome = await resolveWithLock(stack, join(dir, 'out'));
      const reads = new Map<string, string>();
      const problems: Issue[] = [];
      const planned = await planState(outcome.resolved!, { outDir: join(dir, 'out'), stateDir: join(dir, 'state') }, stateContext({ reads }), { wireguard: [], secrets: [] }, problems);
      expect(problems).toEqual([]);
      expect(planned?.pki.changes.ops).toEqual([]);
      // Every certificate, key, CRL and secret file, every WireGuard key: all but the secrets' values file.
      const unread = Object.keys(treeState(state)).filter((rel) => !reads.has(join(state, rel)));
      expect(unread).toEqual(['secrets/values.json']);
      for (const [abs, text] of reads) expect(readFileSync(abs, 'utf8'), abs).toBe(text);
      // Racy stamps of a claim the disk does not back (see the test above): the check against the
      // disk fails; one given what a plan read holds the file as read, the claim or the disk's.
      const since = Date.now();
      const cert = [...reads.keys()].find((abs) => abs.endsWith('/server.crt'))!;
      const stamps = takeStamps(state, since, new Map([[cert, 'not this certificate']]));
      expect(stamps.filter((st) => st[1] === 'f' && st[7] === undefined)).toEqual([]);
      expect(checkStamps(state, stamps, since)).toEqual({ ok: false, reason: `${cert}: changed (content)` });
      expect(checkStamps(state, stamps, since, new Map(reads).set(cert, 'not this certificate'))).toMatchObject({ ok: true });
      expect(checkStamps(state, stamps, since, reads)).toEqual({ ok: false, reason: `${cert}: changed (content)` });
      expect(checkStamps(state, takeStamps(state, since), since, reads)).toMatchObject({ ok: true });
    }
  });

  it('the model fingerprint tells plain values apart and refuses what is not plain data', () => {
    const shared = { x: 1 };
    expect(canonicalText([shared, shared])).toBe(canonicalText([{ x: 1 }, { x: 1 }]));
    expect(canonicalText({ b: [1, 'x', null], a: { c: true } })).toBe(canonicalText({ b: [1, 'x', null], a: { c: true } }));
    const apart: unknown[] = [{}, { a: undefined }, { a: null }, [0], [-0], [null], [NaN], [Infinity], [undefined], ['\u0000u'], ['\u0000d5'], [new Date(5)], ['1970-01-01T00:00:00.005Z'], [5], ['5'], { '\u0000x': 1 }, { x: 1 }];
    const texts = apart.map(canonicalText);
    expect(new Set(texts).size).toBe(apart.length);
    for (const bad of [new Map(), new Set(), () => 1, 1n, Symbol('s'), new (class X {})()]) expect(() => canonicalText({ v: [bad] })).toThrow(/\$\.v\[0\]/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalText(cyclic)).toThrow(/\$\.self refers to itself/);
  });

  it('property: the model digest is the sha256 of its canonical text, taken in pieces or whole', () => {
    const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
    const digestOrError = (v: unknown) => {
      try {
        return canonicalDigest(v);
      } catch (e) {
        return (e as Error).constructor.name;
      }
    };
    const textDigestOrError = (v: unknown) => {
      try {
        return sha256(canonicalText(v));
      } catch (e) {
        return (e as Error).constructor.name;
      }
    };
    // JSON-like data (the model is), and anything (Dates, undefined, -0, NUL keys, class instances).
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.anything({ withDate: true, withNullPrototype: true, withObjectString: true })), (v) => digestOrError(v) === textDigestOrError(v)), { numRuns: 500 });
    // Past the levels it writes itself and past a piece's size (ASCII pieces and others): long strings, text past ASCII, deep nesting.
    const big = { format: 4, model: { services: Array.from({ length: 300 }, (_, i) => ({ name: `svc-${i}`, env: { A: 'x'.repeat(500 + i), B: i % 7 === 0 ? 'é☃𝄞'.repeat(i) : 'plain' }, deep: [[[[[[{ i }]]]]]] })) } };
    expect(canonicalDigest(big)).toBe(sha256(`j${JSON.stringify(big)}`));
    expect(canonicalDigest({ ...big, extra: 1 })).not.toBe(canonicalDigest(big));
    const wide = { model: { text: 'y'.repeat(300_000), other: 'z'.repeat(70_000) } };
    expect(canonicalDigest(wide)).toBe(sha256(`j${JSON.stringify(wide)}`));
  });

  it('property: after any sequence of edits, a cached synth agrees with a plain synth on a copy', async () => {
    const { a, b } = await recordedPair();
    type Edit = { kind: 'edit' | 'remove' | 'touch' | 'add'; pick: number };
    const apply = (d: string, e: Edit) => {
      const files = Object.keys(treeState(join(d, 'out'))).filter((p) => !p.endsWith('podmesh.lock.json') && !p.endsWith('manifest.json')).sort();
      const path = join(d, 'out', files[e.pick % files.length]!);
      if (e.kind === 'edit') sameSizeEdit(path);
      else if (e.kind === 'remove') rmSync(path);
      else if (e.kind === 'touch') utimesSync(path, new Date(1_000_000), new Date(1_000_000));
      else writeFileSync(`${path}.extra`, 'extra\n');
    };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ kind: fc.constantFrom<Edit['kind']>('edit', 'remove', 'touch', 'add'), pick: fc.nat(1000) }), { maxLength: 3 }), async (edits) => {
        for (const e of edits) {
          apply(a, e);
          apply(b, e);
        }
        const cached = await cachedSynth(a);
        const plain = await plainSynth(b);
        expect(cached.result).toEqual(plain);
        if (edits.length === 0) expect(cached.fast).toBe(true);
        if (edits.some((e) => e.kind !== 'touch')) expect(cached.fast).toBe(false);
        expect(contentOf(join(a, 'out'))).toEqual(contentOf(join(b, 'out')));
      }),
      { numRuns: 8, seed: 17 },
    );
  });
});

describe('podmesh synth (CLI) with the fast path', () => {
  const saved = process.env.PODMESH_CACHE_DIR;
  afterAll(() => {
    if (saved === undefined) delete process.env.PODMESH_CACHE_DIR;
    else process.env.PODMESH_CACHE_DIR = saved;
  });

  it('prints the same report on the fast path; PODMESH_NO_CACHE=1 and --no-cache run every step', async () => {
    const dir = project();
    podmeshProject(dir);
    const cacheDir = join(tmp.path, 'cli-cache');
    mkdirSync(cacheDir, { mode: 0o700 });
    process.env.PODMESH_CACHE_DIR = cacheDir;
    const stacks = join(dir, 'stacks');
    mkdirSync(stacks);
    writeFileSync(join(stacks, 'one.ts'), [
      "import { type App, Host, Network, Service, Stack } from 'podmesh';",
      'export default (app: App): void => {',
      "  const stack = new Stack(app, 'cli', { project: 'cli' });",
      "  new Host(stack, 'local');",
      "  new Network(stack, 'mesh', { subnet: '10.93.0.0/24', domain: 'cli.local' });",
      "  new Service(stack, 'api', { image: 'localhost/api:1' });",
      '};',
      '',
    ].join('\n'));
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const printed = { out: '', err: '' };
      const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: { PODMESH_DEBUG_CACHE: '1', ...env }, cwd: dir, tty: false };
      const code = await inDir(dir, () => runCli(['synth', '--stacks', stacks, '--state', join(dir, 'state'), '--out', join(dir, 'out'), ...args], io));
      return { code, ...printed };
    };
    const first = await run([]);
    expect(first.code).toBe(0);
    expect(first.err).toBe('podmesh: slow path: cli: no cache entry\n');
    const slow = await run([], { PODMESH_NO_CACHE: '1' });
    expect(slow.err).toBe('');
    const fast = await run([]);
    // The first fast run resolves (the lock was new); it learns the constructs' print, so the next need not.
    expect(fast.err).toBe('podmesh: fast path (vouched by the resolved models): nothing changed\n');
    expect(fast.out).toBe(slow.out);
    expect((await run(['--no-cache'])).err).toBe('');
    const check = await run(['--check']);
    expect(check).toEqual({ code: 0, out: (await run(['--check'], { PODMESH_NO_CACHE: '1' })).out, err: 'podmesh: fast path (vouched by the constructs, nothing resolved): nothing changed\n' });
    expect(readdirSync(join(cacheDir, 'synth')).filter((f) => f.endsWith('.json'))).toHaveLength(1);
  });

  it('the built CLI writes an emptied out/ without loading the PKI engine when the state is kept, and loads it when the state is planned', async () => {
    const dir = project();
    podmeshProject(dir);
    mkdirSync(join(dir, 'stacks'));
    writeFileSync(join(dir, 'stacks', 'one.ts'), [
      "import { type App, Host, Network, Service, Stack } from 'podmesh';",
      'export default (app: App): void => {',
      "  const stack = new Stack(app, 'cli', { project: 'cli' });",
      "  new Host(stack, 'local');",
      "  new Network(stack, 'mesh', { subnet: '10.94.0.0/24', domain: 'cli.local' });",
      "  new Service(stack, 'api', { image: 'localhost/api:1' });",
      '};',
      '',
    ].join('\n'));
    // Told at exit: whether the X.509 library was loaded. It is built into dist/ (scripts/build.mjs
    // BUILT_IN), the one module that imports it first loads its Reflect polyfill, a package
    // (CommonJS, so in require's cache) that nothing else loads.
    const probe = join(dir, 'probe.mjs');
    writeFileSync(probe, "import { createRequire } from 'node:module';\nconst cache = createRequire(import.meta.url).cache;\nprocess.on('exit', () => process.stderr.write(`x509 loaded: ${Object.keys(cache).some((k) => k.includes('/reflect-metadata/'))}\\n`));\n");
    const env = { ...process.env, PODMESH_CACHE_DIR: join(dir, 'cache'), PODMESH_DEBUG_CACHE: '1' };
    /** A synth by the built CLI: what it wrote to stderr, the probe's line last. */
    const err = (): string => {
      const r = spawnSync(process.execPath, ['--import', probe, join(repoRoot, 'bin/podmesh.mjs'), 'synth'], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      return r.stderr;
    };
    expect(err()).toMatch(/slow path: cli: no cache entry\nx509 loaded: true\n$/);
    expect(err()).toMatch(/fast path/);
    renameSync(join(dir, 'out'), join(dir, 'out-aside'));
    const kept = err();
    expect(kept).toMatch(/not planned again: cli\n/);
    expect(kept).toMatch(/x509 loaded: false\n$/);
    expect(contentOf(join(dir, 'out'))).toEqual(contentOf(join(dir, 'out-aside')));
    rmSync(join(dir, 'out'), { recursive: true });
    rmSync(someFile(dir, '.podmesh/cli/pki/services', /server\.crt$/));
    const planned = err();
    expect(planned).not.toMatch(/not planned again/);
    expect(planned).toMatch(/x509 loaded: true\n$/);
  });
});
