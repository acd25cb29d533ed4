// The generated Hyperf mTLS middleware and client factory (app/Podmesh/*.php, config/autoload/
// middlewares.<server>.php) on real Swoole 6.0.2 with the real PSR-7/PSR-11/PSR-15 interfaces,
// nyholm/psr7 and Guzzle 7 (.cache/hyperf-vendor, installed by scripts/install-validators.sh from
// test/fixtures/hyperf/composer/composer.json). ashchan-dev's boards runs as deployed: the compose
// file's own bind mounts at their generated targets (/opt/www/…, /etc/mtls, /etc/podmesh) inside a
// network and mount namespace of this test (overlays over /etc and /opt), booted by the PHP
// sample's Hyperf-equivalent loader (test/fixtures/hyperf/middleware-app.php). Inbound: the allowed
// caller and the service itself pass with their name in `mtls.caller`; a caller outside the policy,
// a revoked certificate (also one revoked while the server runs) and no certificate are refused,
// and without a readable CRL it fails closed (503);
// the plain port passes through. Outbound: a mesh URL gets the client certificate, another URL none.
import { execa, execaSync, type ResultPromise } from 'execa';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadStacks } from '../src/cli/load.ts';
import { synth } from '../src/index.ts';
import { revoke } from '../src/state/pki/revoke.ts';
import { createHosts, netnsReady, type SimHost, type SimNetwork } from './helpers/netns.ts';
import { forgeClientFiles } from './helpers/forge.ts';
import { tempDir } from './helpers/stacks.ts';
import { inCI, repoRoot, tool } from './helpers/tools.ts';

const SWOOLE_SO = join(repoRoot, '.cache/swoole.so');
const VENDOR = join(repoRoot, '.cache/hyperf-vendor/autoload.php');
const APP = join(repoRoot, 'test/fixtures/hyperf/middleware-app.php');
const PROBE = join(repoRoot, 'test/fixtures/hyperf/tls-probe.mjs');
const ECHO = join(repoRoot, 'test/fixtures/hyperf/peer-echo.mjs');
const STACK = 'ashchan-dev';

/** Swoole and the fixture's Composer packages, as scripts/install-validators.sh installs them; skip (or fail under CI) without. */
function ready(): boolean {
  const missing = [SWOOLE_SO, VENDOR].filter((f) => !existsSync(f));
  if (missing.length === 0) return true;
  const how = `${missing.join(' and ')} missing: run \`scripts/install-validators.sh\` (Swoole from ../shared/vendor, the packages by Composer)`;
  if (inCI) throw new Error(how);
  console.warn(`skipping the Hyperf middleware tests: ${how}`);
  return false;
}

const php = tool('php');
const runnable = netnsReady() && !!php && ready();

interface ProbeResult {
  readonly ok: boolean;
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
}

