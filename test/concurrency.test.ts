// Two synths on one state folder at once: the lock makes the second wait, so both succeed, there is
// one CA, and every key matches its certificate, on a first run and when both renew certificates.
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairProblems } from './helpers/key-pairs.ts';

const repo = join(import.meta.dirname, '..');
const ROUNDS = 10;


describe('two synths at once', () => {
  mkdirSync(join(repo, '.cache'), { recursive: true });
  // Inside the repository, so the stack file's `import 'podmesh'` resolves.
  const work = mkdtempSync(join(repo, '.cache', 'race-'));
  const stacks = join(work, 'stacks');
  beforeAll(() => {
    mkdirSync(stacks);
    writeFileSync(join(stacks, 'race.ts'), [
      "import { type App, Host, Network, Postgres, Service, Stack } from 'podmesh';",
      'export default (app: App): void => {',
      "  const stack = new Stack(app, 'race', { project: 'race' });",
      "  new Host(stack, 'local');",
      "  new Network(stack, 'mesh', { subnet: '10.92.0.0/24', domain: 'race.local' });",
      "  const db = new Postgres(stack, 'db');",
      "  const api = new Service(stack, 'api', { image: 'localhost/api:1', dependsOn: [db] });",
      "  for (const n of ['web', 'admin', 'jobs']) new Service(stack, n, { image: `localhost/${n}:1`, calls: [api] });",
      '};',
      '',
    ].join('\n'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const synth = (dir: string, now?: string) =>
    execa('node', [join(repo, 'bin/podmesh.mjs'), 'synth', '--stacks', stacks, '--out', join(dir, 'out'), '--state', join(dir, 'state'), ...(now ? ['--now', now] : [])], {
      cwd: work,
      reject: false,
      timeout: 120_000,
    });

  it(`${ROUNDS} rounds, first runs and renewals: both exit 0, one CA, every key paired`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const dir = join(work, `r${i}`);
      // Even rounds race on an empty state folder; odd ones on a populated one, both renewing at once.
      let now: string | undefined;
      if (i % 2 === 1) {
        expect((await synth(dir)).exitCode).toBe(0);
        now = new Date(Date.now() + 300 * 86_400_000).toISOString().slice(0, 10);
      }
      const [a, b] = await Promise.all([synth(dir, now), synth(dir, now)]);
      expect([a.exitCode, b.exitCode], `${a.stderr}\n${b.stderr}`).toEqual([0, 0]);
      // The one that waited said for whom.
      expect(`${a.stderr}${b.stderr}`).toMatch(/waiting for pid \d+ \(podmesh synth\)|^$/);
      const state = join(dir, 'state', 'race');
      const inventory = JSON.parse(readFileSync(join(state, 'pki', 'inventory.json'), 'utf8')) as { certificates: { service: string; kind: string; status: string }[] };
      const active = inventory.certificates.filter((c) => c.status === 'active').map((c) => `${c.service}/${c.kind}`);
      expect(new Set(active).size, 'one active certificate per service and kind').toBe(active.length);
      expect(readdirSync(join(state, 'pki')).filter((f) => f.endsWith('.crt') && f.startsWith('ca'))).toEqual(['ca.crt']);
      expect(keyPairProblems(state)).toEqual([]);
      expect(existsSync(join(dir, '.state.podmesh.lock')) || existsSync(join(dir, '.out.podmesh.lock'))).toBe(false);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
