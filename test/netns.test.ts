// Self-test of the simulated-host harness (test/helpers/netns.ts): three hosts joined only by
// hand-written wg-quick configs carry a TCP connection between "container" addresses with the real
// source kept, stop doing so when a key no longer matches, and leave nothing behind.
import { execa } from 'execa';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addSliceAddress,
  createHosts,
  listen,
  netnsReady,
  sweepStale,
  tcpProbe,
  wgDown,
  wgUp,
  type ProcessInfo,
  type SimHost,
  type SimNetwork,
} from './helpers/netns.ts';
import { repoRoot, tool } from './helpers/tools.ts';

const ready = netnsReady();
const wg = tool('wg');
const wgQuick = tool('wg-quick');
const wireguardGo = tool('wireguard-go');
const openssl = tool('openssl');

interface Node {
  readonly name: string;
  readonly tunnelIp: string;
  readonly slice: string;
  readonly container: string;
}

const NODES: readonly Node[] = [
  { name: 'a', tunnelIp: '10.255.0.1', slice: '10.90.0.0/26', container: '10.90.0.10' },
  { name: 'b', tunnelIp: '10.255.0.2', slice: '10.90.0.64/26', container: '10.90.0.70' },
  { name: 'c', tunnelIp: '10.255.0.3', slice: '10.90.0.128/26', container: '10.90.0.130' },
];
const PORT = 7000;

