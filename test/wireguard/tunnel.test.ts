// The generated WireGuard mesh for real: three simulated hosts (network namespaces, see
// test/helpers/netns.ts) run exactly the configs synth wrote, with the keys from the state folder
// installed where the PostUp hooks read them. "Containers" (namespaces behind the hosts' bridges)
// talk TCP, TLS and mutual TLS across the mesh with the stack's certificates, and keep their real
// source address. Hosts a and b filter with iptables (strict: FORWARD drops by default, and they
// masquerade like netavark's iptables driver), host c with nftables beside a table like netavark's
// nftables driver writes (forward accepts, masquerade). Only the declared flows pass: api → boards
// (call and dependency), auth ⇄ boards (calls), and the hosts' own waits; api → db (the "edge to
// PostgreSQL" case) and every other pair or port are dropped. api on a depends on boards on c: the
// wait Quadlet generates for api's unit runs on host a through the tunnel. After `podmesh
// wireguard rotate --host a`, deployed to b and c only, a is locked out.
import { execa } from 'execa';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presharedKeyFile } from '../../src/state/wireguard/index.ts';
import { addSliceAddress, createHosts, listen, netnsReady, tcpProbe, waitFor, wgDown, wgUp, type SimHost, type SimNetwork } from '../helpers/netns.ts';
import { tempDir } from '../helpers/stacks.ts';
import { SYSTEM_MANAGER, generateUnits, prepare, value } from '../helpers/quadlet-run.ts';
import { repoRoot, tool } from '../helpers/tools.ts';
import { underlayIp } from './stacks.ts';

const ready = netnsReady();
const tools = { wg: tool('wg'), wgQuick: tool('wg-quick'), wireguardGo: tool('wireguard-go'), iptables: tool('iptables'), nft: tool('nft'), openssl: tool('openssl'), quadlet: tool('quadlet') };
const bin = join(repoRoot, 'bin/podmesh.mjs');

// api (host a) calls and depends on boards (host c): its unit waits for boards through the tunnel,
// at most 8 s. auth (b) and boards (c) call each other; boards calls db (c). Host c uses nftables.
const STACK = `import { meshStack } from '${repoRoot}/test/wireguard/stacks.ts';
import { svc } from '${repoRoot}/test/helpers/stacks.ts';
export default (app) => {
  const m = meshStack('tun', app, { presharedKeys: true }, ['a', 'b', 'c'], { calls: ['boards'], dependsOn: [{ service: 'boards', crossHostWait: '8s' }] },
    { hosts: { c: { firewall: 'nftables' } }, auth: { calls: ['boards'] }, boards: { calls: ['auth', 'db'] } });
  svc(m.stack, 'db', { host: m.hosts[2], ports: { postgres: 5432 } });
};
`;
/** Every app's mTLS port (what callers and api's unit wait use); boards' plain port; db's PostgreSQL port. */
const MTLS = 8443;
const BOARDS_HTTP = 9002;
const POSTGRES = 5432;
/** Where the generated configs expect their files on a real host. */
const INSTALLED = '/etc/podmesh/tun/wireguard';
const HOSTS = ['a', 'b', 'c'] as const;
type HostName = (typeof HOSTS)[number];
/** Each host's slice and its bridge's address (the slice gateway, as netavark gives it). */
const SLICE: Record<HostName, { slice: string; gateway: string; tunnel: string }> = {
  a: { slice: '10.90.0.0/26', gateway: '10.90.0.1', tunnel: '10.255.0.1' },
  b: { slice: '10.90.0.64/26', gateway: '10.90.0.65', tunnel: '10.255.0.2' },
  c: { slice: '10.90.0.128/26', gateway: '10.90.0.129', tunnel: '10.255.0.3' },
};
/**
 * "Containers": namespaces behind a host's bridge with a service's address from the lock, so
 * traffic between them is forwarded by the hosts as container traffic is.
 */
const CONTAINER = {
  ctra: { host: 'a', service: 'api' },
  ctrb: { host: 'b', service: 'auth' },
  ctrc: { host: 'c', service: 'boards' },
  ctrd: { host: 'c', service: 'db' },
} as const;
type ContainerName = keyof typeof CONTAINER;
/** nftables table the generated hooks keep on host c. */
const NFT_TABLE = 'inet podmesh_wg0';

