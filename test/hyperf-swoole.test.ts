// The generated Hyperf configuration on real Swoole: every config/autoload/server.php of
// ashchan-dev, ashchan-prod and a stack on Podman 4.4 is booted by the Hyperf-equivalent loader
// (test/fixtures/hyperf/loader.php → examples/php-sample, a port of hyperf/server's
// Server::initServers) under the generated openssl.cnf and environment, and probed with Node's TLS
// client: the allowed caller gets 200 over TLS 1.3 with a seed suite; no certificate, a foreign CA,
// TLS 1.2, TLS_AES_128_GCM_SHA256, a revoked certificate and a caller outside the policy are
// refused; the public TLS port serves public.crt without a client certificate; plain ports answer;
// the compose file's own health check passes. Then: /call across two hosts with the generated
// client options, /health against real PostgreSQL and Redis holding the generated secrets, and a
// control run without OPENSSL_CONF showing that the generated openssl.cnf is what refuses AES-128.
//
// The generated files hold absolute paths (/etc/mtls/…, /etc/podmesh/openssl.cnf,
// /opt/www/config/autoload/…): they run unchanged, bind-mounted as the compose file says, inside
// network namespaces and private mount namespaces of this test, where overlays over /etc and /opt
// (upper dirs in a temp folder) take the mount points. The machine's own /etc, /opt and network
// are untouched; connections go to 127.0.0.1 inside a namespace or between the test's namespaces.
import { execa, execaSync, type ResultPromise } from 'execa';
import { X509Certificate } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { App, Host, Network, Service, Stack, synth } from '../src/index.ts';
import { loadStacks } from '../src/cli/load.ts';
import { revoke } from '../src/state/pki/revoke.ts';
import { createHosts, netnsReady, type SimHost, type SimNetwork } from './helpers/netns.ts';
import { tempDir } from './helpers/stacks.ts';
import { findTool, inCI, repoRoot, tool } from './helpers/tools.ts';

const SWOOLE_SO = join(repoRoot, '.cache/swoole.so');
const LOADER = join(repoRoot, 'test/fixtures/hyperf/loader.php');
const PROBE = join(repoRoot, 'test/fixtures/hyperf/tls-probe.mjs');
const SEED_SUITES = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
// Swoole's constants as the generated files use them (checked against the loaded build below).
const SWOOLE_SSL = 512;
const SWOOLE_SSL_TLSv1_3 = 64;

/** Swoole as built by scripts/install-validators.sh; skip (or fail under CI) without it. */
function swooleReady(): boolean {
  if (existsSync(SWOOLE_SO)) return true;
  const how = 'run `scripts/install-validators.sh`, which builds it from ../shared/vendor/swoole-src-6.0.2.tar.xz (RECIPES.md section 7)';
  if (inCI) throw new Error(`.cache/swoole.so is required under CI: ${how}`);
  console.warn(`skipping the Swoole tests: .cache/swoole.so is missing; ${how}`);
  return false;
}

const php = tool('php');
const openssl = tool('openssl');
const curl = tool('curl');
const runnable = netnsReady() && !!php && !!openssl && !!curl && swooleReady();

/** PostgreSQL's server programs (Debian keeps them off PATH), Redis and PHP's pdo_pgsql, for the /health test. */
function dependencyTools(): { pgBin: string; redis: string } | undefined {
  const pgRoot = '/usr/lib/postgresql';
  const version = existsSync(pgRoot) ? readdirSync(pgRoot).filter((v) => existsSync(join(pgRoot, v, 'bin/initdb'))).sort().pop() : undefined;
  const redis = findTool('redis-server');
  const pdo = !!php && execaSync(php, ['-m']).stdout.split('\n').includes('pdo_pgsql');
  if (version && redis && pdo) return { pgBin: join(pgRoot, version, 'bin'), redis };
  const how = 'apt-get install postgresql redis-server php-pgsql (or run `scripts/install-validators.sh`)';
  if (inCI) throw new Error(`PostgreSQL, Redis and pdo_pgsql are required under CI: ${how}`);
  console.warn(`skipping the sample's /health test with PostgreSQL and Redis: ${how}`);
  return undefined;
}
const deps = runnable ? dependencyTools() : undefined;

/** The servers of a server.php in Server::initServers' order, as the loader's `dump` prints them. */
interface Dump {
  readonly mode: number;
  readonly settings: Record<string, unknown>;
  readonly servers: readonly {
    readonly name: string;
    readonly type: number;
    readonly host: string;
    readonly port: number;
    readonly sock_type: number;
    readonly callbacks: Record<string, unknown>;
    readonly settings: Record<string, unknown>;
  }[];
}

interface Policy {
  readonly service: string;
  readonly dns_name: string;
  readonly allowed_clients: readonly string[];
  readonly crl_file: string;
}

/** One result of test/fixtures/hyperf/tls-probe.mjs. */
interface ProbeResult {
  readonly ok: boolean;
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
  readonly protocol?: string;
  readonly cipher?: string;
  readonly serverCertFingerprint256?: string;
}

interface ProbeSpec {
  readonly port: number;
  readonly path: string;
  readonly tls?: { servername?: string; ca?: string; cert?: string; key?: string; maxVersion?: string; ciphers?: string };
}

