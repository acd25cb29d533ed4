// End to end: the HAProxy sidecar (issue 19 item 4) in real containers. A small stack synthesized
// here: api (`hyperf: false`, `sidecar: { proxy: 'haproxy' }`) is a plain-HTTP stand-in application
// (examples/mtls-sample/standin.mjs app) behind HAProxy 2.6 (Debian's package: this machine's
// binary with its libraries as an image, test/helpers/image.ts); web may call api, intruder is a mesh member api does not allow;
// api calls store, the Node mTLS sample (examples/mtls-sample/server.mjs). The generated compose
// file runs under docker compose against Podman 4.3's API inside a network namespace this test
// creates; the override sets images and the Node services' commands only: the sidecar's entrypoint,
// user, network_mode, mounts and confinement are as generated. Checked: web reaches the application
// over mTLS and the application sees web's identity from the sidecar (not the forged one), intruder
// gets 403, no client certificate fails the handshake, the application's plain call to its local
// port reaches store over mTLS with api's client certificate, and the sidecar runs confined. Torn
// down, also on failure; the last test checks that nothing is left.
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { App, Host, Network, Service, Stack } from 'podmesh';
import { synth } from '../src/index.ts';
import { binariesRootfs, buildRootfs, IMPORT_CHANGES } from './helpers/image.ts';
import { composeOnPodman, type ComposeOnPodman } from './helpers/compose-podman.ts';
import { expectConfined } from './helpers/mesh-checks.ts';
import { netnsReady } from './helpers/netns.ts';
import { tempDir } from './helpers/stacks.ts';
import { inCI, tool } from './helpers/tools.ts';

const ready = netnsReady();
const podman = tool('podman');
const compose = tool('docker-compose');
const curl = tool('curl');
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
if (!busybox) {
  if (inCI) throw new Error('busybox-static is required under CI: run scripts/install-validators.sh');
  console.warn('skipping the sidecar end-to-end test: apt-get install busybox-static');
}
const haproxy = tool('haproxy');
const runnable = ready && !!podman && !!compose && !!curl && !!busybox && !!haproxy;

const PROJECT = 'sce';
const DOMAIN = 'sce.local';
const NETWORK = 'sce-mesh';
const NODE_IMAGE = 'localhost/podmesh-e2e-sidecar/node:1';
const HAPROXY_IMAGE = 'localhost/podmesh-e2e-sidecar/haproxy:2.6';
const id = (s: string) => `spiffe://${DOMAIN}/${PROJECT}/${s}`;
const SERVICES = ['store', 'api', 'web', 'intruder'] as const;

/** GIVEN: api (plain HTTP behind a HAProxy sidecar) calls store; web calls api; intruder calls nobody. */
function sidecarStack(): App {
  const app = new App();
  const stack = new Stack(app, PROJECT, { project: PROJECT });
  new Host(stack, 'local', { rootless: true });
  new Network(stack, NETWORK, { subnet: '10.93.0.0/24', gateway: '10.93.0.1', domain: DOMAIN });
  const image = (s: string) => `localhost/sce/${s}:1`;
  const store = new Service(stack, 'store', { image: image('store'), hyperf: false });
  const api = new Service(stack, 'api', { image: image('api'), hyperf: false, calls: [store], sidecar: { proxy: 'haproxy' } });
  new Service(stack, 'web', { image: image('web'), hyperf: false, calls: [api] });
  new Service(stack, 'intruder', { image: image('intruder'), hyperf: false });
  return app;
}

