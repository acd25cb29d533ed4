// Generated secrets: a fresh state folder gets every value; a used one that lost or damaged
// values.json is refused (the services keep the old passwords) with both fixes; rotating is a
// deliberate command that replaces exactly one service's values.
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/run.ts';
import type { Io } from '../src/cli/command.ts';
import { App, Postgres, Redis, resolveStack, synth } from '../src/index.ts';
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

/** Every secret file of the stack's state folder, by name (values.json aside). */
const filesOf = (state: string) => {
  const dir = join(state, 'sec', 'secrets');
  return Object.fromEntries(readdirSync(dir).filter((f) => f !== 'values.json').sort().map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
};

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

  it('env files of an earlier version are removed, the values kept, and values.json is 0600 and every secret file 0444 (compose mounts it into containers of other users) with the value alone', async () => {
    // GIVEN the env files an earlier podmesh wrote beside the values
    const dir = join(state.path, 'sec', 'secrets');
    writeFileSync(join(dir, 'api.env'), 'DB_PASSWORD=old\n', { mode: 0o600 });
    const values = readFileSync(join(dir, 'values.json'), 'utf8');
    // WHEN synthesized again
    const r = await synth(app(), { outDir: out.path, stateDir: state.path });
    // THEN the env file is gone, nothing else changed
    expect(r.state[0]!.secrets).toMatchObject({ created: [], written: [], removed: ['secrets/api.env'] });
    expect(readdirSync(dir).sort()).toEqual(['cache.password', 'cache.password.conf', 'db.password', 'values.json']);
    expect(readFileSync(join(dir, 'values.json'), 'utf8')).toBe(values);
    const parsed = JSON.parse(values) as Record<string, string>;
    expect(readFileSync(join(dir, 'db.password'), 'utf8')).toBe(parsed['db/password']);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(f === 'values.json' ? 0o600 : 0o444);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('Redis: the generated command, health check and environment hold no value, only the files that do', () => {
    // GIVEN the stack, resolved
    const { stack } = miniStack('sec');
    const db = new Postgres(stack, 'db');
    const redis = new Redis(stack, 'cache');
    svc(stack, 'api', { dependsOn: [db, redis] });
    const resolved = resolveStack(stack);
    const cache = resolved.services.find((x) => x.name === 'cache')!;
    const api = resolved.services.find((x) => x.name === 'api')!;
    // THEN redis-server reads its configuration on stdin, redis-cli its password from REDISCLI_AUTH
    expect(cache.command).toEqual(['sh', '-c', 'exec docker-entrypoint.sh redis-server - --appendonly yes < "$REDIS_CONFIG_FILE"']);
    expect(cache.healthcheck!.command).toEqual({ shell: 'REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")" redis-cli ping | grep -q PONG' });
    expect(Object.fromEntries(cache.environment)).toEqual({ REDIS_CONFIG_FILE: '/run/secrets/cache.password.conf', REDIS_PASSWORD_FILE: '/run/secrets/cache.password' });
    expect(api.secrets.map((f) => `${f.variable}=${f.target} (${f.id})`)).toEqual(['DB_PASSWORD_FILE=/run/secrets/db.password (db/password)', 'REDIS_AUTH_FILE=/run/secrets/cache.password (cache/password)']);
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
    const before = filesOf(state.path);
    expect(Object.keys(before)).toEqual(['cache.password', 'cache.password.conf', 'db.password']);
    expect(before['cache.password.conf']).toBe(`# Generated by podmesh. Keep private (0600); never commit.\nrequirepass ${before['cache.password']}\n`);
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
      expect(printed.out).toContain('sec: rotated db/password.\nRedeploy on host local: db first, then api (podmesh apply --stack sec --host local restarts them; with compose: docker compose up -d --no-deps --force-recreate db, then docker compose up -d --force-recreate api).\n');
      expect(printed.out).toContain(`PostgreSQL keeps its role's password in its data: once db runs with the new secret, and before its clients come back, set it there (host local):\n  podman exec mini-db-1 sh -c 'printf "ALTER ROLE CURRENT_USER PASSWORD \\$podmesh\\$%s\\$podmesh\\$;" "$(cat "$POSTGRES_PASSWORD_FILE")" | psql -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'\n`);
      const after = filesOf(state.path);
      // db and api share the one file db.password; the cache's files are untouched.
      expect(after['db.password']).not.toBe(before['db.password']);
      expect(after['db.password']).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect({ ...after, 'db.password': '' }).toEqual({ ...before, 'db.password': '' });
    } finally {
      rmSync(stacks, { recursive: true, force: true });
    }
  });
});