describe.skipIf(!runnable)('generated Hyperf mTLS middleware and client factory on real Swoole', () => {
  const tmp = tempDir('podmesh-mw-');
  const outDir = join(tmp.path, 'out');
  const stateDir = join(tmp.path, 'state');
  const hostDir = join(outDir, STACK, 'hosts/local');
  const pki = (service: string) => join(stateDir, STACK, 'pki/services', service);
  let net: SimNetwork | undefined;
  let host: SimHost;
  const running = new Set<ResultPromise>();

  const app = () => loadStacks(join(repoRoot, 'stacks'));

  async function inNs(cmd: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
    const r = await host.exec(cmd, { timeoutMs: opts.timeoutMs ?? 20_000, env: opts.env });
    if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed (${r.exitCode}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** boards' environment and bind mounts as its compose service declares them (state folder: this test's). */
  function service(name: string): { env: Record<string, string>; mounts: { source: string; target: string }[] } {
    const compose = parse(readFileSync(join(hostDir, 'compose.yaml'), 'utf8')) as { services: Record<string, { environment: Record<string, string>; volumes: string[] }> };
    const spec = compose.services[name]!;
    const mounts = spec.volumes.map((v) => {
      const [source, target] = v.replace(/^\$\{PODMESH_STATE_DIR:-[^}]*\}/, stateDir).split(':') as [string, string];
      return { source: resolve(hostDir, source), target };
    });
    // Without PostgreSQL and Redis here; everything else as generated.
    const { DB_HOST: _db, REDIS_HOST: _redis, ...env } = spec.environment;
    return { env, mounts };
  }

  /** Mounts boards' files at their targets, runs the fixture application, resolves once it listens. */
  async function start(): Promise<{ lines: () => Record<string, unknown>[]; stop: () => Promise<void> }> {
    const { env, mounts } = service('boards');
    const script = mounts
      .map((m, i) => {
        const [src, dst] = [`"\${${2 * i + 1}}"`, `"\${${2 * i + 2}}"`];
        const point = statSync(m.source).isDirectory() ? `mkdir -p ${dst}` : `mkdir -p "$(dirname ${dst})" && touch ${dst}`;
        return `${point} && mount --bind -o ro ${src} ${dst}`;
      })
      .concat('mkdir -p /opt/www/runtime')
      .join(' && ');
    const targets = mounts.map((m) => m.target).reverse();
    const unmount = () => inNs(['sh', '-c', 'for t in "$@"; do ! mountpoint -q "$t" || umount "$t" || exit 1; done', 'sh', ...targets]);
    await inNs(['sh', '-c', script, 'sh', ...mounts.flatMap((m) => [m.source, m.target])]).catch(async (e) => {
      await unmount();
      throw e;
    });
    const child = execa('nsenter', [`--net=/run/netns/${host.netns}`, `--mount=${host.mountNs}`, '--', php!, '-d', `extension=${SWOOLE_SO}`, APP, 'serve'], {
      reject: false,
      extendEnv: false,
      env: { ...env, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdin: 'ignore',
      all: true,
      timeout: 60_000,
    });
    running.add(child);
    let output = '';
    const lines = () => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
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
      await new Promise<void>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`not listening after 10 s:\n${output}`)), 10_000);
        child.all?.on('data', (chunk: Buffer) => {
          output += chunk.toString('utf8');
          if (lines().some((l) => l.event === 'listening')) {
            clearTimeout(timer);
            ok();
          }
        });
        void child.then((r) => {
          clearTimeout(timer);
          fail(new Error(`exited (${r.exitCode}) before listening:\n${output}`));
        });
      });
    } catch (e) {
      await stop();
      throw e;
    }
    return { lines, stop };
  }

  async function probe(specs: readonly object[]): Promise<ProbeResult[]> {
    return JSON.parse(await inNs([process.execPath, PROBE, JSON.stringify(specs)], { timeoutMs: 10_000 + specs.length * 3_000 })) as ProbeResult[];
  }

  const tlsAs = (dir: string) => ({ servername: 'boards.ashchan.local', ca: join(pki('boards'), 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key') });

  beforeAll(async () => {
    // Synthesized, gateway's client certificate kept and then revoked, synthesized again (new
    // certificate, new CRL), as `podmesh synth` and `podmesh certs revoke gateway --kind client` do.
    await synth(await app(), { outDir, stateDir, stacks: [STACK] });
    mkdirSync(join(tmp.path, 'old-gateway'));
    for (const f of ['client.crt', 'client.key']) copyFileSync(join(pki('gateway'), f), join(tmp.path, 'old-gateway', f));
    chmodSync(join(tmp.path, 'old-gateway/client.key'), 0o600);
    await revoke({ stateDir: join(stateDir, STACK), service: 'gateway', kind: 'client', now: new Date() });
    await synth(await app(), { outDir, stateDir, stacks: [STACK] });

    net = await createHosts(['mw']);
    host = net.host('mw');
    for (const dir of ['/etc', '/opt']) {
      const base = join(tmp.path, 'overlay', dir.slice(1));
      mkdirSync(join(base, 'upper'), { recursive: true });
      mkdirSync(join(base, 'work'));
      await inNs(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${dir},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, dir]);
    }
  }, 120_000);

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await Promise.allSettled([...running]);
    await net?.teardown();
    if (net) expect(net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    tmp.cleanup();
  }, 60_000);

  it('GIVEN every Hyperf service of ashchan-dev WHEN the classes its compose service mounts are loaded THEN the middleware allows exactly mtls_policy.php\'s callers, the factory knows exactly mtls_client.php\'s callees, the host\'s services share every file but Policy.php, and the files hold paths, no key', async () => {
    const configRoot = join(hostDir, 'config');
    const services = readdirSync(configRoot).filter((s) => existsSync(join(configRoot, s, 'Policy.php')));
    expect(services.sort()).toEqual(['auth', 'boards', 'gateway', 'media', 'moderation', 'search']);
    for (const s of services) {
      // The files as the container has them: its compose bind mounts, by target.
      const byTarget = new Map(service(s).mounts.map((m) => [m.target, m.source]));
      const source = (target: string): string => {
        const from = byTarget.get(`/opt/www/${target}`);
        if (!from) throw new Error(`${s} does not mount /opt/www/${target}`);
        return from;
      };
      const classes = ['Policy', 'Crl', 'MtlsMiddleware', 'MtlsClientFactory'].map((c) => source(`app/Podmesh/${c}.php`));
      // Policy.php is the service's own; the other classes and the config files are the host's, one copy.
      expect(classes.map((f) => relative(configRoot, f))).toEqual([`${s}/Policy.php`, ...['Crl', 'MtlsMiddleware', 'MtlsClientFactory'].map((c) => `_shared/app/Podmesh/${c}.php`)]);
      for (const f of ['middlewares.http.php', 'server.php', 'mtls_client.php', 'mtls_policy.php']) expect(relative(configRoot, source(`config/autoload/${f}`))).toBe(`_shared/autoload/${f}`);
      const code = [
        `require ${JSON.stringify(VENDOR)};`,
        `define('BASE_PATH', '/opt/www');`,
        ...classes.map((f) => `require ${JSON.stringify(f)};`),
        `$policy = (require ${JSON.stringify(source('config/autoload/mtls_policy.php'))})['mtls_policy'];`,
        `$client = require ${JSON.stringify(source('config/autoload/mtls_client.php'))};`,
        `$list = require ${JSON.stringify(source('config/autoload/middlewares.http.php'))};`,
        `echo json_encode(['calls' => $policy['calls'], 'allowed' => App\\Podmesh\\MtlsMiddleware::ALLOWED_CLIENTS, 'policy' => $policy['allowed_clients'], 'allowedIds' => App\\Podmesh\\MtlsMiddleware::ALLOWED_SPIFFE_IDS, 'policyIds' => $policy['allowed_spiffe_ids'], 'selfId' => App\\Podmesh\\MtlsMiddleware::SELF_SPIFFE_ID, 'policySelfId' => $policy['spiffe_id'], 'self' => App\\Podmesh\\MtlsMiddleware::SELF, 'dns' => $policy['dns_name'], 'service' => App\\Podmesh\\MtlsClientFactory::SERVICE, 'policyService' => $policy['service'], 'port' => App\\Podmesh\\MtlsMiddleware::MTLS_PORT, 'crl' => App\\Podmesh\\MtlsMiddleware::CRL_FILE, 'policyCrl' => $policy['crl_file'], 'services' => App\\Podmesh\\MtlsClientFactory::SERVICES, 'callees' => $client['mtls_services'], 'list' => $list, 'psr15' => is_subclass_of(App\\Podmesh\\MtlsMiddleware::class, Psr\\Http\\Server\\MiddlewareInterface::class)]);`,
      ].join('\n');
      const r = await execa(php!, ['-d', `extension=${SWOOLE_SO}`, '-r', code]);
      const got = JSON.parse(r.stdout) as Record<string, unknown>;
      // The classes and the config files read one Policy.php now, so they cannot disagree; what it
      // says is held against what resolution gave the container's environment, a separate path.
      const env = service(s).env;
      const list = (v: string | undefined) => (v ? v.split(',') : []);
      expect(got.policy, s).toEqual(list(env.MTLS_ALLOWED_CLIENTS));
      expect(got.policyIds, s).toEqual(list(env.MTLS_ALLOWED_SPIFFE_IDS));
      expect(got.policySelfId, s).toBe(env.SERVICE_SPIFFE_ID);
      expect(got.dns, s).toBe(env.SERVICE_DNS_NAME);
      expect(got.policyService, s).toBe(env.SERVICE_NAME);
      expect(got.port, s).toBe(Number(env.MTLS_PORT));
      expect(got.policyCrl, s).toBe(env.MTLS_CRL_FILE);
      // (PHP writes an empty array as `[]`: compared as entries, by name.)
      const byName = (o: object) => Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      expect(byName(got.calls as object), s).toEqual(byName(Object.fromEntries(Object.entries(env).flatMap(([k, v]) => (k.endsWith('_SERVICE_URL') ? [[k.slice(0, -'_SERVICE_URL'.length).toLowerCase(), v]] : [])))));
      expect(got.allowed, s).toEqual(got.policy);
      expect(got.allowedIds, s).toEqual(got.policyIds);
      expect(got.selfId, s).toBe(`spiffe://ashchan.local/${STACK}/${s}`);
      expect(got.policySelfId, s).toBe(got.selfId);
      expect(got.self, s).toBe(got.dns);
      expect(got.service, s).toBe(got.policyService);
      expect(got.port, s).toBe(8443);
      expect(got.crl, s).toBe(got.policyCrl);
      expect(got.services, s).toEqual(got.callees);
      expect(got.list, s).toEqual(['App\\Podmesh\\MtlsMiddleware']);
      expect(got.psr15, s).toBe(true);
      for (const f of [...classes, source('config/autoload/middlewares.http.php')]) {
        expect(readFileSync(f, 'utf8'), f).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
      }
    }
  });

  it('GIVEN boards running with the generated middleware WHEN callers connect THEN gateway and boards itself pass with mtls.caller and mtls.spiffe_id, a client-CA certificate with gateway\'s CN but another SPIFFE ID gets 403 NOT_ALLOWED and one with another CN but gateway\'s SPIFFE ID passes, auth gets 403 NOT_ALLOWED, a revoked certificate 403 CERT_REVOKED (also one revoked while running), no certificate no answer, no CRL 503, and the plain port passes through', async () => {
    const server = await start();
    let before: ProbeResult[];
    let after: ProbeResult[];
    let noCrl: ProbeResult[];
    try {
      before = await probe([
        { port: 8443, path: '/', tls: tlsAs(pki('gateway')) },
        { port: 8443, path: '/', tls: tlsAs(pki('boards')) },
        { port: 8443, path: '/', tls: tlsAs(pki('auth')) },
        { port: 8443, path: '/', tls: tlsAs(join(tmp.path, 'old-gateway')) },
        { port: 8443, path: '/', tls: { servername: 'boards.ashchan.local', ca: join(pki('boards'), 'ca.crt') } },
        { port: 9503, path: '/' },
        // Signed by the real client CA: gateway's CN with another SPIFFE ID, another CN with gateway's SPIFFE ID.
        { port: 8443, path: '/', tls: tlsAs(forgeClientFiles(join(stateDir, STACK, 'pki'), 'gateway.ashchan.local', 'spiffe://ashchan.local/ashchan-dev/intruder', join(tmp.path, 'intruder'))) },
        { port: 8443, path: '/', tls: tlsAs(forgeClientFiles(join(stateDir, STACK, 'pki'), 'renamed.ashchan.local', 'spiffe://ashchan.local/ashchan-dev/gateway', join(tmp.path, 'renamed'))) },
      ]);
      // gateway's current certificate revoked while boards runs: the middleware reads the new CRL.
      copyFileSync(join(pki('gateway'), 'client.crt'), join(tmp.path, 'gateway-2.crt'));
      copyFileSync(join(pki('gateway'), 'client.key'), join(tmp.path, 'gateway-2.key'));
      const crlBefore = readFileSync(join(pki('boards'), 'crl.pem'), 'utf8');
      await revoke({ stateDir: join(stateDir, STACK), service: 'gateway', kind: 'client', now: new Date() });
      await synth(await app(), { outDir, stateDir, stacks: [STACK] });
      expect(readFileSync(join(pki('boards'), 'crl.pem'), 'utf8')).not.toBe(crlBefore);
      after = await probe([{ port: 8443, path: '/', tls: { ...tlsAs(pki('gateway')), cert: join(tmp.path, 'gateway-2.crt'), key: join(tmp.path, 'gateway-2.key') } }]);
      // Without a readable CRL the middleware fails closed.
      renameSync(join(pki('boards'), 'crl.pem'), join(pki('boards'), 'crl.pem.away'));
      try {
        noCrl = await probe([{ port: 8443, path: '/', tls: tlsAs(pki('boards')) }]);
      } finally {
        renameSync(join(pki('boards'), 'crl.pem.away'), join(pki('boards'), 'crl.pem'));
      }
    } finally {
      await server.stop();
    }
    expect(server.lines()).toContainEqual({ event: 'middleware', server: 'http', classes: ['App\\Podmesh\\MtlsMiddleware'] });
    const [gateway, self, auth, revoked, noCert, plain, intruder, renamed] = before;
    expect(gateway).toMatchObject({ ok: true, status: 200 });
    expect(JSON.parse(gateway!.body!)).toEqual({ caller: 'gateway.ashchan.local', spiffe_id: 'spiffe://ashchan.local/ashchan-dev/gateway', port: 8443 });
    expect(JSON.parse(self!.body!)).toEqual({ caller: 'boards.ashchan.local', spiffe_id: 'spiffe://ashchan.local/ashchan-dev/boards', port: 8443 });
    // A certificate with a SPIFFE ID is judged by it alone: the allowed CN does not help the intruder.
    expect(intruder).toMatchObject({ ok: true, status: 403 });
    expect(JSON.parse(intruder!.body!)).toEqual({ error: 'forbidden', reason: 'NOT_ALLOWED', client_cn: 'gateway.ashchan.local' });
    expect(renamed).toMatchObject({ ok: true, status: 200 });
    expect(JSON.parse(renamed!.body!)).toEqual({ caller: 'renamed.ashchan.local', spiffe_id: 'spiffe://ashchan.local/ashchan-dev/gateway', port: 8443 });
    expect(auth).toMatchObject({ ok: true, status: 403 });
    expect(JSON.parse(auth!.body!)).toEqual({ error: 'forbidden', reason: 'NOT_ALLOWED', client_cn: 'auth.ashchan.local' });
    expect(revoked).toMatchObject({ ok: true, status: 403 });
    expect(JSON.parse(revoked!.body!)).toEqual({ error: 'forbidden', reason: 'CERT_REVOKED', client_cn: 'gateway.ashchan.local' });
    // Swoole refuses the handshake itself (ssl_verify_peer): no HTTP answer at all.
    expect(noCert).toMatchObject({ ok: false });
    expect(noCert!.status).toBeUndefined();
    expect(plain).toMatchObject({ ok: true, status: 200 });
    expect(JSON.parse(plain!.body!)).toEqual({ caller: null, port: 9503 });
    expect(after![0]).toMatchObject({ ok: true, status: 403 });
    expect(JSON.parse(after![0]!.body!)).toEqual({ error: 'forbidden', reason: 'CERT_REVOKED', client_cn: 'gateway.ashchan.local' });
    expect(noCrl![0]).toMatchObject({ ok: true, status: 503 });
    expect(JSON.parse(noCrl![0]!.body!)).toEqual({ error: 'unavailable', reason: 'CRL_UNAVAILABLE', client_cn: 'boards.ashchan.local', detail: '/etc/mtls/crl.pem: cannot be read' });
  }, 60_000);

  it('GIVEN boards\' client factory WHEN it calls media\'s mesh URL and a URL outside the mesh THEN media sees boards\' certificate over TLS 1.3, the other server sees none', async () => {
    const { env, mounts } = service('boards');
    // /etc/mtls as boards' container has it; media.ashchan.local is this namespace's loopback; the
    // application root as boards' container has it: each file it mounts below /opt/www, copied there.
    const own = mounts.find((m) => m.target === '/etc/mtls')!;
    const appRoot = join(tmp.path, 'boards-app');
    for (const m of mounts.filter((m) => m.target.startsWith('/opt/www/'))) {
      const to = join(appRoot, m.target.slice('/opt/www/'.length));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(m.source, to);
    }
    await inNs(['sh', '-c', `mkdir -p /etc/mtls && mount --bind -o ro "$1" /etc/mtls && echo "127.0.0.1 media.ashchan.local" >> /etc/hosts`, 'sh', own.source]);
    const media = pki('media');
    const echo = execa('nsenter', [`--net=/run/netns/${host.netns}`, `--mount=${host.mountNs}`, '--', process.execPath, ECHO, '8443', join(media, 'server.crt'), join(media, 'server.key'), join(media, 'ca.crt'), '20000'], { reject: false, all: true, timeout: 30_000 });
    running.add(echo);
    type Answer = { status?: number; body?: string; error?: string };
    const client = async (url: string, options: object = {}) => JSON.parse(await inNs(['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), `APP_ROOT=${appRoot}`, php!, '-d', `extension=${SWOOLE_SO}`, APP, 'client', url, JSON.stringify(options)])) as Answer;
    let mesh: Answer = {};
    let meshOverridden: Answer = {};
    let outside: Answer = {};
    try {
      await new Promise<void>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error('peer-echo not listening after 5 s')), 5_000);
        echo.all?.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('listening')) {
            clearTimeout(timer);
            ok();
          }
        });
      });
      mesh = await client('https://media.ashchan.local:8443/whoami');
      // The caller's own TLS options do not weaken a mesh call.
      meshOverridden = await client('https://media.ashchan.local:8443/whoami', { verify: false, cert: '/nonexistent.crt' });
      outside = await client('https://127.0.0.1:8443/whoami', { verify: false });
    } finally {
      echo.kill('SIGTERM');
      await echo;
      running.delete(echo);
      await inNs(['umount', '/etc/mtls']);
    }
    expect(mesh).toMatchObject({ status: 200 });
    expect(JSON.parse(mesh.body!)).toEqual({ peer_cn: 'boards.ashchan.local', authorized: true, protocol: 'TLSv1.3' });
    expect(JSON.parse(meshOverridden.body!)).toEqual({ peer_cn: 'boards.ashchan.local', authorized: true, protocol: 'TLSv1.3' });
    expect(outside).toMatchObject({ status: 200 });
    expect(JSON.parse(outside.body!)).toEqual({ peer_cn: null, authorized: false, protocol: 'TLSv1.3' });
  }, 60_000);
});