function node(name: string): Node {
  const n = NODES.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name}`);
  return n;
}

async function wgTool(args: string[], input?: string): Promise<string> {
  const r = await execa(wg ?? 'wg', args, { input: input ?? '', timeout: 10_000 });
  return String(r.stdout).trim();
}

/** A fresh key pair; the private key in a 0600 file, as wg-quick's PostUp will load it. */
async function newKey(dir: string, name: string): Promise<{ file: string; publicKey: string }> {
  const privateKey = await wgTool(['genkey']);
  const file = join(dir, `${name}.key`);
  writeFileSync(file, `${privateKey}\n`, { mode: 0o600 });
  return { file, publicKey: await wgTool(['pubkey'], privateKey) };
}

function wgQuickConfig(self: Node, keyFile: string, peers: ReadonlyArray<{ node: Node; publicKey: string; endpoint: string }>): string {
  const lines = [
    '[Interface]',
    `Address = ${self.tunnelIp}/24`,
    'ListenPort = 51820',
    `PostUp = wg set %i private-key ${keyFile}`,
  ];
  for (const p of peers) {
    lines.push(
      '',
      '[Peer]',
      `PublicKey = ${p.publicKey}`,
      `Endpoint = ${p.endpoint}:51820`,
      `AllowedIPs = ${p.node.tunnelIp}/32, ${p.node.slice}`,
      'PersistentKeepalive = 25',
    );
  }
  return `${lines.join('\n')}\n`;
}

describe.skipIf(!ready || !wg || !wgQuick || !wireguardGo || !openssl)('simulated hosts joined by WireGuard', () => {
  let net: SimNetwork;
  let rootLinksBefore: string[];
  const keys = new Map<string, { file: string; publicKey: string }>();
  const configs = new Map<string, string>();
  const host = (name: string): SimHost => net.host(name);

  const writeConfig = (name: string): string => {
    const self = node(name);
    const key = keys.get(name);
    if (!key) throw new Error(`no key for ${name}`);
    const peers = NODES.filter((n) => n.name !== name).map((n) => ({
      node: n,
      publicKey: keys.get(n.name)?.publicKey ?? '',
      endpoint: host(n.name).underlayIp,
    }));
    const file = join(net.workDir, name, 'wg0.conf');
    writeFileSync(file, wgQuickConfig(self, key.file, peers), { mode: 0o600 });
    chmodSync(file, 0o600);
    configs.set(name, file);
    return file;
  };

  beforeAll(async () => {
    rootLinksBefore = await rootLinks();
    net = await createHosts(NODES.map((n) => n.name));
    for (const n of NODES) {
      const dir = join(net.workDir, n.name);
      mkdirSync(dir, { mode: 0o700 });
      keys.set(n.name, await newKey(dir, 'private'));
    }
    for (const n of NODES) writeConfig(n.name);
  });

  afterAll(async () => {
    await net?.teardown();
  });

  it('creates isolated hosts on one underlay, without touching the machine', async () => {
    // THEN nothing appeared in the machine's own network namespace
    expect(await rootLinks()).toEqual(rootLinksBefore);
    for (const h of net.hosts) {
      // no default route: a host can reach nothing but the underlay and what it adds itself
      const routes = await h.exec(['ip', '-4', 'route', 'show'], { reject: true });
      expect(routes.stdout.trim()).toBe(`198.51.100.0/24 dev eth0 proto kernel scope link src ${h.underlayIp}`);
      const forward = await h.exec(['cat', '/proc/sys/net/ipv4/ip_forward'], { reject: true });
      expect(forward.stdout.trim()).toBe('1');
    }
    // each with its own tmpfs on /run/wireguard, so each can have a wg0
    const devices = new Set<string>();
    for (const h of net.hosts) {
      const mounts = await h.exec(['cat', '/proc/self/mountinfo'], { reject: true });
      const line = mounts.stdout.split('\n').find((l) => l.split(' ')[4] === '/run/wireguard');
      expect(line).toMatch(/ - tmpfs /);
      devices.add(line?.split(' ')[2] ?? '');
    }
    expect(devices.size).toBe(3);
    expect(net.hosts.map((h) => h.underlayIp)).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3']);

    // AND the underlay connects them
    const listener = await listen(host('b'), host('b').underlayIp, PORT);
    const probe = await tcpProbe(host('a'), host('b').underlayIp, PORT);
    await listener.stop();
    expect(probe).toMatchObject({ ok: true, seenSource: host('a').underlayIp });
  });

  it('writes configs that wg-quick strip parses', async () => {
    for (const n of NODES) {
      const r = await execa(wgQuick ?? 'wg-quick', ['strip', configs.get(n.name) ?? ''], { timeout: 10_000 });
      expect(r.stdout).toContain('ListenPort = 51820');
      expect(r.stdout).not.toContain('Address');
      expect(r.stdout.match(/\[Peer\]/g)).toHaveLength(2);
    }
  });

  it('carries TCP from a container address on a to one on c, keeping the real source', async () => {
    // GIVEN every host up with its own wg0 and a container address in its slice
    for (const n of NODES) {
      await wgUp(host(n.name), configs.get(n.name) ?? '');
      await addSliceAddress(host(n.name), `${n.container}/26`);
    }
    for (const n of NODES) {
      const pub = await host(n.name).exec(['wg', 'show', 'wg0', 'public-key'], { reject: true });
      expect(pub.stdout.trim()).toBe(keys.get(n.name)?.publicKey);
    }
    const listener = await listen(host('c'), node('c').container, PORT);

    // WHEN a connects from its container address
    const probe = await tcpProbe(host('a'), node('c').container, PORT, { source: node('a').container, timeoutMs: 5_000 });

    // THEN c's listener saw 10.90.0.10, not a tunnel or underlay address
    expect(probe).toMatchObject({ ok: true, seenSource: '10.90.0.10', localAddress: '10.90.0.10' });
    expect(listener.connections).toEqual(['10.90.0.10']);

    // AND b's container reaches c too
    const fromB = await tcpProbe(host('b'), node('c').container, PORT, { source: node('b').container, timeoutMs: 5_000 });
    expect(fromB).toMatchObject({ ok: true, seenSource: '10.90.0.70' });
    await listener.stop();
  });

  it('carries TLS over the tunnel with a certificate for the container address', async () => {
    // GIVEN a TLS echo server on c with a certificate for IP 10.90.0.130
    const dir = join(net.workDir, 'c');
    const cert = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    await execa(openssl ?? 'openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=c', '-addext', `subjectAltName=IP:${node('c').container}`, '-keyout', key, '-out', cert,
    ], { timeout: 10_000 });
    const listener = await listen(host('c'), node('c').container, PORT + 1, { tls: { cert, key } });

    // WHEN a connects and verifies it
    const probe = await tcpProbe(host('a'), node('c').container, PORT + 1, {
      source: node('a').container,
      tls: { ca: cert },
      timeoutMs: 5_000,
    });
    await listener.stop();

    // THEN
    expect(probe).toMatchObject({ ok: true, seenSource: '10.90.0.10', authorized: true });
  });

  it("cuts a off from c once c's key changes, until a learns the new key", async () => {
    // GIVEN c restarted with a new key that a's peer entry does not know
    const listener = await listen(host('c'), node('c').container, PORT);
    const oldKey = keys.get('c')?.publicKey ?? '';
    const cDir = join(net.workDir, 'c');
    keys.set('c', await newKey(cDir, 'private-rotated'));
    await wgDown(host('c'), configs.get('c') ?? '');
    await wgUp(host('c'), writeConfig('c'));

    // WHEN a connects
    const probe = await tcpProbe(host('a'), node('c').container, PORT, { source: node('a').container, timeoutMs: 3_000 });

    // THEN it gets no answer (a timeout, not a local error such as a missing route)
    expect(probe).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
    expect(listener.connections).toEqual([]);

    // AND (control) giving a the new key restores the path, so the key alone was the cause
    const c = node('c');
    await host('a').exec(['wg', 'set', 'wg0', 'peer', oldKey, 'remove'], { reject: true });
    await host('a').exec(
      ['wg', 'set', 'wg0', 'peer', keys.get('c')?.publicKey ?? '', 'endpoint', `${host('c').underlayIp}:51820`,
        'allowed-ips', `${c.tunnelIp}/32,${c.slice}`, 'persistent-keepalive', '25'],
      { reject: true },
    );
    const again = await tcpProbe(host('a'), c.container, PORT, { source: node('a').container, timeoutMs: 5_000 });
    expect(again).toMatchObject({ ok: true, seenSource: '10.90.0.10' });
    await listener.stop();
  });

  it('tears down every namespace, wireguard-go process and mount it made', async () => {
    // GIVEN three wireguard-go daemons running in the hosts
    const before: ProcessInfo[] = net.processes();
    expect(before.filter((p) => p.comm === 'wireguard-go')).toHaveLength(3);

    // WHEN
    await net.teardown();

    // THEN
    expect(net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    const alive = await livePids();
    expect(before.filter((p) => alive.has(p.pid))).toEqual([]);
    expect(readdirSync('/run/netns').filter((n) => n.includes(net.runId))).toEqual([]);
    expect(await rootLinks()).toEqual(rootLinksBefore);
  });
});

describe.skipIf(!ready)('leftovers of a crashed run', () => {
  it('are swept: processes killed, namespaces, mounts and folders removed', async () => {
    // GIVEN a run killed with SIGKILL while its echo server runs inside its host
    const child = await execa(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/fixtures/netns/crashed-run.ts')], {
      cwd: repoRoot,
      reject: false,
      timeout: 30_000,
    });
    const { runId, workDir } = JSON.parse(String(child.stdout).trim()) as { runId: string; workDir: string };
    const netns = `pmns${runId}-x`;
    const pids = (await execa('ip', ['netns', 'pids', netns], { timeout: 10_000 })).stdout.split('\n').map(Number);
    expect(pids.length).toBeGreaterThan(0);

    // WHEN
    const removed = await sweepStale();

    // THEN
    expect(removed).toEqual(
      expect.arrayContaining([`netns ${netns}`, `netns pmns${runId}_switch`, `dir ${workDir}`, `dir /run/podmesh-netns-test/${runId}`]),
    );
    expect(readdirSync('/run/netns').filter((n) => n.includes(runId))).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(runId);
    const alive = await livePids();
    expect(pids.filter((p) => alive.has(p))).toEqual([]);
  });
});

/** Interface names of the machine's own network namespace. */
async function rootLinks(): Promise<string[]> {
  const r = await execa('ip', ['-o', 'link', 'show'], { timeout: 10_000 });
  return String(r.stdout)
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
    .filter(Boolean)
    .sort();
}

/** Pids of processes that are alive (zombies waiting for PID 1 do not count). */
async function livePids(): Promise<Set<number>> {
  const r = await execa('ps', ['-eo', 'pid=,stat='], { timeout: 10_000 });
  return new Set(
    String(r.stdout)
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, stat]) => stat !== undefined && !stat.startsWith('Z'))
      .map(([pid]) => Number(pid)),
  );
}
