// One plan, three readers: synth (apply), --check (compare) and diff (format) see the same changes;
// planning writes nothing; the same injected clock and randomness give the same plan.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { App, Host, Network, Postgres, Stack, changesOf, checkPlan, planSynth, synth, type SynthOptions } from '../src/index.ts';
import { describeStateChange } from '../src/synth/check.ts';
import { diffStacks, formatDiff, type DiffResult } from '../src/ops/diff.ts';
import type { CheckResult, SynthResult } from '../src/synth.ts';
import type { KeyPair, KeySource, KeyType } from '../src/state/pki/index.ts';
import type { RandomSource } from '../src/state/random.ts';
import { svc, tempDir } from './helpers/stacks.ts';

const T0 = new Date('2026-06-01T00:00:00Z');
const DAY = 86_400_000;

const dirs: { cleanup: () => void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));
function project() {
  const d = tempDir();
  dirs.push(d);
  return { outDir: join(d.path, 'out'), stateDir: join(d.path, 'state') };
}

interface Variant {
  /** api's LOG_LEVEL is debug. */
  readonly edit?: boolean;
  /** web is gone. */
  readonly dropWeb?: boolean;
  /** A second stack, `gone`, exists. */
  readonly withGone?: boolean;
}

/** mini: db (Postgres, so secrets), api (depends on db), web (calls api); optionally a second stack. */
function build(v: Variant = {}): App {
  const app = new App();
  const stack = new Stack(app, 'mini', { project: 'mini' });
  new Host(stack, 'local');
  new Network(stack, 'mesh', { subnet: '10.90.0.0/24', gateway: '10.90.0.1', domain: 'mini.local' });
  const db = new Postgres(stack, 'db');
  const api = svc(stack, 'api', { dependsOn: [db], ports: { http: 9000 }, environment: { LOG_LEVEL: v.edit ? 'debug' : 'info' } });
  if (!v.dropWeb) svc(stack, 'web', { calls: [api], ports: { public: { port: 8080, publish: true } } });
  if (v.withGone) {
    const gone = new Stack(app, 'gone', { project: 'gone' });
    new Host(gone, 'local');
    new Network(gone, 'mesh', { subnet: '10.91.0.0/24', domain: 'gone.local' });
    svc(gone, 'solo');
  }
  return app;
}

// Each reader's findings as the same strings: `<stack> <added|modified|removed> <path>`, `pruned <stack>`, state lines.
const STATE = 'STATE';
const stateLine = (c: Parameters<typeof describeStateChange>[0]) => describeStateChange(c, `${STATE}/${c.stack}`);

function fromCheck(c: CheckResult): string[] {
  const out = c.reports.flatMap((r) => [...r.added.map((p) => `${r.stack} added ${p}`), ...r.modified.map((p) => `${r.stack} modified ${p}`), ...r.removed.map((p) => `${r.stack} removed ${p}`)]);
  return [...out, ...c.prunedStacks.map((s) => `pruned ${s}`), ...c.stateChanges.map(stateLine)].sort();
}

function fromDiff(d: DiffResult): string[] {
  const out = d.stacks.flatMap((s) => [...s.files.map((f) => `${s.stack} ${f.change} ${f.path}`), ...s.state.map(stateLine)]);
  return [...out, ...d.prunedStacks.map((s) => `pruned ${s}`)].sort();
}

function fromSynth(r: SynthResult): string[] {
  const out = r.reports.flatMap((x) => [...x.added.map((p) => `${x.stack} added ${p}`), ...x.modified.map((p) => `${x.stack} modified ${p}`), ...x.removed.map((p) => `${x.stack} removed ${p}`)]);
  return [...out, ...r.prunedStacks.map((s) => `pruned ${s}`), ...r.state.flatMap((s) => changesOf(s.stack, s).map(stateLine))].sort();
}

/** One change to a synthesized project, and what every reader must find for it. */
interface Case {
  readonly name: string;
  /** The app after the change. */
  readonly app: () => App;
  /** Clock after the change. */
  readonly now?: Date;
  /** A change made on disk. */
  readonly mutate?: (where: { outDir: string; stateDir: string }) => string | void;
  /** Findings that must be among the readers' (`$` is what mutate returned). */
  readonly expect: readonly string[];
}

