// Service configuration: the seed's environment and URLs in compose and Quadlet alike, the call
// policy, the Hyperf PHP files (judged by php), and the generated secrets.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { App, Host, Network, Postgres, Redis, Minio, Stack, synth, type Issue } from '../src/index.ts';
import { loadStacks } from '../src/cli/load.ts';
import { renderHyperf } from '../src/render/hyperf.ts';
import { renderOpenssl } from '../src/render/openssl.ts';
import { phpString } from '../src/render/template-php.ts';
import { resolveStack } from '../src/resolve/resolve.ts';
import { podmeshRejection } from './helpers/errors.ts';
import { svc, tempDir, testState } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';
import { repoRoot, tool } from './helpers/tools.ts';
import { dryRun, podmanRun } from './helpers/units.ts';

const quadlet = tool('quadlet');
const php = tool('php');

/** The seed's "Environment Variables", identical for every application service. */
const SEED_MTLS = {
  MTLS_ENABLED: 'true',
  MTLS_PORT: '8443',
  MTLS_CERT_FILE: '/etc/mtls/server.crt',
  MTLS_KEY_FILE: '/etc/mtls/server.key',
  MTLS_CA_FILE: '/etc/mtls/ca.crt',
  MTLS_CLIENT_CERT_FILE: '/etc/mtls/client.crt',
  MTLS_CLIENT_KEY_FILE: '/etc/mtls/client.key',
  MTLS_VERIFY_CLIENT: 'true',
  MTLS_MIN_TLS_VERSION: 'TLSv1.3',
  MTLS_CRL_FILE: '/etc/mtls/crl.pem',
  OPENSSL_CONF: '/etc/podmesh/openssl.cnf',
};
/** A PostgreSQL client connects as its own role, named after it, owning the schema of the same name. */
const DB = (client: string) => ({ DB_DRIVER: 'pgsql', DB_HOST: 'postgres.ashchan.local', DB_PORT: '5432', DB_DATABASE: 'ashchan', DB_USERNAME: client, DB_SCHEMA: client });
/** A Redis client connects as its own ACL user, named after it, limited to the keys under its prefix. */
const REDIS = (client: string) => ({ REDIS_HOST: 'redis.ashchan.local', REDIS_PORT: '6379', REDIS_USERNAME: client, REDIS_PREFIX: `${client}:` });
/** media, MinIO's only client, connects as its own MinIO user, named after it. */
const S3 = {
  S3_ENDPOINT: 'https://minio.ashchan.local:9000',
  S3_KEY: 'media',
  S3_BUCKET: 'ashchan',
  S3_REGION: 'us-east-1',
  S3_USE_PATH_STYLE_ENDPOINT: 'true',
  S3_CA_FILE: '/etc/mtls/ca.crt',
};
const url = (s: string) => `https://${s}.ashchan.local:8443`;

/** Expected environment of each Ashchan service (plain variables; secrets are checked apart). */
const EXPECTED: Record<string, Record<string, string>> = {
  gateway: {
    SERVICE_NAME: 'api-gateway',
    SERVICE_DNS_NAME: 'gateway.ashchan.local',
    ...SEED_MTLS,
    MTLS_ALLOWED_CLIENTS: '',
    AUTH_SERVICE_URL: url('auth'),
    BOARDS_SERVICE_URL: url('boards'),
    MEDIA_SERVICE_URL: url('media'),
    SEARCH_SERVICE_URL: url('search'),
    MODERATION_SERVICE_URL: url('moderation'),
  },
  auth: { SERVICE_NAME: 'auth-accounts', SERVICE_DNS_NAME: 'auth.ashchan.local', ...SEED_MTLS, MTLS_ALLOWED_CLIENTS: 'gateway.ashchan.local', ...DB('auth'), ...REDIS('auth') },
  boards: {
    SERVICE_NAME: 'boards-threads-posts',
    SERVICE_DNS_NAME: 'boards.ashchan.local',
    ...SEED_MTLS,
    MTLS_ALLOWED_CLIENTS: 'gateway.ashchan.local',
    MEDIA_SERVICE_URL: url('media'),
    MODERATION_SERVICE_URL: url('moderation'),
    ...DB('boards'),
    ...REDIS('boards'),
  },
  media: { SERVICE_NAME: 'media-uploads', SERVICE_DNS_NAME: 'media.ashchan.local', ...SEED_MTLS, MTLS_ALLOWED_CLIENTS: 'boards.ashchan.local,gateway.ashchan.local', ...DB('media'), ...S3 },
  search: { SERVICE_NAME: 'search-indexing', SERVICE_DNS_NAME: 'search.ashchan.local', ...SEED_MTLS, MTLS_ALLOWED_CLIENTS: 'gateway.ashchan.local', ...DB('search'), ...REDIS('search') },
  moderation: {
    SERVICE_NAME: 'moderation-anti-spam',
    SERVICE_DNS_NAME: 'moderation.ashchan.local',
    ...SEED_MTLS,
    MTLS_ALLOWED_CLIENTS: 'boards.ashchan.local,gateway.ashchan.local',
    ...DB('moderation'),
    ...REDIS('moderation'),
  },
  postgres: { POSTGRES_DB: 'ashchan', POSTGRES_USER: 'ashchan' },
  redis: {},
  minio: { MINIO_ROOT_USER: 'ashchan' },
  // MinIO's setup: its script names every file itself, no variable.
  'minio-setup': {},
};

