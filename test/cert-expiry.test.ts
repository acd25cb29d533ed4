// The per-host expiry check: the generated sh script run against a real state folder agrees with
// `podmesh certs status`, writes the metric atomically, warns under 30 days; its units satisfy systemd-analyze.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatStatusProm, readPkiStatus } from '../src/state/pki/index.ts';
import { tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';
import { verifyUnits } from './helpers/units.ts';

const openssl = tool('openssl');
const analyze = tool('systemd-analyze');
const bin = join(repoRoot, 'bin/podmesh.mjs');

describe('certificate expiry timer', () => {
  const dir = tempDir();
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const hostDir = (stack: string, host: string) => join(out, stack, 'hosts', host);
  beforeAll(async () => {
    const r = await execa('node', [bin, 'synth', '--stacks', join(repoRoot, 'stacks'), '--out', out, '--state', state, '--now', '2027-01-01T00:00:00Z'], { reject: false, timeout: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
  }, 120_000);
  afterAll(() => dir.cleanup());

  const check = (stack: string, host: string, now: string, textfile: string) =>
    spawnSync('sh', [join(hostDir(stack, host), 'bin/podmesh-cert-expiry.sh')], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: dir.path, PODMESH_PKI_DIR: join(state, stack, 'pki'), PODMESH_TEXTFILE_DIR: textfile, PODMESH_NOW: now },
    });

  it('every host with certificates gets the script, a oneshot service and a daily persistent timer', () => {
    for (const [stack, host] of [['ashchan-dev', 'local'], ['ashchan-prod', 'edge'], ['ashchan-prod', 'app']] as const) {
      const sys = join(hostDir(stack, host), 'systemd');
      const service = readFileSync(join(sys, `podmesh-${stack}-cert-expiry.service`), 'utf8');
      const timer = readFileSync(join(sys, `podmesh-${stack}-cert-expiry.timer`), 'utf8');
      expect(service).toContain('Type=oneshot');
      expect(timer).toContain('OnCalendar=daily\nRandomizedDelaySec=1h\nPersistent=true');
      expect(timer).toContain('WantedBy=timers.target');
      expect(existsSync(join(hostDir(stack, host), 'bin/podmesh-cert-expiry.sh'))).toBe(true);
    }
    expect(readFileSync(join(hostDir('ashchan-dev', 'local'), 'systemd/podmesh-ashchan-dev-cert-expiry.service'), 'utf8'))
      .toContain('ExecStart=/bin/sh -c "exec /bin/sh \\"$$HOME/.config/podmesh/ashchan-dev/bin/podmesh-cert-expiry.sh\\""');
  });

  it.skipIf(!openssl)('the script\'s days agree with certs status at several times, for every service certificate and the root', async () => {
    for (const stack of ['ashchan-dev', 'ashchan-prod']) {
      for (const now of ['2027-01-01T00:00:00Z', '2027-10-15T12:34:56Z', '2027-12-31T23:59:59Z', '2029-02-28T00:00:00Z']) {
        const textfile = join(dir.path, `metrics-${stack}-${now.slice(0, 10)}`);
        const r = check(stack, readdirSync(join(out, stack, 'hosts'))[0]!, now, textfile);
        expect(r.status, r.stderr).toBe(0);
        const got = readFileSync(join(textfile, `podmesh_${stack}.prom`), 'utf8');
        // The host has the service folders (root copy in each); the client CA is not installed as a file of its own.
        const want = formatStatusProm(await readPkiStatus(join(state, stack), new Date(now)), stack)
          .split('\n')
          .filter((l) => !l.includes('kind="client-ca"'))
          .join('\n');
        expect(got).toBe(want);
        expect(readdirSync(textfile)).toEqual([`podmesh_${stack}.prom`]);
      }
    }
  });

  it.skipIf(!openssl)('warns (stderr, journal priority 4 under systemd) for certificates under 30 days and for expired ones', () => {
    const textfile = join(dir.path, 'metrics-warn');
    const soon = check('ashchan-dev', 'local', '2027-12-20T00:00:00Z', textfile);
    expect(soon.status).toBe(0);
    expect(soon.stderr).toMatch(/^warning: ashchan-dev auth server certificate .*auth\/server\.crt expires in 11 days/m);
    expect(soon.stderr).not.toContain('root-ca');
    const late = check('ashchan-dev', 'local', '2028-02-01T00:00:00Z', textfile);
    expect(late.stderr).toMatch(/auth server certificate .* expired on Dec 31 23:55:00 2027 GMT \(days: -32\)/);
    expect(readFileSync(join(textfile, 'podmesh_ashchan-dev.prom'), 'utf8')).toContain('mtls_cert_expiry_days{stack="ashchan-dev",service="auth",kind="server"} -32');
    const journal = spawnSync('sh', [join(hostDir('ashchan-dev', 'local'), 'bin/podmesh-cert-expiry.sh')], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, JOURNAL_STREAM: '8:1', PODMESH_PKI_DIR: join(state, 'ashchan-dev/pki'), PODMESH_TEXTFILE_DIR: textfile, PODMESH_NOW: '2027-12-20T00:00:00Z' },
    });
    expect(journal.stderr.split('\n')[0]).toMatch(/^<4>ashchan-dev /);
  });

  it('fails with a clear message when the certificates are not installed', () => {
    mkdirSync(join(dir.path, 'empty'), { recursive: true });
    const r = spawnSync('sh', [join(hostDir('ashchan-dev', 'local'), 'bin/podmesh-cert-expiry.sh')], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, PODMESH_PKI_DIR: join(dir.path, 'empty'), PODMESH_TEXTFILE_DIR: join(dir.path, 'm') },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('empty/services does not exist: install the stack\'s certificates first (podmesh apply --stack ashchan-dev --host <host>)');
  });

  it.skipIf(!analyze)('systemd-analyze verify accepts the service and timer (user manager for rootless, system for rootful)', () => {
    for (const [stack, host] of [['ashchan-dev', 'local'], ['ashchan-prod', 'app']] as const) {
      const sys = join(hostDir(stack, host), 'systemd');
      const rootless = readFileSync(join(sys, `podmesh-${stack}-cert-expiry.service`), 'utf8').includes('$$HOME');
      const r = verifyUnits(analyze!, new Map(), sys, rootless);
      const complaints = r.stderr.split('\n').filter((l) => l.includes('cert-expiry'));
      expect(complaints, r.stderr).toEqual([]);
    }
  });
});
