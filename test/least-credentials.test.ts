// Least-privilege credentials: every client of PostgreSQL gets a role, password and schema of its
// own (a generated roles script creates them), every client of Redis an ACL user limited to its key
// prefix; `sharedCredentials` with a reason restores the shared superuser. Checked on ashchan-dev's
// generated files, then for real: the roles script on the PostgreSQL 15 test image through the
// official entrypoint (sourced on first start, then run by hand), and the Redis configuration on the
// Redis 7 test image, each container started from the generated compose settings with Podman inside
// a network namespace this test creates (no network: only the containers' loopback is used).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadStacks } from '../src/cli/load.ts';
import { afterRotation } from '../src/ops/rotation.ts';
import { Postgres, Redis, resolveStack, synth, type ResolvedService, type Stack } from '../src/index.ts';
import { validateConstructs } from '../src/synth/index.ts';
import { podmeshError } from './helpers/errors.ts';
import { createHosts, netnsReady, type SimHost, type SimNetwork } from './helpers/netns.ts';
import { buildServiceImages, importArgs, serviceImagesReady } from './helpers/service-images.ts';
import { miniStack, svc, tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';

const STACK = 'ashchan-dev';
const CLIENTS = { postgres: ['auth', 'boards', 'media', 'moderation', 'search'], redis: ['auth', 'boards', 'moderation', 'search'] } as const;

/** A service's compose definition, as the generated compose.yaml has it. */
interface ComposeService {
  readonly command?: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  readonly secrets?: readonly string[];
  readonly volumes?: readonly string[];
  readonly healthcheck?: { readonly test: readonly string[] };
}

describe('least-privilege credentials: ashchan-dev', () => {
  const dir = tempDir('podmesh-least-');
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const hostOut = join(out, STACK, 'hosts/local');
  let services: readonly ResolvedService[];
  let compose: Record<string, ComposeService>;
  let values: Record<string, string>;
  const byName = (name: string) => services.find((s) => s.name === name)!;
  const env = (name: string) => Object.fromEntries(byName(name).environment);

  beforeAll(async () => {
    // GIVEN ashchan-dev synthesized into a fresh output and state folder
    const app = await loadStacks(join(repoRoot, 'stacks'));
    await synth(app, { outDir: out, stateDir: state, stacks: [STACK] });
    services = resolveStack(app.node.findChild(STACK) as Stack).services;
    compose = (parse(readFileSync(join(hostOut, 'compose.yaml'), 'utf8')) as { services: Record<string, ComposeService> }).services;
    values = JSON.parse(readFileSync(join(state, STACK, 'secrets/values.json'), 'utf8')) as Record<string, string>;
  }, 120_000);
  afterAll(() => dir.cleanup());

  it('GIVEN a client of PostgreSQL and Redis THEN it connects as itself: its own role, schema, ACL user, key prefix and password files', () => {
    expect(env('auth')).toMatchObject({
      DB_USERNAME: 'auth',
      DB_SCHEMA: 'auth',
      DB_DATABASE: 'ashchan',
      DB_PASSWORD_FILE: '/run/secrets/auth.postgres-password',
      REDIS_USERNAME: 'auth',
      REDIS_PREFIX: 'auth:',
      REDIS_AUTH_FILE: '/run/secrets/auth.redis-password',
    });
    // media depends on PostgreSQL and MinIO, not Redis
    expect(Object.keys(env('media')).filter((k) => k.startsWith('REDIS_'))).toEqual([]);
    expect(byName('auth').secrets.map((f) => [f.variable, f.id, f.file])).toEqual([
      ['DB_PASSWORD_FILE', 'auth/postgres-password', 'auth.postgres-password'],
      ['REDIS_AUTH_FILE', 'auth/redis-password', 'auth.redis-password'],
    ]);
    // THEN one value per client and server, each generated once
    expect(Object.keys(values).sort()).toEqual([
      ...CLIENTS.postgres.map((c) => `${c}/postgres-password`),
      ...CLIENTS.redis.map((c) => `${c}/redis-password`),
      'media/minio-password',
      'minio/password',
      'postgres/password',
      'redis/password',
    ].sort());
    expect(new Set(Object.values(values)).size).toBe(Object.keys(values).length);
    expect(readFileSync(join(state, STACK, 'secrets/auth.postgres-password'), 'utf8')).toBe(values['auth/postgres-password']);
  });

  it('GIVEN PostgreSQL THEN it mounts every client\'s password (by path, no variable) and the roles script, which holds no secret', () => {
    const pg = byName('postgres');
    expect(pg.secrets.map((f) => [f.variable, f.file])).toEqual([['POSTGRES_PASSWORD_FILE', 'postgres.password'], ...CLIENTS.postgres.map((c) => [undefined, `${c}.postgres-password`])]);
    expect(pg.credentials).toEqual({ kind: 'postgres', database: 'ashchan', clients: CLIENTS.postgres.map((c) => ({ name: c, secretId: `${c}/postgres-password` })) });
    // ... each client's password mounted where the roles script reads it
    expect(pg.secrets.filter((f) => f.variable === undefined).map((f) => [f.id, f.target])).toEqual(CLIENTS.postgres.map((c) => [`${c}/postgres-password`, `/run/secrets/${c}.postgres-password`]));
    expect(compose.postgres!.volumes).toContain('./config/postgres/podmesh-roles.sh:/docker-entrypoint-initdb.d/podmesh-roles.sh:ro,Z');
    const script = readFileSync(join(hostOut, 'config/postgres/podmesh-roles.sh'), 'utf8');
    for (const c of CLIENTS.postgres) {
      expect(script).toContain(`ALTER ROLE "${c}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD $podmesh$%s$podmesh$;`);
      expect(script).toContain(`CREATE SCHEMA IF NOT EXISTS "${c}" AUTHORIZATION "${c}";`);
      expect(script).toContain(`ALTER ROLE "${c}" IN DATABASE "ashchan" SET search_path = "${c}";`);
      expect(script).toContain(`"$(cat /run/secrets/${c}.postgres-password)" \\`);
    }
    expect(script).toContain('podman exec -u postgres ashchan-postgres-1 sh /docker-entrypoint-initdb.d/podmesh-roles.sh');
    // No `set -u`, no exit: the entrypoint sources it
    expect(script).not.toMatch(/^\s*(set|exit)\b/m);
    // THEN no generated value is anywhere in out/
    const files = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)]));
    for (const f of files(out)) for (const [id, v] of Object.entries(values)) expect(readFileSync(f, 'utf8').includes(v), `${id} in ${f}`).toBe(false);
  });

  it('GIVEN Redis THEN its configuration holds the default user\'s password and, per client, an ACL user with only its password\'s SHA-256 and its prefix', () => {
    const conf = readFileSync(join(state, STACK, 'secrets/redis.password.conf'), 'utf8');
    const sha = (id: string) => createHash('sha256').update(values[id]!).digest('hex');
    expect(conf).toBe(
      `# Generated by podmesh. Secret: never commit, never copy out of the state folder or host root.\nrequirepass ${values['redis/password']}\n` +
        CLIENTS.redis.map((c) => `user ${c} on #${sha(`${c}/redis-password`)} ~${c}:* &${c}:* +@all -@admin -@dangerous\n`).join(''),
    );
    for (const c of CLIENTS.redis) expect(conf.includes(values[`${c}/redis-password`]!)).toBe(false);
    // Redis needs no client's password file: only its own two
    expect(byName('redis').secrets.map((f) => f.file)).toEqual(['redis.password.conf', 'redis.password']);
    expect(byName('redis').credentials?.clients.map((c) => c.name)).toEqual([...CLIENTS.redis]);
  });

  it('GIVEN a client\'s passwords rotated THEN the way out names PostgreSQL first, the roles command, then the client', () => {
    const lines = afterRotation({ name: STACK, services } as never, ['boards/postgres-password', 'boards/redis-password']);
    const text = lines.join('\n');
    expect(text).toContain('Redeploy on host local: postgres, redis first, then boards');
    expect(text).toContain('podman exec -u postgres ashchan-postgres-1 sh /docker-entrypoint-initdb.d/podmesh-roles.sh');
  });

  // ---- for real, on the test images ----
  const runnable = netnsReady() && !!tool('podman') && serviceImagesReady();
  describe.skipIf(!runnable)('on PostgreSQL 15 and Redis 7 (the official entrypoints)', () => {
    let net: SimNetwork | undefined;
    let host: SimHost;
    let podmanRoot: string;
    const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    const pm = (args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}) =>
      host.exec(
        [tool('podman')!, '--root', join(podmanRoot, 'root'), '--runroot', join(podmanRoot, 'runroot'), '--tmpdir', join(podmanRoot, 'tmp'), ...args],
        { timeoutMs: opts.timeoutMs ?? 60_000, env: { PATH, CONTAINERS_CONF: join(podmanRoot, 'containers.conf') }, ...(opts.input !== undefined ? { input: opts.input } : {}) },
      );

    /** A compose value as compose hands it on: `$$` is a literal `$`. */
    const unescape = (v: string) => v.replaceAll('$$', '$');
    /** The generated health check command of a compose service (`CMD-SHELL`, its text). */
    const healthOf = (name: string) => unescape(compose[name]!.healthcheck!.test[1]!);

    /** `podman run` of a generated compose service: its environment, command, secret files and generated config files; named volumes become anonymous ones. */
    async function runService(name: string, image: string): Promise<void> {
      const s = compose[name]!;
      const mounts = [
        ...(s.secrets ?? []).map((f) => `${join(state, STACK, 'secrets', f)}:/run/secrets/${f}:ro`),
        ...(s.volumes ?? []).filter((v) => v.startsWith('./')).map((v) => { const [src, target] = v.split(':'); return `${join(hostOut, src!)}:${target}:ro`; }),
      ];
      const r = await pm([
        'run', '-d', '--pull=never', '--network', 'none', '--name', name,
        ...Object.entries(s.environment).flatMap(([k, v]) => ['-e', `${k}=${unescape(v)}`]),
        ...mounts.flatMap((m) => ['-v', m]),
        image,
        ...(s.command ?? []).map(unescape),
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
    }

    /** A container's output: the entrypoints write to both streams. */
    const logsOf = (r: { stdout: string; stderr: string }) => `${r.stdout}\n${r.stderr}`;

    /** Polls `check` once a second for at most `ms`; the logs of `name` explain a timeout. */
    async function waitFor(name: string, what: string, check: () => Promise<boolean>, ms = 90_000): Promise<void> {
      const until = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > until) throw new Error(`${name}: ${what} not within ${ms} ms:\n${logsOf(await pm(['logs', name]))}`);
        await sleep(1_000);
      }
    }

    /** psql as `role` over TCP on the container's loopback (scram-sha-256, see beforeAll), the password on stdin. */
    const psqlAs = (role: string, password: string, sql: string) =>
      pm(['exec', '-i', '-u', 'postgres', 'postgres', 'sh', '-c', 'PGPASSWORD="$(cat)" exec psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -U "$0" -d ashchan -c "$1"', role, sql], { input: password });
    /** redis-cli as ACL user `user` (REDISCLI_AUTH from stdin). */
    const redisAs = (user: string, password: string, ...args: string[]) =>
      pm(['exec', '-i', 'redis', 'sh', '-c', 'REDISCLI_AUTH="$(cat)" exec redis-cli --user "$0" "$@"', user, ...args], { input: password });

    beforeAll(async () => {
      net = await createHosts(['db']);
      host = net.host('db');
      podmanRoot = join(net.workDir, 'podman');
      for (const d of ['root', 'runroot', 'tmp']) mkdirSync(join(podmanRoot, d), { recursive: true });
      writeFileSync(join(podmanRoot, 'containers.conf'), existsSync('/etc/containers/containers.conf') ? readFileSync('/etc/containers/containers.conf', 'utf8') : '');
      const images = await buildServiceImages();
      for (const name of ['postgres', 'redis'] as const) {
        const r = await pm(['import', ...importArgs(images[name], `localhost/podmesh-least/${name}:1`)], { timeoutMs: 180_000 });
        expect(r.exitCode, r.stderr).toBe(0);
      }
      await runService('postgres', 'localhost/podmesh-least/postgres:1');
      await runService('redis', 'localhost/podmesh-least/redis:1');
      await waitFor('postgres', 'first initialisation', async () => logsOf(await pm(['logs', 'postgres'])).includes('PostgreSQL init process complete') && (await pm(['exec', 'postgres', 'pg_isready', '-h', '127.0.0.1'])).exitCode === 0);
      // initdb's pg_hba.conf trusts TCP from 127.0.0.1 and ::1; without those lines the loopback
      // falls to the image's `host all all all scram-sha-256`, as a client on the mesh network does.
      const hba = await pm(['exec', '-u', 'postgres', 'postgres', 'sh', '-c', 'sed -i "/^host .* trust$/d" "$PGDATA/pg_hba.conf" && psql -X -q -At -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SELECT pg_reload_conf()" >/dev/null && grep "^host" "$PGDATA/pg_hba.conf"']);
      expect(hba.stdout.trim(), hba.stderr).toBe('host all all all scram-sha-256');
      await waitFor('redis', 'the health check', async () => (await pm(['exec', 'redis', 'sh', '-c', healthOf('redis')])).exitCode === 0, 30_000);
    }, 600_000);

    afterAll(async () => {
      if (net) {
        await pm(['rm', '-af', '-t', '0']).catch(() => undefined);
        await pm(['system', 'reset', '-f'], { timeoutMs: 60_000 }).catch(() => undefined);
        await net.teardown();
        expect(net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
      }
    }, 120_000);

    it('GIVEN the first start WHEN the entrypoint sourced the roles script THEN every client has a login role with no other attribute, owning its schema', async () => {
      const logs = logsOf(await pm(['logs', 'postgres']));
      expect(logs).toContain('sourcing /docker-entrypoint-initdb.d/podmesh-roles.sh');
      expect(logs).toContain(`podmesh-roles: roles of ${CLIENTS.postgres.join(', ')} are set in database ashchan`);
      const r = await pm(['exec', '-u', 'postgres', 'postgres', 'psql', '-X', '-At', '-U', 'ashchan', '-d', 'ashchan', '-c',
        "SELECT r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls, coalesce((SELECT string_agg(n.nspname, ',') FROM pg_namespace n WHERE n.nspowner = r.oid AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'), '') FROM pg_roles r WHERE r.rolname NOT LIKE 'pg\\_%' ORDER BY 1"]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual([
        'ashchan|t|t|t|t|t|t|',
        ...CLIENTS.postgres.map((c) => `${c}|t|f|f|f|f|f|${c}`),
      ].sort());
    });

    it('GIVEN two clients WHEN one reads the other\'s schema or the public one THEN PostgreSQL refuses it; its own schema is its search_path', async () => {
      // GIVEN auth's table in its own schema
      const own = await psqlAs('auth', values['auth/postgres-password']!, 'CREATE TABLE accounts (id int); INSERT INTO accounts VALUES (1); SELECT current_schema() || \':\' || count(*) FROM auth.accounts');
      expect(own.stdout.trim(), own.stderr).toBe('auth:1');
      // WHEN boards reads it
      const other = await psqlAs('boards', values['boards/postgres-password']!, 'SELECT * FROM auth.accounts');
      // THEN refused
      expect(other.exitCode).not.toBe(0);
      expect(other.stderr).toContain('permission denied for schema auth');
      const pub = await psqlAs('boards', values['boards/postgres-password']!, 'CREATE TABLE public.x (id int)');
      expect(pub.stderr).toContain('permission denied for schema public');
      // ... and a client's password is its own: boards with auth's is refused
      const wrong = await psqlAs('boards', values['auth/postgres-password']!, 'SELECT 1');
      expect(wrong.stderr).toContain('password authentication failed for user "boards"');
    });

    it('GIVEN an existing database WHEN the roles script is run again by hand (a password rotated) THEN it succeeds, keeps the data and sets the new password', async () => {
      // GIVEN boards' password replaced in its file (in place: the container sees the bind mount's new content)
      const file = join(state, STACK, 'secrets/boards.postgres-password');
      const rotated = `${values['boards/postgres-password']!}Rotated`;
      writeFileSync(file, rotated);
      try {
        // WHEN the documented command runs
        const r = await pm(['exec', '-u', 'postgres', 'postgres', 'sh', '/docker-entrypoint-initdb.d/podmesh-roles.sh']);
        // THEN
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        expect(r.stdout.trim()).toBe(`podmesh-roles: roles of ${CLIENTS.postgres.join(', ')} are set in database ashchan`);
        expect((await psqlAs('auth', values['auth/postgres-password']!, 'SELECT count(*) FROM accounts')).stdout.trim()).toBe('1');
        expect((await psqlAs('boards', rotated, 'SELECT current_user')).stdout.trim()).toBe('boards');
        expect((await psqlAs('boards', values['boards/postgres-password']!, 'SELECT 1')).stderr).toContain('password authentication failed');
      } finally {
        writeFileSync(file, values['boards/postgres-password']!);
      }
    });

    it('GIVEN a client\'s password file missing WHEN the roles script runs THEN it fails and says which file', async () => {
      const r = await pm(['exec', '-u', 'postgres', 'postgres', 'sh', '-c', 'sed "s#/run/secrets/search.postgres-password#/run/secrets/nothing-here#g" /docker-entrypoint-initdb.d/podmesh-roles.sh > /tmp/roles.sh && sh /tmp/roles.sh']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toContain('podmesh-roles: /run/secrets/nothing-here is missing, unreadable or empty');
    });

    it('GIVEN both servers running WHEN inspected THEN no password is in their configuration or environment', async () => {
      const r = await pm(['inspect', 'postgres', 'redis']);
      expect(r.exitCode, r.stderr).toBe(0);
      for (const [id, v] of Object.entries(values)) expect(r.stdout.includes(v), `${id} in podman inspect`).toBe(false);
    });

    it('GIVEN two Redis clients WHEN one touches the other\'s keys THEN NOPERM; its own prefix works, admin commands are refused, the default user still answers the health check', async () => {
      const auth = values['auth/redis-password']!;
      expect((await redisAs('auth', auth, 'SET', 'auth:session', '1')).stdout.trim()).toBe('OK');
      expect((await redisAs('boards', values['boards/redis-password']!, 'SET', 'boards:thread', '2')).stdout.trim()).toBe('OK');
      const other = await redisAs('auth', auth, 'GET', 'boards:thread');
      expect(`${other.stdout}${other.stderr}`).toContain('NOPERM');
      const admin = await redisAs('auth', auth, 'CONFIG', 'GET', 'requirepass');
      expect(`${admin.stdout}${admin.stderr}`).toContain('NOPERM');
      const wrong = await redisAs('auth', values['boards/redis-password']!, 'PING');
      expect(`${wrong.stdout}${wrong.stderr}`).toContain('WRONGPASS');
      const health = await pm(['exec', 'redis', 'sh', '-c', healthOf('redis')]);
      expect(health.exitCode, health.stderr).toBe(0);
    });
  });
});

