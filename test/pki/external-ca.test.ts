// External CA round trip: podmesh certs csr → openssl x509 -req as the external CA → podmesh certs import;
// mismatched certificates are refused with nothing written; synth keeps imported certificates.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/stacks.ts';
import { repoRoot, tool } from '../helpers/tools.ts';
import { treeState } from '../helpers/tree.ts';

const openssl = tool('openssl');
const bin = join(repoRoot, 'bin/podmesh.mjs');

describe.skipIf(!openssl)('external CA', () => {
  const dir = tempDir();
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const csrDir = join(dir.path, 'csr');
  const ext = join(dir.path, 'external');
  const signed = join(dir.path, 'signed');
  const run = (...args: string[]) =>
    execa('node', [bin, ...args, '--stacks', join(repoRoot, 'stacks'), '--out', out, '--state', state, '--stack', 'ashchan-dev'], { reject: false, timeout: 60_000 });
  const ossl = (...args: string[]) => execFileSync(openssl!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  /** What the printed vault commands ask for, by CSR file name. */
  const requests = new Map<string, { cn: string; alt: string[]; ips: string[]; uris: string[] }>();
  const svc = (name: string, file: string) => join(state, 'ashchan-dev/pki/services', name, file);

  /** Signs a CSR the way the printed vault command asks, with openssl as the external CA. */
  const sign = (csr: string, crt: string, overrides: { san?: string; eku?: string } = {}) => {
    const r = requests.get(csr.split('/').pop()!)!;
    const san = overrides.san ?? [r.cn, ...r.alt].map((d) => `DNS:${d}`).concat(r.ips.map((i) => `IP:${i}`), r.uris.map((u) => `URI:${u}`)).join(',');
    const extfile = `${crt}.ext`;
    writeFileSync(extfile, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${overrides.eku ?? 'serverAuth,clientAuth'}\nsubjectAltName=${san}\n`);
    ossl('x509', '-req', '-in', csr, '-CA', join(ext, 'root.crt'), '-CAkey', join(ext, 'root.key'), '-CAcreateserial', '-days', '365', '-sha256', '-extfile', extfile, '-out', crt);
  };

  beforeAll(async () => {
    expect((await run('synth')).exitCode).toBe(0);
    const r = await run('certs', 'csr', '--out-dir', csrDir);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const line of r.stdout.split('\n').filter((l) => l.includes('vault write'))) {
      const csr = /csr=@(\S+)/.exec(line)![1]!.split('/').pop()!;
      requests.set(csr, {
        cn: /common_name=(\S+)/.exec(line)![1]!,
        alt: /alt_names=(\S+)/.exec(line)?.[1]!.split(',') ?? [],
        ips: /ip_sans=(\S+)/.exec(line)?.[1]!.split(',') ?? [],
        uris: /uri_sans=(\S+)/.exec(line)?.[1]!.split(',') ?? [],
      });
    }
    mkdirSync(ext, { recursive: true });
    mkdirSync(signed, { recursive: true });
    ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(ext, 'root.key'), '-out', join(ext, 'root.crt'), '-subj', '/O=Example Corp/CN=Example External Root', '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    copyFileSync(join(ext, 'root.crt'), join(signed, 'ca.crt'));
  }, 120_000);
  afterAll(() => dir.cleanup());

  it('writes one CSR per binding with CN, SANs, key usage and EKU, signed by the key in the state folder', () => {
    expect(readdirSync(csrDir).sort()).toEqual([...requests.keys()].sort());
    expect(requests.size).toBe(14);
    const text = ossl('req', '-in', join(csrDir, 'auth-server.csr'), '-noout', '-text', '-verify');
    expect(text).toContain('Subject: CN = auth.ashchan.local');
    // ashchan-dev is also exported to Kubernetes: the cluster Service names are requested too.
    // …and the SPIFFE ID, which the printed command asks for as uri_sans (the public certificate has none).
    expect(text).toContain('DNS:auth.ashchan.local, DNS:auth.ashchan.svc, DNS:auth.ashchan.svc.cluster.local, IP Address:10.90.0.21, URI:spiffe://ashchan.local/ashchan-dev/auth');
    expect(requests.get('auth-server.csr')!.uris).toEqual(['spiffe://ashchan.local/ashchan-dev/auth']);
    expect(requests.get('gateway-public.csr')!.uris).toEqual([]);
    expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    const csrKey = ossl('req', '-in', join(csrDir, 'auth-server.csr'), '-noout', '-pubkey');
    expect(csrKey).toBe(ossl('pkey', '-in', svc('auth', 'server.key'), '-pubout'));
    expect(requests.get('gateway-public.csr')).toBeDefined();
  });

  it('refuses a certificate for another key and one whose SANs or EKU differ from the binding, writing nothing', async () => {
    for (const csr of requests.keys()) sign(join(csrDir, csr), join(signed, csr.replace(/\.csr$/, '.crt')));
    // Another key, same subject.
    ossl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir.path, 'other.key'), '-subj', '/CN=auth.ashchan.local', '-out', join(dir.path, 'other.csr'));
    requests.set('other.csr', requests.get('auth-server.csr')!);
    sign(join(dir.path, 'other.csr'), join(signed, 'auth-server.crt'));
    sign(join(csrDir, 'boards-server.csr'), join(signed, 'boards-server.crt'), { san: 'DNS:boards.ashchan.local' });
    sign(join(csrDir, 'media-client.csr'), join(signed, 'media-client.crt'), { eku: 'clientAuth' });
    const before = treeState(state);
    const r = await run('certs', 'import', signed);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('nothing was written');
    expect(r.stderr).toMatch(/auth-server\.crt\] refused for auth server \(auth\.ashchan\.local\): its public key does not match .*auth\/server\.key/);
    expect(r.stderr).toMatch(/boards-server\.crt\] refused for boards server .*SAN IP: missing 10\.90\.0\.22/);
    expect(r.stderr).toMatch(/media-client\.crt\] refused for media client .*extended key usage lacks serverAuth/);
    expect(treeState(state)).toEqual(before);
  });

  it('imports matching certificates; openssl verifies them against the external CA; synth keeps them', async () => {
    for (const csr of ['auth-server.csr', 'boards-server.csr', 'media-client.csr']) sign(join(csrDir, csr), join(signed, csr.replace(/\.csr$/, '.crt')));
    const r = await run('certs', 'import', signed);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('imported 14 certificates signed by the external CA (root: O=Example Corp, CN=Example External Root)');
    const root = readFileSync(join(ext, 'root.crt'), 'utf8');
    for (const name of ['gateway', 'auth', 'boards', 'media', 'search', 'moderation']) {
      expect(readFileSync(svc(name, 'ca.crt'), 'utf8')).toBe(root);
      expect(ossl('verify', '-CAfile', join(ext, 'root.crt'), svc(name, 'server.crt'))).toContain(': OK');
      expect(ossl('verify', '-CAfile', join(ext, 'root.crt'), svc(name, 'client.crt'))).toContain(': OK');
      // The installed certificate belongs to the key that never left the state folder.
      expect(ossl('x509', '-in', svc(name, 'server.crt'), '-noout', '-pubkey')).toBe(ossl('pkey', '-in', svc(name, 'server.key'), '-pubout'));
    }
    const inventory = JSON.parse(readFileSync(join(state, 'ashchan-dev/pki/inventory.json'), 'utf8')) as { certificates: { service: string; kind: string; serial: string; status: string }[] };
    const authServer = ossl('x509', '-in', svc('auth', 'server.crt'), '-noout', '-serial').trim().split('=')[1]!.toLowerCase().replace(/^0+/, '');
    expect(inventory.certificates.filter((e) => e.service === 'auth' && e.kind === 'server' && e.status === 'active').map((e) => e.serial.toLowerCase().replace(/^0+/, ''))).toEqual([authServer]);

    // crl.pem aside: the local CRLs are re-signed on their own schedule.
    const certFiles = () => Object.fromEntries(Object.entries(treeState(join(state, 'ashchan-dev/pki/services'))).filter(([k]) => !k.endsWith('crl.pem')));
    const installed = certFiles();
    const again = await run('synth');
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/issued|renewed|reissued/);
    expect(certFiles()).toEqual(installed);
    // Near the end of their lifetime synth keeps them and says how to renew through the external CA.
    const late = await run('synth', '--now', new Date(Date.now() + 300 * 86_400_000).toISOString());
    expect(late.exitCode, late.stderr).toBe(0);
    expect(late.stdout).toContain('warning: auth/server: signed by the external CA and 70% of its lifetime passed');
    expect(certFiles()).toEqual(installed);
  });
});

describe.skipIf(!openssl)('external CA with an intermediate', () => {
  const dir = tempDir();
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const csrDir = join(dir.path, 'csr');
  const signed = join(dir.path, 'signed');
  const run = (...args: string[]) =>
    execa('node', [bin, ...args, '--stacks', join(repoRoot, 'stacks'), '--out', out, '--state', state, '--stack', 'ashchan-dev'], { reject: false, timeout: 60_000 });
  const ossl = (...args: string[]) => execFileSync(openssl!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const p = (f: string) => join(dir.path, f);
  afterAll(() => dir.cleanup());

  it('needs the chain up to the root in ca.crt, installs leaves with their intermediate, and openssl verifies them from the root alone', async () => {
    expect((await run('synth')).exitCode).toBe(0);
    const csr = await run('certs', 'csr', '--out-dir', csrDir);
    expect(csr.exitCode, csr.stderr).toBe(0);
    mkdirSync(signed, { recursive: true });
    ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('root.key'), '-out', p('root.crt'), '-subj', '/CN=Corp Root', '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ossl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('int.key'), '-out', p('int.csr'), '-subj', '/CN=Corp Issuing CA');
    writeFileSync(p('int.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
    ossl('x509', '-req', '-in', p('int.csr'), '-CA', p('root.crt'), '-CAkey', p('root.key'), '-CAcreateserial', '-days', '1825', '-extfile', p('int.ext'), '-out', p('int.crt'));
    for (const line of csr.stdout.split('\n').filter((l) => l.includes('vault write'))) {
      const file = /csr=@(\S+)/.exec(line)![1]!;
      const names = [/common_name=(\S+)/.exec(line)![1]!, ...(/alt_names=(\S+)/.exec(line)?.[1]!.split(',') ?? [])].map((d) => `DNS:${d}`);
      const ips = (/ip_sans=(\S+)/.exec(line)?.[1]!.split(',') ?? []).map((i) => `IP:${i}`);
      const uris = (/uri_sans=(\S+)/.exec(line)?.[1]!.split(',') ?? []).map((u) => `URI:${u}`);
      const crt = join(signed, file.split('/').pop()!.replace(/\.csr$/, '.crt'));
      writeFileSync(`${crt}.ext`, `keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${[...names, ...ips, ...uris].join(',')}\n`);
      ossl('x509', '-req', '-in', file, '-CA', p('int.crt'), '-CAkey', p('int.key'), '-CAcreateserial', '-days', '365', '-extfile', `${crt}.ext`, '-out', crt);
    }
    // Only the issuing CA: no root to anchor trust.
    copyFileSync(p('int.crt'), join(signed, 'ca.crt'));
    const before = treeState(state);
    const partial = await run('certs', 'import', signed);
    expect(partial.exitCode).toBe(1);
    expect(partial.stderr).toContain('holds no self-signed root');
    expect(treeState(state)).toEqual(before);

    writeFileSync(join(signed, 'ca.crt'), readFileSync(p('int.crt'), 'utf8') + readFileSync(p('root.crt'), 'utf8'));
    const r = await run('certs', 'import', signed);
    expect(r.exitCode, r.stderr).toBe(0);
    const svc = (f: string) => join(state, 'ashchan-dev/pki/services/auth', f);
    expect(readFileSync(svc('server.crt'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(ossl('verify', '-CAfile', p('root.crt'), '-untrusted', svc('server.crt'), svc('server.crt'))).toContain(': OK');
    expect(ossl('verify', '-CAfile', svc('ca.crt'), svc('client.crt'))).toContain(': OK');
  }, 120_000);
});
