// Generated secrets: a fresh state folder gets every value; a used one that lost or damaged
// values.json is refused (the services keep the old passwords) with both fixes; rotating is a
// deliberate command that replaces exactly one service's values.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/run.ts';
import type { Io } from '../src/cli/command.ts';
import { App, Postgres, Redis, synth } from '../src/index.ts';
import { podmeshRejection } from './helpers/errors.ts';
import { miniStack, svc, tempDir } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';

function app(): App {
  const { app, stack } = miniStack('sec');
  const db = new Postgres(stack, 'db');
  const cache = new Redis(stack, 'cache');
  svc(stack, 'api', { dependsOn: [db, cache] });
  return app;
}

const envOf = (state: string, service: string) =>
  Object.fromEntries(readFileSync(join(state, 'sec', 'secrets', `${service}.env`), 'utf8').split('\n').filter((l) => l.includes('=') && !l.startsWith('#')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

describe('generated secrets', () => {
  let out: ReturnType<typeof tempDir>;
  let state: ReturnType<typeof tempDir>;
  beforeEach(async () => {
    out = tempDir();
    state = tempDir();
    // GIVEN a stack synthesized once (a fresh state folder: everything is created)
    const r = await synth(app(), { outDir: out.path, stateDir: state.path });
    expect(r.state[0]!.secrets.created).toEqual(['cache/password', 'db/password']);
  });
  afterEach(() => {
    out.cleanup();
    state.cleanup();
  });

  it.each([
    ['deleted', (p: string) => rmSync(p), 'is missing, but pki/ca.crt already exists'],
    ['damaged', (p: string) => writeFileSync(p, '{ "db/password": '), 'is not valid JSON'],
    ['emptied of values', (p: string) => writeFileSync(p, '{"db/password": "x"}'), 'does not map secret ids to generated values'],
  ])('values.json %s: synth refuses, names both fixes, writes nothing', async (_what, damage, reason) => {
    const values = join(state.path, 'sec', 'secrets', 'values.json');
    damage(values);
    const before = { out: treeState(out.path), state: treeState(state.path) };
    const err = await podmeshRejection(synth(app(), { outDir: out.path, stateDir: state.path }));
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]!.path).toBe(values);
    expect(err.issues[0]!.message).toContain(reason);
    expect(err.issues[0]!.message).toContain('will not invent new ones silently. Restore secrets/values.json from a backup');
    expect(err.issues[0]!.message).toContain('podmesh secrets rotate --stack sec --service cache --service db');
    expect({ out: treeState(out.path), state: treeState(state.path) }).toEqual(before);
  });

  it('a lost values.json is fixed by rotating the services it held', async () => {
    rmSync(join(state.path, 'sec', 'secrets', 'values.json'));
    // Rotating only one of the two is still refused: the other's password is still lost.
    const err = await podmeshRejection(synth(app(), { outDir: out.path, stateDir: state.path, rotateSecrets: { sec: ['db'] } }));
    expect(err.issues[0]!.message).toContain('(cache/password)');
    const r = await synth(app(), { outDir: out.path, stateDir: state.path, rotateSecrets: { sec: ['db', 'cache'] } });
    expect(r.state[0]!.secrets.rotated).toEqual(['cache/password', 'db/password']);
    expect((await synth(app(), { outDir: out.path, stateDir: state.path })).state[0]!.secrets.written).toEqual([]);
  });

  it('secrets rotate --service db replaces db/password everywhere it is used, and nothing else', async () => {
    const before = { db: envOf(state.path, 'db'), api: envOf(state.path, 'api'), cache: envOf(state.path, 'cache') };
    const printed = { out: '', err: '' };
    const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: {}, cwd: process.cwd(), tty: false };
    const stacks = join(out.path, '..', `stacks-${process.pid}`);
    // The command loads stack files: write one that builds the same stack.
    const { mkdirSync } = await import('node:fs');
    mkdirSync(stacks, { recursive: true });
    writeFileSync(join(stacks, 'sec.ts'), [
      `import { App, Postgres, Redis } from ${JSON.stringify(join(import.meta.dirname, '../src/index.ts'))};`,
      `import { miniStack, svc } from ${JSON.stringify(join(import.meta.dirname, 'helpers/stacks.ts'))};`,
      'export default (app: App): void => {',
      "  const { stack } = miniStack('sec', app);",
      "  const db = new Postgres(stack, 'db');",
      "  const cache = new Redis(stack, 'cache');",
      "  svc(stack, 'api', { dependsOn: [db, cache] });",
      '};',
    ].join('\n'));
    try {
      const code = await runCli(['secrets', 'rotate', '--service', 'db', '--stacks', stacks, '--out', out.path, '--state', state.path], io);
      expect(code, printed.err).toBe(0);
      expect(printed.out).toContain('sec: rotated db/password.\nRedeploy on host local: db first, then api (podmesh apply --stack sec --host local restarts them; with compose: docker compose up -d --no-deps db, then docker compose up -d).\n');
      expect(printed.out).toContain(`PostgreSQL keeps its role's password in its data: once db runs with the new env file, and before its clients come back, set it there (host local):\n  podman exec mini-db-1 sh -c 'printf "ALTER ROLE CURRENT_USER PASSWORD \\$podmesh\\$%s\\$podmesh\\$;" "$POSTGRES_PASSWORD" | psql -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'\n`);
      const after = { db: envOf(state.path, 'db'), api: envOf(state.path, 'api'), cache: envOf(state.path, 'cache') };
      expect(after.db.POSTGRES_PASSWORD).not.toBe(before.db.POSTGRES_PASSWORD);
      expect(after.api.DB_PASSWORD).toBe(after.db.POSTGRES_PASSWORD);
      expect(after.cache).toEqual(before.cache);
      expect(after.api.REDIS_PASSWORD).toBe(before.api.REDIS_PASSWORD);
    } finally {
      rmSync(stacks, { recursive: true, force: true });
    }
  });
});