const CASES: readonly Case[] = [
  {
    name: 'a prop edit changes api\'s unit and the compose file',
    app: () => build({ edit: true, withGone: true }),
    expect: ['mini modified hosts/local/quadlet/mini-api.container', 'mini modified hosts/local/compose.yaml'],
  },
  {
    name: 'a removed service removes its files and its certificate folder',
    app: () => build({ dropWeb: true, withGone: true }),
    expect: ['mini removed hosts/local/quadlet/mini-web.container', `mini: would remove ${STATE}/mini/pki/services/web (no service needs it)`],
  },
  {
    name: 'a stale extra file in out/ is removed',
    app: () => build({ withGone: true }),
    mutate: ({ outDir }) => void writeFileSync(join(outDir, 'mini/hosts/local/leftover.conf'), 'stale\n'),
    expect: ['mini removed hosts/local/leftover.conf'],
  },
  {
    name: 'a deleted secret file is written again',
    app: () => build({ withGone: true }),
    mutate: ({ stateDir }) => {
      const env = readdirSync(join(stateDir, 'mini/secrets')).filter((f) => f !== 'values.json').sort()[0]!;
      rmSync(join(stateDir, 'mini/secrets', env));
      return `secrets/${env}`;
    },
    expect: [`mini: would write ${STATE}/mini/$`],
  },
  {
    name: 'a certificate past 70% of its lifetime (injected clock) is renewed',
    app: () => build({ withGone: true }),
    now: new Date(T0.getTime() + 300 * DAY),
    expect: ['mini: would renew certificate api/server (70% of its lifetime passed on 2027-02-11T11:55:00Z)'],
  },
  {
    name: 'a stack that no longer exists has its out/ folder pruned',
    app: () => build(),
    expect: ['pruned gone'],
  },
];

describe('synth, --check and diff read the same plan', () => {
  it.each(CASES)('$name: --check reports it, diff shows it, synth applies it, then all three report nothing', async (c) => {
    // GIVEN a synthesized project
    const where = project();
    await synth(build({ withGone: true }), { ...where, now: T0 });
    const opts: SynthOptions = { ...where, now: c.now ?? T0 };
    // WHEN it changes
    const mutated = c.mutate?.(where) ?? '';
    const wanted = c.expect.map((e) => e.replace('$', mutated));
    // THEN --check, diff and synth find the same changes, the expected ones among them
    const check = fromCheck(checkPlan(await planSynth(c.app(), opts)));
    const diff = await diffStacks(c.app(), opts);
    const text = formatDiff(diff, { outDir: 'out', stateDir: STATE, color: false });
    expect(diff.changed).toBe(true);
    expect(fromDiff(diff)).toEqual(check);
    for (const w of wanted) expect(check, check.join('\n')).toContain(w);
    for (const w of wanted.filter((x) => x.includes(': would '))) expect(text).toContain(w);
    const applied = await synth(c.app(), opts);
    expect(fromSynth(applied)).toEqual(check);
    // AND afterwards none of them finds anything
    const after = checkPlan(await planSynth(c.app(), opts));
    expect(fromCheck(after)).toEqual([]);
    expect(after.stale).toBe(false);
    expect((await diffStacks(c.app(), opts)).changed).toBe(false);
    expect(fromSynth(await synth(c.app(), opts))).toEqual([]);
  });
});