/** A generated app service on one host, with everything the probes need. */
interface AppService {
  readonly stack: string;
  readonly host: string;
  readonly name: string;
  readonly pkiDir: string;
  readonly env: Record<string, string>;
  /** The compose file's bind mounts of the service, source resolved. */
  readonly mounts: readonly { readonly source: string; readonly target: string }[];
  /** The compose health check's command (after CMD). */
  readonly healthcheck: readonly string[];
}

/** One stack under test: where its stack file lives and whose client certificate gets revoked. */
interface StackCase {
  readonly label: string;
  readonly stack: string;
  /** The App holding the stack: the repository's stacks/, or one built here. */
  readonly app: () => Promise<App>;
  readonly revokedCaller: string;
  /** Every app service's listeners (`host/service` → `name port kind`), in Server::initServers' order. */
  readonly listeners: Readonly<Record<string, readonly string[]>>;
}

/** A stack on Podman 4.4 (the oldest forms), small: a public TLS web front, an api it calls, a worker nobody calls. */
function stack44(): App {
  const app = new App();
  const stack = new Stack(app, 'ver44', { project: 'ver' });
  new Host(stack, 'h', { podmanVersion: '4.4' });
  new Network(stack, 'mesh', { subnet: '10.93.0.0/24', domain: 'ver.local' });
  const api = new Service(stack, 'api', { image: 'localhost/test/api:1', ports: { http: 9000 } });
  new Service(stack, 'worker', { image: 'localhost/test/worker:1' });
  new Service(stack, 'web', { image: 'localhost/test/web:1', calls: [api], ports: { public: { port: 8080, publish: true } }, publicTls: { hostnames: ['ver.localhost'] } });
  return app;
}

