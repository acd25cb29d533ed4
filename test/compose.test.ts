// The compose renderer, judged by the real docker compose v2 and podman-compose.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { App, synth } from '../src/index.ts';
import { loadStacks } from '../src/cli/load.ts';
import { svc, tempDir, threeTier, testState } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';

const dockerCompose = tool('docker-compose');

/**
 * `docker compose config` on a file: the interpolated model, and anything it printed on stderr.
 * Its output is itself compose, so literal `$` come back as `$$`: undone here to get the values.
 */
function composeConfig(file: string): { model: any; stderr: string } {
  const r = spawnSync(dockerCompose!, ['-f', file, 'config', '--format', 'json'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`docker compose config failed for ${file}:\n${r.stderr}`);
  return { model: JSON.parse(r.stdout.replaceAll('$$', '$')), stderr: r.stderr };
}

/** How the compose files in out/ name the state folder: a variable, `.podmesh` beside out/ by default. */
const STATE = '${PODMESH_STATE_DIR:-../../../../.podmesh}';

describe('compose for ashchan-dev', () => {
  const out = tempDir();
  let file: string;

  beforeAll(async () => {
    const app = await loadStacks(join(repoRoot, 'stacks'));
    // out/ and .podmesh/ side by side, as in a checkout.
    await synth(app, { outDir: join(out.path, 'out'), stateDir: join(out.path, '.podmesh'), stacks: ['ashchan-dev'] });
    file = join(out.path, 'out/ashchan-dev/hosts/local/compose.yaml');
  });
  afterAll(() => out.cleanup());

  it('carries the seed network: bridge ashchan-mesh, 10.90.0.0/24, gateway 10.90.0.1', () => {
    const doc = parse(readFileSync(file, 'utf8'));
    expect(doc.name).toBe('ashchan');
    expect(doc.networks['ashchan-mesh']).toEqual({
      name: 'ashchan-mesh',
      driver: 'bridge',
      driver_opts: { 'com.docker.network.bridge.name': 'ashchan-mesh' },
      ipam: { config: [{ subnet: '10.90.0.0/24', gateway: '10.90.0.1' }] },
    });
  });

  it.each([
    ['gateway', '10.90.0.10', 'gateway.ashchan.local'],
    ['auth', '10.90.0.21', 'auth.ashchan.local'],
    ['boards', '10.90.0.22', 'boards.ashchan.local'],
  ])('%s has the seed static IP %s and alias %s', (name, ip, alias) => {
    const doc = parse(readFileSync(file, 'utf8'));
    expect(doc.services[name].networks['ashchan-mesh']).toEqual({ ipv4_address: ip, aliases: [alias] });
    expect(doc.services[name].hostname).toBe(name);
  });

  it('has all nine services and MinIO\'s setup, each with an address in the mesh and its DNS alias', () => {
    const doc = parse(readFileSync(file, 'utf8'));
    const names = ['postgres', 'redis', 'minio', 'minio-setup', 'auth', 'media', 'moderation', 'search', 'boards', 'gateway'];
    expect(Object.keys(doc.services).sort()).toEqual([...names].sort());
    const ips = names.map((n) => doc.services[n].networks['ashchan-mesh'].ipv4_address);
    expect(new Set(ips).size).toBe(10);
    for (const ip of ips) expect(ip).toMatch(/^10\.90\.0\.(\d+)$/);
    for (const n of names) expect(doc.services[n].networks['ashchan-mesh'].aliases).toEqual([`${n}.ashchan.local`]);
  });

  it('publishes only the gateway on 9501, and keeps depends_on with health conditions', () => {
    const doc = parse(readFileSync(file, 'utf8'));
    expect(doc.services.gateway.ports).toEqual(['9501:9501']);
    for (const [n, s] of Object.entries<any>(doc.services)) if (n !== 'gateway') expect(s.ports).toBeUndefined();
    expect(doc.services.gateway.depends_on).toEqual({
      auth: { condition: 'service_healthy' },
      boards: { condition: 'service_healthy' },
      media: { condition: 'service_healthy' },
      search: { condition: 'service_healthy' },
      moderation: { condition: 'service_healthy' },
    });
    expect(doc.services.auth.environment).toMatchObject({ SERVICE_NAME: 'auth-accounts', SERVICE_DNS_NAME: 'auth.ashchan.local' });
    // Secrets are file secrets from the state folder, never in the file itself or an environment.
    expect(doc.services.auth.env_file).toBeUndefined();
    // auth's own passwords: its PostgreSQL role's and its Redis ACL user's.
    expect(doc.services.auth.secrets).toEqual(['auth.postgres-password', 'auth.redis-password']);
    expect(doc.services.auth.environment).toMatchObject({ DB_USERNAME: 'auth', DB_PASSWORD_FILE: '/run/secrets/auth.postgres-password', REDIS_USERNAME: 'auth', REDIS_AUTH_FILE: '/run/secrets/auth.redis-password' });
    const secretFile = (f: string) => ({ file: `${STATE}/ashchan-dev/secrets/${f}` });
    const clientFiles = [
      ...['auth', 'boards', 'media', 'moderation', 'search'].map((c) => `${c}.postgres-password`),
      ...['auth', 'boards', 'moderation', 'search'].map((c) => `${c}.redis-password`),
      'media.minio-password',
    ].sort();
    expect(doc.secrets).toEqual(Object.fromEntries([...clientFiles, 'minio.password', 'postgres.password', 'redis.password', 'redis.password.conf'].map((f) => [f, secretFile(f)])));
    // MinIO's client waits for the setup that creates its user; the setup for MinIO to be healthy, once.
    expect(doc.services.media.depends_on['minio-setup']).toEqual({ condition: 'service_completed_successfully' });
    expect(doc.services['minio-setup'].depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    expect(doc.services['minio-setup'].restart).toBe('no');
    expect(Object.keys(doc.secrets)).toEqual(Object.keys(doc.secrets).sort());
  });

  it('mounts each mTLS service\'s certificate folder read-only at /etc/mtls, and its Hyperf config files and classes', () => {
    const doc = parse(readFileSync(file, 'utf8'));
    for (const n of ['gateway', 'auth', 'boards', 'media', 'search', 'moderation']) {
      expect(doc.services[n].volumes).toEqual([
        // The files every Hyperf service of the host shares, under a shared SELinux label (z).
        './config/_shared/autoload/server.php:/opt/www/config/autoload/server.php:ro,z',
        './config/_shared/autoload/mtls_client.php:/opt/www/config/autoload/mtls_client.php:ro,z',
        './config/_shared/autoload/mtls_policy.php:/opt/www/config/autoload/mtls_policy.php:ro,z',
        './config/_shared/autoload/middlewares.http.php:/opt/www/config/autoload/middlewares.http.php:ro,z',
        './config/_shared/app/Podmesh/MtlsMiddleware.php:/opt/www/app/Podmesh/MtlsMiddleware.php:ro,z',
        './config/_shared/app/Podmesh/MtlsClientFactory.php:/opt/www/app/Podmesh/MtlsClientFactory.php:ro,z',
        './config/_shared/app/Podmesh/Crl.php:/opt/www/app/Podmesh/Crl.php:ro,z',
        // The one file of its own: the service's identity, listeners and call policy, which the others read.
        `./config/${n}/Policy.php:/opt/www/app/Podmesh/Policy.php:ro,Z`,
        './config/_shared/openssl.cnf:/etc/podmesh/openssl.cnf:ro,z',
        `${STATE}/ashchan-dev/pki/services/${n}:/etc/mtls:ro,Z`,
      ]);
    }
  });

  it('gives the infrastructure services data volumes, and PostgreSQL its roles script', () => {
    const doc = parse(readFileSync(file, 'utf8'));
    // PostgreSQL also mounts its roles script where the official entrypoint runs it on first start.
    expect(doc.services.postgres.volumes).toEqual(['ashchan-postgres-data:/var/lib/postgresql/data', './config/postgres/podmesh-roles.sh:/docker-entrypoint-initdb.d/podmesh-roles.sh:ro,Z']);
    expect(doc.services.redis.volumes).toEqual(['ashchan-redis-data:/data']);
    expect(doc.services.minio.volumes).toEqual([
      'ashchan-minio-data:/data',
      // MinIO's TLS layout, from the state folder (relative to the compose file).
      `${STATE}/ashchan-dev/pki/services/minio/server.crt:/root/.minio/certs/public.crt:ro,Z`,
      `${STATE}/ashchan-dev/pki/services/minio/server.key:/root/.minio/certs/private.key:ro,Z`,
      `${STATE}/ashchan-dev/pki/services/minio/ca.crt:/root/.minio/certs/CAs/ca.crt:ro,Z`,
    ]);
    expect(Object.keys(doc.volumes)).toEqual(['ashchan-postgres-data', 'ashchan-redis-data', 'ashchan-minio-data']);
  });

  it('matches the committed snapshot', async () => {
    await expect(readFileSync(file, 'utf8')).toMatchFileSnapshot('__snapshots__/ashchan-dev.compose.yaml');
  });

  describe.skipIf(!dockerCompose)('docker compose config (v2)', () => {
    it('accepts the file with no warning and keeps the seed values', () => {
      const { model, stderr } = composeConfig(file);
      expect(stderr).toBe('');
      expect(model.name).toBe('ashchan');
      expect(model.services.gateway.networks['ashchan-mesh'].ipv4_address).toBe('10.90.0.10');
      expect(model.services.gateway.ports).toEqual([{ mode: 'ingress', target: 9501, published: '9501', protocol: 'tcp' }]);
      expect(model.networks['ashchan-mesh'].driver_opts).toEqual({ 'com.docker.network.bridge.name': 'ashchan-mesh' });
      expect(model.services.postgres.healthcheck.test).toEqual(['CMD-SHELL', 'pg_isready -U "$POSTGRES_USER" -d "$POSTGRES_DB"']);
    });
  });
});

describe.skipIf(!dockerCompose)('compose escaping, judged by docker compose', () => {
  const out = tempDir();
  afterAll(() => out.cleanup());

  it('keeps values with $, quotes, YAML 1.1 words and colons exactly', async () => {
    // GIVEN values that YAML or compose interpolation would change if written naively
    const app = new App();
    const { stack } = threeTier('esc', app);
    const tricky = {
      DOLLAR: 'pa$$word ${HOME} $HOME',
      QUOTES: `it's "quoted"`,
      BOOL_WORD: 'on',
      YES: 'yes',
      SEXAGESIMAL: '22:22',
      OCTAL: '010',
      HASH: 'a #comment',
      UNICODE: 'ünïcødé ✓',
      SPACES: '  padded  ',
      EMPTY: '',
    };
    svc(stack, 'tricky', { environment: tricky, command: ['sh', '-c', 'echo $HOME "$1"', ':9001'] });
    // WHEN
    await synth(app, { stateDir: testState, outDir: out.path });
    const { model, stderr } = composeConfig(join(out.path, 'esc/hosts/local/compose.yaml'));
    // THEN
    expect(stderr).toBe('');
    expect(model.services.tricky.environment).toMatchObject({ ...tricky, SERVICE_NAME: 'tricky', SERVICE_DNS_NAME: 'tricky.mini.local' });
    expect(model.services.tricky.command).toEqual(['sh', '-c', 'echo $HOME "$1"', ':9001']);
  });
});

describe('podman-compose', () => {
  const podmanCompose = tool('podman-compose');
  it.skipIf(!podmanCompose)('reads the ashchan-dev file and keeps values the YAML 1.1 way it parses', async () => {
    const out = tempDir();
    try {
      const app = await loadStacks(join(repoRoot, 'stacks'));
      await synth(app, { stateDir: testState, outDir: out.path, stacks: ['ashchan-dev'] });
      // podman-compose 1.3 chdirs to the file's folder and reopens the relative name: pass it absolute.
      const text = execFileSync(podmanCompose!, ['-f', join(out.path, 'ashchan-dev/hosts/local/compose.yaml'), 'config'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      const model = parse(text);
      expect(model.services.redis.command).toEqual(['sh', '-c', 'exec docker-entrypoint.sh redis-server - --appendonly yes < "$REDIS_CONFIG_FILE"']);
      expect(model.services.auth.networks['ashchan-mesh'].ipv4_address).toBe('10.90.0.21');
    } finally {
      out.cleanup();
    }
  });
});
