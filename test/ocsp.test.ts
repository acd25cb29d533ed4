// OCSP (issue 19 item 2), judged by the real openssl and Node's tls on loopback: every leaf of
// ashchan-dev carries its issuer's AIA OCSP URL; the delegated responder certificates are
// OCSPSigning + nocheck and chain to the root; the generated responder command line, run on a free
// loopback port with the state's files, answers `good`, then `revoked` after `podmesh certs
// revoke` (the index rewritten; bounded loop); the generated refresh script writes a response
// file openssl verifies, which says `revoked` for the revoked certificate after one refresh; the
// Node sample staples the file (`openssl s_client -status`) and podmesh verify's ocsp row reads it
// (good, then not stapled); verify's reader judges good, revoked, stale, tampered and foreign
// responses; reconcile reissues a leaf for a new AIA URL and renews the responder certificate at
// 70%; systemd-analyze verify accepts the units.
import { execa, type ResultPromise } from 'execa';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/run.ts';
import { loadStacks } from '../src/cli/load.ts';
import { synth } from '../src/index.ts';
import { responderArgs } from '../src/render/ocsp.ts';
import { judgeStapled } from '../src/verify/ocsp.ts';
import { parseCertificate } from '../src/state/pki/certificate.ts';
import { reconcilePki } from '../src/state/pki/reconcile.ts';
import { AUTHORITY, binding } from './pki/helpers.ts';
import { verifyMesh, type MeshTarget } from '../src/verify/verify.ts';
import { startNodeSample } from './helpers/mtls-sample.ts';
import { tempDir } from './helpers/stacks.ts';
import { verifyUnits } from './helpers/units.ts';
import { repoRoot, tool } from './helpers/tools.ts';

const openssl = tool('openssl');
const analyze = tool('systemd-analyze');
const STACK = 'ashchan-dev';
const HOST_DIR = `out-host/${STACK}`;

