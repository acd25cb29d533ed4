// The certificate dashboard: escaping and bars as exact HTML, then the real page of a synthesized
// stack rendered by headless Chromium (DOM shows every certificate, no console errors, a real screenshot).
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeHtml, renderDashboard } from '../../src/state/pki/dashboard.ts';
import type { StatusRow } from '../../src/state/pki/index.ts';
import { svc, tempDir } from '../helpers/stacks.ts';
import { App, Host, Network, Stack } from '../../src/index.ts';
import { resolveStack } from '../../src/resolve/resolve.ts';
import { topologyDiagram } from '../../src/render/topology.ts';

/** A small resolved stack whose diagram the dashboard shows: web calls api. */
function topologyStack() {
  const stack = new Stack(new App(), 'topo', { project: 'topo' });
  new Host(stack, 'h');
  new Network(stack, 'mesh', { subnet: '10.94.0.0/24', domain: 'topo.local' });
  const api = svc(stack, 'api');
  svc(stack, 'web', { calls: [api] });
  return resolveStack(stack);
}
import { repoRoot, tool } from '../helpers/tools.ts';

const chromium = tool('chromium');
const bin = join(repoRoot, 'bin/podmesh.mjs');

const row = (over: Partial<StatusRow>): StatusRow => ({
  service: 'auth',
  kind: 'server',
  commonName: 'auth.example',
  serial: '01ab',
  notBefore: new Date('2027-01-01T00:00:00Z'),
  notAfter: new Date('2028-01-01T00:00:00Z'),
  daysToExpiry: 200,
  status: 'valid',
  ...over,
});

describe('dashboard HTML', () => {
  it.each([
    ['<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['a&b "c" \'d\'', 'a&amp;b &quot;c&quot; &#39;d&#39;'],
    ['plain.name', 'plain.name'],
  ])('escapes %s', (input, want) => {
    expect(escapeHtml(input)).toBe(want);
  });

  it('escapes every text it shows and sizes and colors bars by lifetime and days left', () => {
    // GIVEN a certificate with hostile text, one half-way through its life, one under 30 days
    const now = new Date('2027-07-02T12:00:00Z');
    const html = renderDashboard(
      [
        {
          name: 'st<a>ck',
          rows: [row({ commonName: '<img src=x onerror=alert(1)>' }), row({ service: 'boards', serial: '02', daysToExpiry: 10, status: 'expiring', notAfter: new Date('2027-07-12T12:00:00Z') })],
          revocations: [{ service: 'x"y', kind: 'client', serial: '03', issuer: 'client-ca', notBefore: '2027-01-01T00:00:00Z', notAfter: '2028-01-01T00:00:00Z', status: 'revoked', revokedAt: '2027-02-01T00:00:00Z', reason: 'keyCompromise' }],
          resolved: topologyStack(),
        },
      ],
      now,
    );
    // THEN nothing the state holds becomes markup, and there is no script or external reference
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('<h2>st&lt;a&gt;ck</h2>');
    expect(html).toContain('<td>x&quot;y</td>');
    // The diagram is the topology renderer's, escaped: its arrows and quotes are no markup either.
    expect(html).toContain(`<pre class="mermaid-source">${escapeHtml(topologyDiagram(topologyStack()))}</pre>`);
    expect(html).toContain('svc_web ==&gt;|&quot;mTLS&quot;| svc_api');
    expect(html).not.toMatch(/<script|https?:\/\/|src=["']/i);
    expect(html).toContain('<div class="bar ok" title="50% of its lifetime left"><span style="width:50%"></span></div>');
    expect(html).toContain('<div class="bar bad" title="5.2% of its lifetime left"><span style="width:5.2%"></span></div>');
  });
});

describe.skipIf(!chromium)('dashboard in headless Chromium', () => {
  const dir = tempDir();
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const page = join(dir.path, 'dashboard.html');
  const run = (...args: string[]) =>
    execa('node', [bin, ...args, '--stacks', join(repoRoot, 'stacks'), '--out', out, '--state', state], { reject: false, timeout: 120_000 });
  let status: { service: string; kind: string; serial: string; commonName: string }[] = [];

  beforeAll(async () => {
    expect((await run('synth', '--now', '2027-01-01T00:00:00Z')).exitCode).toBe(0);
    expect((await run('certs', 'revoke', 'auth', '--kind', 'client', '--reason', 'keyCompromise', '--stack', 'ashchan-dev', '--now', '2027-01-02T00:00:00Z')).exitCode).toBe(0);
    // Late in the year: leaves past 70% (amber), some under 30 days after that (red).
    const r = await run('certs', 'status', '--format', 'html', '--output', page, '--now', '2027-12-10T00:00:00Z');
    expect(r.stdout).toMatch(/^wrote .*dashboard\.html \(\d+ certificates\)$/m);
    expect(r.exitCode).toBe(2);
    const json = await run('certs', 'status', '--format', 'json', '--now', '2027-12-10T00:00:00Z');
    status = json.stdout.split(/(?<=^\])\n/m).filter((t) => t.trim()).flatMap((t) => JSON.parse(t) as typeof status);
  }, 180_000);
  afterAll(() => dir.cleanup());

  const chrome = (...args: string[]) =>
    spawnSync(chromium!, ['--headless', '--disable-gpu', '--no-sandbox', '--enable-logging=stderr', '--v=0', '--window-size=1280,2400', ...args, `file://${page}`], {
      encoding: 'utf8',
      cwd: dir.path,
      timeout: 60_000,
      maxBuffer: 64 << 20,
    });

  it('shows every certificate of every stack, the revocation and the topology, without console errors', () => {
    const r = chrome('--dump-dom');
    expect(r.status, r.stderr).toBe(0);
    const dom = r.stdout;
    expect(status.length).toBeGreaterThan(30);
    for (const c of status) {
      expect(dom, `${c.service}/${c.kind}`).toContain(`data-service="${c.service}" data-kind="${c.kind}" data-serial="${c.serial}"`);
      expect(dom).toContain(`<code>${c.commonName}</code>`);
    }
    expect(dom).toMatch(/<table class="revocations">[\s\S]*<td>auth<\/td><td>client<\/td>[\s\S]*keyCompromise/);
    expect(dom).toContain('<pre class="mermaid-source">flowchart');
    expect(dom).toMatch(/class="bar bad"/);
    expect(r.stderr).not.toMatch(/ERROR:CONSOLE|Uncaught|Refused to (load|apply|execute)/);
    expect(r.stderr).not.toMatch(/CONSOLE\(\d+\)/);
  });

  it('renders a non-trivial screenshot', () => {
    const shot = join(dir.path, 'shot.png');
    const r = chrome(`--screenshot=${shot}`);
    expect(r.status, r.stderr).toBe(0);
    const png = readFileSync(shot);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1280, 2400]);
    // Tables, bars and text: a blank page of this size compresses to a few kilobytes.
    expect(statSync(shot).size).toBeGreaterThan(100_000);
    expect(r.stderr).not.toMatch(/ERROR:CONSOLE|Uncaught/);
  });
});
