// Hostile input: each value that would break or inject into a generated file is refused with the
// construct path and a fix, and neither out/ nor the state folder changes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, Host, Network, PodmeshError, Stack, synth, type Issue } from '../src/index.ts';
import { miniStack, svc } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';

interface BadCase {
  readonly name: string;
  readonly build: (app: App) => void;
  readonly expect: readonly [path: string, fragment: string];
}

/** A two-host stack whose second host's endpoint is `endpoint`. */
function twoHosts(app: App, endpoint: string): void {
  const stack = new Stack(app, 'bad', { project: 'bad' });
  const a = new Host(stack, 'a', { endpoint: '192.0.2.1:51820' });
  const b = new Host(stack, 'b', { endpoint });
  new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
  svc(stack, 'one', { host: a });
  svc(stack, 'two', { host: b });
}

const cases: BadCase[] = [
  { name: 'a mount target with ":" (would become a read-only mount)', build: (app) => svc(miniStack('bad', app).stack, 'auth', { mounts: [{ hostPath: '/srv/v', target: '/vdata:ro' }] }), expect: ['bad/auth', 'mounts[0].target: must not contain ":", ","'] },
  { name: 'a host path with ":" (compose refuses the file)', build: (app) => svc(miniStack('bad', app).stack, 'auth', { mounts: [{ hostPath: '/srv/data:/etc', target: '/data' }] }), expect: ['bad/auth', 'mounts[0].hostPath: must not contain ":", ","'] },
  { name: 'a host path with ","', build: (app) => svc(miniStack('bad', app).stack, 'auth', { mounts: [{ hostPath: '/srv/a,b', target: '/data' }] }), expect: ['bad/auth', 'mounts[0].hostPath: must not contain ":", ","'] },
  { name: 'a mount target with a newline', build: (app) => svc(miniStack('bad', app).stack, 'auth', { mounts: [{ hostPath: '/srv/a', target: '/data\nExec=x' }] }), expect: ['bad/auth', 'control characters'] },
  { name: 'a host path climbing out of the host folder', build: (app) => svc(miniStack('bad', app).stack, 'auth', { mounts: [{ hostPath: '../../../../etc', target: '/data' }] }), expect: ['bad/auth', 'must not climb out of the data folder with ".."'] },
  { name: 'a host path climbing out in the middle', build: (app) => svc(miniStack('bad', app).stack, 'auth', { mounts: [{ hostPath: 'data/../../x', target: '/data' }] }), expect: ['bad/auth', 'must not climb out of the data folder'] },
  { name: 'a WireGuard endpoint port over 65535', build: (app) => twoHosts(app, '192.0.2.2:99999'), expect: ['bad/b', 'port 99999 is outside 1-65535'] },
  { name: 'a WireGuard endpoint port 0', build: (app) => twoHosts(app, '192.0.2.2:0'), expect: ['bad/b', 'port 0 is outside 1-65535'] },
  { name: 'an endpoint address that is no IPv4 address', build: (app) => twoHosts(app, '999.1.1.1:51820'), expect: ['bad/b', '"999.1.1.1" is not an IPv4 address'] },
  { name: 'a SPIFFE trust domain with upper-case letters', build: (app) => svc(new Stack(app, 'bad', { spiffe: { trustDomain: 'Ashchan.Local' } }), 'auth'), expect: ['bad', 'SPIFFE trust domain "Ashchan.Local" may hold only lower-case letters, digits'] },
  { name: 'a SPIFFE trust domain with a port (would end the ID\'s authority)', build: (app) => svc(new Stack(app, 'bad', { spiffe: { trustDomain: 'ashchan.local:8443' } }), 'auth'), expect: ['bad', 'SPIFFE trust domain "ashchan.local:8443" may hold only'] },
  { name: 'an empty SPIFFE trust domain', build: (app) => svc(new Stack(app, 'bad', { spiffe: { trustDomain: '' } }), 'auth'), expect: ['bad', 'SPIFFE trust domain "" is empty'] },
  { name: 'an OCSP responder host the stack does not have', build: (app) => {
      const stack = new Stack(app, 'bad', { ocsp: { host: 'nowhere' } });
      new Host(stack, 'local');
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      svc(stack, 'auth');
    }, expect: ['bad', 'ocsp.host "nowhere" is not a host of the stack'] },
  { name: 'an OCSP URL that is not http://', build: (app) => svc(new Stack(app, 'bad', { ocsp: { url: 'https://ocsp.example/' } }), 'auth'), expect: ['bad', 'must be an http:// URL (OCSP over HTTP'] },
  { name: 'a newline in the stack description (Markdown injection into TOPOLOGY.md)', build: (app) => svc(new Stack(app, 'bad', { description: 'ok\n# injected' }), 'x'), expect: ['bad', 'description: must be one line'] },
];

describe('hostile input', () => {
  const root = mkdtempSync(join(tmpdir(), 'podmesh-bad-'));
  const out = join(root, 'out');
  const state = join(root, 'state');
  let before: { out: Record<string, string>; state: Record<string, string> };

  beforeAll(async () => {
    // A valid earlier synth of the same stack name: nothing of it, in out/ or the state, may change.
    const app = new App();
    svc(miniStack('bad', app).stack, 'auth');
    await synth(app, { stateDir: state, outDir: out });
    before = { out: treeState(out), state: treeState(state) };
    expect(Object.keys(before.state).length).toBeGreaterThan(0);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each(cases)('$name', async (c) => {
    let error: unknown;
    try {
      const app = new App();
      c.build(app);
      await synth(app, { stateDir: state, outDir: out });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PodmeshError);
    const [path, fragment] = c.expect;
    const issues = (error as PodmeshError).issues;
    expect(issues.some((i: Issue) => i.path === path && i.message.includes(fragment)), `expected [${path}] ${fragment} in:\n${(error as Error).message}`).toBe(true);
    expect({ out: treeState(out), state: treeState(state) }).toEqual(before);
  });
});