/** The clients of each server: each has a PostgreSQL role and password, or a Redis ACL user and password, of its own. */
const PG_CLIENTS = ['auth', 'boards', 'media', 'moderation', 'search'];
const REDIS_CLIENTS = ['auth', 'boards', 'moderation', 'search'];

/** Secret files each service mounts under /run/secrets, by the variable naming each: a client's own passwords, a server's own. */
const SECRET_FILES: Record<string, Record<string, string>> = {
  gateway: {},
  auth: { DB_PASSWORD_FILE: 'auth.postgres-password', REDIS_AUTH_FILE: 'auth.redis-password' },
  boards: { DB_PASSWORD_FILE: 'boards.postgres-password', REDIS_AUTH_FILE: 'boards.redis-password' },
  media: { DB_PASSWORD_FILE: 'media.postgres-password', S3_SECRET_FILE: 'media.minio-password' },
  search: { DB_PASSWORD_FILE: 'search.postgres-password', REDIS_AUTH_FILE: 'search.redis-password' },
  moderation: { DB_PASSWORD_FILE: 'moderation.postgres-password', REDIS_AUTH_FILE: 'moderation.redis-password' },
  postgres: { POSTGRES_PASSWORD_FILE: 'postgres.password' },
  redis: { REDIS_CONFIG_FILE: 'redis.password.conf', REDIS_PASSWORD_FILE: 'redis.password' },
  minio: { MINIO_ROOT_PASSWORD_FILE: 'minio.password' },
  'minio-setup': {},
};
/**
 * Secret files mounted with no variable naming them: PostgreSQL's roles script reads each client's
 * password by its path. Redis mounts none of its clients' files (its configuration holds their hashes).
 */
const UNNAMED_FILES: Record<string, readonly string[]> = {
  postgres: PG_CLIENTS.map((c) => `${c}.postgres-password`),
  // MinIO's setup reads the root password and media's, which it sets as media's MinIO user's.
  'minio-setup': ['media.minio-password', 'minio.password'],
};
/** Every secret file a service mounts, sorted. */
const mountedFiles = (name: string) => [...new Set([...Object.values(SECRET_FILES[name]!), ...(UNNAMED_FILES[name] ?? [])])].sort();
/**
 * The SPIFFE variables of an application service of `stack`: its own ID, and its callers' (the CNs of
 * MTLS_ALLOWED_CLIENTS, `<service>.ashchan.local`) as spiffe://ashchan.local/<stack>/<service>.
 */
function spiffeOf(stack: string, name: string, env: Record<string, string>): Record<string, string> {
  if (env.MTLS_ALLOWED_CLIENTS === undefined) return {};
  const id = (service: string) => `spiffe://ashchan.local/${stack}/${service}`;
  const callers = env.MTLS_ALLOWED_CLIENTS.split(',').filter(Boolean).map((cn) => id(cn.replace(/\.ashchan\.local$/, '')));
  return { SERVICE_SPIFFE_ID: id(name), MTLS_ALLOWED_SPIFFE_IDS: callers.join(',') };
}
/** The whole environment of a service of `stack`: the settings above, its SPIFFE IDs and the variables naming its secret files. */
const envOf = (stack: string, name: string) => ({
  ...EXPECTED[name],
  ...spiffeOf(stack, name, EXPECTED[name]!),
  ...Object.fromEntries(Object.entries(SECRET_FILES[name]!).map(([k, f]) => [k, `/run/secrets/${f}`])),
});

