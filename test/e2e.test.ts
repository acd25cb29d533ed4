// End to end: the generated ashchan-dev compose file runs on Podman inside a network namespace this
// test creates, on real runtimes: PostgreSQL 15 and Redis 7 images carrying the official images'
// entrypoints, and the six Hyperf services as the PHP sample on PHP 8.2 + Swoole reading the
// generated config/autoload files, openssl.cnf and environment (images built from Debian packages
// by scripts/build-test-images.sh, cached outside the clone). Only the images and the PHP services'
// command are overridden; MinIO, in no Debian archive, stays a small Node stand-in. `podmesh
// verify` then runs inside the mesh (a container on the generated network, resolving names through
// aardvark-dns) and every result is asserted; services call each other, a caller outside a policy
// is refused by the callee, every /health proves PostgreSQL and Redis accepted the generated
// credentials, and a client certificate is revoked and its holder shown refused. Everything is torn
// down, also on failure, and the last test checks that nothing is left.
import { execa } from 'execa';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { composeOnPodman, PATH, type ComposeOnPodman } from './helpers/compose-podman.ts';
import { buildRootfs, IMPORT_CHANGES } from './helpers/image.ts';
import {
  ASHCHAN_DEV_SECRET_IDS,
  ASHCHAN_APPS as APPS,
  ASHCHAN_INFRA as INFRA,
  ASHCHAN_SEED_IPS as SEED_IPS,
  expectAshchanPolicy,
  expectConfined,
  expectHealthy,
  expectOnlyUnstapled,
  expectWrongPasswordRefused,
  INFRA_PID1,
  pid1,
  PID1_STATUS,
  verifyLines,
  WRONG_PASSWORD_PHP,
  type VerifyLine,
} from './helpers/mesh-checks.ts';
import { netnsReady } from './helpers/netns.ts';
import { buildServiceImages, importArgs, serviceImagesReady, type ServiceImageName } from './helpers/service-images.ts';
import { tempDir } from './helpers/stacks.ts';
import { inCI, repoRoot, tool } from './helpers/tools.ts';

const ready = netnsReady();
const podman = tool('podman');
const compose = tool('docker-compose');
const curl = tool('curl');
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
if (!busybox) {
  if (inCI) throw new Error('busybox-static is required under CI: run scripts/install-validators.sh');
  console.warn('skipping the end-to-end test: apt-get install busybox-static');
}
const runnable = ready && !!podman && !!compose && !!curl && !!busybox && serviceImagesReady();

const STACK = 'ashchan-dev';
const PROJECT = 'ashchan';
const NETWORK = 'ashchan-mesh';
// The Node image: podmesh verify inside the mesh, and the MinIO stand-in.
const IMAGE = 'localhost/podmesh-e2e/sample:1';
/** The container `podmesh verify` runs in (not one of the project's: compose never sees it). */
const VERIFIER = 'podmesh-e2e-verifier';
const SERVICE_IMAGE: Record<ServiceImageName, string> = {
  postgres: 'localhost/podmesh-e2e/postgres:15',
  redis: 'localhost/podmesh-e2e/redis:7',
  php: 'localhost/podmesh-e2e/php-sample:8.2',
};
const bin = join(repoRoot, 'bin/podmesh.mjs');