describe.skipIf(!ready || Object.values(tools).some((t) => !t))('the generated WireGuard mesh between simulated hosts', () => {
  const dir = tempDir('podmesh-wg-tunnel-');
  const cwd = dir.path;
  const state = join(cwd, 'state');
  const pki = (service: string, file: string) => join(state, 'tun/pki/services', service, file);
  let net: SimNetwork;
  /** Each container's address, from the lock file. */
  const ip = {} as Record<ContainerName, string>;
  const host = (h: HostName | ContainerName): SimHost => net.host(h);
  const podmesh = async (...args: string[]) => {
    const r = await execa('node', [bin, ...args, '--state', state], { cwd, reject: false, timeout: 60_000 });
    expect(r.exitCode, `podmesh ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  const confOf = (h: HostName) => join(net.workDir, h, 'wireguard/wg0.conf');
  /** The config's PostUp firewall hooks (iptables or nft), as wg-quick runs them for wg0. */
  const firewallHooks = (h: HostName) =>
    readFileSync(confOf(h), 'utf8').split('\n').filter((l) => /^PostUp = (iptables|nft) /.test(l)).map((l) => l.slice('PostUp = '.length).replaceAll('%i', 'wg0'));
  const rerunHooks = async (h: HostName) => {
    for (const hook of firewallHooks(h)) await host(h).exec(['sh', '-c', hook], { reject: true });
  };
  /** Everything a host's packet filter holds that the hooks touch (iptables hosts), or its podmesh table (nftables). */
  const rules = async (h: HostName) =>
    (await host(h).exec(['sh', '-c', h === 'c' ? `nft list table ${NFT_TABLE}` : 'iptables -S; iptables -t mangle -S; iptables -t nat -S POSTROUTING'], { reject: true })).stdout;
  /** Packets the podmesh rules of host h dropped so far, summed over its drop rules. */
  const dropped = async (h: HostName): Promise<number> => {
    const out = (await host(h).exec(['sh', '-c', h === 'c' ? `nft list table ${NFT_TABLE}` : 'iptables -t mangle -L PODMESH-wg0 -v -x -n'], { reject: true })).stdout;
    const counts = h === 'c'
      ? [...out.matchAll(/counter packets (\d+) bytes \d+ drop/g)].map((m) => Number(m[1]))
      : out.split('\n').filter((l) => /\sDROP\s/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(counts).toHaveLength(2);
    return counts.reduce((a, b) => a + b, 0);
  };

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
    const lock = JSON.parse(readFileSync(join(cwd, 'out/tun/podmesh.lock.json'), 'utf8')) as { networks: { mesh: { addresses: Record<string, string> } } };
    for (const [name, c] of Object.entries(CONTAINER)) ip[name as ContainerName] = lock.networks.mesh.addresses[c.service]!;
    net = await createHosts([...HOSTS, ...Object.keys(CONTAINER)]);
    for (const [i, h] of HOSTS.entries()) {
      // the stack's endpoints are the harness's underlay addresses
      expect(host(h).underlayIp).toBe(underlayIp(i));
      const { slice } = SLICE[h];
      if (h === 'c') {
        // as netavark's nftables driver: its own table, forwarding accepted, traffic leaving the slice masqueraded
        await host(h).exec(['nft', '-f', '-'], {
          reject: true,
          input: `table inet netavark {
  chain FORWARD { type filter hook forward priority filter; policy accept; ct state invalid drop; ip daddr ${slice} ct state related,established accept; ip saddr ${slice} accept; }
  chain POSTROUTING { type nat hook postrouting priority srcnat; policy accept; ip saddr ${slice} jump nv_mesh; }
  chain nv_mesh { ip daddr ${slice} accept; ip daddr != 224.0.0.0/4 masquerade; }
}
`,
        });
      } else {
        // A strict host: nothing is forwarded unless a rule says so, and, as netavark's iptables driver does,
        // traffic leaving the slice is masqueraded (appended, so the tunnel's RETURN above it comes first).
        await host(h).exec(['sh', '-c', `iptables -P FORWARD DROP && iptables -t nat -A POSTROUTING -s ${slice} ! -d ${slice} -j MASQUERADE`], { reject: true });
      }
      await wgUp(host(h), deploy(h));
      await addSliceAddress(host(h), `${SLICE[h].gateway}/26`, 'mesh0');
    }
    for (const [name, c] of Object.entries(CONTAINER)) {
      // a veth from the container's namespace to its host's bridge, created directly in the two namespaces
      const ctr = host(name as ContainerName);
      const h = host(c.host);
      await execa('ip', ['-n', ctr.netns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', `v-${name}`, 'netns', h.netns], { timeout: 10_000 });
      await execa('ip', ['-n', h.netns, 'link', 'set', `v-${name}`, 'master', 'mesh0', 'up'], { timeout: 10_000 });
      await ctr.exec(['sh', '-c', `ip addr add ${ip[name as ContainerName]}/26 dev eth1 && ip link set eth1 up && ip route add default via ${SLICE[c.host].gateway}`], { reject: true });
    }
  });

  afterAll(async () => {
    await net?.teardown();
    dir.cleanup();
  });

  it('brings up wg0 on every host with the key of the lock, the preshared keys and the firewall rules of its slice', async () => {
    const lock = JSON.parse(readFileSync(join(cwd, 'out/tun/podmesh.lock.json'), 'utf8')) as { wireguard: { hosts: Record<string, { publicKey: string }> } };
    for (const h of HOSTS) {
      const show = await host(h).exec(['wg', 'show', 'wg0', 'dump'], { reject: true });
      const [self, ...peers] = show.stdout.trim().split('\n').map((l) => l.split('\t'));
      expect(self![1]).toBe(lock.wireguard.hosts[h]!.publicKey);
      expect(peers.map((p) => p[0]).sort()).toEqual(HOSTS.filter((x) => x !== h).map((x) => lock.wireguard.hosts[x]!.publicKey).sort());
      // set by PostUp from psk/<peer>.key (wg prints "(none)" otherwise)
      for (const p of peers) expect(p[1]).not.toBe('(none)');
    }
    // a (iptables): its chain, jumped to from the top of FORWARD, with api's flows out and the drops
    const a = await rules('a');
    expect(a.split('\n').filter((l) => l.startsWith('-A FORWARD')).slice(0, 2)).toEqual(['-A FORWARD -o wg0 -j PODMESH-wg0', '-A FORWARD -i wg0 -j PODMESH-wg0']);
    expect(a).toContain(`-A PODMESH-wg0 -s ${ip.ctra}/32 -d ${ip.ctrc}/32 -i mesh0 -o wg0 -p tcp -m tcp --dport ${MTLS} -j ACCEPT`);
    expect(a).toContain(`-A PODMESH-wg0 -s ${ip.ctra}/32 -d ${ip.ctrc}/32 -i mesh0 -o wg0 -p tcp -m tcp --dport ${BOARDS_HTTP} -j ACCEPT`);
    expect(a).toContain(`-A PODMESH-wg0 -s ${ip.ctra}/32 -d ${ip.ctrc}/32 -i mesh0 -o wg0 -p tcp -m tcp --dport ${MTLS} -j RETURN`);
    expect(a).toContain('-A PODMESH-wg0 -i wg0 -o mesh0 -j DROP');
    expect(a).toContain('-A PODMESH-wg0 -i mesh0 -o wg0 -j DROP');
    // the nat RETURN first, above the masquerade like netavark's
    expect(a).toContain(`-P POSTROUTING ACCEPT\n-A POSTROUTING -s ${SLICE.a.slice} -o wg0 -j RETURN\n-A POSTROUTING -s ${SLICE.a.slice} ! -d ${SLICE.a.slice} -j MASQUERADE`);
    // b (iptables): boards' call in, auth's out
    const b = await rules('b');
    expect(b).toContain(`-A PODMESH-wg0 -s ${ip.ctrc}/32 -d ${ip.ctrb}/32 -i wg0 -o mesh0 -p tcp -m tcp --dport ${MTLS} -j ACCEPT`);
    expect(b).toContain(`-A PODMESH-wg0 -s ${ip.ctrb}/32 -d ${ip.ctrc}/32 -i mesh0 -o wg0 -p tcp -m tcp --dport ${MTLS} -j ACCEPT`);
    // c (nftables): its own table, api's, auth's and a's wait in, boards' out, and the source NAT before netavark's
    const c = await rules('c');
    expect(c).toContain(`iifname "wg0" oifname "mesh0" ip saddr ${SLICE.a.tunnel} ip daddr ${ip.ctrc} tcp dport ${MTLS} accept`);
    expect(c).toContain(`iifname "wg0" oifname "mesh0" ip saddr ${ip.ctra} ip daddr ${ip.ctrc} tcp dport ${BOARDS_HTTP} accept`);
    expect(c).toContain(`iifname "mesh0" oifname "wg0" ip saddr ${ip.ctrc} ip daddr ${ip.ctrb} tcp dport ${MTLS} accept`);
    expect(c).toContain('type nat hook postrouting priority srcnat - 1; policy accept;');
    expect(c).toContain(`ip saddr ${SLICE.c.slice} oifname "wg0" snat ip to ip saddr`);
    expect(c).not.toContain(`ip daddr ${ip.ctrd}`);
  });

  it('adds no second copy of a rule when the PostUp hooks run again (iptables on a, nftables on c)', async () => {
    expect(firewallHooks('a').length).toBeGreaterThan(5);
    for (const h of ['a', 'c'] as const) {
      const before = await rules(h);
      await rerunHooks(h);
      expect(await rules(h)).toBe(before);
    }
  });

  it("carries a declared flow from a's container (iptables out) to c's (nftables in), keeping the real source address", async () => {
    const listener = await listen(host('ctrc'), ip.ctrc, BOARDS_HTTP);
    try {
      const probe = await tcpProbe(host('ctra'), ip.ctrc, BOARDS_HTTP, { timeoutMs: 8_000 });
      expect(probe).toMatchObject({ ok: true, seenSource: ip.ctra, localAddress: ip.ctra });
      expect(listener.connections).toEqual([ip.ctra]);
    } finally {
      await listener.stop();
    }
  });

  it("carries a declared flow from c's container (nftables out, beside netavark's masquerade) to b's (iptables in, strict host), keeping the real source address", async () => {
    const listener = await listen(host('ctrb'), ip.ctrb, MTLS);
    try {
      const probe = await tcpProbe(host('ctrc'), ip.ctrb, MTLS, { timeoutMs: 8_000 });
      expect(probe).toMatchObject({ ok: true, seenSource: ip.ctrc });
      expect(listener.connections).toEqual([ip.ctrc]);
    } finally {
      await listener.stop();
    }
  });

  it("drops undeclared flows leaving a host: api → db's PostgreSQL port and api → auth on a's iptables, boards → api on c's nftables", async () => {
    // GIVEN listeners on the undeclared destinations
    const db = await listen(host('ctrd'), ip.ctrd, POSTGRES);
    const auth = await listen(host('ctrb'), ip.ctrb, MTLS);
    const api = await listen(host('ctra'), ip.ctra, 9000);
    try {
      const [a0, c0] = [await dropped('a'), await dropped('c')];
      // WHEN the containers that neither call nor depend on them connect
      const toDb = await tcpProbe(host('ctra'), ip.ctrd, POSTGRES, { timeoutMs: 3_000 });
      const toAuth = await tcpProbe(host('ctra'), ip.ctrb, MTLS, { timeoutMs: 3_000 });
      const toApi = await tcpProbe(host('ctrc'), ip.ctra, 9000, { timeoutMs: 3_000 });
      // THEN no answer, nobody saw a connection, and the sending host's drop rules counted the packets
      for (const p of [toDb, toAuth, toApi]) expect(p).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect([db.connections, auth.connections, api.connections]).toEqual([[], [], []]);
      expect(await dropped('a')).toBeGreaterThan(a0);
      expect(await dropped('c')).toBeGreaterThan(c0);
    } finally {
      await Promise.all([db.stop(), auth.stop(), api.stop()]);
    }
  });

  it("drops undeclared flows at the sender even when netavark's iptables driver puts its FORWARD accept above podmesh's jump", async () => {
    // GIVEN host a with a rule like netavark's, inserted at position 1 as netavark does after the tunnel is up
    const netavark = ['FORWARD', '-s', SLICE.a.slice, '-j', 'ACCEPT'];
    await host('a').exec(['iptables', '-I', ...netavark.slice(0, 1), '1', ...netavark.slice(1)], { reject: true });
    const auth = await listen(host('ctrb'), ip.ctrb, MTLS);
    const boards = await listen(host('ctrc'), ip.ctrc, MTLS);
    try {
      const a0 = await dropped('a');
      // WHEN api connects to auth (undeclared) and to boards (declared)
      const undeclared = await tcpProbe(host('ctra'), ip.ctrb, MTLS, { timeoutMs: 3_000 });
      const declared = await tcpProbe(host('ctra'), ip.ctrc, MTLS, { timeoutMs: 8_000 });
      // THEN a's mangle chain dropped the first before netavark's accept could pass it; the second went through
      expect(undeclared).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect(await dropped('a')).toBeGreaterThan(a0);
      expect(auth.connections).toEqual([]);
      expect(declared).toMatchObject({ ok: true, seenSource: ip.ctra });
    } finally {
      await host('a').exec(['iptables', '-D', ...netavark], { reject: true });
      await Promise.all([auth.stop(), boards.stop()]);
    }
  });

  it("drops undeclared flows arriving at a host: host a → db and → boards' plain port on c's nftables, host c → auth's plain port on b's iptables", async () => {
    // GIVEN (hosts' own connections leave without the sender's forward filter: only the receiver's can stop them)
    const db = await listen(host('ctrd'), ip.ctrd, POSTGRES);
    const boards = await listen(host('ctrc'), ip.ctrc, BOARDS_HTTP);
    const auth = await listen(host('ctrb'), ip.ctrb, 9001);
    try {
      const [b0, c0] = [await dropped('b'), await dropped('c')];
      // WHEN
      const probes = [
        await tcpProbe(host('a'), ip.ctrd, POSTGRES, { source: SLICE.a.tunnel, timeoutMs: 3_000 }),
        await tcpProbe(host('a'), ip.ctrc, BOARDS_HTTP, { source: SLICE.a.tunnel, timeoutMs: 3_000 }),
        await tcpProbe(host('c'), ip.ctrb, 9001, { source: SLICE.c.tunnel, timeoutMs: 3_000 }),
      ];
      // THEN
      for (const p of probes) expect(p).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect([db.connections, boards.connections, auth.connections]).toEqual([[], [], []]);
      expect(await dropped('b')).toBeGreaterThan(b0);
      expect(await dropped('c')).toBeGreaterThan(c0);
    } finally {
      await Promise.all([db.stop(), boards.stop(), auth.stop()]);
    }
  });

  it("needs the RETURN rule (iptables): without it a's masquerade hides the container behind a's tunnel address, which c's firewall does not let in", async () => {
    const listener = await listen(host('ctrc'), ip.ctrc, BOARDS_HTTP);
    try {
      await host('a').exec(['iptables', '-t', 'nat', '-D', 'POSTROUTING', '-s', SLICE.a.slice, '-o', 'wg0', '-j', 'RETURN'], { reject: true });
      const c0 = await dropped('c');
      const masked = await tcpProbe(host('ctra'), ip.ctrc, BOARDS_HTTP, { timeoutMs: 3_000 });
      expect(masked).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect(await dropped('c')).toBeGreaterThan(c0);
      expect(listener.connections).toEqual([]);
    } finally {
      await rerunHooks('a');
    }
    try {
      const real = await tcpProbe(host('ctra'), ip.ctrc, BOARDS_HTTP, { timeoutMs: 8_000 });
      expect(real).toMatchObject({ ok: true, seenSource: ip.ctra });
    } finally {
      await listener.stop();
    }
  });

  it("needs the source NAT rule (nftables): without it netavark's masquerade hides the container behind c's tunnel address, which b's firewall does not let in", async () => {
    const listener = await listen(host('ctrb'), ip.ctrb, MTLS);
    try {
      await host('c').exec(['nft', `flush chain ${NFT_TABLE} postrouting`], { reject: true });
      const b0 = await dropped('b');
      const masked = await tcpProbe(host('ctrc'), ip.ctrb, MTLS, { timeoutMs: 3_000 });
      expect(masked).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect(await dropped('b')).toBeGreaterThan(b0);
      expect(listener.connections).toEqual([]);
    } finally {
      await rerunHooks('c');
    }
    try {
      const real = await tcpProbe(host('ctrc'), ip.ctrb, MTLS, { timeoutMs: 8_000 });
      expect(real).toMatchObject({ ok: true, seenSource: ip.ctrc });
    } finally {
      await listener.stop();
    }
  });

  it("carries TLS with the stack's certificates: a's container verifies boards' server certificate against the stack CA", async () => {
    const listener = await listen(host('ctrc'), ip.ctrc, MTLS, { tls: { cert: pki('boards', 'server.crt'), key: pki('boards', 'server.key') } });
    try {
      const probe = await tcpProbe(host('ctra'), ip.ctrc, MTLS, { tls: { ca: pki('api', 'ca.crt') }, timeoutMs: 8_000 });
      expect(probe).toMatchObject({ ok: true, seenSource: ip.ctra, authorized: true });
    } finally {
      await listener.stop();
    }
  });

  it("carries mutual TLS (openssl s_server requiring a client certificate, s_client with api's)", async () => {
    // GIVEN an s_server in c's container that accepts one connection, only with a client certificate of the stack
    const server = host('ctrc').exec(
      ['timeout', '20', 'openssl', 's_server', '-accept', `${ip.ctrc}:${MTLS}`, '-naccept', '1', '-quiet', '-tls1_3',
        '-cert', pki('boards', 'server.crt'), '-key', pki('boards', 'server.key'),
        '-CAfile', pki('boards', 'ca.crt'), '-Verify', '2', '-verify_return_error'],
      { timeoutMs: 25_000 },
    );
    // WHEN a's container connects (retrying, bounded, until the server listens)
    let client = { stdout: '', stderr: '', exitCode: -1 };
    for (let i = 0; i < 40; i++) {
      client = await host('ctra').exec(
        ['openssl', 's_client', '-connect', `${ip.ctrc}:${MTLS}`, '-brief', '-tls1_3', '-verify_return_error', '-verify_ip', ip.ctrc,
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
    const late = new Promise<void>((resolve) => setTimeout(() => void listen(host('ctrc'), ip.ctrc, MTLS).then((l) => { listener = l; resolve(); }), 3_000));
    try {
      // WHEN host a runs it
      const started = Date.now();
      const r = await host('a').exec(waits[0]!, { timeoutMs: 30_000 });
      await late;
      // THEN it waited for the listener, then succeeded well within its 8 s
      expect(r.exitCode, r.stderr).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
      expect(r.stderr).toContain(`podmesh: waiting up to 8 s for boards on host c at ${ip.ctrc}:${MTLS} through the tunnel`);
      // ... and its connection came through the tunnel (from a's tunnel address, the host's own
      // traffic). The wait connects and closes without a reply, so the listener's report of it
      // may reach this process after the command has returned: wait for it, bounded.
      await waitFor(() => listener!.connections.length > 0, 3_000);
      expect(listener!.connections).toContain(SLICE.a.tunnel);
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
    expect(r.stderr).toContain(`podmesh: boards on host c (${ip.ctrc}:${MTLS}) did not accept connections within 8 s: check that the tunnel to host c is up and that boards runs there`);
    expect(took).toBeGreaterThanOrEqual(8_000);
    expect(took).toBeLessThan(8_000 + 5_000 + 2_000);
  });

  it("GIVEN c dropping the tunnel's packets WHEN the wait runs on host a THEN each attempt is cut short and it still fails within its bound", async () => {
    // GIVEN boards listening, but c dropping everything from the tunnel into its bridge (dropped, no refusal)
    const listener = await listen(host('ctrc'), ip.ctrc, MTLS);
    await host('c').exec(['nft', `insert rule ${NFT_TABLE} forward iifname "wg0" oifname "mesh0" drop`], { reject: true });
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
      await rerunHooks('c');
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
    const listener = await listen(host('ctrc'), ip.ctrc, MTLS);
    try {
      // WHEN a's container, behind a still on its old key, connects to c's
      const probe = await tcpProbe(host('ctra'), ip.ctrc, MTLS, { timeoutMs: 4_000 });
      // THEN no answer (c drops a's handshakes), and c's container never saw a connection
      expect(probe).toMatchObject({ ok: false, error: 'no answer within 4000 ms' });
      expect(listener.connections).toEqual([]);
      // AND (control) b's container, on the new configs, still reaches c's (auth calls boards)
      const fromB = await tcpProbe(host('ctrb'), ip.ctrc, MTLS, { timeoutMs: 8_000 });
      expect(fromB).toMatchObject({ ok: true, seenSource: ip.ctrb });
      // AND (control) once a gets its new key, it is back
      await wgDown(host('a'), confOf('a'));
      await wgUp(host('a'), deploy('a'));
      const again = await tcpProbe(host('ctra'), ip.ctrc, MTLS, { timeoutMs: 8_000 });
      expect(again).toMatchObject({ ok: true, seenSource: ip.ctra });
    } finally {
      await listener.stop();
    }
  });

  it('wg-quick down removes every firewall rule it added, and only those (iptables on b, nftables on c)', async () => {
    await wgDown(host('b'), confOf('b'));
    const left = await rules('b');
    expect(left).not.toContain('wg0');
    expect(left).not.toContain('PODMESH');
    expect(left).toContain(`-A POSTROUTING -s ${SLICE.b.slice} ! -d ${SLICE.b.slice} -j MASQUERADE`);
    await wgDown(host('c'), confOf('c'));
    const tables = (await host('c').exec(['nft', 'list', 'tables'], { reject: true })).stdout;
    expect(tables).not.toContain('podmesh');
    expect(tables).toContain('table inet netavark');
  });
});
