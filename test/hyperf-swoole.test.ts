// The generated Hyperf configuration on real Swoole: every config/autoload/server.php of
// ashchan-dev, ashchan-prod and a stack on Podman 4.4 is booted by the Hyperf-equivalent loader
// (test/fixtures/hyperf/loader.php → examples/php-sample, a port of hyperf/server's
// Server::initServers) under the generated openssl.cnf, and probed with Node's TLS client: the
// allowed caller gets 200 over TLS 1.3 with a seed suite; no certificate, a foreign CA, TLS 1.2,
// TLS_AES_128_GCM_SHA256, a revoked certificate and a caller outside the policy are refused; the
// gateway's public port serves public.crt without a client certificate; plain ports answer.
//
// The generated files hold absolute paths (/etc/mtls/…, /etc/podmesh/openssl.cnf): they are run
// unchanged inside a network namespace and a private mount namespace of this test, where an
// overlay over /etc (upper dir in a temp folder) carries the bind mounts. The machine's own /etc
// and network are untouched; every connection goes to 127.0.0.1 inside that namespace.
import { execa, type ResultPromise } from 'execa';
import { X509Certificate } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createHosts, netnsReady, type SimHost, type SimNetwork } from './helpers/netns.ts';
import { tempDir } from './helpers/stacks.ts';
import { inCI, repoRoot, tool } from './helpers/tools.ts';

const SWOOLE_SO = join(repoRoot, '.cache/swoole.so');
const LOADER = join(repoRoot, 'test/fixtures/hyperf/loader.php');
const PROBE = join(repoRoot, 'test/fixtures/hyperf/tls-probe.mjs');
const bin = join(repoRoot, 'bin/podmesh.mjs');
const SEED_SUITES = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
// Swoole's constants as the generated files use them (checked against the loaded build below).
const SWOOLE_SSL = 512;
const SWOOLE_SSL_TLSv1_3 = 64;

/** Swoole as built by scripts/install-validators.sh; skip (or fail under CI) without it. */
function swooleReady(): boolean {
  if (existsSync(SWOOLE_SO)) return true;
  const how = 'run `sudo scripts/install-validators.sh`, which builds it from ../shared/vendor/swoole-src-6.0.2.tar.xz (RECIPES.md section 7)';
  if (inCI) throw new Error(`.cache/swoole.so is required under CI: ${how}`);
  console.warn(`skipping the Swoole tests: .cache/swoole.so is missing; ${how}`);
  return false;
}

const php = tool('php');
const openssl = tool('openssl');
const runnable = netnsReady() && !!php && !!openssl && swooleReady();

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
  readonly configDir: string;
  readonly pkiDir: string;
  readonly env: Record<string, string>;
}

/** One stack under test: where its stack file lives and whose client certificate gets revoked. */
interface StackCase {
  readonly label: string;
  readonly stack: string;
  readonly stacksDir: () => string;
  readonly revokedCaller: string;
}

