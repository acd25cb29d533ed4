// The generated WireGuard mesh for real: three simulated hosts (network namespaces, see
// test/helpers/netns.ts) run exactly the configs synth wrote, with the keys from the state folder
// installed where the PostUp hooks read them. "Containers" (namespaces behind the hosts' bridges)
// talk TCP, TLS and mutual TLS across the mesh with the stack's certificates, through hosts that
// drop forwarded traffic by default and masquerade like netavark, and keep their real source
// address. api on a depends on boards on c: the wait Quadlet generates for api's unit runs on host
// a through the tunnel. After `podmesh wireguard rotate --host a`, deployed to b and c only, a is locked out.
import { execa } from 'execa';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presharedKeyFile } from '../../src/state/wireguard/index.ts';
import { addSliceAddress, createHosts, listen, netnsReady, tcpProbe, wgDown, wgUp, type SimHost, type SimNetwork } from '../helpers/netns.ts';
import { tempDir } from '../helpers/stacks.ts';
import { SYSTEM_MANAGER, generateUnits, prepare, value } from '../helpers/quadlet-run.ts';
import { repoRoot, tool } from '../helpers/tools.ts';
import { underlayIp } from './stacks.ts';

const ready = netnsReady();
const tools = { wg: tool('wg'), wgQuick: tool('wg-quick'), wireguardGo: tool('wireguard-go'), iptables: tool('iptables'), openssl: tool('openssl'), quadlet: tool('quadlet') };
const bin = join(repoRoot, 'bin/podmesh.mjs');

// api (host a) depends on boards (host c): its unit waits for boards through the tunnel, at most 8 s.
const STACK = `import { meshStack } from '${repoRoot}/test/wireguard/stacks.ts';
export default (app) => { meshStack('tun', app, { presharedKeys: true }, ['a', 'b', 'c'], { calls: ['boards'], dependsOn: [{ service: 'boards', crossHostWait: '8s' }] }); };
`;
/** boards' mTLS port: what api's unit waits for. */
const BOARDS_MTLS = 8443;
/** Where the generated configs expect their files on a real host. */
const INSTALLED = '/etc/podmesh/tun/wireguard';
const HOSTS = ['a', 'b', 'c'] as const;
type HostName = (typeof HOSTS)[number];
/** Each host's slice and its bridge's address (the slice gateway, as netavark gives it). */
const SLICE: Record<HostName, { slice: string; gateway: string }> = {
  a: { slice: '10.90.0.0/26', gateway: '10.90.0.1' },
  b: { slice: '10.90.0.64/26', gateway: '10.90.0.65' },
  c: { slice: '10.90.0.128/26', gateway: '10.90.0.129' },
};
/**
 * "Containers": namespaces behind a host's bridge with a service's address from the lock (api on
 * a, boards on c), so traffic between them is forwarded by the hosts as container traffic is.
 */
const CONTAINER = {
  ctra: { host: 'a', ip: '10.90.0.2', service: 'api' },
  ctrc: { host: 'c', ip: '10.90.0.130', service: 'boards' },
} as const;