describe('least-privilege credentials: the shared opt-out', () => {
  function optStack(postgres: object | undefined, redis: object | undefined) {
    const { app, stack } = miniStack('opt');
    const db = new Postgres(stack, 'db', postgres ? { sharedCredentials: postgres as never } : {});
    const cache = new Redis(stack, 'cache', redis ? { sharedCredentials: redis as never } : {});
    svc(stack, 'api', { dependsOn: [db, cache] });
    return { app, stack };
  }

  it.each([
    ['no reason', {}],
    ['an empty reason', { reason: ' ' }],
  ])('GIVEN sharedCredentials with %s THEN synth refuses it and says what to write', (_what, waiver) => {
    const { stack } = optStack(waiver, waiver);
    const messages = validateConstructs([stack]).map((i) => `[${i.path}] ${i.message}`);
    expect(messages.some((m) => m.startsWith('[opt/db] sharedCredentials.reason: every relaxation of a secure default needs a reason'))).toBe(true);
    expect(messages.some((m) => m.startsWith('[opt/cache] sharedCredentials.reason: every relaxation of a secure default needs a reason'))).toBe(true);
  });

  it('GIVEN sharedCredentials with a reason THEN clients use the superuser and the default user, no roles script is mounted, TOPOLOGY.md shows why', async () => {
    const reason = 'the legacy application creates its tables in the public schema';
    const { stack, app } = optStack({ reason }, { reason: 'one tenant' });
    const r = resolveStack(stack);
    const api = Object.fromEntries(r.services.find((s) => s.name === 'api')!.environment);
    expect(api).toMatchObject({ DB_USERNAME: 'mini', DB_PASSWORD_FILE: '/run/secrets/db.password', REDIS_AUTH_FILE: '/run/secrets/cache.password' });
    expect(api.DB_SCHEMA).toBeUndefined();
    expect(api.REDIS_USERNAME).toBeUndefined();
    const db = r.services.find((s) => s.name === 'db')!;
    expect(db.credentials).toEqual({ kind: 'postgres', shared: { user: 'mini', reason }, database: 'mini', clients: [{ name: 'api', secretId: 'db/password' }] });
    expect(db.mounts.map((m) => m.target)).not.toContain('/docker-entrypoint-initdb.d/podmesh-roles.sh');
    const out = tempDir();
    const st = tempDir();
    try {
      await synth(app, { outDir: out.path, stateDir: st.path });
      const topology = readFileSync(join(out.path, 'opt/TOPOLOGY.md'), 'utf8');
      expect(topology).toContain(`| db | api | shared: every client connects as \`mini\` (${reason}) |`);
      expect(topology).toContain('| cache | api | shared: every client authenticates as `default` (one tenant) |');
      expect(existsSync(join(out.path, 'opt/hosts/local/config/db/podmesh-roles.sh'))).toBe(false);
    } finally {
      out.cleanup();
      st.cleanup();
    }
  });

  it.each([
    ['mini', 'Postgres superuser', 'which is db\'s superuser (user "mini")'],
    ['public', 'reserved role', 'a name PostgreSQL reserves'],
  ])('GIVEN a client named %s (%s) THEN synth refuses its role and names the fixes', (name, _what, message) => {
    const { stack } = miniStack('opt');
    const db = new Postgres(stack, 'db');
    svc(stack, name, { dependsOn: [db] });
    const err = podmeshError(() => resolveStack(stack));
    const issue = err.issues.find((i) => i.path === `opt/${name}`)!;
    expect(issue.message).toContain(message);
    expect(issue.message).toContain('sharedCredentials: { reason: "…" }');
  });

  it('GIVEN a client named default THEN synth refuses its Redis ACL user', () => {
    const { stack } = miniStack('opt');
    const cache = new Redis(stack, 'cache');
    svc(stack, 'default', { dependsOn: [cache] });
    const err = podmeshError(() => resolveStack(stack));
    expect(err.issues.find((i) => i.path === 'opt/default')!.message).toContain('which is Redis\' default user');
  });
});