describe.skipIf(!runnable)('end to end: ashchan-dev on Podman, checked by podmesh verify', () => {
  const dir = tempDir('podmesh-e2e-');
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const composeFile = join(out, STACK, 'hosts/local/compose.yaml');
  const override = join(dir.path, 'e2e.override.yaml');
  let env: ComposeOnPodman | undefined;

  const cli = (...args: string[]) =>
    execa('node', [bin, ...args, '--stacks', join(repoRoot, 'stacks'), '--out', out, '--state', state, '--stack', STACK], { reject: false, timeout: 90_000 });
  const pm = (args: readonly string[], timeoutMs?: number, input?: string) => env!.pm(args, timeoutMs, input);
  const dc = (args: readonly string[], timeoutMs?: number) => env!.dc(args, timeoutMs);
  const waitHealthy = (names: readonly string[], ms?: number) => env!.waitHealthy(names.map(container), (sick) => diagnose(sick.map((c) => c.replace(new RegExp(`^${PROJECT}-(.*)-1$`), '$1'))), ms);
  const container = (name: string) => `${PROJECT}-${name}-1`;
  /** curl inside a container with its own client certificate, as the seed's Debug Commands do. */
  // Longer than the sample's upstream timeout (5 s), so a slow refusal upstream still comes back as 502.
  const curlIn = (name: string, url: string) =>
    pm(['exec', container(name), 'curl', '-sS', '--max-time', '15', '--cacert', '/etc/mtls/ca.crt', '--cert', '/etc/mtls/client.crt', '--key', '/etc/mtls/client.key', '-w', '\n%{http_code}', url]);

  /** Polls `getent hosts` in a container until every name answers (at most `ms`). */
  async function waitResolves(from: string, names: readonly string[], ms = 60_000): Promise<void> {
    await waitResolvesIn(container(from), names, ms);
  }

  /** Like waitResolves, in any container on the mesh network (the verify container). */
  async function waitResolvesIn(name: string, names: readonly string[], ms = 60_000): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const results = await Promise.all(names.map((n) => pm(['exec', name, 'getent', 'hosts', `${n}.ashchan.local`]).catch(() => ({ exitCode: 1 }))));
      if (results.every((r) => r.exitCode === 0)) return;
      if (Date.now() > until) throw new Error(`${names.join(', ')} did not resolve in ${name} within ${ms} ms`);
      await sleep(1_000);
    }
  }

  /**
   * Polls each service's /health (as its health check asks it) until it answers 200 (at most `ms`).
   * The sample's PDO connect is not coroutine-aware: a slow name lookup while aardvark-dns restarts
   * holds a Swoole worker for seconds (seen once as verify timing out against auth), and podman's
   * health status lags behind that, so ask the services themselves.
   */
  async function waitServing(names: readonly string[], ms = 60_000): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const results = await Promise.all(names.map((n) => curlIn(n, `https://${n}.ashchan.local:8443/health`).catch(() => ({ stdout: '' }))));
      const waiting = names.filter((_, i) => !/\n200$/.test(results[i]!.stdout));
      if (waiting.length === 0) return;
      if (Date.now() > until) throw new Error(`not serving /health after ${ms} ms: ${waiting.join(', ')}\n${await diagnose(waiting)}`);
      await sleep(1_000);
    }
  }

  /** Health logs and recent output of containers, for failure messages. */
  async function diagnose(names: readonly string[]): Promise<string> {
    const parts: string[] = [];
    for (const n of names) {
      const h = await pm(['inspect', '--format', '{{json .State.Health}}', container(n)]).catch((e: unknown) => ({ stdout: String(e), stderr: '' }));
      const l = await pm(['logs', '--tail', '5', container(n)]).catch((e: unknown) => ({ stdout: String(e), stderr: '' }));
      parts.push(`--- ${n}\nhealth: ${h.stdout.trim()}\nlogs: ${l.stdout.trim()} ${l.stderr.trim()}`);
    }
    const dns = await env!.host.exec(['sh', '-c', `ss -lunp; ip -br addr; ls -la /run/containers/networks /run/containers/networks/aardvark-dns 2>&1; cat ${join(env!.root, 'networks')}/*.json; ls /usr/lib/podman`], { env: { PATH } });
    const rc = await pm(['exec', container('minio'), 'cat', '/etc/resolv.conf']).catch((e: unknown) => ({ stdout: String(e), stderr: '' }));
    parts.push(`--- dns\n${dns.stdout}${dns.stderr}\nresolv.conf: ${rc.stdout}`);
    return parts.join('\n');
  }

  /**
   * A container on the mesh network that `podmesh verify` runs in. Started once, after the mesh is
   * up: a container joining the network restarts aardvark-dns, and the services' health checks
   * resolving DB_HOST/REDIS_HOST at that moment answered 503 or timed out (seen once in four runs
   * when verify ran in a fresh `podman run`). Joining first and waiting until every service serves
   * again keeps verify's probes off that pause.
   */
  async function startVerifier(): Promise<void> {
    const nodeModules = realpathSync(join(repoRoot, 'node_modules'));
    const r = await pm(
      [
        'run', '-d', '--name', VERIFIER, '--pull=never', '--network', NETWORK,
        '-v', `${repoRoot}:/repo:ro`, '-v', `${nodeModules}:/repo/node_modules:ro`, '-v', `${dir.path}:/e2e:ro`,
        '-w', '/repo', IMAGE, 'sleep', '3600',
      ],
      60_000,
    );
    if (r.exitCode !== 0) throw new Error(`the verify container did not start: ${r.stderr}`);
    await waitResolves('gateway', APPS);
    await waitServing(APPS);
  }

  /** `podmesh verify --json` run in the verify container on the mesh network: names resolve through aardvark-dns. */
  async function verifyInMesh(): Promise<{ exitCode: number; lines: VerifyLine[]; stderr: string }> {
    // A container restarted since makes netavark restart aardvark-dns: wait (bounded) until the
    // verify container resolves every name again, as the services do.
    await waitResolvesIn(VERIFIER, [...APPS, ...INFRA]);
    const r = await pm(
      ['exec', '-w', '/repo', VERIFIER, 'node', 'bin/podmesh.mjs', 'verify', '--stack', STACK, '--stacks', '/repo/stacks', '--out', '/e2e/out', '--state', '/e2e/state', '--json'],
      120_000,
    );
    const lines = verifyLines(r.stdout);
    return { exitCode: r.exitCode, lines, stderr: r.stderr };
  }

  async function teardown(): Promise<void> {
    // The verify container first: compose cannot remove a network another container is on.
    const errors = (await env?.teardown(async () => void (await pm(['rm', '-f', '-t', '0', VERIFIER]).catch(() => undefined)))) ?? [];
    dir.cleanup();
    if (errors.length > 0) console.warn(`e2e teardown:\n${errors.join('\n')}`);
  }

  beforeAll(async () => {
    const started = Date.now();
    // GIVEN ashchan-dev synthesized into a fresh output and state folder
    const s = await cli('synth');
    expect(s.exitCode, s.stderr).toBe(0);

    // ... a simulated host with its own network and mount namespace (private aardvark-dns state) ...
    env = await composeOnPodman(podman!, compose!, { hostName: 'mesh', project: PROJECT, composeFile, override, stateDir: state });

    // ... the local images: the service images from the cache (built on first need), and the Node one ...
    const built = await buildServiceImages();
    const buildSeconds = Math.round((Date.now() - started) / 1000);
    const rootfs = join(dir.path, 'rootfs');
    buildRootfs(rootfs, busybox!);
    const imports = await Promise.all([
      env.importRootfs(rootfs, IMPORT_CHANGES, IMAGE),
      ...Object.values(built).map((image) => pm(['import', ...importArgs(image, SERVICE_IMAGE[image.name])], 120_000)),
    ]);
    for (const imp of imports) expect(imp.exitCode, imp.stderr).toBe(0);
    console.log(`e2e: images built or found in ${buildSeconds} s, imported after ${Math.round((Date.now() - started) / 1000)} s`);

    // ... the Podman API inside the namespace ...
    await env.startApi();

    // ... and the test-only override: images (and the PHP services' command) only, everything else
    // as generated: environment, secret files, mounts, volumes, health checks, dependencies.
    const php = { image: SERVICE_IMAGE.php, pull_policy: 'never', command: ['php', '/opt/www/server.php'] };
    writeFileSync(
      override,
      stringify({
        services: {
          ...Object.fromEntries(APPS.map((a) => [a, { ...php }])),
          postgres: { image: SERVICE_IMAGE.postgres, pull_policy: 'never' },
          redis: { image: SERVICE_IMAGE.redis, pull_policy: 'never' },
          // MinIO is in no Debian archive: a stand-in serving its health URL over TLS with the
          // generated certificate; MinIO's generated health check (curl with the mesh CA) runs unchanged.
          minio: {
            image: IMAGE,
            pull_policy: 'never',
            user: '0:0',
            command: ['node', '/app/standin.mjs', 'https', '9000', '/root/.minio/certs/public.crt', '/root/.minio/certs/private.key'],
          },
          // MinIO's setup runs its generated script unchanged, against the image's stand-in mc.
          'minio-setup': { image: IMAGE, pull_policy: 'never' },
        },
      }),
    );

    // WHEN the generated compose file is started
    env.startHealthChecks();
    const up = await dc(['up', '-d']);
    if (up.exitCode !== 0) throw new Error(`compose up failed: ${up.stderr.split('\n').slice(-3).join('\n')}\n${await diagnose([...APPS, ...INFRA])}`);
    await waitHealthy([...APPS, ...INFRA]);
    await startVerifier();
    console.log(`e2e: mesh up in ${Math.round((Date.now() - started) / 1000)} s`);
    // A first run on a new machine builds the images (about two minutes) before the rest.
  }, 900_000);

  afterAll(teardown, 120_000);

  it('GIVEN the mesh WHEN a container looks up a DNS name THEN aardvark-dns answers with the generated address', async () => {
    // The seed's "Check Podman DNS" debug command.
    for (const [name, ip] of Object.entries(SEED_IPS)) {
      const r = await pm(['exec', container('gateway'), 'getent', 'hosts', `${name}.ashchan.local`]);
      expect(r.stdout.trim(), r.stderr).toMatch(new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+${name}\\.ashchan\\.local$`));
    }
  });

  it('GIVEN the mesh WHEN podmesh verify runs inside it THEN every probe is as the policy says', async () => {
    // WHEN
    const { exitCode, lines, stderr } = await verifyInMesh();
    // THEN
    expectAshchanPolicy(lines, exitCode, stderr);
  });

  it('GIVEN the host side of the mesh WHEN verify connects to the lock\'s addresses THEN prom output counts the handshakes', async () => {
    // From the namespace (the host's view) with --resolve-from-lock; DNS asked of aardvark-dns at the bridge gateway.
    const r = await env!.host.exec(
      [process.execPath, bin, 'verify', '--stack', STACK, '--stacks', join(repoRoot, 'stacks'), '--out', out, '--state', state, '--resolve-from-lock', '--dns', '10.90.0.1', '--format', 'prom'],
      { timeoutMs: 90_000, env: { PATH } },
    );
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('mtls_handshake_total{stack="ashchan-dev",service="auth",client="gateway",check="allowed"} 1');
    expect(r.stdout).toContain('mtls_handshake_failures{stack="ashchan-dev",service="auth",client="gateway",check="allowed"} 0');
    expect(r.stdout).toContain('mtls_handshake_failures{stack="ashchan-dev",service="auth",client="boards",check="not-allowed"} 1');
    expect(r.stdout).toContain('podmesh_verify_unexpected{stack="ashchan-dev"} 0');
  });

  it('GIVEN boards WHEN it calls media and moderation by their *_SERVICE_URL THEN both calls go through over mTLS', async () => {
    for (const callee of ['media', 'moderation']) {
      // WHEN
      const r = await curlIn('boards', `https://boards.ashchan.local:8443/call/${callee}`);
      // THEN boards answers 200 with the callee's own 200 health answer
      expect(r.stdout, r.stderr).toMatch(/\n200$/);
      const body = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('\n'))) as { target: string; status: number };
      expect(body).toMatchObject({ target: `https://${callee}.ashchan.local:8443`, status: 200 });
    }
    // ... and the callee saw boards' client certificate over TLS 1.3.
    const log = await pm(['logs', container('media')]);
    expect(log.stdout).toMatch(/"event":"mtls_handshake_complete","client_cn":"boards\.ashchan\.local","server_cn":"media\.ashchan\.local","tls_version":"TLSv1\.3"/);
  });

  it('GIVEN a caller outside boards\' policy WHEN it presents its own valid client certificate THEN boards\' policy code answers 403', async () => {
    // WHEN auth (a valid certificate of the mesh, not among boards' allowed clients) calls boards
    const r = await curlIn('auth', 'https://boards.ashchan.local:8443/health');
    // THEN the handshake succeeded and the policy refused
    expect(r.stdout, r.stderr).toMatch(/\n403$/);
    expect(JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('\n')))).toEqual({ error: 'forbidden', client_cn: 'auth.ashchan.local', client_spiffe_id: 'spiffe://ashchan.local/ashchan-dev/auth' });
    const log = await pm(['logs', container('boards')]);
    expect(log.stdout).toMatch(/"event":"mtls_authorization_denied","client_cn":"auth\.ashchan\.local","client_spiffe_id":"spiffe:\/\/ashchan\.local\/ashchan-dev\/auth","server_cn":"boards\.ashchan\.local","path":"\/health"/);
  });

  it('GIVEN the generated DB_* and REDIS_* settings and secrets WHEN every service answers /health THEN PostgreSQL and Redis accepted them', async () => {
    for (const app of APPS) {
      // WHEN the service is asked as its generated health check asks it (its own client certificate)
      const r = await curlIn(app, `https://${app}.ashchan.local:8443/health`);
      // THEN
      expectHealthy(app, r.stdout, r.stderr);
    }
  });

  it('GIVEN the real servers WHEN a client brings a wrong password THEN PostgreSQL and Redis refuse it', async () => {
    // The health answers above mean something only if the servers check passwords: the same
    // connection from boards' container, with its generated host/user settings and a wrong password.
    const r = await pm(['exec', container('boards'), 'php', '-r', WRONG_PASSWORD_PHP]);
    expectWrongPasswordRefused(r.stdout, r.stderr);
  });

  it('GIVEN each client\'s own PostgreSQL role and Redis user WHEN one client reaches for another\'s data THEN PostgreSQL and Redis refuse it', async () => {
    const values = JSON.parse(readFileSync(join(state, STACK, 'secrets/values.json'), 'utf8')) as Record<string, string>;
    const psql = (role: string, sql: string) => pm(['exec', '-u', 'postgres', container('postgres'), 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', role, '-d', 'ashchan', '-c', sql], 30_000);
    // GIVEN auth's table in auth's schema (the roles script made auth its owner and search_path)
    const made = await psql('auth', 'CREATE TABLE IF NOT EXISTS accounts (id int); INSERT INTO accounts VALUES (1)');
    expect(made.exitCode, made.stderr).toBe(0);
    // WHEN boards reads it, or writes to the public schema THEN refused
    const read = await psql('boards', 'SELECT id FROM auth.accounts');
    expect(read.stderr).toMatch(/permission denied for schema auth/);
    const pub = await psql('boards', 'CREATE TABLE public.x (id int)');
    expect(pub.stderr).toMatch(/permission denied for schema public/);
    // ... while boards owns its own schema
    const own = await psql('boards', 'CREATE TABLE IF NOT EXISTS threads (id int); SELECT current_schema()');
    expect(own.exitCode, own.stderr).toBe(0);
    // Redis: boards' user (its password handed over on stdin) reaches boards:* keys only
    const redis = (user: string, password: string, args: string) =>
      pm(['exec', '-i', container('redis'), 'sh', '-c', `read -r p; REDISCLI_AUTH="$p" redis-cli --no-auth-warning --user ${user} ${args}`], 30_000, `${password}\n`);
    const set = await redis('auth', values['auth/redis-password']!, 'SET auth:session 1');
    expect(set.stdout.trim(), set.stderr).toBe('OK');
    const mine = await redis('boards', values['boards/redis-password']!, 'SET boards:thread 1');
    expect(mine.stdout.trim(), mine.stderr).toBe('OK');
    const theirs = await redis('boards', values['boards/redis-password']!, 'GET auth:session');
    expect(theirs.stdout + theirs.stderr).toMatch(/NOPERM/);
    const wrong = await redis('boards', values['auth/redis-password']!, 'PING');
    expect(wrong.stdout + wrong.stderr).toMatch(/WRONGPASS/);
  });

  it('GIVEN the running mesh WHEN every container is inspected and every command line is read, inside the containers and on the host THEN no secret value appears: each is a read-only file under /run/secrets', async () => {
    const values = JSON.parse(readFileSync(join(state, STACK, 'secrets/values.json'), 'utf8')) as Record<string, string>;
    expect(Object.keys(values).sort()).toEqual(ASHCHAN_DEV_SECRET_IDS);
    // MinIO's setup has exited (a one-shot container): inspected too, its secrets are files as well.
    const names = [...APPS, ...INFRA, 'minio-setup'].map(container);
    // WHEN inspected
    const inspect = await pm(['inspect', ...names]);
    expect(inspect.exitCode, inspect.stderr).toBe(0);
    // THEN no value, in the environment or anywhere else; the secrets are read-only mounts
    for (const [id, v] of Object.entries(values)) expect(inspect.stdout.includes(v), `${id} in podman inspect`).toBe(false);
    const containers = JSON.parse(inspect.stdout) as { Name: string; Config: { Env: string[] }; Mounts: { Destination: string; RW: boolean }[] }[];
    expect(containers).toHaveLength(names.length);
    const secretMounts = (n: string) => containers.find((c) => c.Name.replace(/^\//, '') === container(n))!.Mounts.filter((m) => m.Destination.startsWith('/run/secrets/')).map((m) => `${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort();
    // PostgreSQL: its own password and each client's (for its roles script); a client: only its own.
    expect(secretMounts('postgres')).toEqual(['auth', 'boards', 'media', 'moderation', 'search'].map((c) => `/run/secrets/${c}.postgres-password:ro`).concat('/run/secrets/postgres.password:ro').sort());
    expect(secretMounts('redis')).toEqual(['/run/secrets/redis.password.conf:ro', '/run/secrets/redis.password:ro']);
    expect(secretMounts('boards')).toEqual(['/run/secrets/boards.postgres-password:ro', '/run/secrets/boards.redis-password:ro']);
    for (const c of containers) expect(c.Config.Env.filter((e) => /^[A-Z_]*(PASSWORD|AUTH|SECRET)=/.test(e)), c.Name).toEqual([]);
    // ... the mounted file holds the value (read as the container's root), and nothing can write it
    const held = await pm(['exec', container('boards'), 'sh', '-c', 'cat /run/secrets/boards.postgres-password; echo; echo x >> /run/secrets/boards.postgres-password && echo writable']);
    expect(held.stdout.split('\n')[0]).toBe(values['boards/postgres-password']);
    expect(held.stdout).not.toContain('writable');
    // WHEN every process' command line is read inside the Debian-based containers (not the MinIO stand-in) ...
    for (const n of [...APPS, 'postgres', 'redis']) {
      const inside = await pm(['exec', container(n), 'sh', '-c', 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done 2>/dev/null']);
      expect(inside.stdout, `${n}: ${inside.stderr}`).toMatch(/\S/);
      for (const [id, v] of Object.entries(values)) expect(inside.stdout.includes(v), `${id} on a command line in ${n}`).toBe(false);
    }
    // ... and on the host, which sees every container's processes, health checks included
    await pm(['healthcheck', 'run', container('redis')]);
    const outside = await env!.host.exec(['ps', '-eo', 'args'], { timeoutMs: 20_000, env: { PATH } });
    expect(outside.stdout).toContain('redis-server');
    for (const [id, v] of Object.entries(values)) expect(outside.stdout.includes(v), `${id} on a host command line`).toBe(false);
  }, 300_000);

  // The official entrypoints switch to their users (gosu) only when their first argument is the
  // server: the generated commands must get there (redis' `sh -c` execs the entrypoint for that).
  it('GIVEN the official entrypoints WHEN PostgreSQL and Redis run with the generated commands THEN they dropped root for their users (gosu)', async () => {
    for (const s of ['postgres', 'redis'] as const) {
      const r = await pm(['exec', container(s), ...PID1_STATUS]);
      expect(pid1(r.stdout), `${s}: ${r.stderr}`).toBe(INFRA_PID1[s]);
    }
  });

  it('GIVEN the secure defaults WHEN each container is looked at from inside THEN no_new_privs, exactly its declared capabilities, a read-only root with a writable /tmp; podman inspect and the cgroup hold the memory and pids limits', async () => {
    const generated = parse(readFileSync(composeFile, 'utf8')) as { services: Record<string, { cap_add?: string[]; mem_limit: string; pids_limit: number }> };
    // Every container at once: each looks only at itself.
    await Promise.all([...APPS, ...INFRA].map(async (s) => {
      const declared = generated.services[s]!;
      // THEN from inside: PostgreSQL's and Redis' entrypoints drop root (gosu), so their PID 1 holds no capability.
      await expectConfined(s, (argv) => pm(['exec', container(s), ...argv]), declared.cap_add ?? [], s === 'postgres' || s === 'redis');
      // ... podman was given the limits ...
      expect([declared.mem_limit, declared.pids_limit], s).toEqual(['1g', 1024]);
      const inspect = await pm(['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.ReadonlyRootfs}}', container(s)]);
      expect(inspect.stdout.trim(), `${s}: ${inspect.stderr}`).toBe('1073741824 1024 true');
      // ... and the container's own cgroup (v1 here, cgroupns private) carries them.
      const cg = await pm(['exec', container(s), 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/pids/pids.max']);
      expect(cg.stdout.split('\n').filter(Boolean), `${s}: ${cg.stderr}`).toEqual(['1073741824', '1024']);
    }));
  }, 300_000);

  it('GIVEN boards\' client certificate revoked and the servers restarted WHEN the revoked certificate and verify call THEN it is refused, and boards goes on with its new one', async () => {
    // GIVEN a copy of the certificate boards holds now (the key stays 0600 in the test's own folder) ...
    const pki = join(state, STACK, 'pki/services/boards');
    const old = join(dir.path, 'revoked');
    mkdirSync(old, { mode: 0o700 });
    copyFileSync(join(pki, 'client.crt'), join(old, 'client.crt'));
    copyFileSync(join(pki, 'client.key'), join(old, 'client.key'));
    chmodSync(join(old, 'client.key'), 0o600);
    // ... revoked, a new one issued by synth, and the servers boards calls restarted to reload the CRL.
    const rv = await cli('certs', 'revoke', 'boards', '--kind', 'client', '--reason', 'keyCompromise');
    expect(rv.exitCode, rv.stderr).toBe(0);
    const s = await cli('synth');
    expect(s.exitCode, s.stderr).toBe(0);
    expect(readFileSync(join(pki, 'client.crt'), 'utf8')).not.toEqual(readFileSync(join(old, 'client.crt'), 'utf8'));
    // Swoole exits on SIGTERM within a second on an idle machine; a stop timeout that short made
    // Podman 4.3 send SIGKILL to a container already exiting on a loaded one ("container state
    // improper: stopped") and the restart fail.
    const restart = await dc(['restart', '-t', '10', 'media', 'moderation'], 60_000);
    expect(restart.exitCode, restart.stderr).toBe(0);
    await waitHealthy(['media', 'moderation']);
    // Restarted containers make netavark restart aardvark-dns; on a loaded machine names answer a
    // few seconds later. Wait (bounded) until boards resolves itself and media again.
    await waitResolves('boards', ['boards', 'media']);
    await waitServing(APPS);

    // WHEN the revoked certificate is presented to media (from the host side, at media's generated address)
    const generated = parse(readFileSync(composeFile, 'utf8')) as { services: Record<string, { networks: Record<string, { ipv4_address: string }> }> };
    const mediaIp = generated.services.media!.networks[NETWORK]!.ipv4_address;
    const refused = await env!.host.exec(
      [curl!, '-sS', '--max-time', '10', '--cacert', join(pki, 'ca.crt'), '--cert', join(old, 'client.crt'), '--key', join(old, 'client.key'), '--resolve', `media.ashchan.local:8443:${mediaIp}`, '-w', '\n%{http_code}', 'https://media.ashchan.local:8443/health'],
      { timeoutMs: 20_000, env: { PATH } },
    );
    // THEN media's CRL check refuses it and says why
    expect(refused.stdout, refused.stderr).toMatch(/\n403$/);
    expect(JSON.parse(refused.stdout.slice(0, refused.stdout.lastIndexOf('\n')))).toEqual({ error: 'forbidden', reason: 'CERT_REVOKED', client_cn: 'boards.ashchan.local' });
    const log = await pm(['logs', container('media')]);
    expect(log.stdout).toMatch(/"event":"mtls_handshake_failed","client_cn":"boards\.ashchan\.local".*"reason":"CERT_REVOKED"/);

    // WHEN verify probes with the revoked serial
    const { exitCode, lines, stderr } = await verifyInMesh();
    // THEN it is refused by both servers boards may call, and nothing else changed
    expectOnlyUnstapled(lines, stderr);
    expect(exitCode).toBe(0);
    expect(lines.filter((l) => l.check === 'revoked').map((l) => `${l.client}->${l.target}:${l.result}`).sort()).toEqual(['boards->media:pass', 'boards->moderation:pass']);

    // WHEN boards calls media THEN it goes through without a restart: Hyperf's client hands Swoole
    // the certificate's path, read at every connection, so boards already presents the new one.
    const ok = await curlIn('boards', 'https://boards.ashchan.local:8443/call/media');
    expect(ok.stdout, ok.stderr).toMatch(/\n200$/);
   }, 300_000);

  it('GIVEN postgres\', redis\' and boards\' secrets rotated WHEN the servers are recreated, the printed PostgreSQL commands run and boards is recreated THEN every service reaches both with the new passwords, and boards\' old one is refused', async () => {
    // GIVEN the values in use now
    const valuesFile = join(state, STACK, 'secrets/values.json');
    const old = JSON.parse(readFileSync(valuesFile, 'utf8')) as Record<string, string>;
    // WHEN rotated
    const r = await cli('secrets', 'rotate', '--service', 'postgres', '--service', 'redis', '--service', 'boards');
    expect(r.exitCode, r.stderr).toBe(0);
    const now = JSON.parse(readFileSync(valuesFile, 'utf8')) as Record<string, string>;
    for (const id of Object.keys(old)) expect(now[id] !== old[id], id).toBe(/^(postgres|redis|boards)\//.test(id));
    // THEN it says what to redeploy, and the one command PostgreSQL needs, with no value in it
    expect(r.stdout).toContain('Redeploy on host local: postgres, redis first, then boards (podmesh apply --stack ashchan-dev --host local restarts them; with compose: docker compose up -d --no-deps --force-recreate postgres redis, then docker compose up -d --no-deps --force-recreate boards).');
    const command = /^  podman exec (\S+) sh -c '(.*)'$/m.exec(r.stdout);
    expect(command, r.stdout).not.toBeNull();
    // boards' own password lives in PostgreSQL too: the roles script sets it
    const roles = /^  podman exec -u postgres (\S+) sh (\/docker-entrypoint-initdb\.d\/podmesh-roles\.sh)$/m.exec(r.stdout);
    expect(roles, r.stdout).not.toBeNull();
    for (const v of Object.values(now)) expect(r.stdout).not.toContain(v);
    expect(r.stdout).toContain('redis reads /run/secrets/redis.password.conf, /run/secrets/redis.password when it starts: the redeploy applies it.');

    // WHEN, in the printed order, the servers are recreated alone (a running container keeps the
    // file it started with), the printed command sets the new password in PostgreSQL's data, and
    // compose recreates the clients
    const first = /with compose: docker compose (up -d --no-deps --force-recreate [a-z ]+), then/.exec(r.stdout);
    const recreate = /, then docker compose (up -d --no-deps --force-recreate [a-z ]+)\)/.exec(r.stdout);
    expect(first, r.stdout).not.toBeNull();
    expect(recreate, r.stdout).not.toBeNull();
    const pgUp = await dc(first![1]!.split(' '));
    expect(pgUp.exitCode, pgUp.stderr).toBe(0);
    await waitHealthy(['postgres']);
    const alter = await pm(['exec', command![1]!, 'sh', '-c', command![2]!]);
    expect(alter.exitCode, alter.stderr).toBe(0);
    const script = await pm(['exec', '-u', 'postgres', roles![1]!, 'sh', roles![2]!]);
    expect(script.exitCode, script.stderr).toBe(0);
    const up = await dc(recreate![1]!.split(' '));
    expect(up.exitCode, up.stderr).toBe(0);
    await waitHealthy(['postgres', 'redis']);
    await waitHealthy([...APPS, ...INFRA]);
    await waitResolves('gateway', APPS);
    await waitServing(APPS);
    // THEN every service's /health proves PostgreSQL and Redis accepted the new values
    for (const app of APPS) {
      const h = await curlIn(app, `https://${app}.ashchan.local:8443/health`);
      expectHealthy(app, h.stdout, h.stderr);
    }
    // ... and the old PostgreSQL password is refused now (handed over on stdin, not a command line)
    const php = `$e = getenv(); $old = trim(fgets(STDIN)); try { new PDO("pgsql:host={$e['DB_HOST']};port={$e['DB_PORT']};dbname={$e['DB_DATABASE']};connect_timeout=3", $e['DB_USERNAME'], $old); echo "accepted"; } catch (PDOException $x) { echo $x->getMessage(); }`;
    const stale = await pm(['exec', '-i', container('boards'), 'php', '-r', php], 30_000, `${old['boards/postgres-password']}\n`);
    expect(stale.stdout, stale.stderr).toMatch(/password authentication failed for user "boards"/);
  }, 300_000);

  it('GIVEN the run WHEN torn down THEN no container, network, namespace or process is left', async () => {
    const namespaces = env!.net.leftovers();
    const ns = env!.host.netns;
    await teardown();
    const left = env!.net.leftovers();
    expect(left).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    expect(readdirSync('/run/netns').filter((n) => n === ns)).toEqual([]);
    expect(namespaces.netns.length).toBeGreaterThan(0);
    // This run's Podman lived in its own storage; the machine's own Podman never saw it.
    const system = await execa(podman!, ['ps', '-a', '--format', '{{.Names}}'], { reject: false });
    expect(system.stdout.split('\n').filter((n) => n.startsWith(`${PROJECT}-`) && n.endsWith('-1'))).toEqual([]);
    const networks = await execa(podman!, ['network', 'ls', '--format', '{{.Name}}'], { reject: false });
    expect(networks.stdout.split('\n')).not.toContain(NETWORK);
    expect(existsSync(dir.path)).toBe(false);
  });
});