describe.skipIf(!runnable)('generated Hyperf server.php on real Swoole (Hyperf-equivalent loader)', () => {
  const tmp = tempDir('podmesh-swoole-');
  let net: SimNetwork | undefined;
  let host: SimHost;
  const running = new Set<ResultPromise>();

  const cases: StackCase[] = [
    {
      label: 'ashchan-dev',
      stack: 'ashchan-dev',
      app: () => loadStacks(join(repoRoot, 'stacks')),
      revokedCaller: 'gateway',
      // sortServers array_unshifts every HTTP server: the last listed becomes the main server.
      listeners: {
        'local/auth': ['http-9502 9502 plain', 'http 8443 mtls'],
        'local/boards': ['http-9503 9503 plain', 'http 8443 mtls'],
        'local/gateway': ['public 9501 public-tls', 'http 8443 mtls'],
        'local/media': ['http-9504 9504 plain', 'http 8443 mtls'],
        'local/moderation': ['http-9506 9506 plain', 'http 8443 mtls'],
        'local/search': ['http-9505 9505 plain', 'http 8443 mtls'],
      },
    },
    {
      label: 'ashchan-prod',
      stack: 'ashchan-prod',
      app: () => loadStacks(join(repoRoot, 'stacks')),
      revokedCaller: 'gateway',
      listeners: {
        'app/auth': ['http 8443 mtls'],
        'app/boards': ['http 8443 mtls'],
        'app/moderation': ['http 8443 mtls'],
        'app/search': ['http 8443 mtls'],
        'data/media': ['http 8443 mtls'],
        'edge/gateway': ['public 9501 public-tls', 'http 8443 mtls'],
      },
    },
    {
      label: 'a stack on Podman 4.4',
      stack: 'ver44',
      app: async () => stack44(),
      revokedCaller: 'web',
      listeners: {
        'h/api': ['http-9000 9000 plain', 'http 8443 mtls'],
        'h/web': ['public 8080 public-tls', 'http 8443 mtls'],
        'h/worker': ['http 8443 mtls'],
      },
    },
  ];


  /** The file the service's compose mounts at `target` under /opt/www. */
  const mounted = (svc: AppService, target: string): string => {
    const m = svc.mounts.find((x) => x.target === `/opt/www/${target}`);
    if (!m) throw new Error(`${svc.stack}/${svc.host}/${svc.name}: nothing mounted at /opt/www/${target}`);
    return m.source;
  };

  /** A config/autoload file of the service as its compose mounts it, through the loader, with the service's own Policy.php loaded. */
  const phpJson = async <T,>(command: 'dump' | 'include', svc: AppService, file: string): Promise<T> => {
    const source = mounted(svc, `config/autoload/${file}`);
    const r = await execa(php!, ['-d', `extension=${SWOOLE_SO}`, LOADER, command, source, mounted(svc, 'app/Podmesh/Policy.php')], { reject: false, timeout: 20_000 });
    if (r.exitCode !== 0) throw new Error(`loader ${command} ${source} failed (${r.exitCode}): ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  };

  /** The app services of a synthesized stack: each Hyperf service (its own config/<svc>/Policy.php) of each host. */
  function appServices(c: StackCase): AppService[] {
    const out = join(tmp.path, c.stack, 'out', c.stack, 'hosts');
    const found: AppService[] = [];
    for (const h of readdirSync(out).sort()) {
      const compose = parse(readFileSync(join(out, h, 'compose.yaml'), 'utf8')) as {
        services: Record<string, { environment?: Record<string, string>; volumes?: string[]; healthcheck?: { test: string[] } }>;
      };
      const configRoot = join(out, h, 'config');
      if (!existsSync(configRoot)) continue;
      for (const name of readdirSync(configRoot).sort()) {
        if (!existsSync(join(configRoot, name, 'Policy.php'))) continue;
        const spec = compose.services[name];
        if (!spec?.environment || !spec.volumes || spec.healthcheck?.test[0] !== 'CMD') throw new Error(`${c.stack}/${h}: compose.yaml lacks environment, volumes or a CMD health check for ${name}`);
        // The state folder as compose would get it from PODMESH_STATE_DIR (this test's, not the default).
        const state = join(tmp.path, c.stack, 'state');
        const mounts = spec.volumes.map((v) => {
          const [source, target] = v.replace(/^\$\{PODMESH_STATE_DIR:-[^}]*\}/, state).split(':') as [string, string];
          return { source: resolve(out, h, source), target };
        });
        found.push({
          stack: c.stack,
          host: h,
          name,
          pkiDir: join(tmp.path, c.stack, 'state', c.stack, 'pki/services', name),
          env: spec.environment,
          mounts,
          healthcheck: spec.healthcheck.test.slice(1),
        });
      }
    }
    return found;
  }

  const cnOf = (certFile: string) => /^CN=(.+)$/m.exec(new X509Certificate(readFileSync(certFile)).subject)?.[1] ?? '';

  /** Runs `cmd` in one of the test's hosts and fails with its output. */
  async function inNs(cmd: string[], on: SimHost = host): Promise<string> {
    const r = await on.exec(cmd, { timeoutMs: 20_000 });
    if (r.exitCode !== 0) throw new Error(`[${on.name}] ${cmd.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
    return r.stdout;
  }

  /**
   * Starts the service as its container would: the compose file's bind mounts at their generated
   * targets (/opt/www/config/autoload/*, /etc/podmesh/openssl.cnf, /etc/mtls), the generated
   * environment. Resolves once the sample logged `listening`; returns its log.
   */
  async function start(svc: AppService, opts: { opensslConf: boolean; on?: SimHost; dependencies?: Record<string, string> }): Promise<{ lines: Record<string, unknown>[]; raw: () => string; stop: () => Promise<void> }> {
    const on = opts.on ?? host;
    // One shell per step (each nsenter costs time): mount points made, bind mounts read-only; the
    // Hyperf skeleton's runtime/ for the generated pid_file (BASE_PATH/runtime/hyperf.pid).
    const targets = svc.mounts.map((m) => m.target);
    const unmount = async () => {
      await inNs(['sh', '-c', 'for t in "$@"; do ! mountpoint -q "$t" || umount "$t" || exit 1; done', 'sh', ...[...targets].reverse()], on);
    };
    const script = [
      ...svc.mounts.map((m, i) => {
        const [src, dst] = [`"\${${2 * i + 1}}"`, `"\${${2 * i + 2}}"`];
        const point = statSync(m.source).isDirectory() ? `mkdir -p ${dst}` : `mkdir -p "$(dirname ${dst})" && touch ${dst}`;
        return `${point} && mount --bind -o ro ${src} ${dst}`;
      }),
      'mkdir -p /opt/www/runtime',
    ].join(' && ');
    try {
      await inNs(['sh', '-c', script, 'sh', ...svc.mounts.flatMap((m) => [m.source, m.target])], on);
    } catch (e) {
      await unmount();
      throw e;
    }
    // PostgreSQL and Redis only where a test runs them (`dependencies`: the secret files of the service
    // and the hosts); elsewhere without DB_HOST/REDIS_HOST. Everything else as generated.
    const { DB_HOST: _db, REDIS_HOST: _redis, ...generated } = svc.env;
    const env: Record<string, string> = opts.dependencies ? { ...svc.env, ...opts.dependencies } : generated;
    if (!opts.opensslConf) delete env.OPENSSL_CONF;
    const child = execa('nsenter', [`--net=/run/netns/${on.netns}`, `--mount=${on.mountNs}`, '--', php!, '-d', `extension=${SWOOLE_SO}`, LOADER, 'serve'], {
      reject: false,
      extendEnv: false,
      env: { ...env, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdin: 'ignore',
      all: true,
      timeout: 60_000,
    });
    running.add(child);
    let output = '';
    const lines: Record<string, unknown>[] = [];
    const listening = new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`${svc.stack}/${svc.name}: not listening after 10 s:\n${output}`)), 10_000);
      child.all?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        lines.length = 0;
        for (const line of output.split('\n').slice(0, -1)) {
          if (!line.startsWith('{')) continue;
          const event = JSON.parse(line) as Record<string, unknown>;
          lines.push(event);
          if (event.event === 'listening') {
            clearTimeout(timer);
            ok();
          }
        }
      });
      void child.then((r) => {
        clearTimeout(timer);
        fail(new Error(`${svc.stack}/${svc.name}: exited (${r.exitCode}) before listening:\n${output}`));
      });
    });
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const hard = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await child;
        clearTimeout(hard);
      }
      running.delete(child);
      await unmount();
    };
    try {
      await listening;
    } catch (e) {
      await stop();
      throw e;
    }
    return { lines, raw: () => output, stop };
  }

  async function probe(specs: readonly ProbeSpec[], on: SimHost = host): Promise<ProbeResult[]> {
    const r = await on.exec([process.execPath, PROBE, JSON.stringify(specs)], { timeoutMs: 10_000 + specs.length * 3_000 });
    if (r.exitCode !== 0) throw new Error(`tls-probe failed (${r.exitCode}): ${r.stderr}`);
    return JSON.parse(r.stdout) as ProbeResult[];
  }

  beforeAll(async () => {
    // Synthesized and revoked in this process, as `podmesh synth` and `podmesh certs revoke
    // SERVICE --kind client` do (the CLI's own start-up would triple this test's set-up time).
    for (const c of cases) {
      const outDir = join(tmp.path, c.stack, 'out');
      const stateDir = join(tmp.path, c.stack, 'state');
      await synth(await c.app(), { outDir, stateDir, stacks: [c.stack] });
      // Keep the caller's current client certificate, then revoke it; synth writes the new CRL.
      const pki = join(stateDir, c.stack, 'pki/services', c.revokedCaller);
      for (const f of ['client.crt', 'client.key']) copyFileSync(join(pki, f), join(tmp.path, c.stack, `revoked-${f}`));
      chmodSync(join(tmp.path, c.stack, 'revoked-client.key'), 0o600);
      await revoke({ stateDir: join(stateDir, c.stack), service: c.revokedCaller, kind: 'client', now: new Date() });
      await synth(await c.app(), { outDir, stateDir, stacks: [c.stack] });
    }
    // A client certificate from a CA the stack does not trust, with a CN the policies allow.
    const f = (n: string) => join(tmp.path, n);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await execa(openssl!, ['req', '-x509', ...ec, '-keyout', f('foreign-ca.key'), '-out', f('foreign-ca.crt'), '-subj', '/CN=foreign-ca', '-days', '2']);
    await execa(openssl!, ['req', ...ec, '-keyout', f('foreign.key'), '-out', f('foreign.csr'), '-subj', '/CN=gateway.ashchan.local']);
    await execa(openssl!, ['x509', '-req', '-in', f('foreign.csr'), '-CA', f('foreign-ca.crt'), '-CAkey', f('foreign-ca.key'), '-CAcreateserial', '-out', f('foreign.crt'), '-days', '2']);

    // Two simulated hosts on an underlay of their own: services run in `sw`; `peer` runs a caller
    // for the /call test. Each gets overlays over /etc and /opt in its private mount namespace, so
    // the generated targets (/etc/mtls, /etc/podmesh, /opt/www) can be mounted without touching the
    // machine's own folders.
    net = await createHosts(['sw', 'peer']);
    host = net.host('sw');
    for (const h of net.hosts) {
      for (const dir of ['/etc', '/opt']) {
        const base = join(tmp.path, 'overlay', h.name, dir.slice(1));
        mkdirSync(join(base, 'upper'), { recursive: true });
        mkdirSync(join(base, 'work'));
        await inNs(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${dir},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, dir], h);
      }
    }
  }, 240_000);

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await Promise.allSettled([...running]);
    await net?.teardown();
    if (net) expect(net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    tmp.cleanup();
  }, 60_000);

  it('GIVEN the loaded Swoole build WHEN its constants are read THEN they are the values this test assumes', async () => {
    const r = await execa(php!, ['-d', `extension=${SWOOLE_SO}`, '-r', 'echo json_encode([swoole_version(), SWOOLE_SSL, SWOOLE_SSL_TLSv1_3]);']);
    expect(JSON.parse(r.stdout)).toEqual(['6.0.2', SWOOLE_SSL, SWOOLE_SSL_TLSv1_3]);
  });

  it.each(cases)(
    'GIVEN $label synthesized, with a client certificate revoked WHEN every server.php runs on Swoole THEN each listener serves and the mTLS port refuses all but the allowed callers',
    async (c) => {
      const services = appServices(c);
      expect(services.length).toBeGreaterThan(0);
      const stackDir = join(tmp.path, c.stack);
      const revokedCn = cnOf(join(stackDir, 'revoked-client.crt'));
      // Every client certificate of the stack by CN (the state folder holds each service's).
      const callers = new Map<string, string>();
      for (const name of readdirSync(join(stackDir, 'state', c.stack, 'pki/services'))) {
        const dir = join(stackDir, 'state', c.stack, 'pki/services', name);
        if (existsSync(join(dir, 'client.crt'))) callers.set(cnOf(join(dir, 'client.crt')), dir);
      }

      // The listeners, in the order Hyperf creates them: exactly the table of the case.
      const dumps = new Map<AppService, Dump>();
      for (const svc of services) dumps.set(svc, await phpJson<Dump>('dump', svc, 'server.php'));
      const kind = (s: Dump['servers'][number]) => ((s.sock_type & SWOOLE_SSL) === 0 ? 'plain' : s.settings.ssl_verify_peer === true ? 'mtls' : 'public-tls');
      expect(Object.fromEntries(services.map((svc) => [`${svc.host}/${svc.name}`, dumps.get(svc)!.servers.map((s) => `${s.name} ${s.port} ${kind(s)}`)]))).toEqual(c.listeners);

      for (const svc of services) {
        const where = `${c.stack}/${svc.host}/${svc.name}`;
        const dump = dumps.get(svc)!;
        const policy = (await phpJson<{ mtls_policy: Policy }>('include', svc, 'mtls_policy.php')).mtls_policy;
        const tlsPorts = dump.servers.filter((s) => (s.sock_type & SWOOLE_SSL) !== 0);
        const mtls = tlsPorts.filter((s) => s.settings.ssl_verify_peer === true);
        const publics = tlsPorts.filter((s) => s.settings.ssl_verify_peer !== true);
        const plains = dump.servers.filter((s) => (s.sock_type & SWOOLE_SSL) === 0);
        // The generated mTLS listener, exactly: Swoole's own option names in `settings`.
        expect(mtls, where).toHaveLength(1);
        expect(mtls[0]!.port, where).toBe(8443);
        expect(mtls[0]!.settings, where).toMatchObject({
          ssl_cert_file: '/etc/mtls/server.crt',
          ssl_key_file: '/etc/mtls/server.key',
          ssl_client_cert_file: '/etc/mtls/ca.crt',
          ssl_protocols: SWOOLE_SSL_TLSv1_3,
        });
        expect(svc.env.OPENSSL_CONF, where).toBe('/etc/podmesh/openssl.cnf');
        expect(policy.crl_file, where).toBe('/etc/mtls/crl.pem');

        const selfCn = policy.dns_name;
        // The allowed caller: the first listed, or the service itself (its health check).
        const allowedCn = policy.allowed_clients[0] ?? selfCn;
        const allowedDir = callers.get(allowedCn);
        expect(allowedDir, `${where}: client certificate of ${allowedCn}`).toBeDefined();
        const outsider = [...callers.keys()].find((cn) => cn !== selfCn && !policy.allowed_clients.includes(cn));
        const mtlsTls = { servername: selfCn, ca: join(svc.pkiDir, 'ca.crt') };
        const allowed = { ...mtlsTls, cert: join(allowedDir!, 'client.crt'), key: join(allowedDir!, 'client.key') };
        const m = (tls: ProbeSpec['tls'], path = '/health'): ProbeSpec => ({ port: 8443, path, tls });

        // The generated health check resolves the service's own name: here, to this namespace's loopback.
        await inNs(['sh', '-c', 'grep -q " $1$" /etc/hosts || echo "127.0.0.1 $1" >> /etc/hosts', 'sh', selfCn]);
        const server = await start(svc, { opensslConf: true });
        let results: ProbeResult[];
        let health: { exitCode: number; stdout: string; stderr: string };
        /** Whether the server sent a CertificateRequest, by port: what openssl s_client -msg saw. */
        const asksForCert = new Map<number, boolean>();
        try {
          // The compose file's health check command, as the container runs it (its OPENSSL_CONF too).
          health = await host.exec([...svc.healthcheck], { timeoutMs: 10_000, env: { OPENSSL_CONF: svc.env.OPENSSL_CONF ?? '' } });
          for (const p of [...mtls, ...publics]) {
            const hello = await host.exec([openssl!, 's_client', '-connect', `127.0.0.1:${p.port}`, '-tls1_3', '-msg'], { input: '', timeoutMs: 10_000 });
            expect(hello.stdout, `${where}: s_client to ${p.port}`).toContain('Handshake [length');
            asksForCert.set(p.port, /Handshake \[length [0-9a-f]+\], CertificateRequest/.test(hello.stdout));
          }
          results = await probe([
            m(allowed),
            m({ ...allowed, ciphers: 'TLS_CHACHA20_POLY1305_SHA256' }),
            m(mtlsTls),
            m({ ...mtlsTls, cert: join(tmp.path, 'foreign.crt'), key: join(tmp.path, 'foreign.key') }),
            m({ ...allowed, maxVersion: 'TLSv1.2' }),
            m({ ...allowed, ciphers: 'TLS_AES_128_GCM_SHA256' }),
            m({ ...mtlsTls, cert: join(stackDir, 'revoked-client.crt'), key: join(stackDir, 'revoked-client.key') }),
            ...(outsider ? [m({ ...mtlsTls, cert: join(callers.get(outsider)!, 'client.crt'), key: join(callers.get(outsider)!, 'client.key') })] : []),
            ...publics.map((p) => ({ port: p.port, path: '/health', tls: { servername: 'public' } })),
            ...plains.map((p) => ({ port: p.port, path: '/health' })),
          ]);
        } finally {
          await server.stop();
        }
        const [ok, chacha, noCert, foreign, tls12, aes128, revoked, ...rest] = results;
        const denied = outsider ? rest.shift() : undefined;
        const log = server.raw();
        // Swoole holds every generated listener, in initServers' order, TLS and client certificates as generated.
        const listening = server.lines.find((l) => l.event === 'listening') as { ports: unknown[] };
        expect(listening.ports, where).toEqual(dump.servers.map((s) => ({ host: s.host, port: s.port, tls: (s.sock_type & SWOOLE_SSL) !== 0, client_cert: s.settings.ssl_verify_peer === true })));

        expect(health, `${where}: ${svc.healthcheck.join(' ')}`).toMatchObject({ exitCode: 0 });
        expect(JSON.parse(health.stdout), where).toMatchObject({ status: 'ok', dns_name: selfCn });
        // Allowed caller: 200 over TLS 1.3 with the seed's suites, the server's certificate verified.
        expect(ok, `${where}\n${log}`).toMatchObject({ ok: true, status: 200, protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
        expect(JSON.parse(ok!.body!), where).toMatchObject({ status: 'ok', dns_name: selfCn });
        expect(chacha, where).toMatchObject({ ok: true, status: 200, protocol: 'TLSv1.3', cipher: 'TLS_CHACHA20_POLY1305_SHA256' });
        expect(SEED_SUITES).toContain(ok!.cipher);
        // Refused in the handshake by Swoole (no HTTP answer at all).
        expect(noCert, where).toMatchObject({ ok: false });
        expect(noCert!.status, where).toBeUndefined();
        expect(foreign, where).toMatchObject({ ok: false });
        expect(foreign!.status, where).toBeUndefined();
        expect(tls12, where).toMatchObject({ ok: false, error: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
        expect(aes128, where).toMatchObject({ ok: false, error: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' });
        // Refused by the sample's policy code: the CRL, then the allowed client CNs.
        expect(revoked, where).toMatchObject({ ok: true, status: 403 });
        expect(JSON.parse(revoked!.body!), where).toEqual({ error: 'forbidden', reason: 'CERT_REVOKED', client_cn: revokedCn });
        expect(server.lines, where).toContainEqual(
          expect.objectContaining({ event: 'mtls_handshake_failed', level: 'warn', client_cn: revokedCn, server_cn: selfCn, reason: 'CERT_REVOKED', error: 'CERT_REVOKED' }),
        );
        if (outsider) {
          expect(denied, where).toMatchObject({ ok: true, status: 403 });
          // The outsider's certificate carries its own SPIFFE ID, spiffe://<mesh domain>/<stack>/<service>: refused by it.
          const [label, ...domain] = outsider.split('.');
          const outsiderId = expect.stringMatching(new RegExp(`^spiffe://${domain.join('\\.')}/[a-z0-9-]+/${label}$`));
          expect(JSON.parse(denied!.body!), where).toEqual({ error: 'forbidden', client_cn: outsider, client_spiffe_id: outsiderId });
          expect(server.lines, where).toContainEqual(expect.objectContaining({ event: 'mtls_authorization_denied', client_cn: outsider, client_spiffe_id: outsiderId, server_cn: selfCn, path: '/health' }));
        }
        expect(server.lines, where).toContainEqual(expect.objectContaining({ event: 'mtls_handshake_complete', client_cn: allowedCn, server_cn: selfCn, tls_version: 'TLSv1.3' }));
        // Only the mTLS port asks for a client certificate.
        expect(Object.fromEntries(asksForCert), where).toEqual(Object.fromEntries([...mtls.map((p) => [p.port, true]), ...publics.map((p) => [p.port, false])]));
        // The public TLS port: public.crt, and no client certificate needed.
        const publicFingerprint = existsSync(join(svc.pkiDir, 'public.crt')) ? new X509Certificate(readFileSync(join(svc.pkiDir, 'public.crt'))).fingerprint256 : undefined;
        for (const [i, p] of publics.entries()) {
          expect(p.settings, where).toMatchObject({ ssl_cert_file: '/etc/mtls/public.crt', ssl_key_file: '/etc/mtls/public.key', ssl_verify_peer: false, ssl_protocols: SWOOLE_SSL_TLSv1_3 });
          expect(rest[i], `${where}: public port ${p.port}`).toMatchObject({ ok: true, status: 200, protocol: 'TLSv1.3', serverCertFingerprint256: publicFingerprint });
        }
        for (const [i, p] of plains.entries()) {
          expect(rest[publics.length + i], `${where}: plain port ${p.port}`).toMatchObject({ ok: true, status: 200 });
        }
      }
    },
    120_000,
  );

  it('GIVEN ashchan-dev\'s boards and media on two hosts WHEN boards serves /call/media THEN it called media with the generated client options and returns media\'s answer; an impostor under media\'s name is refused', async () => {
    const [boards, media, moderation] = ['boards', 'media', 'moderation'].map((n) => appServices(cases[0]!).find((s) => s.name === n)!);
    const peer = net!.host('peer');
    // boards' container resolves media through the mesh's DNS; here media.ashchan.local is the other host.
    await inNs(['sh', '-c', `echo "${host.underlayIp} media.ashchan.local" >> /etc/hosts`], peer);
    const own = { servername: 'boards.ashchan.local', ca: join(boards!.pkiDir, 'ca.crt'), cert: join(boards!.pkiDir, 'client.crt'), key: join(boards!.pkiDir, 'client.key') };
    const caller = await start(boards!, { opensslConf: true, on: peer });
    let call: ProbeResult | undefined;
    let notDeclared: ProbeResult | undefined;
    let impostor: ProbeResult | undefined;
    let mediaLines: Record<string, unknown>[] = [];
    try {
      const callee = await start(media!, { opensslConf: true });
      try {
        [call, notDeclared] = await probe([{ port: 8443, path: '/call/media', tls: own }, { port: 8443, path: '/call/search', tls: own }], peer);
        mediaLines = [...callee.lines];
      } finally {
        await callee.stop();
      }
      // moderation would let boards in, but its certificate is not media's: the client options must
      // verify the server's name (hyperf/guzzle's handler alone sets ssl_verify_peer => false).
      const wrong = await start(moderation!, { opensslConf: true });
      try {
        [impostor] = await probe([{ port: 8443, path: '/call/media', tls: own }], peer);
      } finally {
        await wrong.stop();
      }
    } finally {
      await caller.stop();
    }
    expect(call).toMatchObject({ ok: true, status: 200 });
    const answer = JSON.parse(call!.body!) as { target: string; status: number; body: string };
    expect(answer).toMatchObject({ target: 'https://media.ashchan.local:8443', status: 200 });
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok', service: media!.env.SERVICE_NAME, dns_name: 'media.ashchan.local', checks: {} });
    // media saw boards' client certificate over TLS 1.3: the client options took effect.
    expect(mediaLines).toContainEqual(expect.objectContaining({ event: 'mtls_handshake_complete', client_cn: 'boards.ashchan.local', server_cn: 'media.ashchan.local', tls_version: 'TLSv1.3' }));
    // A service boards may not call has no URL in its mtls_client.php.
    expect(notDeclared).toMatchObject({ ok: true, status: 404 });
    expect(JSON.parse(notDeclared!.body!)).toEqual({ error: 'SEARCH_SERVICE_URL is not set: this service may not call search' });
    expect(impostor).toMatchObject({ ok: true, status: 502 });
    expect(JSON.parse(impostor!.body!)).toEqual({ target: 'https://media.ashchan.local:8443', error: 'Connection failed, errCode=1014 (SSL verify failed)' });
  });

  it.skipIf(!deps)('GIVEN ashchan-dev\'s boards with real PostgreSQL and Redis holding the generated secrets WHEN /health is asked THEN 200 with both checks ok; with wrong secrets 503 naming each refusal', async () => {
    const boards = appServices(cases[0]!).find((s) => s.name === 'boards')!;
    const secrets = join(tmp.path, 'ashchan-dev/state/ashchan-dev/secrets');
    const secret = (file: string) => readFileSync(join(secrets, file), 'utf8');
    const pg: Record<string, string> = { ...(parse(readFileSync(join(tmp.path, 'ashchan-dev/out/ashchan-dev/hosts/local/compose.yaml'), 'utf8')) as { services: { postgres: { environment: Record<string, string> } } }).services.postgres.environment, POSTGRES_PASSWORD: secret('postgres.password') };
    // boards reads its own passwords from the files *_FILE names (mounted under /run/secrets in the
    // mesh), as its own PostgreSQL role and Redis ACL user; here the state folder's own files, at the same names.
    expect(boards.env).toMatchObject({ DB_USERNAME: 'boards', DB_SCHEMA: 'boards', DB_PASSWORD_FILE: '/run/secrets/boards.postgres-password', REDIS_USERNAME: 'boards', REDIS_AUTH_FILE: '/run/secrets/boards.redis-password' });
    expect(Object.keys(boards.env).filter((k) => ['DB_PASSWORD', 'REDIS_AUTH'].includes(k))).toEqual([]);
    const own = { DB_PASSWORD_FILE: join(secrets, 'boards.postgres-password'), REDIS_AUTH_FILE: join(secrets, 'boards.redis-password') };
    // PostgreSQL as its image would set it up from POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB, in a
    // folder the postgres user owns; the password reaches initdb in a 0600 file, never a command line.
    const pgDir = mkdtempSync(join(tmpdir(), 'podmesh-pg-'));
    const [uid, gid] = ['-u', '-g'].map((flag) => Number(execaSync('id', [flag, 'postgres']).stdout)) as [number, number];
    try {
      chownSync(pgDir, uid, gid);
      writeFileSync(join(pgDir, 'pw'), `${pg.POSTGRES_PASSWORD}\n`, { mode: 0o600 });
      chownSync(join(pgDir, 'pw'), uid, gid);
      await inNs(['runuser', '-u', 'postgres', '--', join(deps!.pgBin, 'initdb'), '-D', join(pgDir, 'data'), '-U', pg.POSTGRES_USER!, `--pwfile=${join(pgDir, 'pw')}`, '--auth-host=scram-sha-256', '--auth-local=trust']);
      await inNs(['runuser', '-u', 'postgres', '--', join(deps!.pgBin, 'pg_ctl'), '-D', join(pgDir, 'data'), '-w', '-t', '20', '-l', join(pgDir, 'log'), '-o', `-c listen_addresses=127.0.0.1 -k ${pgDir}`, 'start']);
      await inNs(['runuser', '-u', 'postgres', '--', join(deps!.pgBin, 'psql'), '-h', pgDir, '-U', pg.POSTGRES_USER!, '-d', 'postgres', '-c', `CREATE DATABASE "${pg.POSTGRES_DB}"`]);
      // The clients' roles, by the generated roles script (run for real on the image in
      // least-credentials.test.ts), pointed at this server's socket and the state folder's copies of the secret files.
      const roles = readFileSync(join(tmp.path, 'ashchan-dev/out/ashchan-dev/hosts/local/config/postgres/podmesh-roles.sh'), 'utf8').replaceAll('/run/secrets/', `${secrets}/`).replace('PGHOST= PGHOSTADDR=', `PGHOST=${pgDir} PGHOSTADDR=`);
      await inNs(['env', `PATH=${deps!.pgBin}:/usr/bin:/bin`, `POSTGRES_USER=${pg.POSTGRES_USER}`, `POSTGRES_DB=${pg.POSTGRES_DB}`, 'sh', '-c', roles]);
      // Redis with the generated configuration (its `requirepass`), read from stdin as the preset's
      // command does, plus this test's listener and daemon settings; no password on a command line.
      writeFileSync(join(pgDir, 'redis.conf'), `${secret('redis.password.conf')}bind 127.0.0.1\nport 6379\nsave ""\ndaemonize yes\npidfile ${join(pgDir, 'redis.pid')}\nlogfile ${join(pgDir, 'redis.log')}\n`, { mode: 0o600 });
      await inNs(['sh', '-c', `exec "$0" - < ${join(pgDir, 'redis.conf')}`, deps!.redis]);
      // The services' names, as the mesh's DNS would answer them, point at this namespace's loopback.
      await inNs(['sh', '-c', `echo "127.0.0.1 ${boards.env.DB_HOST} ${boards.env.REDIS_HOST}" >> /etc/hosts`]);

      const health = async (dependencies: Record<string, string>) => {
        const server = await start(boards, { opensslConf: true, dependencies });
        try {
          // Asked again (at most 20 times, 100 ms apart) only while Redis, just daemonized, refuses connections.
          for (let i = 0; ; i++) {
            const [r] = await probe([{ port: 9503, path: '/health' }]);
            const redisCheck = (JSON.parse(r!.body ?? '{}') as { checks?: { redis?: string } }).checks?.redis ?? '';
            if (!redisCheck.startsWith('connect:') || i === 20) return { ...r!, lines: server.lines };
            await new Promise((ok) => setTimeout(ok, 100));
          }
        } finally {
          await server.stop();
        }
      };
      const good = await health(own);
      expect(good).toMatchObject({ ok: true, status: 200 });
      expect(JSON.parse(good.body!)).toEqual({ status: 'ok', service: boards.env.SERVICE_NAME, dns_name: 'boards.ashchan.local', checks: { postgres: 'ok', redis: 'ok' } });
      writeFileSync(join(pgDir, 'db-wrong'), `${secret('boards.postgres-password')}-wrong`, { mode: 0o600 });
      writeFileSync(join(pgDir, 'redis-wrong'), `${secret('boards.redis-password')}-wrong`, { mode: 0o600 });
      const bad = await health({ DB_PASSWORD_FILE: join(pgDir, 'db-wrong'), REDIS_AUTH_FILE: join(pgDir, 'redis-wrong') });
      expect(bad).toMatchObject({ ok: true, status: 503 });
      const body = JSON.parse(bad.body!) as { status: string; checks: Record<string, string> };
      expect(body.status).toBe('unavailable');
      expect(body.checks.postgres).toContain('password authentication failed for user "boards"');
      expect(body.checks.redis).toBe('AUTH refused: -WRONGPASS invalid username-password pair or user is disabled.');
      expect(bad.lines).toContainEqual(expect.objectContaining({ event: 'health_check_failed', level: 'error' }));
    } finally {
      await host.exec(['runuser', '-u', 'postgres', '--', join(deps!.pgBin, 'pg_ctl'), '-D', join(pgDir, 'data'), '-m', 'immediate', 'stop'], { timeoutMs: 20_000 });
      await host.exec(['sh', '-c', `[ ! -f ${join(pgDir, 'redis.pid')} ] || kill "$(cat ${join(pgDir, 'redis.pid')})"`], { timeoutMs: 5_000 });
      rmSync(pgDir, { recursive: true, force: true });
    }
  });

  it('GIVEN ashchan-dev\'s gateway WHEN it runs without the generated OPENSSL_CONF THEN TLS_AES_128_GCM_SHA256 gets through: the generated openssl.cnf is what refuses it', async () => {
    const gateway = appServices(cases[0]!).find((s) => s.name === 'gateway')!;
    const ca = join(gateway.pkiDir, 'ca.crt');
    const server = await start(gateway, { opensslConf: false });
    let results: ProbeResult[];
    try {
      results = await probe([{ port: 8443, path: '/health', tls: { servername: 'gateway.ashchan.local', ca, cert: join(gateway.pkiDir, 'client.crt'), key: join(gateway.pkiDir, 'client.key'), ciphers: 'TLS_AES_128_GCM_SHA256' } }]);
    } finally {
      await server.stop();
    }
    expect(results[0]).toMatchObject({ ok: true, status: 200, protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' });
  });
});