describe.skipIf(!runnable)('generated Hyperf server.php on real Swoole (Hyperf-equivalent loader)', () => {
  const tmp = tempDir('podmesh-swoole-');
  let net: SimNetwork | undefined;
  let host: SimHost;
  const running = new Set<ResultPromise>();

  /** A stack on Podman 4.4 (the oldest forms), small: a public web front, an api it calls, a worker nobody lists. */
  const stack44Dir = join(tmp.path, 'stacks44');
  const cases: StackCase[] = [
    { label: 'ashchan-dev', stack: 'ashchan-dev', stacksDir: () => join(repoRoot, 'stacks'), revokedCaller: 'gateway' },
    { label: 'ashchan-prod', stack: 'ashchan-prod', stacksDir: () => join(repoRoot, 'stacks'), revokedCaller: 'gateway' },
    { label: 'a stack on Podman 4.4', stack: 'ver44', stacksDir: () => stack44Dir, revokedCaller: 'web' },
  ];

  const cli = (c: StackCase, ...args: string[]) =>
    execa('node', [bin, ...args, '--stacks', c.stacksDir(), '--out', join(tmp.path, c.stack, 'out'), '--state', join(tmp.path, c.stack, 'state'), '--stack', c.stack], {
      reject: false,
      timeout: 90_000,
    });

  const phpJson = async <T,>(command: 'dump' | 'include', file: string): Promise<T> => {
    const r = await execa(php!, ['-d', `extension=${SWOOLE_SO}`, LOADER, command, file], { reject: false, timeout: 20_000 });
    if (r.exitCode !== 0) throw new Error(`loader ${command} ${file} failed (${r.exitCode}): ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  };

  /** The app services of a synthesized stack: each config/<svc>/autoload of each host. */
  function appServices(c: StackCase): AppService[] {
    const out = join(tmp.path, c.stack, 'out', c.stack, 'hosts');
    const found: AppService[] = [];
    for (const h of readdirSync(out).sort()) {
      const compose = parse(readFileSync(join(out, h, 'compose.yaml'), 'utf8')) as { services: Record<string, { environment?: Record<string, string> }> };
      const configRoot = join(out, h, 'config');
      if (!existsSync(configRoot)) continue;
      for (const name of readdirSync(configRoot).sort()) {
        if (!existsSync(join(configRoot, name, 'autoload/server.php'))) continue;
        const env = compose.services[name]?.environment;
        if (!env) throw new Error(`${c.stack}/${h}: compose.yaml has no environment for ${name}`);
        found.push({ stack: c.stack, host: h, name, configDir: join(configRoot, name), pkiDir: join(tmp.path, c.stack, 'state', c.stack, 'pki/services', name), env });
      }
    }
    return found;
  }

  const cnOf = (certFile: string) => /^CN=(.+)$/m.exec(new X509Certificate(readFileSync(certFile)).subject)?.[1] ?? '';

  /** Runs `cmd` in the test's namespaces and fails with its output. */
  async function inNs(cmd: string[]): Promise<void> {
    const r = await host.exec(cmd, { timeoutMs: 20_000 });
    if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  }

  /**
   * Starts the service as its container would: the generated files at their generated paths, the
   * generated environment. Resolves once the sample logged `listening`; returns its log lines.
   */
  async function start(svc: AppService, opts: { opensslConf: boolean }): Promise<{ lines: Record<string, unknown>[]; raw: () => string; stop: () => Promise<void> }> {
    // The container's mounts: state folder → /etc/mtls, openssl.cnf → /etc/podmesh/openssl.cnf.
    await inNs(['sh', '-c', 'mkdir -p /etc/mtls /etc/podmesh && touch /etc/podmesh/openssl.cnf']);
    await inNs(['mount', '--bind', '-o', 'ro', svc.pkiDir, '/etc/mtls']);
    await inNs(['mount', '--bind', '-o', 'ro', join(svc.configDir, 'openssl.cnf'), '/etc/podmesh/openssl.cnf']);
    // APP_ROOT stands for /opt/www: config/autoload is the generated folder, runtime/ the pid file's.
    const appRoot = join(tmp.path, 'app', `${svc.stack}-${svc.host}-${svc.name}-${opts.opensslConf ? 'conf' : 'noconf'}`);
    mkdirSync(join(appRoot, 'config'), { recursive: true });
    mkdirSync(join(appRoot, 'runtime'));
    symlinkSync(join(svc.configDir, 'autoload'), join(appRoot, 'config/autoload'));
    // No PostgreSQL or Redis here: their checks are the end-to-end test's. Everything else as generated.
    const { DB_HOST: _db, REDIS_HOST: _redis, ...env } = svc.env;
    if (!opts.opensslConf) delete env.OPENSSL_CONF;
    const child = execa('nsenter', [`--net=/run/netns/${host.netns}`, `--mount=${host.mountNs}`, '--', php!, '-d', `extension=${SWOOLE_SO}`, LOADER, 'serve'], {
      reject: false,
      extendEnv: false,
      env: { ...env, PATH: process.env.PATH ?? '/usr/bin:/bin', APP_ROOT: appRoot },
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
        const complete = output.split('\n').slice(0, -1);
        lines.length = 0;
        for (const line of complete) {
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
      await inNs(['umount', '/etc/podmesh/openssl.cnf']);
      await inNs(['umount', '/etc/mtls']);
    };
    try {
      await listening;
    } catch (e) {
      await stop();
      throw e;
    }
    return { lines, raw: () => output, stop };
  }

  async function probe(specs: readonly ProbeSpec[]): Promise<ProbeResult[]> {
    const r = await host.exec([process.execPath, PROBE, JSON.stringify(specs)], { timeoutMs: 10_000 + specs.length * 3_000 });
    if (r.exitCode !== 0) throw new Error(`tls-probe failed (${r.exitCode}): ${r.stderr}`);
    return JSON.parse(r.stdout) as ProbeResult[];
  }

  beforeAll(async () => {
    // The Podman 4.4 stack, in code like the repository's stacks.
    mkdirSync(stack44Dir);
    writeFileSync(
      join(stack44Dir, 'ver44.mts'),
      [
        `import { type App, Host, Network, Stack, Service } from ${JSON.stringify(join(repoRoot, 'constructs/index.ts'))};`,
        'export default (app: App): void => {',
        "  const stack = new Stack(app, 'ver44', { project: 'ver' });",
        "  new Host(stack, 'h', { podmanVersion: '4.4' });",
        "  new Network(stack, 'mesh', { subnet: '10.93.0.0/24', domain: 'ver.local' });",
        "  const api = new Service(stack, 'api', { image: 'localhost/test/api:1', ports: { http: 9000 } });",
        "  new Service(stack, 'worker', { image: 'localhost/test/worker:1' });",
        "  new Service(stack, 'web', { image: 'localhost/test/web:1', calls: [api], ports: { public: { port: 8080, publish: true } }, publicTls: { hostnames: ['ver.localhost'] } });",
        '};',
        '',
      ].join('\n'),
    );
    for (const c of cases) {
      const first = await cli(c, 'synth');
      if (first.exitCode !== 0) throw new Error(`synth ${c.stack}: ${first.stderr}`);
      // Keep the caller's current client certificate, then revoke it: synth writes the new CRL.
      const pki = join(tmp.path, c.stack, 'state', c.stack, 'pki/services', c.revokedCaller);
      for (const f of ['client.crt', 'client.key']) copyFileSync(join(pki, f), join(tmp.path, c.stack, `revoked-${f}`));
      chmodSync(join(tmp.path, c.stack, 'revoked-client.key'), 0o600);
      const revoke = await cli(c, 'certs', 'revoke', c.revokedCaller, '--kind', 'client');
      if (revoke.exitCode !== 0) throw new Error(`certs revoke ${c.revokedCaller}: ${revoke.stderr}`);
      const second = await cli(c, 'synth');
      if (second.exitCode !== 0) throw new Error(`synth ${c.stack} after revoke: ${second.stderr}`);
    }
    // A client certificate from a CA the stack does not trust, with a CN the policies allow.
    const f = (n: string) => join(tmp.path, n);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await execa(openssl!, ['req', '-x509', ...ec, '-keyout', f('foreign-ca.key'), '-out', f('foreign-ca.crt'), '-subj', '/CN=foreign-ca', '-days', '2']);
    await execa(openssl!, ['req', ...ec, '-keyout', f('foreign.key'), '-out', f('foreign.csr'), '-subj', '/CN=gateway.ashchan.local']);
    await execa(openssl!, ['x509', '-req', '-in', f('foreign.csr'), '-CA', f('foreign-ca.crt'), '-CAkey', f('foreign-ca.key'), '-CAcreateserial', '-out', f('foreign.crt'), '-days', '2']);

    net = await createHosts(['sw']);
    host = net.host('sw');
    // An overlay over /etc in the test's private mount namespace: /etc/mtls and /etc/podmesh can be
    // created there without touching the machine's /etc.
    mkdirSync(join(tmp.path, 'etc-upper'));
    mkdirSync(join(tmp.path, 'etc-work'));
    await inNs(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=/etc,upperdir=${join(tmp.path, 'etc-upper')},workdir=${join(tmp.path, 'etc-work')}`, '/etc']);
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

      for (const svc of services) {
        const where = `${c.stack}/${svc.host}/${svc.name}`;
        const dump = await phpJson<Dump>('dump', join(svc.configDir, 'autoload/server.php'));
        const policy = (await phpJson<{ mtls_policy: Policy }>('include', join(svc.configDir, 'autoload/mtls_policy.php'))).mtls_policy;
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

        const server = await start(svc, { opensslConf: true });
        let results: ProbeResult[];
        try {
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
          expect(JSON.parse(denied!.body!), where).toEqual({ error: 'forbidden', client_cn: outsider });
          expect(server.lines, where).toContainEqual(expect.objectContaining({ event: 'mtls_authorization_denied', client_cn: outsider, server_cn: selfCn, path: '/health' }));
        }
        expect(server.lines, where).toContainEqual(expect.objectContaining({ event: 'mtls_handshake_complete', client_cn: allowedCn, server_cn: selfCn, tls_version: 'TLSv1.3' }));
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