/** Every folder and file below `dir`: path, type, mode, mtime and (files) a hash of the bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (abs: string, rel: string) => {
    const st = lstatSync(abs);
    const head = `${st.isDirectory() ? 'dir' : 'file'} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs}`;
    if (!st.isDirectory()) {
      out[rel] = `${head} ${createHash('sha256').update(readFileSync(abs)).digest('hex')}`;
      return;
    }
    out[rel] = head;
    for (const e of readdirSync(abs).sort()) walk(join(abs, e), `${rel}/${e}`);
  };
  if (existsSync(dir)) walk(dir, '.');
  return out;
}

describe('planSynth', () => {
  it('writes nothing against an empty state folder (not even the folder) and a populated one', async () => {
    // GIVEN nothing at all
    const where = project();
    // WHEN planned
    const first = await planSynth(build({ withGone: true }), { ...where, now: T0 });
    // THEN the plan holds everything to create, and no folder exists
    expect(first.problems).toEqual([]);
    expect(first.stacks.map((s) => s.comparison.added.length > 0)).toEqual([true, true]);
    expect(first.stacks[0]!.state!.pki.result.cas.map((c) => c.action)).toEqual(['create', 'create']);
    expect(existsSync(where.outDir)).toBe(false);
    expect(existsSync(where.stateDir)).toBe(false);

    // GIVEN a synthesized project, then a change in every part (out/ file, prop, state file, clock, a pruned stack)
    await synth(build({ withGone: true }), { ...where, now: T0 });
    writeFileSync(join(where.outDir, 'mini/hosts/local/leftover.conf'), 'stale\n');
    const secrets = join(where.stateDir, 'mini/secrets');
    rmSync(join(secrets, readdirSync(secrets).find((f) => f !== 'values.json')!));
    const before = { out: snapshot(where.outDir), state: snapshot(where.stateDir) };
    await new Promise((r) => setTimeout(r, 20));
    // WHEN planned
    const plan = await planSynth(build({ edit: true, dropWeb: true }), { ...where, now: new Date(T0.getTime() + 300 * DAY) });
    // THEN it saw all of it, and not a byte, mode or mtime changed
    expect(fromCheck(checkPlan(plan)).length).toBeGreaterThan(5);
    expect(plan.prunedStacks).toEqual(['gone']);
    expect({ out: snapshot(where.outDir), state: snapshot(where.stateDir) }).toEqual(before);
  });

  it('collects every problem of every stack, and applying such a plan writes nothing', async () => {
    // GIVEN a corrupt CA key in one stack's state and an unresolvable second stack
    const where = project();
    await synth(build(), { ...where, now: T0 });
    writeFileSync(join(where.stateDir, 'mini/pki/ca.key'), 'not a key\n');
    const app = build();
    new Stack(app, 'empty', { project: 'empty' });
    const before = { out: snapshot(where.outDir), state: snapshot(where.stateDir) };
    // WHEN planned
    const plan = await planSynth(app, { ...where, now: T0 });
    // THEN both problems are in the plan, and synth refuses with both, writing nothing
    const paths = plan.problems.map((p) => p.path);
    expect(paths).toContain(join(where.stateDir, 'mini/pki/ca.key'));
    expect(paths).toContain('empty');
    await expect(synth(app, { ...where, now: T0 })).rejects.toMatchObject({ issues: plan.problems });
    expect({ out: snapshot(where.outDir), state: snapshot(where.stateDir) }).toEqual(before);
  });
});

/** Random bytes from a seed: SHA-256 of seed and a counter, as long as asked. */
function seeded(seed: string): RandomSource {
  let n = 0;
  return {
    bytes(len) {
      const out = Buffer.alloc(len);
      for (let at = 0; at < len; at += 32) createHash('sha256').update(`${seed}/${n++}`).digest().copy(out, at);
      return out;
    },
  };
}

/** Key pairs handed out by call order: the k-th key of every plan is the same pair. RSA signatures are deterministic, so certificates are too. */
function keyPool(): () => KeySource {
  const pool: Promise<KeyPair>[] = [];
  return () => {
    let k = 0;
    return {
      generate(keyType: KeyType) {
        const i = k++;
        pool[i] ??= globalThis.crypto.subtle.generateKey(
          keyType === 'rsa-2048' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1) } : { name: 'ECDSA', namedCurve: 'P-256' },
          true,
          ['sign', 'verify'],
        ) as Promise<KeyPair>;
        return pool[i]!;
      },
    };
  };
}

/** Two hosts (WireGuard keys), Postgres (secrets), RSA certificates (deterministic signatures). */
function rsaMesh(): App {
  const app = new App();
  const stack = new Stack(app, 'det', { project: 'det', pki: { keyType: 'rsa-2048' } });
  const a = new Host(stack, 'a', { endpoint: '198.51.100.1:51820' });
  const b = new Host(stack, 'b', { endpoint: '198.51.100.2:51820' });
  new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'det.local', bridgeName: 'det0' });
  const db = new Postgres(stack, 'db', { host: b });
  svc(stack, 'api', { host: a, dependsOn: [db], ports: { http: 9000 }, certificate: { keyType: 'rsa-2048' } });
  return app;
}

describe('injected clock and randomness', () => {
  it('two plans with the same sources are the same plan data; another seed gives other material', async () => {
    // GIVEN one clock, one seed and one key pool
    const where = project();
    const keys = keyPool();
    const plan = (seed: string) => planSynth(rsaMesh(), { ...where, now: T0, random: seeded(seed), keys: keys() });
    // WHEN planned twice
    const first = await plan('s1');
    const second = await plan('s1');
    // THEN identical, material included (keys, certificates, serials, passwords, WireGuard keys)
    expect(first.problems).toEqual([]);
    const state = first.stacks[0]!.state!;
    expect(state.wireguard!.writes.length).toBe(2);
    expect(state.secrets.result.created.length).toBeGreaterThan(0);
    expect(state.pki.result.certificates.every((c) => c.serial !== '')).toBe(true);
    expect(second).toEqual(first);
    // AND a different seed changes the material, so the comparison above can fail
    const other = (await plan('s2')).stacks[0]!.state!;
    expect(other.wireguard!.writes[0]!.content).not.toBe(state.wireguard!.writes[0]!.content);
    expect(other.secrets.writes[0]!.content).not.toBe(state.secrets.writes[0]!.content);
    expect(other.pki.result.certificates[0]!.serial).not.toBe(state.pki.result.certificates[0]!.serial);
  });
});