describe.skipIf(!openssl)('OCSP of ashchan-dev', () => {
  const tmp = tempDir('podmesh-ocsp-');
  const out = join(tmp.path, 'out');
  const state = join(tmp.path, 'state');
  const pki = join(state, STACK, 'pki');
  const ocspDir = join(pki, 'ocsp');
  const svc = (service: string, file: string) => join(pki, 'services', service, file);
  const running = new Set<ResultPromise>();
  const run = (args: string[]) => execFileSync(openssl!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
  /** stderr then stdout of openssl (ocsp prints "Response verify OK" on stderr). */
  const both = (args: string[]) => {
    const r = spawnSync(openssl!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
    return `${r.stderr}${r.stdout}`;
  };

  beforeAll(async () => {
    await synth(await loadStacks(join(repoRoot, 'stacks')), { outDir: out, stateDir: state, stacks: [STACK] });
  }, 60_000);
  afterAll(() => {
    for (const p of running) p.kill('SIGKILL');
    tmp.cleanup();
  });

  /** Starts the generated responder command of `issuer` on a free port; resolves its URL. */
  const startResponder = async (issuer: 'root' | 'client-ca'): Promise<string> => {
    const [cmd, ...args] = responderArgs(ocspDir, issuer, 0);
    expect(cmd).toBe('openssl');
    const p = execa(openssl!, args, { reject: false, timeout: 60_000, all: true });
    running.add(p);
    return new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the responder did not start in 10 s')), 10_000);
      p.all!.on('data', (d: Buffer) => {
        const m = /ACCEPT \S*:(\d+)/.exec(d.toString());
        if (m) {
          clearTimeout(t);
          resolve(`http://127.0.0.1:${m[1]}/`);
        }
      });
      void p.then((r) => reject(new Error(`the responder exited: ${r.all}`)));
    });
  };

  /** openssl ocsp's verdict line for `cert` from `url`, verified against the root. */
  const ask = (url: string, issuerCert: string, cert: string): string =>
    both(['ocsp', '-url', url, '-issuer', issuerCert, '-cert', cert, '-CAfile', join(pki, 'ca.crt'), '-no_nonce', '-timeout', '10']);

  /** The rendered refresh script run against a host-like pki folder. */
  const staple = (pkiDir: string, url: string) =>
    execa('/bin/sh', [join(out, STACK, 'hosts/local/bin/podmesh-ocsp-staple.sh')], { env: { PODMESH_PKI_DIR: pkiDir, PODMESH_OCSP_URL: url, PATH: process.env.PATH }, extendEnv: false, reject: false, timeout: 30_000 });

  it('GIVEN ashchan-dev synthesized WHEN openssl reads every leaf THEN server and public leaves name the root\'s responder, client leaves the client CA\'s; the responder certificates are OCSPSigning + nocheck, not CAs, chain to the root, keys 0600', () => {
    let leaves = 0;
    for (const service of readdirSync(join(pki, 'services'))) {
      for (const file of readdirSync(join(pki, 'services', service)).filter((f) => /^(server|client|public)\.crt$/.test(f))) {
        const aia = run(['x509', '-in', svc(service, file), '-noout', '-ext', 'authorityInfoAccess']);
        expect(aia, `${service}/${file}`).toContain(`OCSP - URI:http://ocsp.ashchan.local:${file === 'client.crt' ? 8881 : 8880}/`);
        leaves++;
      }
    }
    expect(leaves).toBe(14);
    for (const issuer of ['root', 'client-ca']) {
      const cert = join(ocspDir, `responder-${issuer}.crt`);
      const text = run(['x509', '-in', cert, '-noout', '-text']);
      expect(text).toMatch(/Extended Key Usage: *\n\s*OCSP Signing\n/);
      expect(text).toContain('OCSP No Check');
      expect(text).toContain('CA:FALSE');
      const chain = issuer === 'root' ? [] : ['-untrusted', join(pki, 'client-ca.crt')];
      expect(run(['verify', '-CAfile', join(pki, 'ca.crt'), ...chain, '-purpose', 'ocsphelper', cert])).toContain(': OK');
      expect(statSync(join(ocspDir, `responder-${issuer}.key`)).mode & 0o777).toBe(0o600);
    }
    // No CA key beside the responder's: the folder installed on the responder host.
    expect(readdirSync(ocspDir).sort()).toEqual(['ca.crt', 'client-ca.crt', 'index.txt', 'index.txt.attr', 'responder-client-ca.crt', 'responder-client-ca.key', 'responder-root.crt', 'responder-root.key']);
    // The responder unit runs the same command line with the host's paths.
    const unit = readFileSync(join(out, STACK, 'hosts/local/systemd/podmesh-ashchan-dev-ocsp-root.service'), 'utf8');
    expect(unit).toContain(responderArgs('$$HOME/.config/podmesh/ashchan-dev/pki/ocsp', 'root', 8880).join(' '));
  });

  it('GIVEN a leaf issued without OCSP WHEN reconcile runs with an OCSP URL THEN the leaf is reissued with the AIA and the responders are created; the next run writes nothing; another URL reissues again', async () => {
    const dir = join(tmp.path, 'reissue', STACK);
    const now = new Date('2026-06-01T00:00:00Z');
    const plain = binding('auth', 'server');
    await reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [plain], now });
    expect(existsSync(join(dir, 'pki/ocsp'))).toBe(false);
    const leaf = () => parseCertificate(readFileSync(join(dir, 'pki/services/auth/server.crt'), 'utf8'));
    const url = 'http://ocsp.ashchan.local:8880/';
    const on = await reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [{ ...plain, ocspUrl: url }], now, ocsp: true });
    expect(on.certificates[0]).toMatchObject({ action: 'reissue', reason: `OCSP URL changed: +${url}` });
    expect(leaf().ocspUrls).toEqual([url]);
    expect(on.files).toContainEqual({ path: 'pki/ocsp/responder-root.key', change: 'create' });
    expect(statSync(join(dir, 'pki/ocsp/responder-client-ca.key')).mode & 0o777).toBe(0o600);
    const again = await reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [{ ...plain, ocspUrl: url }], now, ocsp: true });
    expect(again.certificates[0]!.action).toBe('keep');
    expect(again.files).toEqual([]);
    const moved = 'http://ocsp.example.net:9000/';
    const r = await reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [{ ...plain, ocspUrl: moved }], now, ocsp: true });
    expect(r.certificates[0]!.reason).toBe(`OCSP URL changed: +${moved} -${url}`);
    expect(leaf().ocspUrls).toEqual([moved]);
    // The responder certificate is kept until 70% of its 90 days, then renewed.
    const later = await reconcilePki({ stateDir: dir, authority: AUTHORITY, bindings: [{ ...plain, ocspUrl: moved }], now: new Date(now.getTime() + 64 * 86_400_000), ocsp: true });
    expect(later.files).toContainEqual({ path: 'pki/ocsp/responder-root.crt', change: 'update' });
  });

  it.skipIf(!analyze)('GIVEN the OCSP units WHEN systemd-analyze verify reads them (user manager for rootless ashchan-dev, system for ashchan-prod\'s edge and app) THEN it says nothing about them', () => {
    const dirs = [
      [join(out, STACK, 'hosts/local/systemd'), true],
      [join(repoRoot, 'out/ashchan-prod/hosts/edge/systemd'), false],
      [join(repoRoot, 'out/ashchan-prod/hosts/app/systemd'), false],
    ] as const;
    for (const [dir, user] of dirs) {
      expect(readdirSync(dir).filter((f) => f.includes('-ocsp-')).length, dir).toBeGreaterThanOrEqual(2);
      const r = verifyUnits(analyze!, new Map(), dir, user);
      expect(r.stderr.split('\n').filter((l) => l.includes('ocsp')), r.stderr).toEqual([]);
    }
  });

  it('GIVEN the generated responders on loopback WHEN openssl ocsp asks, a server certificate is revoked and the refresh script runs THEN good, then revoked within a bounded loop; the stapled file verifies and says revoked', async () => {
    const root = await startResponder('root');
    const client = await startResponder('client-ca');
    expect(ask(root, join(pki, 'ca.crt'), svc('auth', 'server.crt'))).toMatch(/Response verify OK[\s\S]*server\.crt: good/);
    // The client CA's responder sends the client CA along: a verifier trusting the root alone accepts it.
    expect(ask(client, join(pki, 'client-ca.crt'), svc('auth', 'client.crt'))).toMatch(/Response verify OK[\s\S]*client\.crt: good/);

    // A host's copy of auth's folder, as apply installed it before the revocation.
    const host = join(tmp.path, HOST_DIR, 'pki');
    mkdirSync(join(host, 'services'), { recursive: true });
    cpSync(join(pki, 'services', 'auth'), join(host, 'services', 'auth'), { recursive: true });
    const old = join(host, 'services/auth/server.crt');
    const first = await staple(host, root);
    expect(first.exitCode, first.stderr).toBe(0);
    const respin = (file: string) => both(['ocsp', '-respin', file, '-issuer', join(pki, 'ca.crt'), '-cert', old, '-CAfile', join(pki, 'ca.crt')]);
    expect(respin(`${old}.ocsp`)).toMatch(/Response verify OK[\s\S]*server\.crt: good/);
    copyFileSync(`${old}.ocsp`, join(tmp.path, 'good.ocsp'));
    const oldSerial = new X509Certificate(readFileSync(old)).serialNumber.toLowerCase();

    const lines: string[] = [];
    const io = { out: (t: string) => void lines.push(t), err: (t: string) => void lines.push(t), env: {}, cwd: tmp.path, tty: false };
    const code = await runCli(['certs', 'revoke', 'auth', '--kind', 'server', '--reason', 'keyCompromise', '--stacks', join(repoRoot, 'stacks'), '--stack', STACK, '--out', out, '--state', state], io);
    expect(code, lines.join('')).toBe(0);
    expect(readFileSync(join(ocspDir, 'index.txt'), 'utf8')).toMatch(/^R\t\d{12}Z\t\d{12}Z,keyCompromise\t/m);
    // openssl ocsp re-reads a changed index before it waits for the next request: at most one stale answer.
    let verdict = '';
    for (let i = 0; i < 5 && !/: revoked/.test(verdict); i++) verdict = ask(root, join(pki, 'ca.crt'), old);
    expect(verdict).toMatch(/server\.crt: revoked[\s\S]*Reason: keyCompromise/);
    // The replacement is good.
    expect(ask(root, join(pki, 'ca.crt'), svc('auth', 'server.crt'))).toMatch(/server\.crt: good/);
    // One refresh on the host that still has the old certificate: its stapled response says revoked.
    const second = await staple(host, root);
    expect(second.stderr).toContain('is revoked (stapled response written)');
    expect(respin(`${old}.ocsp`)).toMatch(/Response verify OK[\s\S]*server\.crt: revoked/);

    // verify's reading of the same DER responses (what it sees stapled in a handshake).
    const rootCa = new X509Certificate(readFileSync(join(pki, 'ca.crt')));
    const now = new Date();
    const good = readFileSync(join(tmp.path, 'good.ocsp'));
    const revoked = readFileSync(`${old}.ocsp`);
    expect(judgeStapled(good, oldSerial, rootCa, now).status).toBe('good');
    const r = judgeStapled(revoked, oldSerial, rootCa, now);
    expect(r.status).toBe('revoked');
    expect(r.detail).toContain('keyCompromise');
    expect(judgeStapled(undefined, oldSerial, rootCa, now).status).toBe('not stapled');
    expect(judgeStapled(good, 'abcdef', rootCa, now).detail).toContain('about another certificate');
    expect(judgeStapled(good, oldSerial, rootCa, new Date(now.getTime() + 2 * 3_600_000)).detail).toContain('stale');
    const tampered = Buffer.from(good);
    tampered[tampered.length - 1] = tampered[tampered.length - 1]! ^ 0x01;
    expect(judgeStapled(tampered, oldSerial, rootCa, now).status).toBe('invalid');
    // Signed by a responder the root did not delegate: the client CA's responder answers for client certificates only.
    const foreign = new X509Certificate(readFileSync(join(pki, 'client-ca.crt')));
    expect(judgeStapled(good, oldSerial, foreign, now).detail).toMatch(/did not issue|does not verify/);
  }, 60_000);


  it('GIVEN boards\' stapled response written by the refresh script WHEN openssl s_client -status connects to the Node sample THEN the handshake carries it (good, verified); without the file there is none', async () => {
    const root = await startResponder('root');
    const written = await staple(pki, root);
    expect(written.exitCode, written.stderr).toBe(0);
    expect(existsSync(svc('boards', 'server.crt.ocsp'))).toBe(true);
    const { server, port, env } = await startNodeSample(join(out, STACK, 'hosts/local/compose.yaml'), 'boards', pki);
    running.add(server);
    const sClient = async () =>
      (
        await execa(
          openssl!,
          ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'boards.ashchan.local', '-status', '-CAfile', svc('boards', 'ca.crt'), '-cert', svc('gateway', 'client.crt'), '-key', svc('gateway', 'client.key')],
          { input: '', reject: false, timeout: 15_000, all: true },
        )
      ).all;
    const stapled = await sClient();
    expect(stapled).toContain('OCSP Response Status: successful (0x0)');
    expect(stapled).toMatch(/Cert Status: good/);
    // podmesh verify's report: the stapled status of boards, as its caller gateway sees it.
    const target: MeshTarget = { service: 'boards', path: `${STACK}/boards`, serviceName: 'boards', host: 'local', dnsName: 'boards.ashchan.local', ip: '127.0.0.1', port, callers: ['gateway'], ocsp: true };
    const verifyOcsp = async () =>
      (await verifyMesh({ stack: STACK, stateDir: join(state, STACK), targets: [target], clients: [{ service: 'gateway', dnsName: 'gateway.ashchan.local' }], resolveFromLock: true, timeoutMs: 3_000, connectTo: () => ({ host: '127.0.0.1', port }) })).results.find(
        (r) => r.check === 'ocsp',
      )!;
    const seen = await verifyOcsp();
    expect([seen.status, seen.ocspStatus], seen.detail).toEqual(['pass', 'good']);
    execFileSync('rm', [svc('boards', 'server.crt.ocsp')]);
    expect(await sClient()).toContain('OCSP response: no response sent');
    const none = await verifyOcsp();
    expect([none.status, none.ocspStatus]).toEqual(['warn', 'not stapled']);
    server.kill('SIGTERM');
    await server;
  }, 60_000);
});
