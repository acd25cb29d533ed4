// The generated WireGuard mesh for real: three simulated hosts (network namespaces, see
// test/helpers/netns.ts) run exactly the configs synth wrote, with the keys from the state folder
// installed where the PostUp hooks read them, and carry TCP and mTLS between container slices.
// After `podmesh wireguard rotate --host a`, deployed to b and c only, a is locked out.
import { execa } from 'execa';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presharedKeyFile } from '../../constructs/wireguard/index.ts';
import { addSliceAddress, createHosts, listen, netnsReady, tcpProbe, wgDown, wgUp, type SimHost, type SimNetwork } from '../helpers/netns.ts';
import { tempDir } from '../helpers/stacks.ts';
import { repoRoot, tool } from '../helpers/tools.ts';
import { underlayIp } from './stacks.ts';

const ready = netnsReady();
const tools = { wg: tool('wg'), wgQuick: tool('wg-quick'), wireguardGo: tool('wireguard-go'), iptables: tool('iptables'), openssl: tool('openssl') };
const bin = join(repoRoot, 'bin/podmesh.mjs');

const STACK = `import { meshStack } from '${repoRoot}/test/wireguard/stacks.ts';
export default (app) => { meshStack('tun', app, { presharedKeys: true }); };
`;
/** Where the generated configs expect their files on a real host. */
const INSTALLED = '/etc/podmesh/tun/wireguard';
const HOSTS = ['a', 'b', 'c'] as const;
type HostName = (typeof HOSTS)[number];
/** The "container" address of each host: its service's address in its slice (from the lock). */
const CONTAINER: Record<HostName, { ip: string; cidr: string; slice: string }> = {
  a: { ip: '10.90.0.2', cidr: '10.90.0.2/26', slice: '10.90.0.0/26' },
  b: { ip: '10.90.0.66', cidr: '10.90.0.66/26', slice: '10.90.0.64/26' },
  c: { ip: '10.90.0.130', cidr: '10.90.0.130/26', slice: '10.90.0.128/26' },
};

