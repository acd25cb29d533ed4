// The HAProxy sidecar (issue 19 item 4) on real HAProxy 2.6: the generated haproxy.cfg, with only
// its two container folders mapped to the test's state folder, started by the generated command on
// loopback, in front of a plain-HTTP stand-in application. Callers are Node TLS clients with the
// certificates synth issued: an allowed caller reaches the application (which sees its identity,
// not the one it forged), a caller with the right CA but not allowed gets 403, a revoked
// certificate and no certificate fail the handshake; the application's call to its local port
// arrives at a stand-in mTLS callee with the service's client certificate; `openssl s_client
// -status` sees the OCSP response the test signed beside the certificate. Everything listens on
// 127.0.0.1 only; HAProxy resolves the callee's mesh name through a private /etc/hosts (its own
// mount namespace).
import { execa, type ResultPromise } from 'execa';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, Host, Network, Service, Stack } from 'podmesh';
import { synth } from '../src/index.ts';
import { CONTAINER_PATHS, haproxyCommand } from '../src/render/sidecar/haproxy.ts';
import { SIDECAR_CONFIG } from '../src/resolve/sidecar.ts';
import { revoke } from '../src/state/pki/revoke.ts';
import { tempDir } from './helpers/stacks.ts';
import { findTool, inCI } from './helpers/tools.ts';

const haproxy = findTool('haproxy');
const openssl = findTool('openssl');
const unshare = findTool('unshare');
const root = process.getuid?.() === 0;
if (!haproxy) {
  if (inCI) throw new Error('haproxy is required under CI: apt-get install haproxy (scripts/install-validators.sh)');
  console.warn('skipping the HAProxy sidecar tests: apt-get install haproxy (or run scripts/install-validators.sh)');
}
const ready = Boolean(haproxy && openssl && unshare && root);

// Ports above the ephemeral range's usual start are not, so pick a random block below it.
const BASE = 20_000 + Math.floor(Math.random() * 1_000) * 10;
const PORT = { web: BASE, app: BASE + 1, out: BASE + 2, api: BASE + 3 };
const ID = (s: string) => `spiffe://sc.local/sc/${s}`;

/** GIVEN: web (HAProxy sidecar) calls api; gw may call web; other may call api only. */
function sidecarStack(): App {
  const app = new App();
  const stack = new Stack(app, 'sc', { project: 'sc' });
  new Host(stack, 'local');
  new Network(stack, 'mesh', { subnet: '10.91.0.0/24', gateway: '10.91.0.1', domain: 'sc.local' });
  const image = (id: string) => `localhost/test/${id}:1`;
  const api = new Service(stack, 'api', { image: image('api'), hyperf: false, mtls: { port: PORT.api } });
  const web = new Service(stack, 'web', {
    image: image('web'),
    hyperf: false,
    mtls: { port: PORT.web },
    calls: [api],
    sidecar: { proxy: 'haproxy', appPort: PORT.app, outbound: { api: PORT.out } },
  });
  new Service(stack, 'gw', { image: image('gw'), hyperf: false, calls: [web] });
  new Service(stack, 'other', { image: image('other'), hyperf: false, calls: [api] });
  return app;
}

interface Reply {
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
}

