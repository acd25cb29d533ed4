// podmesh verify against sample mTLS services on loopback: what it accepts, what it refuses, and
// that it notices a server that lets the wrong caller in or ignores the CRL.
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatVerifyJson, formatVerifyProm, formatVerifyTable, verifyMesh, type MeshClient, type MeshTarget } from '../src/verify/index.ts';
import { tempDir } from './helpers/stacks.ts';
import { repoRoot } from './helpers/tools.ts';

const bin = join(repoRoot, 'bin/podmesh.mjs');
const SERVER = join(repoRoot, 'examples/mtls-sample/server.mjs');
const DOMAIN = 'ashchan.local';
const APPS = ['gateway', 'auth', 'boards', 'media', 'search', 'moderation'];
// Ashchan's policy: gateway calls everyone, boards calls media and moderation.
const CALLERS: Record<string, string[]> = { auth: ['gateway'], media: ['gateway', 'boards'], gateway: [] };
const PORTS: Record<string, number> = { gateway: 18443, auth: 18444, media: 18445 };
/** The gateway's public TLS listener (9501 in the container). */
const PUBLIC_PORT = 18501;
const PUBLIC_NAMES = ['localhost', 'ashchan.localhost'];

describe('podmesh verify on loopback', () => {
  const dir = tempDir('podmesh-verify-');
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const stackState = join(state, 'ashchan-dev');
  const servers = new Map<string, ResultPromise>();
  const cli = (...args: string[]) => execa('node', [bin, ...args, '--stacks', join(repoRoot, 'stacks'), '--out', out, '--state', state, '--stack', 'ashchan-dev'], { reject: false, timeout: 60_000 });

  /** Starts the sample service for `name` with the generated environment's variables (files from the state folder). */
  async function start(name: string, overrides: Record<string, string | undefined> = {}): Promise<void> {
    await stop(name);
    const files = join(stackState, 'pki/services', name);
    const env: Record<string, string | undefined> = {
      SERVICE_NAME: name,
      SERVICE_DNS_NAME: `${name}.${DOMAIN}`,
      SERVICE_SPIFFE_ID: `spiffe://${DOMAIN}/ashchan-dev/${name}`,
      MTLS_ENABLED: 'true',
      MTLS_PORT: String(PORTS[name]),
      MTLS_BIND: '127.0.0.1',
      MTLS_CERT_FILE: join(files, 'server.crt'),
      MTLS_KEY_FILE: join(files, 'server.key'),
      MTLS_CA_FILE: join(files, 'ca.crt'),
      MTLS_CLIENT_CERT_FILE: join(files, 'client.crt'),
      MTLS_CLIENT_KEY_FILE: join(files, 'client.key'),
      MTLS_VERIFY_CLIENT: 'true',
      MTLS_MIN_TLS_VERSION: 'TLSv1.3',
      MTLS_CRL_FILE: join(stackState, 'pki/crl.pem'),
      MTLS_ALLOWED_CLIENTS: (CALLERS[name] ?? []).map((c) => `${c}.${DOMAIN}`).sort().join(','),
      MTLS_ALLOWED_SPIFFE_IDS: (CALLERS[name] ?? []).map((c) => `spiffe://${DOMAIN}/ashchan-dev/${c}`).sort().join(','),
      ...overrides,
    };
    const child = execa('node', [SERVER], { env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>, extendEnv: false, reject: false, buffer: false });
    servers.set(name, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start`)), 10_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('"listening"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    });
  }

  async function stop(name: string): Promise<void> {
    const child = servers.get(name);
    if (!child) return;
    servers.delete(name);
    child.kill('SIGKILL');
    await child.catch(() => {});
  }

  const targets: MeshTarget[] = Object.keys(PORTS).map((name) => ({
    service: name,
    path: `ashchan-dev/${name}`,
    serviceName: name,
    host: 'local',
    dnsName: `${name}.${DOMAIN}`,
    ip: '10.90.0.250',
    port: 8443,
    callers: CALLERS[name] ?? [],
    ...(name === 'gateway' ? { publicTls: { port: 9501, hostnames: PUBLIC_NAMES } } : {}),
  }));
  const clients: MeshClient[] = APPS.map((s) => ({ service: s, dnsName: `${s}.${DOMAIN}` }));
  const run = (only?: string) =>
    verifyMesh({
      stack: 'ashchan-dev',
      stateDir: stackState,
      targets: only ? targets.filter((t) => t.service === only) : targets,
      clients,
      resolveFromLock: true,
      timeoutMs: 3_000,
      connectTo: (t, port) => ({ host: '127.0.0.1', port: port === 9501 ? PUBLIC_PORT : PORTS[t.service]! }),
    });

  let publicServer: Server | undefined;
  /** The gateway's public TLS: server authentication only, with the given certificate files of its folder. */
  async function startPublic(cert = 'public'): Promise<void> {
    await stopPublic();
    const files = join(stackState, 'pki/services/gateway');
    const server = createServer(
      { cert: readFileSync(join(files, `${cert}.crt`)), key: readFileSync(join(files, `${cert}.key`)), minVersion: 'TLSv1.3' },
      (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'),
    );
    await new Promise<void>((resolve) => server.listen(PUBLIC_PORT, '127.0.0.1', resolve));
    publicServer = server;
  }
  async function stopPublic(): Promise<void> {
    const server = publicServer;
    publicServer = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  beforeAll(async () => {
    const r = await cli('synth');
    expect(r.exitCode, r.stderr).toBe(0);
    for (const name of Object.keys(PORTS)) await start(name);
    await startPublic();
  });
  afterAll(async () => {
    for (const name of [...servers.keys()]) await stop(name);
    await stopPublic();
    dir.cleanup();
  });

  it('GIVEN the policy-following sample services WHEN verified THEN every probe is as expected', async () => {
    // WHEN
    const report = await run();
    // THEN
    expect(report.failures, formatVerifyTable(report)).toBe(0);
    const row = (service: string, check: string, client = '') => report.results.find((r) => r.service === service && r.check === check && r.client === client);
    expect(row('auth', 'allowed', 'gateway')).toMatchObject({ status: 'pass', probe: { tlsVersion: 'TLSv1.3', httpStatus: 200, serverCert: { commonName: 'auth.ashchan.local' } } });
    expect(['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']).toContain(row('auth', 'allowed', 'gateway')!.probe!.cipherSuite);
    expect(row('auth', 'no-client-cert')).toMatchObject({ status: 'pass', probe: { verdict: 'refused' } });
    expect(row('auth', 'not-allowed', 'boards')).toMatchObject({ status: 'pass', probe: { verdict: 'response', httpStatus: 403 } });
    expect(row('media', 'allowed', 'boards')).toMatchObject({ status: 'pass' });
    // Nobody may call the gateway: five refusals, no acceptance.
    expect(report.results.filter((r) => r.service === 'gateway' && r.check === 'not-allowed').map((r) => r.status)).toEqual(Array(5).fill('pass'));
    // The names do not resolve on this machine: a warning, since the lock's address was used.
    expect(row('auth', 'dns')).toMatchObject({ status: 'warn' });
    expect(report.results.some((r) => r.check === 'revoked')).toBe(false);
  });

  it('GIVEN the gateway\'s public listener WHEN verified THEN it is probed without a client certificate and must present the public certificate', async () => {
    // WHEN it serves public.crt
    const ok = await run('gateway');
    // THEN
    const row = ok.results.find((r) => r.check === 'public-tls');
    expect(row, formatVerifyTable(ok)).toMatchObject({ status: 'pass', client: '', serverCn: 'localhost', probe: { tlsVersion: 'TLSv1.3', httpStatus: 200, serverCert: { commonName: 'localhost' } } });
    expect(formatVerifyJson(ok)).toContain('"event":"tls_handshake_complete"');
    // WHEN it serves the mesh's server certificate instead
    await startPublic('server');
    const wrong = await run('gateway');
    // THEN it is refused for the names it lacks
    expect(wrong.results.find((r) => r.check === 'public-tls')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/^public certificate not trusted: ERR_TLS_CERT_ALTNAME_INVALID.*localhost/) });
    // WHEN nothing listens there
    await stopPublic();
    const down = await run('gateway');
    expect(down.results.find((r) => r.check === 'public-tls')).toMatchObject({ status: 'fail', probe: { verdict: 'unreachable' } });
    await startPublic();
  });

  it('GIVEN the report WHEN formatted THEN JSON lines use the seed log fields and prom the seed counters', async () => {
    const report = await run('auth');
    const lines = formatVerifyJson(report, new Date('2026-01-01T00:00:00Z')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.check === 'allowed')).toMatchObject({
      timestamp: '2026-01-01T00:00:00Z',
      level: 'info',
      service: 'auth',
      event: 'mtls_handshake_complete',
      client_cn: 'gateway.ashchan.local',
      server_cn: 'auth.ashchan.local',
      tls_version: 'TLSv1.3',
      http_status: 200,
      result: 'pass',
    });
    expect(lines.find((l) => l.check === 'no-client-cert')).toMatchObject({ event: 'mtls_handshake_failed', level: 'info', client_cn: '' });
    const prom = formatVerifyProm(report);
    expect(prom).toContain('mtls_handshake_total{stack="ashchan-dev",service="auth",client="gateway",check="allowed"} 1');
    expect(prom).toContain('mtls_handshake_failures{stack="ashchan-dev",service="auth",client="gateway",check="allowed"} 0');
    expect(prom).toContain('mtls_handshake_failures{stack="ashchan-dev",service="auth",client="none",check="no-client-cert"} 1');
    expect(prom).toContain('podmesh_verify_unexpected{stack="ashchan-dev"} 0');
  });

  it('GIVEN a server that lets a caller in the policy forbids WHEN verified THEN that probe fails', async () => {
    // GIVEN auth accepts boards too
    await start('auth', { MTLS_ALLOWED_CLIENTS: 'boards.ashchan.local,gateway.ashchan.local', MTLS_ALLOWED_SPIFFE_IDS: 'spiffe://ashchan.local/ashchan-dev/boards,spiffe://ashchan.local/ashchan-dev/gateway' });
    // WHEN
    const report = await run('auth');
    // THEN
    expect(report.failures).toBe(1);
    expect(report.results.find((r) => r.status === 'fail')).toMatchObject({ check: 'not-allowed', client: 'boards', detail: expect.stringMatching(/^ACCEPTED/) });
    await start('auth');
  });

  it('GIVEN boards\' client certificate revoked WHEN media reloads the CRL THEN the revoked serial is refused and the new certificate accepted', async () => {
    // GIVEN
    const r = await cli('certs', 'revoke', 'boards', '--kind', 'client', '--reason', 'keyCompromise');
    expect(r.exitCode, r.stderr).toBe(0);
    await start('media');
    // WHEN
    const report = await run('media');
    // THEN
    expect(report.failures, formatVerifyTable(report)).toBe(0);
    expect(report.results.find((x) => x.check === 'revoked')).toMatchObject({ client: 'boards', status: 'pass', probe: { verdict: 'refused' } });
    expect(report.results.find((x) => x.check === 'allowed' && x.client === 'boards')).toMatchObject({ status: 'pass' });
    expect(formatVerifyProm(report)).toContain('mtls_revoked_connections{stack="ashchan-dev",service="media"} 0');
  });

  it('GIVEN a server without the CRL WHEN verified THEN the accepted revoked certificate is reported', async () => {
    // GIVEN
    await start('media', { MTLS_CRL_FILE: undefined });
    // WHEN
    const report = await run('media');
    // THEN
    expect(report.failures).toBe(1);
    expect(report.results.find((x) => x.status === 'fail')).toMatchObject({ check: 'revoked', client: 'boards', detail: expect.stringMatching(/^ACCEPTED/) });
    expect(formatVerifyProm(report)).toContain('mtls_revoked_connections{stack="ashchan-dev",service="media"} 1');
    await start('media');
  });

  it('GIVEN certificates close to their end WHEN verified at that time THEN each is a warning, not a failure', async () => {
    // WHEN 340 days after issuance (certificates last 365)
    const report = await verifyMesh({ stack: 'ashchan-dev', stateDir: stackState, targets: [], clients, now: new Date(Date.now() + 340 * 86_400_000) });
    // THEN
    expect(report.failures).toBe(0);
    const rows = report.results.filter((r) => r.check === 'expiry');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.status === 'warn' && /expires .*: 2\d days\. Renew with podmesh certs rotate/.test(r.detail))).toBe(true);
  });

  it('GIVEN a service that is down WHEN verified THEN its probes fail as unreachable within the timeout', async () => {
    // GIVEN
    await stop('auth');
    // WHEN
    const started = Date.now();
    const report = await run('auth');
    // THEN
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(report.results.filter((r) => r.check !== 'dns').every((r) => r.status === 'fail' && r.probe?.verdict === 'unreachable')).toBe(true);
    await start('auth');
  });

  it('GIVEN a wrong command line WHEN podmesh verify runs THEN it says what is wrong', async () => {
    const format = await cli('verify', '--format', 'xml');
    expect(format.exitCode).toBe(2);
    expect(format.stderr).toContain('--format "xml" is not one of table, json, prom.');
    const host = await cli('verify', '--host', 'nope');
    expect(host.exitCode).toBe(1);
    expect(host.stderr).toContain('[ashchan-dev] has no host "nope". Hosts: local.');
  });
});
