// Certificates through the user's entry points: synth issues them into the state folder, the real
// openssl accepts them, out/ never holds a key, and `podmesh certs` reports, rotates and revokes.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';
import { treeState } from './helpers/tree.ts';

const openssl = tool('openssl');
const bin = join(repoRoot, 'bin/podmesh.mjs');

describe('certificates from synth', () => {
  const dir = tempDir();
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const run = (...args: string[]) => execa('node', [bin, ...args, '--stacks', join(repoRoot, 'stacks'), '--out', out, '--state', state, '--stack', 'ashchan-dev'], { reject: false, timeout: 60_000 });
  beforeAll(async () => {
    const r = await run('synth');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('certificates: root CA created, client CA created, 14 issued');
  });
  afterAll(() => dir.cleanup());

  const svc = (name: string, file: string) => join(state, 'ashchan-dev/pki/services', name, file);

  it.skipIf(!openssl)('openssl verifies every server certificate against ca.crt and every client certificate with its chain', () => {
    for (const name of ['gateway', 'auth', 'boards', 'media', 'search', 'moderation']) {
      expect(execFileSync(openssl!, ['verify', '-CAfile', svc(name, 'ca.crt'), svc(name, 'server.crt')], { encoding: 'utf8' })).toContain(': OK');
      // client.crt holds the leaf then the client CA: the CA is the untrusted intermediate.
      expect(execFileSync(openssl!, ['verify', '-CAfile', svc(name, 'ca.crt'), '-untrusted', svc(name, 'client.crt'), svc(name, 'client.crt')], { encoding: 'utf8' })).toContain(': OK');
    }
    expect(execFileSync(openssl!, ['verify', '-CAfile', svc('minio', 'ca.crt'), svc('minio', 'server.crt')], { encoding: 'utf8' })).toContain(': OK');
  });

  it.skipIf(!openssl)('auth\'s server certificate has the seed properties and its static IP', () => {
    const text = execFileSync(openssl!, ['x509', '-in', svc('auth', 'server.crt'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toContain('Subject: CN = auth.ashchan.local');
    expect(text).toContain('Issuer: CN = ashchan-ca');
    expect(text).toContain('ecdsa-with-SHA256');
    // ashchan-dev is also exported to Kubernetes (namespace ashchan): its leaves name the cluster Service too.
    expect(text).toContain('DNS:auth.ashchan.local, DNS:auth.ashchan.svc, DNS:auth.ashchan.svc.cluster.local, IP Address:10.90.0.21');
    expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
  });

  it.skipIf(!openssl)('the gateway has a public TLS certificate for its public host names', () => {
    const text = execFileSync(openssl!, ['x509', '-in', svc('gateway', 'public.crt'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toContain('Subject: CN = localhost');
    expect(text).toContain('DNS:localhost, DNS:ashchan.localhost');
    expect(execFileSync(openssl!, ['verify', '-CAfile', svc('gateway', 'ca.crt'), svc('gateway', 'public.crt')], { encoding: 'utf8' })).toContain(': OK');
  });

  it('keeps keys 0600 in 0700 folders, and no out/ file holds a private key', () => {
    expect(statSync(svc('auth', 'server.key')).mode & 0o777).toBe(0o600);
    expect(statSync(svc('auth', 'server.crt')).mode & 0o777).toBe(0o644);
    expect(statSync(join(state, 'ashchan-dev/pki/services/auth')).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, 'ashchan-dev')).mode & 0o777).toBe(0o700);
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    for (const f of walk(out)) expect(readFileSync(f, 'utf8')).not.toContain('PRIVATE KEY');
  });

  it('no file tracked by git holds a private key (certificates live only in the state folder)', () => {
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: repoRoot, encoding: 'utf8' }).split('\0').filter(Boolean);
    expect(files.length).toBeGreaterThan(20);
    const leaks = files.filter((f) => !f.startsWith('test/fixtures/') && /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40,}/.test(readFileSync(join(repoRoot, f), 'latin1')));
    expect(leaks).toEqual([]);
  });

  it('a second synth keeps every certificate and writes nothing', async () => {
    const before = treeState(state);
    const r = await run('synth');
    expect(r.stdout).not.toContain('certificates:');
    expect(treeState(state)).toEqual(before);
  });

  it('certs status prints the expiry gauge, and exits 2 when a certificate is under --warn-days', async () => {
    const prom = await run('certs', 'status', '--format', 'prom');
    expect(prom.exitCode).toBe(0);
    expect(prom.stdout).toContain('mtls_cert_expiry_days{stack="ashchan-dev",service="auth",kind="server"} 364');
    expect((await run('certs', 'status', '--warn-days', '400')).exitCode).toBe(2);
  });

  it('--now past 70% of the lifetime renews; revoke reissues and lists the serial in the CRL', async () => {
    const serial = () => execFileSync(openssl!, ['x509', '-in', svc('boards', 'client.crt'), '-noout', '-serial'], { encoding: 'utf8' }).trim();
    const first = serial();
    const renew = await run('synth', '--now', new Date(Date.now() + 260 * 86_400_000).toISOString());
    expect(renew.stdout).toContain('certificates: 14 renewed');
    const renewed = serial();
    expect(renewed).not.toBe(first);
    const r = await run('certs', 'revoke', 'boards', '--kind', 'client', '--reason', 'keyCompromise', '--now', new Date(Date.now() + 261 * 86_400_000).toISOString());
    expect(r.exitCode, r.stderr).toBe(0);
    expect(serial()).not.toBe(renewed);
    // crl.pem holds the root's CRL, then the client CA's: the client certificate is in the second.
    const blocks = readFileSync(join(state, 'ashchan-dev/pki/crl.pem'), 'utf8').match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----\n?/g)!;
    expect(blocks).toHaveLength(2);
    const clientCrl = execFileSync(openssl!, ['crl', '-noout', '-text'], { input: blocks[1], encoding: 'utf8' });
    expect(clientCrl).toContain('Issuer: CN = ashchan.local');
    expect(clientCrl.toUpperCase()).toContain(renewed.replace('serial=', '').toUpperCase());
    expect(clientCrl).toContain('Key Compromise');
  });
});
