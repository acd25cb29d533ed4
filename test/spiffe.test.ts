// SPIFFE identities (issue 19 item 1): every leaf ashchan-dev's synth issues carries exactly one
// URI SAN spiffe://<trust domain>/<stack>/<service> (read by the real openssl), the CAs none; a
// leaf issued before SPIFFE IDs is reissued; the Node sample, run on loopback with boards'
// generated environment, judges a caller with a SPIFFE ID by that ID alone (real TLS: the right CA
// but another ID is refused); `podmesh certs bundle --format spiffe` writes the root as a SPIFFE
// bundle.
import type { ResultPromise } from 'execa';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../src/cli/run.ts';
import { loadStacks } from '../src/cli/load.ts';
import { synth } from '../src/index.ts';
import { parseCertificate } from '../src/state/pki/certificate.ts';
import { reconcilePki } from '../src/state/pki/reconcile.ts';
import { spiffeIdProblem } from '../src/state/pki/spiffe.ts';
import { AUTHORITY, binding } from './pki/helpers.ts';
import { startNodeSample } from './helpers/mtls-sample.ts';
import { forgeClient } from './helpers/forge.ts';
import { tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';

const openssl = tool('openssl');
const STACK = 'ashchan-dev';
const ID = (service: string) => `spiffe://ashchan.local/${STACK}/${service}`;

describe('SPIFFE identities of ashchan-dev', () => {
  const tmp = tempDir('podmesh-spiffe-');
  const out = join(tmp.path, 'out');
  const state = join(tmp.path, 'state');
  const pki = join(state, STACK, 'pki');
  const svc = (service: string, file: string) => join(pki, 'services', service, file);
  const running = new Set<ResultPromise>();

  beforeAll(async () => {
    await synth(await loadStacks(join(repoRoot, 'stacks')), { outDir: out, stateDir: state, stacks: [STACK] });
  }, 60_000);
  afterAll(() => {
    for (const p of running) p.kill('SIGKILL');
    tmp.cleanup();
  });

  /** The URI SAN entries of a certificate file as openssl prints them. */
  const uris = (file: string): string[] => {
    const text = execFileSync(openssl!, ['x509', '-in', file, '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return [...text.matchAll(/URI:([^,\s]+)/g)].map((m) => m[1]!);
  };

  it.skipIf(!openssl)('GIVEN ashchan-dev synthesized WHEN openssl reads every leaf THEN each has exactly one URI SAN, its own SPIFFE ID (valid per the SPIFFE ID rules, leaf not a CA); root and client CA have none', () => {
    const services = readdirSync(join(pki, 'services')).sort();
    expect(services).toEqual(['auth', 'boards', 'gateway', 'media', 'minio', 'moderation', 'search']);
    let leaves = 0;
    for (const service of services) {
      for (const file of readdirSync(join(pki, 'services', service)).filter((f) => /^(server|client)\.crt$/.test(f))) {
        const path = svc(service, file);
        expect(uris(path), path).toEqual([ID(service)]);
        expect(spiffeIdProblem(ID(service))).toBeUndefined();
        expect(execFileSync(openssl!, ['x509', '-in', path, '-noout', '-ext', 'basicConstraints'], { encoding: 'utf8' })).toContain('CA:FALSE');
        leaves++;
      }
    }
    // Six application services with server and client certificates, minio's server certificate.
    expect(leaves).toBe(13);
    // The gateway's browser-facing public certificate names host names only.
    expect(uris(svc('gateway', 'public.crt'))).toEqual([]);
    for (const ca of ['ca.crt', 'client-ca.crt']) expect(uris(join(pki, ca)), ca).toEqual([]);
  });

  it('GIVEN a leaf issued before SPIFFE IDs WHEN reconcile runs with its SPIFFE ID THEN it is reissued with the URI SAN, and kept on the next run', async () => {
    const dir = join(tmp.path, 'reissue', STACK);
    const now = new Date('2026-06-01T00:00:00Z');
    const old = binding('auth', 'server');
    await reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [old], now });
    expect(parseCertificate(readFileSync(join(dir, 'pki/services/auth/server.crt'), 'utf8')).uris).toEqual([]);
    const withId = { ...old, spiffeId: ID('auth') };
    const r = await reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [withId], now });
    const plan = r.certificates.find((c) => c.service === 'auth' && c.kind === 'server')!;
    expect(plan.action).toBe('reissue');
    expect(plan.reason).toContain(`SAN URI changed: +${ID('auth')}`);
    expect(parseCertificate(readFileSync(join(dir, 'pki/services/auth/server.crt'), 'utf8')).uris).toEqual([ID('auth')]);
    const again = await reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [withId], now });
    expect(again.certificates.find((c) => c.service === 'auth' && c.kind === 'server')!.action).toBe('keep');
  });

  it('GIVEN a binding whose SPIFFE ID breaks the X509-SVID rules WHEN reconcile runs THEN it is refused naming the binding, and nothing is written', async () => {
    const dir = join(tmp.path, 'bad-id', STACK);
    for (const spiffeId of ['spiffe://ashchan.local/a?b', 'spiffe://Ashchan.local/x', 'spiffe://ashchan.local', 'https://ashchan.local/x', 'spiffe://ashchan.local/a/../b']) {
      await expect(reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [binding('auth', 'server', { spiffeId })], now: new Date() })).rejects.toThrow(`${STACK}/auth] server certificate: spiffeId ${JSON.stringify(spiffeId)}`);
    }
    expect(() => readdirSync(dir)).toThrow();
  });


  /** GET https://127.0.0.1:port/whoami presenting `cert` (leaf and chain) and `key`. */
  const whoami = (port: number, cert: string, key: string) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port, path: '/whoami', ca: readFileSync(svc('boards', 'ca.crt')), cert, key, servername: 'boards.ashchan.local', agent: false, timeout: 5_000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(body) as Record<string, unknown> }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });

  const forged = (commonName: string, spiffeId: string) => forgeClient(pki, commonName, spiffeId);

  it('GIVEN the Node sample with boards\' generated environment on loopback WHEN callers connect over real TLS THEN gateway passes with its SPIFFE ID, a client-CA certificate with gateway\'s CN but another SPIFFE ID is refused, one with another CN but gateway\'s SPIFFE ID passes, and auth is refused', async () => {
    const { server, port, env } = await startNodeSample(join(out, STACK, 'hosts/local/compose.yaml'), 'boards', pki);
    running.add(server);
    expect(env.MTLS_ALLOWED_SPIFFE_IDS).toBe(ID('gateway'));
    expect(env.SERVICE_SPIFFE_ID).toBe(ID('boards'));
    const gateway = await whoami(port, readFileSync(svc('gateway', 'client.crt'), 'utf8'), readFileSync(svc('gateway', 'client.key'), 'utf8'));
    expect(gateway).toEqual({ status: 200, body: { client_cn: 'gateway.ashchan.local', client_spiffe_id: ID('gateway'), server_cn: 'boards.ashchan.local' } });
    const intruder = forged('gateway.ashchan.local', ID('intruder'));
    expect(await whoami(port, intruder.cert, intruder.key)).toEqual({ status: 403, body: { error: 'forbidden', client_cn: 'gateway.ashchan.local', client_spiffe_id: ID('intruder') } });
    const renamed = forged('renamed.ashchan.local', ID('gateway'));
    expect((await whoami(port, renamed.cert, renamed.key)).status).toBe(200);
    const auth = await whoami(port, readFileSync(svc('auth', 'client.crt'), 'utf8'), readFileSync(svc('auth', 'client.key'), 'utf8'));
    expect(auth.status).toBe(403);
    server.kill('SIGTERM');
    await server;
  }, 30_000);

  it('GIVEN ashchan-dev\'s state WHEN podmesh certs bundle --format spiffe writes the bundle THEN it is JSON whose one x509-svid key holds the root CA (same DER, same public key), with a sequence and refresh hint', async () => {
    const file = join(tmp.path, 'bundle/spiffe.json');
    const lines: string[] = [];
    const io = { out: (t: string) => void lines.push(t), err: (t: string) => void lines.push(t), env: {}, cwd: tmp.path, tty: false };
    const code = await runCli(['certs', 'bundle', '--format', 'spiffe', '--stacks', join(repoRoot, 'stacks'), '--stack', STACK, '--out', out, '--state', state, '--output', file], io);
    expect(code, lines.join('')).toBe(0);
    expect(lines.join('')).toContain('SPIFFE bundle of trust domain ashchan.local');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { keys: Record<string, unknown>[]; spiffe_sequence: number; spiffe_refresh_hint: number };
    const root = new X509Certificate(readFileSync(join(pki, 'ca.crt')));
    expect(doc.keys).toHaveLength(1);
    const [key] = doc.keys;
    expect(key!.use).toBe('x509-svid');
    expect(key!.x5c).toHaveLength(1);
    expect(Buffer.from((key!.x5c as string[])[0]!, 'base64').equals(root.raw)).toBe(true);
    expect({ kty: key!.kty, crv: key!.crv, x: key!.x, y: key!.y }).toEqual(root.publicKey.export({ format: 'jwk' }));
    expect(doc.spiffe_sequence).toBe(Math.floor(new Date(root.validFrom).getTime() / 1000));
    expect(doc.spiffe_refresh_hint).toBeGreaterThan(0);
    // Without --output: the same text on stdout; without --format: a usage error naming it.
    const again: string[] = [];
    expect(await runCli(['certs', 'bundle', '--format', 'spiffe', '--stacks', join(repoRoot, 'stacks'), '--stack', STACK, '--out', out, '--state', state], { ...io, out: (t: string) => void again.push(t) })).toBe(0);
    expect(again.join('')).toBe(readFileSync(file, 'utf8'));
    const usage: string[] = [];
    expect(await runCli(['certs', 'bundle', '--stack', STACK], { ...io, err: (t: string) => void usage.push(t) })).toBe(2);
    expect(usage.join('')).toContain('--format spiffe');
  });
});