describe.skipIf(!runnable)('end to end: the HAProxy sidecar in containers on Podman', () => {
  const dir = tempDir('podmesh-e2e-sidecar-');
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const composeFile = join(out, PROJECT, 'hosts/local/compose.yaml');
  const override = join(dir.path, 'e2e.override.yaml');
  let env: ComposeOnPodman | undefined;
  let generated: Record<string, unknown> = {};
  const pm = (args: readonly string[], timeoutMs?: number) => env!.pm(args, timeoutMs);
  const container = (name: string) => `${PROJECT}-${name}-1`;
  const SIDECAR = `${container('api')}-sidecar`;

  /**
   * curl in a caller's container to api's mTLS port, with the caller's own client certificate (or
   * none); prints the body, then the HTTP code on its own line (000 when no answer came).
   */
  const callApi = (from: string, path: string, opts: { cert?: boolean; headers?: string[] } = {}) =>
    pm([
      'exec', container(from), 'curl', '-sS', '--max-time', '10', '--cacert', '/etc/mtls/ca.crt',
      ...(opts.cert === false ? [] : ['--cert', '/etc/mtls/client.crt', '--key', '/etc/mtls/client.key']),
      ...(opts.headers ?? []).flatMap((h) => ['-H', h]),
      '-w', '\n%{http_code}', `https://api.${DOMAIN}:8443${path}`,
    ]);
  const split = (stdout: string) => ({ body: stdout.slice(0, stdout.lastIndexOf('\n')), code: stdout.slice(stdout.lastIndexOf('\n') + 1) });
  /** The requests the stand-in application logged, in order. */
  const appRequests = async () => {
    const r = await pm(['logs', container('api')]);
    return r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; path?: string; caller?: { cn: string | null; spiffe_id: string | null } })
      .filter((l) => l.event === 'request' && l.path !== '/health');
  };

  /** Logs of every container, for failure messages. */
  async function diagnose(): Promise<string> {
    const ps = await pm(['ps', '-a', '--format', '{{.Names}} {{.Status}}']).catch((e: unknown) => ({ stdout: String(e) }));
    const parts = [`ps:\n${ps.stdout}`];
    for (const n of [...SERVICES.map(container), SIDECAR]) {
      const l = await pm(['logs', '--tail', '8', n]).catch((e: unknown) => ({ stdout: String(e), stderr: '' }));
      parts.push(`--- ${n}\n${l.stdout.trim()} ${l.stderr.trim()}`);
    }
    return parts.join('\n');
  }

  /** Bounded wait until web reaches the application through the sidecar (HAProxy listening, DNS answering). */
  async function waitThroughSidecar(ms = 45_000): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const r = await callApi('web', '/health').catch(() => ({ stdout: '', stderr: 'exec failed' }));
      if (split(r.stdout).code === '200') return;
      if (Date.now() > until) throw new Error(`web did not reach api through the sidecar within ${ms} ms: ${r.stdout} ${r.stderr}\n${await diagnose()}`);
      await sleep(1_000);
    }
  }

  async function teardown(): Promise<void> {
    const errors = (await env?.teardown()) ?? [];
    dir.cleanup();
    if (errors.length > 0) console.warn(`e2e-sidecar teardown:\n${errors.join('\n')}`);
  }

  beforeAll(async () => {
    const started = Date.now();
    // GIVEN the stack synthesized into a fresh output and state folder
    await synth(sidecarStack(), { outDir: out, stateDir: state });
    generated = parse(readFileSync(composeFile, 'utf8')) as Record<string, unknown>;

    // ... a simulated host with its own network and mount namespace (private aardvark-dns state) ...
    env = await composeOnPodman(podman!, compose!, { hostName: 'sidecar', project: PROJECT, composeFile, override, stateDir: state });

    // ... the Node image, and the HAProxy one: this machine's HAProxy 2.6 (Debian's package, the
    // binary the loopback test runs) with its libraries and busybox's sh, mkdir and ln, which the
    // generated command uses (and cat, for the test's look inside); the official image's
    // configuration folder ...
    const rootfs = join(dir.path, 'rootfs');
    buildRootfs(rootfs, busybox!);
    const haproxyRoot = join(dir.path, 'haproxy-rootfs');
    binariesRootfs(haproxyRoot, [[haproxy!, '/usr/sbin/haproxy']], busybox!, ['sh', 'mkdir', 'ln', 'cat'], ['usr/local/etc/haproxy', 'var/lib/haproxy']);
    const imports = await Promise.all([
      env.importRootfs(rootfs, IMPORT_CHANGES, NODE_IMAGE),
      env.importRootfs(haproxyRoot, ['--change', 'ENV=PATH=/usr/sbin:/usr/bin:/bin', '--change', 'STOPSIGNAL=SIGUSR1', '--change', 'CMD=["haproxy","-f","/usr/local/etc/haproxy/haproxy.cfg"]'], HAPROXY_IMAGE),
    ]);
    for (const imp of imports) expect(imp.exitCode, imp.stderr).toBe(0);
    console.log(`e2e-sidecar: images ready after ${Math.round((Date.now() - started) / 1000)} s`);

    // ... the Podman API inside the namespace ...
    await env.startApi();

    // ... and the test-only override: images and the Node services' commands only.
    const node = (command: string[]) => ({ image: NODE_IMAGE, pull_policy: 'never', command });
    writeFileSync(
      override,
      stringify({
        services: {
          store: node(['node', '/app/server.mjs']),
          web: node(['node', '/app/server.mjs']),
          intruder: node(['node', '/app/server.mjs']),
          api: node(['node', '/app/standin.mjs', 'app']),
          'api-sidecar': { image: HAPROXY_IMAGE, pull_policy: 'never' },
        },
      }),
    );

    // WHEN the generated compose file is started
    env.startHealthChecks();
    const up = await env.dc(['up', '-d']);
    if (up.exitCode !== 0) throw new Error(`compose up failed: ${up.stderr.split('\n').slice(-3).join('\n')}\n${await diagnose()}`);
    await env.waitHealthy(SERVICES.map(container), diagnose);
    await waitThroughSidecar();
    console.log(`e2e-sidecar: mesh up in ${Math.round((Date.now() - started) / 1000)} s`);
  }, 900_000);

  afterAll(teardown, 120_000);

  it('GIVEN web, an allowed caller WHEN it calls api\'s mTLS port with its client certificate, forging identity headers THEN the plain-HTTP application answers and sees web\'s identity as the sidecar set it', async () => {
    // WHEN
    const r = await callApi('web', '/who', { headers: [`X-Client-CN: admin.${DOMAIN}`, `X-Client-SPIFFE-ID: ${id('admin')}`] });
    // THEN
    const { body, code } = split(r.stdout);
    expect(code, `${r.stderr}\n${await diagnose()}`).toBe('200');
    expect(JSON.parse(body)).toEqual({ cn: `web.${DOMAIN}`, spiffe_id: id('web') });
    expect((await appRequests()).at(-1)).toMatchObject({ path: '/who', caller: { cn: `web.${DOMAIN}`, spiffe_id: id('web') } });
  });

  it('GIVEN intruder, a mesh member api does not allow WHEN it calls with its valid client certificate THEN the sidecar answers 403 and the application sees nothing', async () => {
    const before = (await appRequests()).length;
    // WHEN
    const r = await callApi('intruder', '/who');
    // THEN
    expect(split(r.stdout).code, r.stderr).toBe('403');
    expect((await appRequests()).length).toBe(before);
  });

  it('GIVEN a caller without a client certificate WHEN it connects THEN the TLS handshake is refused and the application sees nothing', async () => {
    const before = (await appRequests()).length;
    // WHEN
    const r = await callApi('web', '/who', { cert: false });
    // THEN no HTTP answer at all: the TLS layer refused (curl 35/56: the server's alert)
    expect(split(r.stdout).code).toBe('000');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/alert|certificate required|handshake/i);
    expect((await appRequests()).length).toBe(before);
  });

  it('GIVEN the application WHEN it calls STORE_SERVICE_URL (the sidecar\'s local port) in plain HTTP THEN the call leaves as mTLS: store saw api\'s client certificate over TLS 1.3', async () => {
    // GIVEN the generated environment points the application at the sidecar's local port
    const env = (generated.services as Record<string, { environment: Record<string, string> }>).api!.environment;
    expect(env.STORE_SERVICE_URL).toBe('http://127.0.0.1:15001');
    // WHEN web asks the application to call store
    const r = await callApi('web', '/call/store');
    // THEN
    const { body, code } = split(r.stdout);
    expect(code, `${r.stdout}\n${r.stderr}\n${await diagnose()}`).toBe('200');
    const answer = JSON.parse(body) as { target: string; status: number; body: string };
    expect(answer).toMatchObject({ target: 'http://127.0.0.1:15001', status: 200 });
    expect(JSON.parse(answer.body)).toEqual({ client_cn: `api.${DOMAIN}`, client_spiffe_id: id('api'), server_cn: `store.${DOMAIN}` });
    const log = await pm(['logs', container('store')]);
    expect(log.stdout).toMatch(new RegExp(`"event":"mtls_handshake_complete","client_cn":"api\\.sce\\.local","server_cn":"store\\.sce\\.local","tls_version":"TLSv1\\.3"`));
  });

  it('GIVEN the sidecar container WHEN inspected and probed from inside THEN it runs as generated: in api\'s network namespace, read-only root, no capabilities, no_new_privs', async () => {
    const r = await pm(['inspect', SIDECAR, container('api')]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [sidecar, api] = JSON.parse(r.stdout) as { Id: string; HostConfig: { NetworkMode: string; ReadonlyRootfs: boolean; CapDrop: string[] | null; SecurityOpt: string[] | null } }[];
    expect(sidecar!.HostConfig.NetworkMode).toBe(`container:${api!.Id}`);
    expect(sidecar!.HostConfig.ReadonlyRootfs).toBe(true);
    expect(sidecar!.HostConfig.SecurityOpt ?? []).toContain('no-new-privileges');
    // From inside: PID 1 (HAProxy's master, root of the container) holds no capability, no_new_privs
    // is set, / refuses a write while the tmpfs /tmp takes one.
    await expectConfined('api-sidecar', (argv) => pm(['exec', SIDECAR, ...argv]), [], false);
    const pid1 = await pm(['exec', SIDECAR, 'cat', '/proc/1/cmdline']);
    expect(pid1.stdout.split('\0').filter(Boolean)).toEqual(['haproxy', '-W', '-db', '-f', '/usr/local/etc/haproxy/haproxy.cfg']);
  });

  it('GIVEN the run WHEN torn down THEN no container, network, namespace or process is left', async () => {
    const namespaces = env!.net.leftovers();
    const ns = env!.host.netns;
    await teardown();
    expect(env!.net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    expect(readdirSync('/run/netns').filter((n) => n === ns)).toEqual([]);
    expect(namespaces.netns.length).toBeGreaterThan(0);
    const system = await execa(podman!, ['ps', '-a', '--format', '{{.Names}}'], { reject: false });
    expect(system.stdout.split('\n').filter((n) => n.startsWith(`${PROJECT}-`))).toEqual([]);
    expect(existsSync(dir.path)).toBe(false);
  });
});
