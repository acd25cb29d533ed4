// Real TLS 1.3 mTLS handshakes with the issued files: Node's tls on both sides, then openssl s_server/s_client.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcilePki, revoke, splitCrlPem } from '../../src/state/pki/index.ts';
import { AUTHORITY, binding, handshake, readState, tempState, type ClientSide, type ServerSide } from './helpers.ts';

const DAY = 86_400_000;

describe('mTLS handshakes', () => {
  const main = tempState('ashchan-dev');
  const foreign = tempState('elsewhere');
  const bindings = [binding('auth', 'server'), binding('auth', 'client'), binding('gateway', 'server'), binding('gateway', 'client')];
  let server: ServerSide;
  let gateway: ClientSide;
  let expired: ClientSide;
  let revoked: ClientSide;
  let stranger: ClientSide;
  const file = (rel: string): string => readState(main.stateDir, `pki/${rel}`);

  beforeAll(async () => {
    const now = new Date();
    // GIVEN certificates issued 400 days ago (now expired), kept aside
    await reconcilePki({ stateDir: main.stateDir, authority: AUTHORITY, bindings, now: new Date(now.getTime() - 400 * DAY) });
    const ca = file('ca.crt');
    expired = { cert: file('services/gateway/client.crt'), key: file('services/gateway/client.key'), ca, servername: 'auth.ashchan.local' };
    // AND the same CA renewing everything today
    await reconcilePki({ stateDir: main.stateDir, authority: AUTHORITY, bindings, now });
    // AND the auth service's client certificate revoked (the replacement stays valid)
    revoked = { cert: file('services/auth/client.crt'), key: file('services/auth/client.key'), ca, servername: 'auth.ashchan.local' };
    await revoke({ stateDir: main.stateDir, service: 'auth', kind: 'client', now, reason: 'keyCompromise' });
    server = { cert: file('services/auth/server.crt'), key: file('services/auth/server.key'), ca: file('services/auth/ca.crt') };
    gateway = { cert: file('services/gateway/client.crt'), key: file('services/gateway/client.key'), ca: file('services/gateway/ca.crt'), servername: 'auth.ashchan.local' };
    // AND another stack with its own CA
    await reconcilePki({ stateDir: foreign.stateDir, authority: AUTHORITY, bindings: [binding('gateway', 'client')], now });
    stranger = {
      cert: readState(foreign.stateDir, 'pki/services/gateway/client.crt'),
      key: readState(foreign.stateDir, 'pki/services/gateway/client.key'),
      ca,
      servername: 'auth.ashchan.local',
    };
  });
  afterAll(() => {
    main.cleanup();
    foreign.cleanup();
  });

  it('succeeds with the caller client.crt (with chain) and the server sees its CN', async () => {
    // WHEN
    const r = await handshake(server, gateway);
    // THEN
    expect(r).toEqual({ ok: true, clientCN: 'gateway.ashchan.local', protocol: 'TLSv1.3', serverError: undefined });
  });

  it('fails without a client certificate', async () => {
    const r = await handshake(server, { ca: gateway.ca, servername: 'auth.ashchan.local' });
    expect(r.ok).toBe(false);
    expect(r.serverError).toMatch(/peer did not return a certificate/);
  });

  it('fails with a client certificate from another CA', async () => {
    const r = await handshake(server, stranger);
    expect(r.ok).toBe(false);
    expect(r.serverError).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  });

  it('fails with an expired client certificate', async () => {
    const r = await handshake(server, expired);
    expect(r.ok).toBe(false);
    expect(r.serverError).toBe('CERT_HAS_EXPIRED');
  });

  it('fails with a revoked client certificate when the server loads the CRLs, and accepts valid ones', async () => {
    // GIVEN the server loads crl.pem, split into its two CRLs
    const crl = splitCrlPem(file('crl.pem'));
    expect(crl).toHaveLength(2);
    // WHEN / THEN
    const bad = await handshake({ ...server, crl }, revoked);
    expect(bad.ok).toBe(false);
    expect(bad.serverError).toBe('CERT_REVOKED');
    const good = await handshake({ ...server, crl }, gateway);
    expect(good.ok).toBe(true);
    // AND without the CRLs the revoked certificate would still pass: revocation needs them
    expect((await handshake(server, revoked)).ok).toBe(true);
  });

  it("needs crl.pem split: Node's crl option reads only the first CRL of a string", async () => {
    // GIVEN the file's text as one string: Node loads the root's CRL only and, checking the whole
    // chain, finds no CRL for the client CA
    const r = await handshake({ ...server, crl: file('crl.pem') }, gateway);
    // THEN even a valid client is refused (if Node ever reads all CRLs, this test says so)
    expect(r.ok).toBe(false);
    expect(r.serverError).toBe('UNABLE_TO_GET_CRL');
  });

  it('fails when the client expects another server name', async () => {
    const r = await handshake(server, { ...gateway, servername: 'boards.ashchan.local' });
    expect(r.ok).toBe(false);
  });

  it('works between openssl s_server -Verify 2 -tls1_3 and openssl s_client', async () => {
    const svc = (s: string, f: string): string => join(main.stateDir, 'pki/services', s, f);
    // GIVEN an openssl server that requires a verified client certificate (stdin kept open)
    const srv = spawn('/usr/bin/openssl', [
      's_server', '-accept', '127.0.0.1:0', '-naccept', '1', '-tls1_3',
      '-cert', svc('auth', 'server.crt'), '-key', svc('auth', 'server.key'),
      '-CAfile', svc('auth', 'ca.crt'), '-Verify', '2', '-verify_return_error',
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    const killer = setTimeout(() => srv.kill('SIGKILL'), 15_000);
    let serverOut = '';
    srv.stdout.on('data', (d: Buffer) => void (serverOut += d.toString()));
    srv.stderr.on('data', (d: Buffer) => void (serverOut += d.toString()));
    try {
      const port = await new Promise<string>((resolve, reject) => {
        const poll = setInterval(() => {
          const m = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(serverOut);
          if (m) {
            clearInterval(poll);
            resolve(m[1] as string);
          }
        }, 20);
        srv.on('exit', () => reject(new Error(`s_server exited: ${serverOut}`)));
      });
      // WHEN openssl connects with the gateway's client certificate and its chain
      const client = spawn('/usr/bin/openssl', [
        's_client', '-connect', `127.0.0.1:${port}`, '-brief', '-tls1_3',
        '-servername', 'auth.ashchan.local', '-verify_hostname', 'auth.ashchan.local', '-verify_return_error',
        '-CAfile', svc('gateway', 'ca.crt'),
        '-cert', svc('gateway', 'client.crt'), '-cert_chain', svc('gateway', 'client.crt'), '-key', svc('gateway', 'client.key'),
      ], { stdio: ['pipe', 'pipe', 'pipe'] });
      let clientOut = '';
      client.stdout.on('data', (d: Buffer) => void (clientOut += d.toString()));
      client.stderr.on('data', (d: Buffer) => void (clientOut += d.toString()));
      client.stdin.end('ping\n');
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => client.kill('SIGKILL'), 15_000);
        client.on('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      await new Promise((r) => setTimeout(r, 100));
      // THEN both sides verified each other over TLS 1.3
      expect(code, clientOut).toBe(0);
      expect(clientOut).toContain('Protocol version: TLSv1.3');
      expect(clientOut).toContain('Verification: OK');
      expect(clientOut).toContain('Verified peername: auth.ashchan.local');
      expect(serverOut).toContain('depth=0 CN = gateway.ashchan.local\nverify return:1');
      expect(serverOut).toContain('depth=1 CN = ashchan.local\nverify return:1');
    } finally {
      clearTimeout(killer);
      srv.kill('SIGKILL');
    }
  });
});