describe.skipIf(!ready || Object.values(tools).some((t) => !t))('the generated WireGuard mesh between simulated hosts', () => {
  const dir = tempDir('podmesh-wg-tunnel-');
  const cwd = dir.path;
  const state = join(cwd, 'state');
  const pki = (service: string, file: string) => join(state, 'tun/pki/services', service, file);
  let net: SimNetwork;
  const host = (h: HostName | keyof typeof CONTAINER): SimHost => net.host(h);
  const podmesh = async (...args: string[]) => {
    const r = await execa('node', [bin, ...args, '--state', state], { cwd, reject: false, timeout: 60_000 });
    expect(r.exitCode, `podmesh ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  const confOf = (h: HostName) => join(net.workDir, h, 'wireguard/wg0.conf');
  /** The config's PostUp iptables hooks, as wg-quick runs them for wg0. */
  const iptablesHooks = (h: HostName) =>
    readFileSync(confOf(h), 'utf8').split('\n').filter((l) => l.startsWith('PostUp = iptables')).map((l) => l.slice('PostUp = '.length).replaceAll('%i', 'wg0'));
  const rules = async (h: HostName) => (await host(h).exec(['sh', '-c', 'iptables -S FORWARD; iptables -t nat -S POSTROUTING'], { reject: true })).stdout;

  /**
   * Installs host h's generated config with its private key and preshared keys, as an operator
   * would under /etc/podmesh/tun/wireguard; the test keeps them in the run's private work folder
   * and rewrites that one path in the config. Returns the config's path.
   */
  const deploy = (h: HostName): string => {
    const target = join(net.workDir, h, 'wireguard');
    mkdirSync(join(target, 'psk'), { recursive: true, mode: 0o700 });
    copyFileSync(join(state, 'tun/wireguard', `${h}.key`), join(target, 'private.key'));
    for (const p of HOSTS.filter((x) => x !== h)) copyFileSync(join(state, 'tun', presharedKeyFile(h, p)), join(target, 'psk', `${p}.key`));
    const conf = readFileSync(join(cwd, 'out/tun/hosts', h, 'wireguard/wg0.conf'), 'utf8');
    expect(conf).toContain(INSTALLED);
    writeFileSync(confOf(h), conf.replaceAll(INSTALLED, target), { mode: 0o600 });
    return confOf(h);
  };

  beforeAll(async () => {
    mkdirSync(join(cwd, 'stacks'));
    writeFileSync(join(cwd, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(cwd, 'stacks/tun.ts'), STACK);
    await podmesh('synth');
    net = await createHosts([...HOSTS, ...Object.keys(CONTAINER)]);
    for (const [i, h] of HOSTS.entries()) {
      // the stack's endpoints are the harness's underlay addresses
      expect(host(h).underlayIp).toBe(underlayIp(i));
      await wgUp(host(h), deploy(h));
      await addSliceAddress(host(h), `${SLICE[h].gateway}/26`, 'mesh0');
      // A strict host: nothing is forwarded unless a rule says so, and, as netavark does, traffic
      // leaving the slice is masqueraded (appended, so the tunnel's RETURN above it comes first).
      await host(h).exec(['sh', '-c', `iptables -P FORWARD DROP && iptables -t nat -A POSTROUTING -s ${SLICE[h].slice} ! -d ${SLICE[h].slice} -j MASQUERADE`], { reject: true });
    }
    for (const [name, c] of Object.entries(CONTAINER)) {
      // a veth from the container's namespace to its host's bridge, created directly in the two namespaces
      const ctr = host(name as keyof typeof CONTAINER);
      const h = host(c.host);
      await execa('ip', ['-n', ctr.netns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', `v-${name}`, 'netns', h.netns], { timeout: 10_000 });
      await execa('ip', ['-n', h.netns, 'link', 'set', `v-${name}`, 'master', 'mesh0', 'up'], { timeout: 10_000 });
      await ctr.exec(['sh', '-c', `ip addr add ${c.ip}/26 dev eth1 && ip link set eth1 up && ip route add default via ${SLICE[c.host].gateway}`], { reject: true });
    }
  });

  afterAll(async () => {
    await net?.teardown();
    dir.cleanup();
  });

  it('brings up wg0 on every host with the key of the lock, the preshared keys and the forwarding rules of its slice', async () => {
    const lock = JSON.parse(readFileSync(join(cwd, 'out/tun/podmesh.lock.json'), 'utf8')) as { wireguard: { hosts: Record<string, { publicKey: string }> } };
    for (const h of HOSTS) {
      const show = await host(h).exec(['wg', 'show', 'wg0', 'dump'], { reject: true });
      const [self, ...peers] = show.stdout.trim().split('\n').map((l) => l.split('\t'));
      expect(self![1]).toBe(lock.wireguard.hosts[h]!.publicKey);
      expect(peers.map((p) => p[0]).sort()).toEqual(HOSTS.filter((x) => x !== h).map((x) => lock.wireguard.hosts[x]!.publicKey).sort());
      // set by PostUp from psk/<peer>.key (wg prints "(none)" otherwise)
      for (const p of peers) expect(p[1]).not.toBe('(none)');
      const all = await rules(h);
      expect(all).toContain(`-A FORWARD -d ${SLICE[h].slice} -i wg0 -o mesh0 -j ACCEPT`);
      expect(all).toContain(`-A FORWARD -s ${SLICE[h].slice} -i mesh0 -o wg0 -j ACCEPT`);
      expect(all.split('\n').filter((l) => l.includes('POSTROUTING'))[1]).toBe(`-A POSTROUTING -s ${SLICE[h].slice} -o wg0 -j RETURN`);
    }
  });

  it('adds no second copy of a rule when the PostUp hooks run again', async () => {
    const hooks = iptablesHooks('a');
    expect(hooks).toHaveLength(3);
    const before = await rules('a');
    for (const hook of hooks) await host('a').exec(['sh', '-c', hook], { reject: true });
    expect(await rules('a')).toBe(before);
  });

  it("carries TCP from a's container to c's through both hosts' forwarding, keeping the real source address", async () => {
    const listener = await listen(host('ctrc'), CONTAINER.ctrc.ip, 7000);
    try {
      const probe = await tcpProbe(host('ctra'), CONTAINER.ctrc.ip, 7000, { timeoutMs: 8_000 });
      expect(probe).toMatchObject({ ok: true, seenSource: CONTAINER.ctra.ip, localAddress: CONTAINER.ctra.ip });
      expect(listener.connections).toEqual([CONTAINER.ctra.ip]);
    } finally {
      await listener.stop();
    }
  });

  it("needs the RETURN rule: without it the host's masquerade hides the container behind a's tunnel address", async () => {
    const listener = await listen(host('ctrc'), CONTAINER.ctrc.ip, 7002);
    try {
      await host('a').exec(['iptables', '-t', 'nat', '-D', 'POSTROUTING', '-s', SLICE.a.slice, '-o', 'wg0', '-j', 'RETURN'], { reject: true });
      const masked = await tcpProbe(host('ctra'), CONTAINER.ctrc.ip, 7002, { timeoutMs: 8_000 });
      expect(masked).toMatchObject({ ok: true, seenSource: '10.255.0.1' });
      for (const hook of iptablesHooks('a')) await host('a').exec(['sh', '-c', hook], { reject: true });
      const real = await tcpProbe(host('ctra'), CONTAINER.ctrc.ip, 7002, { timeoutMs: 8_000 });
      expect(real).toMatchObject({ ok: true, seenSource: CONTAINER.ctra.ip });
    } finally {
      await listener.stop();
    }
  });

  it('needs the FORWARD rules: without them the strict host c drops the tunnel traffic to its containers', async () => {
    const listener = await listen(host('ctrc'), CONTAINER.ctrc.ip, 7003);
    try {
      await host('c').exec(['iptables', '-D', 'FORWARD', '-i', 'wg0', '-o', 'mesh0', '-d', SLICE.c.slice, '-j', 'ACCEPT'], { reject: true });
      const dropped = await tcpProbe(host('ctra'), CONTAINER.ctrc.ip, 7003, { timeoutMs: 3_000 });
      expect(dropped).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      for (const hook of iptablesHooks('c')) await host('c').exec(['sh', '-c', hook], { reject: true });
      const passed = await tcpProbe(host('ctra'), CONTAINER.ctrc.ip, 7003, { timeoutMs: 8_000 });
      expect(passed).toMatchObject({ ok: true, seenSource: CONTAINER.ctra.ip });
    } finally {
      await listener.stop();
    }
  });

  it("carries TLS with the stack's certificates: a's container verifies boards' server certificate against the stack CA", async () => {
    const listener = await listen(host('ctrc'), CONTAINER.ctrc.ip, 8443, { tls: { cert: pki('boards', 'server.crt'), key: pki('boards', 'server.key') } });
    try {
      const probe = await tcpProbe(host('ctra'), CONTAINER.ctrc.ip, 8443, { tls: { ca: pki('api', 'ca.crt') }, timeoutMs: 8_000 });
      expect(probe).toMatchObject({ ok: true, seenSource: CONTAINER.ctra.ip, authorized: true });
    } finally {
      await listener.stop();
    }
  });

  it("carries mutual TLS (openssl s_server requiring a client certificate, s_client with api's)", async () => {
    // GIVEN an s_server in c's container that accepts one connection, only with a client certificate of the stack
    const server = host('ctrc').exec(
      ['timeout', '20', 'openssl', 's_server', '-accept', `${CONTAINER.ctrc.ip}:8444`, '-naccept', '1', '-quiet', '-tls1_3',
        '-cert', pki('boards', 'server.crt'), '-key', pki('boards', 'server.key'),
        '-CAfile', pki('boards', 'ca.crt'), '-Verify', '2', '-verify_return_error'],
      { timeoutMs: 25_000 },
    );
    // WHEN a's container connects (retrying, bounded, until the server listens)
    let client = { stdout: '', stderr: '', exitCode: -1 };
    for (let i = 0; i < 40; i++) {
      client = await host('ctra').exec(
        ['openssl', 's_client', '-connect', `${CONTAINER.ctrc.ip}:8444`, '-brief', '-tls1_3', '-verify_return_error', '-verify_ip', CONTAINER.ctrc.ip,
          '-CAfile', pki('api', 'ca.crt'), '-cert', pki('api', 'client.crt'), '-cert_chain', pki('api', 'client.crt'), '-key', pki('api', 'client.key')],
        { input: 'ping\n', timeoutMs: 10_000 },
      );
      if (client.exitCode === 0 || !/Connection refused|connect:errno/.test(client.stderr)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const served = await server;
    // THEN a verified c's server certificate, and c verified a's client certificate up to the root
    expect(client.exitCode, client.stderr).toBe(0);
    expect(client.stderr).toContain('Verification: OK');
    expect(client.stderr).toContain('Peer certificate: CN = boards.tun.local');
    expect(served.exitCode, served.stderr).toBe(0);
    expect(served.stderr).toContain('depth=2 CN = tun-ca\nverify return:1\ndepth=1 CN = tun.local\nverify return:1\ndepth=0 CN = api.tun.local\nverify return:1');
  });

  /**
   * The ExecStartPre lines of api's service as the real Quadlet generates it from the .container
   * podmesh wrote for host a, each split into words by systemd's rules (test/quadlet/systemd-exec.ts).
   */
  const apiWaits = (): string[][] => {
    const units = generateUnits(join(cwd, 'out/tun/hosts/a/quadlet'), false);
    const api = units.find((u) => u.name === 'tun-api.service');
    expect(api, units.map((u) => u.name).join(', ')).toBeDefined();
    expect(value(api!, 'Service', 'TimeoutStartSec')).toBe(String(900 + 8 + 5));
    return prepare(api!, SYSTEM_MANAGER).commands.filter((c) => c.key === 'ExecStartPre').map((c) => [...c.argv]);
  };

  it("GIVEN api on a depending on boards on c WHEN the wait Quadlet generates for api runs on host a THEN it returns once boards' port accepts through the tunnel", async () => {
    // GIVEN the one wait command of api's unit, and boards listening on c only after 3 s
    const waits = apiWaits();
    expect(waits).toHaveLength(1);
    let listener: Awaited<ReturnType<typeof listen>> | undefined;
    const late = new Promise<void>((resolve) => setTimeout(() => void listen(host('ctrc'), CONTAINER.ctrc.ip, BOARDS_MTLS).then((l) => { listener = l; resolve(); }), 3_000));
    try {
      // WHEN host a runs it
      const started = Date.now();
      const r = await host('a').exec(waits[0]!, { timeoutMs: 30_000 });
      await late;
      // THEN it waited for the listener, then succeeded well within its 8 s
      expect(r.exitCode, r.stderr).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
      expect(r.stderr).toContain(`podmesh: waiting up to 8 s for boards on host c at ${CONTAINER.ctrc.ip}:${BOARDS_MTLS} through the tunnel`);
      // ... and its connection came through the tunnel (from a's tunnel address, the host's own traffic)
      expect(listener!.connections).toContain('10.255.0.1');
    } finally {
      await late;
      await listener?.stop();
    }
  });

  it('GIVEN boards not listening WHEN the wait runs on host a THEN it fails after its 8 s bound, naming boards, its address and the fix', async () => {
    // WHEN
    const started = Date.now();
    const r = await host('a').exec(apiWaits()[0]!, { timeoutMs: 30_000 });
    const took = Date.now() - started;
    // THEN
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`podmesh: boards on host c (${CONTAINER.ctrc.ip}:${BOARDS_MTLS}) did not accept connections within 8 s: check that the tunnel to host c is up and that boards runs there`);
    expect(took).toBeGreaterThanOrEqual(8_000);
    expect(took).toBeLessThan(8_000 + 5_000 + 2_000);
  });

  it("GIVEN c dropping the tunnel's packets WHEN the wait runs on host a THEN each attempt is cut short and it still fails within its bound", async () => {
    // GIVEN boards listening, but c's FORWARD rule into its bridge gone (strict host: dropped, no refusal)
    const listener = await listen(host('ctrc'), CONTAINER.ctrc.ip, BOARDS_MTLS);
    await host('c').exec(['iptables', '-D', 'FORWARD', '-i', 'wg0', '-o', 'mesh0', '-d', SLICE.c.slice, '-j', 'ACCEPT'], { reject: true });
    try {
      // WHEN
      const started = Date.now();
      const r = await host('a').exec(apiWaits()[0]!, { timeoutMs: 30_000 });
      const took = Date.now() - started;
      // THEN not held by the kernel's SYN retries: failed, within the bound and its slack
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain('did not accept connections within 8 s');
      expect(took).toBeLessThan(8_000 + 5_000 + 2_000);
      expect(listener.connections).toEqual([]);
    } finally {
      for (const hook of iptablesHooks('c')) await host('c').exec(['sh', '-c', hook], { reject: true });
      await listener.stop();
    }
  });

  it('after `podmesh wireguard rotate --host a`, deployed to b and c only, a can no longer connect', async () => {
    // GIVEN
    const r = await podmesh('wireguard', 'rotate', '--host', 'a');
    expect(r.stdout).toContain('tun: WireGuard keys: rotated for a');
    for (const h of ['b', 'c'] as const) {
      await wgDown(host(h), confOf(h));
      await wgUp(host(h), deploy(h));
    }
    const listener = await listen(host('ctrc'), CONTAINER.ctrc.ip, 7001);
    try {
      // WHEN a's container, behind a still on its old key, connects to c's
      const probe = await tcpProbe(host('ctra'), CONTAINER.ctrc.ip, 7001, { timeoutMs: 4_000 });
      // THEN no answer (c drops a's handshakes), and c's container never saw a connection
      expect(probe).toMatchObject({ ok: false, error: 'no answer within 4000 ms' });
      expect(listener.connections).toEqual([]);
      // AND (control) b, on the new configs, still reaches c's container
      const fromB = await tcpProbe(host('b'), CONTAINER.ctrc.ip, 7001, { source: SLICE.b.gateway, timeoutMs: 8_000 });
      expect(fromB).toMatchObject({ ok: true, seenSource: SLICE.b.gateway });
      // AND (control) once a gets its new key, it is back
      await wgDown(host('a'), confOf('a'));
      await wgUp(host('a'), deploy('a'));
      const again = await tcpProbe(host('ctra'), CONTAINER.ctrc.ip, 7001, { timeoutMs: 8_000 });
      expect(again).toMatchObject({ ok: true, seenSource: CONTAINER.ctra.ip });
    } finally {
      await listener.stop();
    }
  });

  it('wg-quick down removes every forwarding rule it added, and only those', async () => {
    await wgDown(host('b'), confOf('b'));
    const left = await rules('b');
    expect(left).not.toContain('wg0');
    expect(left).toContain(`-A POSTROUTING -s ${SLICE.b.slice} ! -d ${SLICE.b.slice} -j MASQUERADE`);
  });
});