describe.skipIf(!ready || Object.values(tools).some((t) => !t))('the generated WireGuard mesh between simulated hosts', () => {
  const dir = tempDir('podmesh-wg-tunnel-');
  const cwd = dir.path;
  const state = join(cwd, 'state');
  const pki = (service: string, file: string) => join(state, 'tun/pki/services', service, file);
  let net: SimNetwork;
  const host = (h: HostName): SimHost => net.host(h);
  const podmesh = async (...args: string[]) => {
    const r = await execa('node', [bin, ...args, '--state', state], { cwd, reject: false, timeout: 60_000 });
    expect(r.exitCode, `podmesh ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
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
    writeFileSync(join(target, 'wg0.conf'), conf.replaceAll(INSTALLED, target), { mode: 0o600 });
    return join(target, 'wg0.conf');
  };

  beforeAll(async () => {
    mkdirSync(join(cwd, 'stacks'));
    writeFileSync(join(cwd, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(cwd, 'stacks/tun.ts'), STACK);
    await podmesh('synth');
    net = await createHosts(HOSTS);
    for (const [i, h] of HOSTS.entries()) {
      // the stack's endpoints are the harness's underlay addresses
      expect(host(h).underlayIp).toBe(underlayIp(i));
      await wgUp(host(h), deploy(h));
      await addSliceAddress(host(h), CONTAINER[h].cidr, 'mesh0');
    }
  });

  afterAll(async () => {
    await net?.teardown();
    dir.cleanup();
  });

  it('brings up wg0 on every host with the key of the lock and the forwarding rules of its slice', async () => {
    const lock = JSON.parse(readFileSync(join(cwd, 'out/tun/podmesh.lock.json'), 'utf8')) as { wireguard: { hosts: Record<string, { publicKey: string }> } };
    for (const h of HOSTS) {
      const show = await host(h).exec(['wg', 'show', 'wg0', 'dump'], { reject: true });
      const [self, ...peers] = show.stdout.trim().split('\n').map((l) => l.split('\t'));
      expect(self![1]).toBe(lock.wireguard.hosts[h]!.publicKey);
      // every peer with its preshared key set by PostUp (wg prints "(none)" otherwise)
      expect(peers.map((p) => p[0]).sort()).toEqual(HOSTS.filter((x) => x !== h).map((x) => lock.wireguard.hosts[x]!.publicKey).sort());
      for (const p of peers) expect(p[1]).not.toBe('(none)');
      const forward = (await host(h).exec(['iptables', '-S', 'FORWARD'], { reject: true })).stdout;
      expect(forward).toContain(`-A FORWARD -d ${CONTAINER[h].slice} -i wg0 -o mesh0 -j ACCEPT`);
      expect(forward).toContain(`-A FORWARD -s ${CONTAINER[h].slice} -i mesh0 -o wg0 -j ACCEPT`);
      const nat = (await host(h).exec(['iptables', '-t', 'nat', '-S', 'POSTROUTING'], { reject: true })).stdout;
      expect(nat.split('\n').filter((l) => l.includes('wg0'))).toEqual([`-A POSTROUTING -s ${CONTAINER[h].slice} -o wg0 -j RETURN`]);
    }
  });

  it('adds no second copy of a rule when the PostUp hooks run again', async () => {
    const conf = readFileSync(join(net.workDir, 'a', 'wireguard/wg0.conf'), 'utf8');
    const hooks = conf.split('\n').filter((l) => l.startsWith('PostUp = iptables')).map((l) => l.slice('PostUp = '.length).replaceAll('%i', 'wg0'));
    expect(hooks).toHaveLength(3);
    const rules = async () => (await host('a').exec(['sh', '-c', 'iptables -S FORWARD; iptables -t nat -S POSTROUTING'], { reject: true })).stdout;
    const before = await rules();
    for (const hook of hooks) await host('a').exec(['sh', '-c', hook], { reject: true });
    expect(await rules()).toBe(before);
  });

  it("carries TCP from a's container address to c's, keeping the real source address", async () => {
    const listener = await listen(host('c'), CONTAINER.c.ip, 7000);
    try {
      const probe = await tcpProbe(host('a'), CONTAINER.c.ip, 7000, { source: CONTAINER.a.ip, timeoutMs: 8_000 });
      expect(probe).toMatchObject({ ok: true, seenSource: CONTAINER.a.ip, localAddress: CONTAINER.a.ip });
      expect(listener.connections).toEqual([CONTAINER.a.ip]);
    } finally {
      await listener.stop();
    }
  });

  it("carries TLS with the stack's certificates: a verifies c's server certificate against the stack CA", async () => {
    const listener = await listen(host('c'), CONTAINER.c.ip, 8443, { tls: { cert: pki('boards', 'server.crt'), key: pki('boards', 'server.key') } });
    try {
      const probe = await tcpProbe(host('a'), CONTAINER.c.ip, 8443, { source: CONTAINER.a.ip, tls: { ca: pki('api', 'ca.crt') }, timeoutMs: 8_000 });
      expect(probe).toMatchObject({ ok: true, seenSource: CONTAINER.a.ip, authorized: true });
    } finally {
      await listener.stop();
    }
  });

  it('carries mutual TLS (openssl s_server requiring a client certificate, s_client with api\'s client certificate)', async () => {
    // GIVEN an s_server on c that accepts one connection, only with a client certificate of the stack
    const server = host('c').exec(
      ['timeout', '20', 'openssl', 's_server', '-accept', `${CONTAINER.c.ip}:8444`, '-naccept', '1', '-quiet', '-tls1_3',
        '-cert', pki('boards', 'server.crt'), '-key', pki('boards', 'server.key'),
        '-CAfile', pki('boards', 'ca.crt'), '-Verify', '2', '-verify_return_error'],
      { timeoutMs: 25_000 },
    );
    // WHEN a connects (retrying, bounded, until the server listens)
    let client = { stdout: '', stderr: '', exitCode: -1 };
    for (let i = 0; i < 40 && client.exitCode !== 0; i++) {
      client = await host('a').exec(
        ['openssl', 's_client', '-connect', `${CONTAINER.c.ip}:8444`, '-brief', '-tls1_3', '-verify_return_error', '-verify_ip', CONTAINER.c.ip,
          '-CAfile', pki('api', 'ca.crt'), '-cert', pki('api', 'client.crt'), '-cert_chain', pki('api', 'client.crt'), '-key', pki('api', 'client.key')],
        { input: 'ping\n', timeoutMs: 10_000 },
      );
      if (client.exitCode !== 0 && /Connection refused|connect:errno/.test(client.stderr)) await new Promise((r) => setTimeout(r, 250));
      else break;
    }
    const served = await server;
    // THEN a verified c's server certificate, and c verified a's client certificate up to the root
    expect(client.exitCode, client.stderr).toBe(0);
    expect(client.stderr).toContain('Verification: OK');
    expect(client.stderr).toContain('Peer certificate: CN = boards.tun.local');
    expect(served.exitCode, served.stderr).toBe(0);
    expect(served.stderr).toContain('depth=2 CN = tun-ca\nverify return:1\ndepth=1 CN = tun.local\nverify return:1\ndepth=0 CN = api.tun.local\nverify return:1');
  });

  it('after `podmesh wireguard rotate --host a`, deployed to b and c only, a can no longer connect', async () => {
    // GIVEN
    const r = await podmesh('wireguard', 'rotate', '--host', 'a');
    expect(r.stdout).toContain('tun: WireGuard keys: rotated for a');
    for (const h of ['b', 'c'] as const) {
      await wgDown(host(h), join(net.workDir, h, 'wireguard/wg0.conf'));
      await wgUp(host(h), deploy(h));
    }
    const listener = await listen(host('c'), CONTAINER.c.ip, 7001);
    try {
      // WHEN a, still on its old key, connects to c
      const probe = await tcpProbe(host('a'), CONTAINER.c.ip, 7001, { source: CONTAINER.a.ip, timeoutMs: 4_000 });
      // THEN no answer (c drops a's handshakes), and c never saw a connection
      expect(probe).toMatchObject({ ok: false, error: 'no answer within 4000 ms' });
      expect(listener.connections).toEqual([]);
      // AND (control) b, on the new configs, still reaches c
      const fromB = await tcpProbe(host('b'), CONTAINER.c.ip, 7001, { source: CONTAINER.b.ip, timeoutMs: 8_000 });
      expect(fromB).toMatchObject({ ok: true, seenSource: CONTAINER.b.ip });
      // AND (control) once a gets its new key, it is back
      await wgDown(host('a'), join(net.workDir, 'a', 'wireguard/wg0.conf'));
      await wgUp(host('a'), deploy('a'));
      const again = await tcpProbe(host('a'), CONTAINER.c.ip, 7001, { source: CONTAINER.a.ip, timeoutMs: 8_000 });
      expect(again).toMatchObject({ ok: true, seenSource: CONTAINER.a.ip });
    } finally {
      await listener.stop();
    }
  });

  it('wg-quick down removes every forwarding rule it added', async () => {
    await wgDown(host('b'), join(net.workDir, 'b', 'wireguard/wg0.conf'));
    const rules = (await host('b').exec(['sh', '-c', 'iptables -S FORWARD; iptables -t nat -S POSTROUTING'], { reject: true })).stdout;
    expect(rules).not.toContain('wg0');
    expect(rules).not.toContain('mesh0');
  });
});