describe.skipIf(!ready)('HAProxy sidecar on real HAProxy 2.6', () => {
  const tmp = tempDir('podmesh-sidecar-');
  const out = join(tmp.path, 'out');
  const state = join(tmp.path, 'state');
  const pki = join(state, 'sc', 'pki');
  const svc = (s: string, f: string) => join(pki, 'services', s, f);
  const tlsDir = join(tmp.path, 'run-sidecar');
  const cfgPath = join(tmp.path, 'haproxy.cfg');
  const running = new Set<ResultPromise>();
  const servers: { close: () => void }[] = [];
  const seenByApp: http.IncomingHttpHeaders[] = [];
  const seenByApi: { cn: string; uri: string; path: string }[] = [];
  let generated = '';
  let proxy: ResultPromise | undefined;
  let proxyLog = '';

  /** `unshare` arguments running a shell command in a private mount namespace whose /etc/hosts names api.sc.local 127.0.0.1. */
  const inMountNs = (command: string): string[] => ['-m', '--propagation', 'private', '/bin/sh', '-c', `mount --bind ${join(tmp.path, 'hosts')} /etc/hosts && ${command}`];

  /** An HTTPS request to the sidecar from 127.0.0.1 with a client certificate (or none). */
  const call = (client: { cert: string; key: string } | undefined, headers: Record<string, string> = {}): Promise<Reply> =>
    new Promise((resolve) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: PORT.web,
          path: '/who',
          servername: 'web.sc.local',
          ca: readFileSync(join(pki, 'ca.crt')),
          ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
          headers,
          timeout: 5_000,
          agent: false,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => resolve({ error: e.message }));
      req.end();
    });

  beforeAll(async () => {
    await synth(sidecarStack(), { outDir: out, stateDir: state });
    generated = readFileSync(join(out, 'sc/hosts/local', 'config/web', SIDECAR_CONFIG.haproxy.file), 'utf8');
    // The revoked caller: gw's client certificate as issued, then revoked (a new one replaces it).
    mkdirSync(join(tmp.path, 'revoked'));
    copyFileSync(svc('gw', 'client.crt'), join(tmp.path, 'revoked/client.crt'));
    copyFileSync(svc('gw', 'client.key'), join(tmp.path, 'revoked/client.key'));
    await revoke({ stateDir: join(state, 'sc'), service: 'gw', kind: 'client', now: new Date(), reason: 'keyCompromise' });
    // The replacement revoke issues lacks the SPIFFE ID (reported to the merger); synth reissues it with one.
    await synth(sidecarStack(), { outDir: out, stateDir: state });

    // A "good" OCSP response for web's server certificate, signed by the root (openssl's responder
    // mode), where the OCSP timer puts it: <server cert path>.ocsp.
    const serial = new X509Certificate(readFileSync(svc('web', 'server.crt'))).serialNumber;
    const index = join(tmp.path, 'index.txt');
    writeFileSync(index, `V\t391231235959Z\t\t${serial}\tunknown\t/CN=web.sc.local\n`);
    const req = join(tmp.path, 'ocsp-req.der');
    execFileSync(openssl!, ['ocsp', '-issuer', join(pki, 'ca.crt'), '-cert', svc('web', 'server.crt'), '-no_nonce', '-reqout', req], { stdio: 'ignore' });
    execFileSync(openssl!, ['ocsp', '-index', index, '-rsigner', join(pki, 'ca.crt'), '-rkey', join(pki, 'ca.key'), '-CA', join(pki, 'ca.crt'), '-reqin', req, '-respout', svc('web', 'server.crt.ocsp'), '-ndays', '1'], { stdio: 'ignore' });

    // The generated file, its container folders mapped to the test's.
    const mapped = generated.replaceAll(CONTAINER_PATHS.tlsDir, tlsDir).replaceAll(`${CONTAINER_PATHS.mtlsDir}/`, `${join(pki, 'services/web')}/`);
    writeFileSync(cfgPath, mapped);

    // Stand-in application: plain HTTP on 127.0.0.1, answers with the headers it saw.
    const appServer = http.createServer((req, res) => {
      seenByApp.push(req.headers);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ cn: req.headers['x-client-cn'] ?? null, id: req.headers['x-client-spiffe-id'] ?? null }));
    });
    await new Promise<void>((r) => appServer.listen(PORT.app, '127.0.0.1', r));
    servers.push(appServer);
    // Stand-in callee api: mTLS with api's server certificate, a client certificate required.
    const apiServer = https.createServer(
      { cert: readFileSync(svc('api', 'server.crt')), key: readFileSync(svc('api', 'server.key')), ca: readFileSync(join(pki, 'ca.crt')), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
      (req, res) => {
        const peer = (req.socket as tls.TLSSocket).getPeerCertificate();
        seenByApi.push({ cn: String(peer.subject?.CN ?? ''), uri: String(peer.subjectaltname ?? ''), path: req.url ?? '' });
        res.end('pong');
      },
    );
    await new Promise<void>((r) => apiServer.listen(PORT.api, '127.0.0.1', r));
    servers.push(apiServer);

    // HAProxy in a private mount namespace whose /etc/hosts names api.sc.local 127.0.0.1, started
    // by the generated command (links, then `exec haproxy`).
    writeFileSync(join(tmp.path, 'hosts'), `${readFileSync('/etc/hosts', 'utf8')}\n127.0.0.1 api.sc.local\n`);
    const [, , script] = haproxyCommand(cfgPath, { mtlsDir: join(pki, 'services/web'), tlsDir });
    proxy = execa(unshare!, inMountNs(script!), { reject: false, all: true, timeout: 120_000 });
    running.add(proxy);
    proxy.all?.on('data', (d: Buffer) => (proxyLog += d.toString()));
    // Bounded wait for the listener.
    for (let i = 0; i < 50; i++) {
      const ok = await new Promise<boolean>((r) => {
        const s = tls.connect({ host: '127.0.0.1', port: PORT.web, rejectUnauthorized: false }, () => (s.destroy(), r(true)));
        s.on('error', () => r(false));
      });
      if (ok) break;
      await sleep(100);
    }
  }, 60_000);

  afterAll(async () => {
    for (const p of running) p.kill('SIGKILL');
    await Promise.all([...running].map((p) => p.catch(() => undefined)));
    for (const s of servers) s.close();
    tmp.cleanup();
  });

  it('GIVEN the generated haproxy.cfg with its certificates linked WHEN haproxy -c checks it THEN it is valid', () => {
    const r = spawnSync(unshare!, inMountNs(`exec ${haproxy!} -c -f ${cfgPath}`), { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout + r.stderr, proxyLog).toContain('Configuration file is valid');
    expect(r.stdout + r.stderr).not.toContain('WARNING');
    expect(r.status).toBe(0);
  });

  it('GIVEN an allowed caller WHEN it calls over mTLS, forging identity headers THEN the application answers and sees the caller\'s verified CN and SPIFFE ID only', async () => {
    const r = await call({ cert: svc('gw', 'client.crt'), key: svc('gw', 'client.key') }, { 'X-Client-CN': 'admin.sc.local', 'X-Client-SPIFFE-ID': ID('admin') });
    expect(r.error, proxyLog).toBeUndefined();
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body!)).toEqual({ cn: 'gw.sc.local', id: ID('gw') });
    // One value each: the forged ones were removed, not appended to.
    const last = seenByApp.at(-1)!;
    expect(last['x-client-cn']).toBe('gw.sc.local');
    expect(last['x-client-spiffe-id']).toBe(ID('gw'));
  });

  it('GIVEN a caller of the mesh CA that web does not allow WHEN it calls THEN HAProxy answers 403 and the application sees nothing', async () => {
    const before = seenByApp.length;
    const r = await call({ cert: svc('other', 'client.crt'), key: svc('other', 'client.key') });
    expect(r.status, r.error ?? proxyLog).toBe(403);
    expect(seenByApp.length).toBe(before);
  });

  it('GIVEN gw\'s revoked client certificate (on the CRL) or no client certificate WHEN they call THEN the TLS handshake fails', async () => {
    const before = seenByApp.length;
    const revoked = await call({ cert: join(tmp.path, 'revoked/client.crt'), key: join(tmp.path, 'revoked/client.key') });
    expect(revoked.status).toBeUndefined();
    expect(revoked.error).toBeDefined();
    const none = await call(undefined);
    expect(none.status).toBeUndefined();
    expect(none.error).toBeDefined();
    expect(seenByApp.length).toBe(before);
  });

  it('GIVEN the application WHEN it calls its local port for api in plain HTTP THEN the call arrives at api over mTLS with web\'s client certificate', async () => {
    const body = await new Promise<{ status?: number; text: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: PORT.out, path: '/ping', timeout: 5_000 }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
    expect(body, proxyLog).toEqual({ status: 200, text: 'pong' });
    expect(seenByApi.at(-1)).toEqual({ cn: 'web.sc.local', uri: expect.stringContaining(`URI:${ID('web')}`), path: '/ping' });
  });

  it('GIVEN an OCSP response beside web\'s server certificate WHEN openssl s_client -status connects THEN the response is stapled: successful, good', () => {
    const r = spawnSync(openssl!, ['s_client', '-status', '-connect', `127.0.0.1:${PORT.web}`, '-servername', 'web.sc.local', '-CAfile', join(pki, 'ca.crt'), '-cert', svc('gw', 'client.crt'), '-key', svc('gw', 'client.key')], { input: '', encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout, r.stderr).toContain('OCSP Response Status: successful');
    expect(r.stdout).toMatch(/Cert Status: good/);
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
  });
});