describe.each(['ashchan-dev', 'ashchan-prod'])('environment of %s', (stackName) => {
  const tmp = tempDir();
  const out = join(tmp.path, 'out');
  const state = join(tmp.path, '.podmesh');
  beforeAll(async () => {
    await synth(await loadStacks(join(repoRoot, 'stacks')), { outDir: out, stateDir: state, stacks: [stackName] });
  });
  afterAll(() => tmp.cleanup());

  const hosts = () => readdirSync(join(out, stackName, 'hosts'));
  const composeServices = () =>
    Object.assign({}, ...hosts().map((h) => parse(readFileSync(join(out, stackName, 'hosts', h, 'compose.yaml'), 'utf8')).services)) as Record<string, any>;
  const plainHttp = stackName === 'ashchan-dev';

  it.each(Object.keys(EXPECTED))('GIVEN %s WHEN its compose service is read THEN its environment is the seed\'s list plus its URLs and settings (its own credentials), and its secret files', (name) => {
    const s = composeServices()[name];
    expect(s.environment ?? {}).toEqual(envOf(stackName, name));
    expect(s.env_file).toBeUndefined();
    const files = mountedFiles(name);
    if (files.length > 0) expect(s.secrets).toEqual(files);
    else expect(s.secrets).toBeUndefined();
    // A read-only container with secrets gets a tmpfs at /run/secrets (Podman mounts secrets before /run's tmpfs).
    expect((s.tmpfs ?? []).includes('/run/secrets:mode=0755'), `${name} tmpfs ${s.tmpfs}`).toBe(files.length > 0);
  });

  it.skipIf(!quadlet)('GIVEN every Quadlet container WHEN run by quadlet THEN podman gets the same environment, no env file and no secret bind mount, and each secret file as a Podman secret of the stack at /run/secrets (a tmpfs)', () => {
    for (const h of hosts()) {
      const gen = dryRun(quadlet!, join(out, stackName, 'hosts', h, 'quadlet'), plainHttp);
      for (const name of Object.keys(composeServices())) {
        const unit = gen.services.get(`ashchan-${name}.service`);
        if (!unit) continue;
        const run = podmanRun(unit);
        expect(run.env, `${h}/${name}`).toEqual(envOf(stackName, name));
        expect(run.envFiles).toEqual([]);
        expect(run.volumes.filter((v) => v.includes('secrets'))).toEqual([]);
        const files = mountedFiles(name);
        expect(run.secrets).toEqual(files.map((f) => `${stackName}-${f},type=mount,target=${f}`));
        expect(run.tmpfs.includes('/run/secrets:mode=0755'), `${h}/${name} tmpfs ${run.tmpfs}`).toBe(files.length > 0);
      }
    }
  });

  it('GIVEN the state folder WHEN read THEN values.json 0600, one 0444 file per secret in the 0700 folder (each client\'s own passwords, Redis\' as its config with one ACL user per client), and no out/ file contains a secret value', () => {
    const values = JSON.parse(readFileSync(join(state, stackName, 'secrets/values.json'), 'utf8')) as Record<string, string>;
    const clientIds = [...PG_CLIENTS.map((c) => `${c}/postgres-password`), ...REDIS_CLIENTS.map((c) => `${c}/redis-password`), 'media/minio-password'];
    expect(Object.keys(values).sort()).toEqual([...clientIds, 'minio/password', 'postgres/password', 'redis/password'].sort());
    // Every value is generated on its own: no client shares a password with another or with its server.
    expect(new Set(Object.values(values)).size).toBe(Object.keys(values).length);
    expect(statSync(join(state, stackName, 'secrets/values.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, stackName, 'secrets')).mode & 0o777).toBe(0o700);
    const dir = join(state, stackName, 'secrets');
    expect(readdirSync(dir).sort()).toEqual([...clientIds.map((id) => id.replace('/', '.')), 'minio.password', 'postgres.password', 'redis.password', 'redis.password.conf', 'values.json'].sort());
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(f === 'values.json' ? 0o600 : 0o444);
    // A value file holds the value alone; a client's is the one file both it and PostgreSQL (its roles script) mount.
    for (const id of [...clientIds, 'minio/password', 'postgres/password', 'redis/password']) expect(readFileSync(join(dir, id.replace('/', '.')), 'utf8'), id).toBe(values[id]);
    // Redis' configuration: the default user's password, then per client an ACL user with only its password's SHA-256 and its prefix.
    const sha = (id: string) => createHash('sha256').update(values[id]!).digest('hex');
    expect(readFileSync(join(dir, 'redis.password.conf'), 'utf8')).toBe(
      `# Generated by podmesh. Secret: never commit, never copy out of the state folder or host root.\nrequirepass ${values['redis/password']}\n` +
        REDIS_CLIENTS.map((c) => `user ${c} on #${sha(`${c}/redis-password`)} ~${c}:* &${c}:* +@all -@admin -@dangerous\n`).join(''),
    );
    const everything = readdirSync(join(out, stackName), { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => readFileSync(join(d.parentPath, d.name), 'utf8'))
      .join('\n');
    for (const [id, v] of Object.entries(values)) expect(everything.includes(v), `${id} in out/`).toBe(false);
  });

  it('GIVEN a second synth WHEN nothing changed THEN the secrets are kept', async () => {
    const before = readFileSync(join(state, stackName, 'secrets/values.json'), 'utf8');
    await synth(await loadStacks(join(repoRoot, 'stacks')), { outDir: out, stateDir: state, stacks: [stackName] });
    expect(readFileSync(join(state, stackName, 'secrets/values.json'), 'utf8')).toBe(before);
  });
});

describe('a damaged secrets file', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('GIVEN values.json is not JSON WHEN synthesized THEN a clear error and no new passwords over it', async () => {
    const app = new App();
    const stack = new Stack(app, 'sec', { project: 'sec' });
    new Host(stack, 'h');
    new Network(stack, 'mesh', { subnet: '10.94.0.0/24', domain: 'sec.local' });
    const db = new Postgres(stack, 'db');
    svc(stack, 'api', { dependsOn: [db] });
    const opts = { outDir: join(tmp.path, 'out'), stateDir: join(tmp.path, 'state') };
    await synth(app, opts);
    const file = join(tmp.path, 'state/sec/secrets/values.json');
    writeFileSync(file, '{ broken');
    const err = await podmeshRejection(synth(app, opts));
    expect(err.issues[0]!.path).toBe(file);
    expect(err.issues[0]!.message).toMatch(/^is not valid JSON .*Restore secrets\/values\.json from a backup/);
    expect(readFileSync(file, 'utf8')).toBe('{ broken');
  });
});

describe.skipIf(!php)('Hyperf configuration, judged by php', () => {
  const tmp = tempDir();
  const out = join(tmp.path, 'out');
  beforeAll(async () => {
    await synth(await loadStacks(join(repoRoot, 'stacks')), { outDir: out, stateDir: join(tmp.path, '.podmesh') });
  });
  afterAll(() => tmp.cleanup());

  const phpFiles = () =>
    readdirSync(out, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && d.name.endsWith('.php'))
      .map((d) => join(d.parentPath, d.name))
      .sort();

  it('GIVEN every generated PHP file WHEN php -l THEN no syntax error', async () => {
    const files = phpFiles();
    // Per service: its Policy.php alone; per host with Hyperf services (ashchan-dev's one,
    // ashchan-prod's edge, app and data) in config/_shared/: the three shared app/Podmesh classes,
    // middlewares.http, and server, mtls_client and mtls_policy.
    expect(files.length).toBe(2 * 6 + 4 * 7);
    expect(files.filter((f) => f.includes('/config/_shared/')).map((f) => f.slice(f.indexOf('/config/_shared/')))).toEqual(
      Array.from({ length: 4 }, () =>
        ['app/Podmesh/Crl.php', 'app/Podmesh/MtlsClientFactory.php', 'app/Podmesh/MtlsMiddleware.php', 'autoload/middlewares.http.php', 'autoload/mtls_client.php', 'autoload/mtls_policy.php', 'autoload/server.php'].map((f) => `/config/_shared/${f}`),
      ).flat(),
    );
    expect(files.filter((f) => !f.includes('/config/_shared/')).every((f) => f.endsWith('/Policy.php'))).toBe(true);
    // PHP 8.2's -l reads one file per process: four at a time (84 processes one by one took a minute on a busy machine).
    for (let i = 0; i < files.length; i += 4) {
      const batch = files.slice(i, i + 4);
      const results = await Promise.all(batch.map((f) => execa(php!, ['-l', f], { reject: false, timeout: 60_000 })));
      results.forEach((r, j) => expect(r.exitCode, `${batch[j]}\n${r.stdout}${r.stderr}`).toBe(0));
    }
  }, 180_000);

  /**
   * Includes a config file with stand-ins for Hyperf/Swoole classes and constants, the service's
   * own class `policy` (its app/Podmesh/Policy.php) loaded first as Composer would; returns it as JSON.
   */
  function include(file: string, policy: string): any {
    const script = `<?php
namespace Hyperf\\Server { class Server { const SERVER_HTTP = 1; } class Event { const ON_REQUEST = 'request'; const ON_WORKER_START = 'workerStart'; const ON_PIPE_MESSAGE = 'pipeMessage'; const ON_WORKER_EXIT = 'workerExit'; } }
namespace {
  foreach (['SWOOLE_PROCESS' => 2, 'SWOOLE_SOCK_TCP' => 1, 'SWOOLE_SSL' => 512, 'SWOOLE_SSL_TLSv1_3' => 64, 'BASE_PATH' => '/opt/www'] as $k => $v) { if (!defined($k)) define($k, $v); }
  function swoole_cpu_num(): int { return 2; }
  require $argv[2];
  echo json_encode(include $argv[1], JSON_UNESCAPED_SLASHES);
}`;
    const runner = join(tmp.path, 'include.php');
    writeFileSync(runner, script);
    const r = spawnSync(php!, [runner, file, policy], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`php failed on ${file}:\n${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  it('GIVEN boards in ashchan-dev WHEN its config is included THEN Swoole settings for mTLS, TLS 1.3, the plain HTTP listener, its client options and policy', () => {
    const dir = join(out, 'ashchan-dev/hosts/local/config/_shared/autoload');
    const boards = join(out, 'ashchan-dev/hosts/local/config/boards/Policy.php');
    const server = include(join(dir, 'server.php'), boards);
    expect(server.servers).toHaveLength(2);
    // THEN the TLS keys are in `settings` (what Hyperf hands to Swoole), with no option Swoole lacks.
    expect(server.servers[0]).toEqual({
      name: 'http',
      type: 1,
      host: '0.0.0.0',
      port: 8443,
      sock_type: 1 | 512,
      callbacks: { request: ['Hyperf\\HttpServer\\Server', 'onRequest'] },
      settings: {
        ssl_cert_file: '/etc/mtls/server.crt',
        ssl_key_file: '/etc/mtls/server.key',
        ssl_verify_peer: true,
        ssl_client_cert_file: '/etc/mtls/ca.crt',
        ssl_verify_depth: 3,
        ssl_protocols: 64,
      },
    });
    expect(server.servers[1]).toEqual({
      name: 'http-9503',
      type: 1,
      host: '0.0.0.0',
      port: 9503,
      sock_type: 1,
      callbacks: { request: ['Hyperf\\HttpServer\\Server', 'onRequest'] },
      settings: { open_http_protocol: true },
    });
    expect(Object.keys(server.callbacks)).toEqual(['workerStart', 'pipeMessage', 'workerExit']);
    expect(server.settings).toMatchObject({ enable_coroutine: true, worker_num: 2, pid_file: '/opt/www/runtime/hyperf.pid' });
    const client = include(join(dir, 'mtls_client.php'), boards);
    // THEN only options hyperf/guzzle's CoroutineHandler maps, and verification switched back on through `swoole`.
    expect(client.http_client.default_options).toEqual({
      verify: '/etc/mtls/ca.crt',
      cert: '/etc/mtls/client.crt',
      ssl_key: '/etc/mtls/client.key',
      timeout: 5,
      swoole: { ssl_verify_peer: true, ssl_allow_self_signed: false, ssl_cafile: '/etc/mtls/ca.crt', ssl_protocols: 64 },
    });
    expect(client.mtls_services).toEqual({ media: 'https://media.ashchan.local:8443', moderation: 'https://moderation.ashchan.local:8443' });
    const policy = include(join(dir, 'mtls_policy.php'), boards);
    expect(policy.mtls_policy).toEqual({
      service: 'boards-threads-posts',
      dns_name: 'boards.ashchan.local',
      spiffe_id: 'spiffe://ashchan.local/ashchan-dev/boards',
      allowed_clients: ['gateway.ashchan.local'],
      allowed_spiffe_ids: ['spiffe://ashchan.local/ashchan-dev/gateway'],
      calls: { media: 'https://media.ashchan.local:8443', moderation: 'https://moderation.ashchan.local:8443' },
      crl_file: '/etc/mtls/crl.pem',
    });
  });

  it('GIVEN ashchan-prod (plain HTTP off) WHEN server.php is included THEN only the mTLS server', () => {
    const server = include(join(out, 'ashchan-prod/hosts/app/config/_shared/autoload/server.php'), join(out, 'ashchan-prod/hosts/app/config/auth/Policy.php'));
    expect(server.servers.map((s: any) => [s.name, s.port])).toEqual([['http', 8443]]);
  });

  it('GIVEN the gateway WHEN server.php is included THEN its public port is a TLS listener with the public certificate and no client verification', () => {
    const server = include(join(out, 'ashchan-prod/hosts/edge/config/_shared/autoload/server.php'), join(out, 'ashchan-prod/hosts/edge/config/gateway/Policy.php'));
    expect(server.servers.map((s: any) => [s.name, s.port, s.sock_type])).toEqual([['http', 8443, 1 | 512], ['public', 9501, 1 | 512]]);
    expect(server.servers[1].settings).toEqual({ ssl_cert_file: '/etc/mtls/public.crt', ssl_key_file: '/etc/mtls/public.key', ssl_verify_peer: false, ssl_protocols: 64 });
  });

  it('GIVEN every mTLS service WHEN synthesized THEN its openssl.cnf allows TLS 1.3 with the seed\'s two suites only', () => {
    const files = readdirSync(out, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('/openssl.cnf'));
    // One per host with mTLS services, which they share: ashchan-dev's one host, ashchan-prod's edge, app and data.
    expect(files.sort()).toEqual(['ashchan-dev/hosts/local', 'ashchan-prod/hosts/app', 'ashchan-prod/hosts/data', 'ashchan-prod/hosts/edge'].map((h) => `${h}/config/_shared/openssl.cnf`));
    for (const f of files) {
      const text = readFileSync(join(out, f), 'utf8');
      expect(text).toMatch(/^MinProtocol = TLSv1\.3$/m);
      expect(text).toMatch(/^Ciphersuites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256$/m);
      expect(text).toMatch(/^openssl_conf = podmesh_openssl$/m);
    }
  });

  it('GIVEN a service name with quotes, $, backslashes and a newline WHEN rendered THEN php reads it back exactly', async () => {
    const nasty = `it's "$HOME" \\' \\\\ {$x} ?>\n<?php echo 1; //`;
    // Through synth: a name unit files can carry (no newline), into Policy.php and back through php (mtls_policy.php reads it).
    const name = nasty.replace('\n', ' ');
    const app = new App();
    const stack = new Stack(app, 'esc', { project: 'esc' });
    new Host(stack, 'h');
    new Network(stack, 'mesh', { subnet: '10.95.0.0/24', domain: 'esc.local' });
    svc(stack, 'api', { serviceName: name });
    await synth(app, { outDir: join(tmp.path, 'esc-out'), stateDir: join(tmp.path, 'esc-state') });
    const policy = join(tmp.path, 'esc-out/esc/hosts/h/config/api/Policy.php');
    expect(spawnSync(php!, ['-l', policy], { encoding: 'utf8' }).status).toBe(0);
    expect(include(join(tmp.path, 'esc-out/esc/hosts/h/config/_shared/autoload/mtls_policy.php'), policy).mtls_policy.service).toBe(name);
    // The helper itself, over the same value, through php.
    const file = join(tmp.path, 'lit.php');
    writeFileSync(file, `<?php return ${phpString(nasty)};\n`);
    expect(spawnSync(php!, ['-l', file], { encoding: 'utf8' }).status).toBe(0);
    const r = spawnSync(php!, ['-r', `echo json_encode(include '${file}');`], { encoding: 'utf8' });
    expect(JSON.parse(r.stdout)).toBe(nasty);
  });
});

interface PolicyCase {
  readonly name: string;
  readonly build: (stack: Stack) => void;
  readonly expect: readonly [path: string, fragment: string];
}

const POLICY_CASES: PolicyCase[] = [
  {
    name: 'an undeclared call (a dependency on an mTLS service not in calls)',
    build: (stack) => {
      const auth = svc(stack, 'auth');
      svc(stack, 'gateway', { dependsOn: [auth] });
    },
    expect: ['pol/gateway', 'depends on auth, an mTLS service, but its call policy does not allow calling it. Add it to calls (calls: [auth, …])'],
  },
  {
    name: 'a call to an infrastructure service through mTLS',
    build: (stack) => {
      const db = new Postgres(stack, 'db');
      svc(stack, 'api', { calls: [db as never], dependsOn: [db] });
    },
    expect: ['pol/api', 'calls db through mTLS, but db is infrastructure without an mTLS listener. Remove it from calls and list it in dependsOn'],
  },
  {
    name: 'a policy naming an unknown service',
    build: (stack) => {
      svc(stack, 'boards');
      svc(stack, 'gateway', { calls: ['bords'] });
    },
    expect: ['pol/gateway', 'calls unknown service "bords". Did you mean "boards"? Services with mTLS: boards, gateway.'],
  },
  {
    name: 'a service calling itself',
    build: (stack) => {
      svc(stack, 'loop', { calls: ['loop'] });
    },
    expect: ['pol/loop', 'calls itself'],
  },
  {
    name: 'a generated variable set by hand',
    build: (stack) => {
      const db = new Postgres(stack, 'db');
      svc(stack, 'api', { dependsOn: [db], environment: { DB_PASSWORD: 'hunter2' } });
    },
    // api's own password for db (its own role), never db's superuser password
    expect: ['pol/api', 'environment variable DB_PASSWORD is generated by podmesh (DB_PASSWORD=(a secret: a file mounted at /run/secrets/api.db-password, named by DB_PASSWORD_FILE))'],
  },
  {
    name: 'two databases of one kind',
    build: (stack) => {
      const a = new Redis(stack, 'cache-a');
      const b = new Redis(stack, 'cache-b');
      svc(stack, 'api', { dependsOn: [a, b] });
    },
    expect: ['pol/api', 'depends on two Redis services (cache-a, cache-b)'],
  },
];

describe('call policy and environment mistakes', () => {
  const out = tempDir();
  let before: Record<string, string>;
  beforeAll(() => {
    before = treeState(out.path);
  });
  afterAll(() => out.cleanup());

  it.each(POLICY_CASES)('$name', async (c) => {
    const app = new App();
    const stack = new Stack(app, 'pol', { project: 'pol' });
    new Host(stack, 'h');
    new Network(stack, 'mesh', { subnet: '10.96.0.0/24', domain: 'pol.local' });
    c.build(stack);
    const err = await podmeshRejection(synth(app, { stateDir: testState, outDir: out.path }));
    const [path, fragment] = c.expect;
    const match = (i: Issue) => i.path === path && i.message.includes(fragment);
    expect(err.issues.some(match), err.issues.map((i) => `[${i.path}] ${i.message}`).join('\n')).toBe(true);
    expect(treeState(out.path)).toEqual(before);
  });

  it('GIVEN Minio with a bucket WHEN a client depends on it THEN S3_BUCKET follows it', async () => {
    const app = new App();
    const stack = new Stack(app, 's3', { project: 's3' });
    new Host(stack, 'h');
    new Network(stack, 'mesh', { subnet: '10.97.0.0/24', domain: 's3.local' });
    const store = new Minio(stack, 'store', { bucket: 'uploads' });
    svc(stack, 'api', { dependsOn: [store] });
    await synth(app, { stateDir: testState, outDir: out.path });
    const doc = parse(readFileSync(join(out.path, 's3/hosts/h/compose.yaml'), 'utf8'));
    expect(doc.services.api.environment).toMatchObject({ S3_BUCKET: 'uploads', S3_KEY: 'api', S3_SECRET_FILE: '/run/secrets/api.store-password', S3_ENDPOINT: 'https://store.s3.local:9000' });
    // ... and the setup's script creates that bucket and limits api's policy to it.
    const script = readFileSync(join(out.path, 's3/hosts/h/config/store/podmesh-users.sh'), 'utf8');
    expect(script).toContain("mc mb --ignore-existing 'podmesh/uploads'");
    expect(script).toContain('"Resource":["arn:aws:s3:::uploads/*"]');
  });
});

describe('env files', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('GIVEN an env file WHEN synthesized THEN its variables merge under environment, and a generated name in it is an error naming the file', async () => {
    const file = join(tmp.path, 'auth.env');
    writeFileSync(file, '# settings\nLOG_LEVEL=info\nexport FEATURE_X="on"\nQUOTED=\'$literal\'\n');
    const build = (extra: Record<string, string> = {}) => {
      const app = new App();
      const stack = new Stack(app, 'envf', { project: 'envf' });
      new Host(stack, 'h');
      new Network(stack, 'mesh', { subnet: '10.98.0.0/24', domain: 'envf.local' });
      svc(stack, 'api', { envFiles: [file], environment: { LOG_LEVEL: 'debug', ...extra } });
      return app;
    };
    await synth(build(), { stateDir: testState, outDir: join(tmp.path, 'out') });
    const doc = parse(readFileSync(join(tmp.path, 'out/envf/hosts/h/compose.yaml'), 'utf8'));
    expect(doc.services.api.environment).toMatchObject({ LOG_LEVEL: 'debug', FEATURE_X: 'on', QUOTED: '$$literal' });

    writeFileSync(file, 'MTLS_PORT=9443\n');
    const err = await podmeshRejection(synth(build(), { stateDir: testState, outDir: join(tmp.path, 'out') }));
    expect(err.issues).toEqual([{ path: 'envf/api', message: `environment variable MTLS_PORT from env file ${file} is generated by podmesh (MTLS_PORT=8443). Remove it from the file.` }]);

    const missing = join(tmp.path, 'nope.env');
    const app = new App();
    const stack = new Stack(app, 'envf', { project: 'envf' });
    new Host(stack, 'h');
    new Network(stack, 'mesh', { subnet: '10.98.0.0/24', domain: 'envf.local' });
    svc(stack, 'api', { envFiles: [missing] });
    const err2 = await podmeshRejection(synth(app, { stateDir: testState, outDir: join(tmp.path, 'out') }));
    expect(err2.issues[0]!.message).toContain(`env file ${missing} cannot be read (ENOENT)`);
  });
});

describe('Files the services of a host share', () => {
  it('GIVEN ashchan-prod WHEN its Hyperf and OpenSSL files are rendered THEN each host has one copy of the shared classes, config files, middleware list and openssl.cnf, installed to restart every service of that host that mounts them, and each service its own Policy.php', async () => {
    const app = await loadStacks(join(repoRoot, 'stacks'));
    const model = resolveStack(app.node.findChild('ashchan-prod') as Stack);
    const files = renderHyperf(model);
    const hyperf = model.services.filter((s) => s.hyperf);
    const hosts = [...new Set(hyperf.map((s) => s.host))];
    expect(hosts.sort()).toEqual(['app', 'data', 'edge']);
    for (const host of hosts) {
      const mine = hyperf.filter((s) => s.host === host);
      for (const f of ['app/Podmesh/MtlsMiddleware.php', 'app/Podmesh/MtlsClientFactory.php', 'app/Podmesh/Crl.php', 'autoload/middlewares.http.php', 'autoload/server.php', 'autoload/mtls_client.php', 'autoload/mtls_policy.php']) {
        const file = files.get(`hosts/${host}/config/_shared/${f}`);
        expect(file?.install, `${host} ${f}`).toMatchObject({ units: mine.map((s) => s.unit.service), reloadable: mine.every((s) => s.unit.reloadable) });
      }
      for (const s of mine) expect(files.get(`hosts/${host}/config/${s.name}/Policy.php`)?.install?.units).toEqual([s.unit.service]);
    }
    // The shared texts are the same on every host: they read nothing of a service or a host.
    for (const f of ['app/Podmesh/MtlsMiddleware.php', 'autoload/server.php', 'autoload/mtls_client.php', 'autoload/mtls_policy.php']) {
      expect(new Set(hosts.map((h) => files.get(`hosts/${h}/config/_shared/${f}`)!.content)).size, f).toBe(1);
    }
    expect([...files.keys()].filter((p) => p.includes('/_shared/'))).toHaveLength(7 * hosts.length);
    expect([...files.keys()].filter((p) => !p.includes('/_shared/'))).toHaveLength(hyperf.length);
    // The OpenSSL settings: one copy per host with mTLS services, restarting every one of them.
    const openssl = renderOpenssl(model);
    const mtls = model.services.filter((s) => s.mtls);
    expect([...openssl.keys()].sort()).toEqual(['app', 'data', 'edge'].map((h) => `hosts/${h}/config/_shared/openssl.cnf`));
    for (const [path, file] of openssl) expect(file.install?.units, path).toEqual(mtls.filter((s) => path.startsWith(`hosts/${s.host}/`)).map((s) => s.unit.service));
  });
});
