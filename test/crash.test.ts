// kill -9 at spread points of a synth doing real work (a new CA, certificates, secrets, a changed
// out/): out/ is the old tree or the new one, every key matches its certificate, and the next run
// finishes the job and leaves no temporary file behind.
import { execa } from 'execa';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairProblems } from './helpers/key-pairs.ts';
import { treeState } from './helpers/tree.ts';

const repo = join(import.meta.dirname, '..');
// 20 points spread over a run: each costs two synth processes (the killed one and the recovery).
const KILLS = 20;

/** Every path below `dir` (files and folders), relative. */
function allPaths(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      out.push(relative(dir, join(d, e.name)));
      if (e.isDirectory()) walk(join(d, e.name));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}


/** Leftovers of an interrupted run: temporary files and staging folders. */
function leftovers(dir: string): string[] {
  return allPaths(dir).filter((p) => /\.tmp$|\.tmp\/|\.removed$|podmesh-staging|podmesh-previous|\.takeover$|\.podmesh\.lock$/.test(p) || p.split('/').some((s) => /^\.pki-.*\.tmp$/.test(s)));
}

/** Every fifth round, temporaries as a kill at the worst moment leaves them; whether it planted any. */
function plantLeftovers(stackState: string, round: number): boolean {
  if (round % 5 !== 0 || !existsSync(stackState)) return false;
  mkdirSync(join(stackState, '.pki-0123456789ab.tmp'), { recursive: true });
  writeFileSync(join(stackState, '.pki-0123456789ab.tmp', 'ca.key'), 'a CA key in the making', { mode: 0o600 });
  mkdirSync(join(stackState, 'secrets'), { recursive: true, mode: 0o700 });
  writeFileSync(join(stackState, 'secrets', '.db.env.a1b2c3d4e5f6.tmp'), 'POSTGRES_PASSWORD=x', { mode: 0o600 });
  if (existsSync(join(stackState, 'pki', 'services'))) mkdirSync(join(stackState, 'pki', 'services', '.old.a1b2c3d4e5f6.removed'));
  return true;
}

describe('kill -9 during synth', () => {
  // Inside the repository, so the stack file's `import 'podmesh'` resolves (package self-reference).
  mkdirSync(join(repo, '.cache'), { recursive: true });
  const work = mkdtempSync(join(repo, '.cache', 'crash-'));
  const stacks = join(work, 'stacks');
  // Each run's out/ and state sit side by side under one folder: compose files name the state
  // folder by a relative path, so the trees compare only when that path is the same.
  const outA = join(work, 'a', 'out');
  const outB = join(work, 'b', 'out');
  let duration = 0;

  const synth = (variant: string, out: string, state: string) =>
    execa('node', [join(repo, 'bin/podmesh.mjs'), 'synth', '--stacks', stacks, '--out', out, '--state', state], {
      cwd: work,
      env: { CRASH_VARIANT: variant },
      reject: false,
      timeout: 120_000,
    });

  beforeAll(async () => {
    // GIVEN a stack whose every generated file changes with a variant (the description is in each header)
    mkdirSync(stacks);
    writeFileSync(join(stacks, 'crash.ts'), [
      "import { type App, Host, Network, Postgres, Redis, Service, Stack } from 'podmesh';",
      'export default (app: App): void => {',
      "  const stack = new Stack(app, 'crash', { project: 'crash', description: `variant ${process.env.CRASH_VARIANT}` });",
      "  new Host(stack, 'local');",
      "  new Network(stack, 'mesh', { subnet: '10.91.0.0/24', domain: 'crash.local' });",
      "  const db = new Postgres(stack, 'db');",
      "  const cache = new Redis(stack, 'cache');",
      "  const api = new Service(stack, 'api', { image: 'localhost/api:1', dependsOn: [db, cache] });",
      "  for (const n of ['web', 'admin', 'jobs', 'search']) new Service(stack, n, { image: `localhost/${n}:1`, calls: [api] });",
      '};',
      '',
    ].join('\n'));
    expect((await synth('a', outA, join(work, 'a', 'state'))).exitCode).toBe(0);
    const started = Date.now();
    expect((await synth('b', outB, join(work, 'b', 'state'))).exitCode).toBe(0);
    duration = Date.now() - started;
  }, 120_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it(`leaves out/ old or new and every key paired, at ${KILLS} points; the next run completes and cleans up`, async () => {
    const treeA = treeState(join(outA, 'crash'));
    const treeB = treeState(join(outB, 'crash'));
    const contentOf = (t: Record<string, string>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.split(' ')[0]]));
    for (let i = 1; i <= KILLS; i++) {
      const out = join(work, `${i}`, 'out');
      const state = join(work, `${i}`, 'state');
      cpSync(outA, out, { recursive: true });
      // WHEN synth of variant b, with a fresh state folder, is killed at i/KILLS of a full run
      const run = synth('b', out, state);
      await new Promise((r) => setTimeout(r, Math.round((duration * i) / (KILLS + 1))));
      run.kill('SIGKILL');
      await run;
      // THEN out/ is exactly one of the two trees, and no key lacks or mismatches its certificate
      const now = contentOf(treeState(join(out, 'crash')));
      expect([contentOf(treeA), contentOf(treeB)], `kill ${i}: out/ is a mix`).toContainEqual(now);
      expect(keyPairProblems(state), `kill ${i}`).toEqual([]);
      // and the next run finishes the job, removes what was left (including temporaries planted
      // where a kill between two system calls would leave them: a PKI staging folder with a CA
      // key, a secret env file's temporary, a folder removal in progress) and says so
      const planted = plantLeftovers(join(state, 'crash'), i);
      const next = await synth('b', out, state);
      expect(next.exitCode, `kill ${i}: ${next.stderr}`).toBe(0);
      if (planted) expect(next.stdout).toContain(`removed what an interrupted run left in`);
      expect(contentOf(treeState(join(out, 'crash')))).toEqual(contentOf(treeB));
      expect(keyPairProblems(state), `kill ${i} then synth`).toEqual([]);
      expect([...leftovers(state), ...leftovers(out)], `kill ${i} then synth`).toEqual([]);
      rmSync(out, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
    }
  }, 600_000);
});
