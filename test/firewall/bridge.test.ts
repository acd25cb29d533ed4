// The container firewall on one host, for real: a simulated rootful host (a network namespace, see
// test/helpers/netns.ts) with the stack's bridge and veth "containers" at the addresses of the
// lock loads exactly the bridge.nft synth wrote, the way its unit's ExecStart does. api depends on
// db (PostgreSQL); web calls api (and depends on it). web is no dependent of db: it cannot reach
// PostgreSQL; api can. The host's own traffic (DNS at the gateway, published ports, health checks
// run inside the containers) is routed, not bridged, and passes.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSliceAddress, createHosts, listen, netnsReady, tcpProbe, type SimHost, type SimNetwork } from '../helpers/netns.ts';
import { miniStack, podmeshProject, svc, tempDir } from '../helpers/stacks.ts';
import { repoRoot, tool } from '../helpers/tools.ts';
import { App, Host, Stack, resolveStack, type HostProps } from '../../src/index.ts';
import { renderBridgeFirewall } from '../../src/render/bridge-firewall.ts';
import { propIssues } from '../../constructs/core/props.ts';

const ready = netnsReady();
const tools = { nft: tool('nft') };
const analyze = tool('systemd-analyze');

describe('the container firewall files', () => {
  it('GIVEN a rootless single host WHEN rendered THEN no firewall files (its bridge is in the rootless network namespace)', () => {
    const m = miniStack('fwr');
    svc(m.stack, 'api');
    expect([...renderBridgeFirewall(resolveStack(m.stack)).keys()]).toEqual([]);
  });

  it('GIVEN an unknown firewall WHEN the host is built THEN a problem naming the host, the value and the choices', () => {
    const h = new Host(new Stack(new App(), 'bad'), 'h', { firewall: 'pf' } as unknown as HostProps);
    const issues = propIssues(h);
    expect(issues.map((i) => i.path)).toEqual(['bad/h']);
    expect(issues[0]!.message).toMatch(/^firewall: .*"iptables".*"nftables"/);
    expect(new Host(new Stack(new App(), 'ok'), 'h').firewall).toBe('iptables');
  });
});

const bin = join(repoRoot, 'bin/podmesh.mjs');

const STACK = `import { Host, Network, Postgres, Service, Stack } from 'podmesh';
const svc = (stack, id, props) => new Service(stack, id, { image: \`localhost/test/\${id}:1\`, ...props });
export default (app) => {
  const stack = new Stack(app, 'fw', { project: 'fw' });
  new Host(stack, 'local', { rootless: false });
  new Network(stack, 'mesh', { subnet: '10.90.0.0/24', gateway: '10.90.0.1', domain: 'fw.local', bridgeName: 'fw0' });
  const db = new Postgres(stack, 'db');
  const api = svc(stack, 'api', { dependsOn: [db], ports: { http: 9000 } });
  svc(stack, 'web', { dependsOn: [api], calls: [api], ports: { public: { port: 8080, publish: true } } });
};
`;
const TABLE = 'bridge podmesh_fw';
const CONTAINERS = ['api', 'web', 'db'] as const;
type Ctr = (typeof CONTAINERS)[number];
const GATEWAY = '10.90.0.1';

describe.skipIf(!ready || Object.values(tools).some((t) => !t))("the generated container firewall on a host's bridge", () => {
  const dir = tempDir('podmesh-bridge-fw-');
  const cwd = dir.path;
  let net: SimNetwork;
  const ip = {} as Record<Ctr, string>;
  const host = (h: 'h' | Ctr): SimHost => net.host(h);
  const out = (file: string) => join(cwd, 'out/fw/hosts/local', file);
  /** The unit's ExecStart and ExecStop, with the installed path pointing at the generated file. */
  const unitCommand = (key: 'ExecStart' | 'ExecStop'): string[] => {
    const unit = readFileSync(out('systemd/podmesh-fw-firewall.service'), 'utf8');
    const line = unit.split('\n').find((l) => l.startsWith(`${key}=`))!;
    return line.slice(key.length + 1).replace('/etc/podmesh/fw/firewall/bridge.nft', out('firewall/bridge.nft')).split(' ');
  };
  const table = async () => (await host('h').exec(['nft', 'list', 'table', ...TABLE.split(' ')], { reject: true })).stdout;
  const dropped = async () => Number(/counter packets (\d+) bytes \d+ drop/.exec(await table())![1]);

  beforeAll(async () => {
    mkdirSync(join(cwd, 'stacks'));
    podmeshProject(cwd);
    writeFileSync(join(cwd, 'stacks/fw.ts'), STACK);
    const r = await execa('node', [bin, 'synth', '--state', join(cwd, 'state')], { cwd, reject: false, timeout: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const lock = JSON.parse(readFileSync(join(cwd, 'out/fw/podmesh.lock.json'), 'utf8')) as { networks: { mesh: { addresses: Record<string, string> } } };
    for (const c of CONTAINERS) ip[c] = lock.networks.mesh.addresses[c]!;
    net = await createHosts(['h', ...CONTAINERS]);
    await addSliceAddress(host('h'), `${GATEWAY}/24`, 'fw0');
    for (const c of CONTAINERS) {
      await execa('ip', ['-n', host(c).netns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', `v-${c}`, 'netns', host('h').netns], { timeout: 10_000 });
      await execa('ip', ['-n', host('h').netns, 'link', 'set', `v-${c}`, 'master', 'fw0', 'up'], { timeout: 10_000 });
      await host(c).exec(['sh', '-c', `ip addr add ${ip[c]}/24 dev eth1 && ip link set eth1 up && ip route add default via ${GATEWAY}`], { reject: true });
    }
    // WHEN the host runs the unit's ExecStart
    await host('h').exec(unitCommand('ExecStart'), { reject: true });
  });

  afterAll(async () => {
    await net?.teardown();
    dir.cleanup();
  });

  it('loads one bridge table with the declared flows of the bridge and a drop for everything else', async () => {
    const t = await table();
    expect(t).toContain(`ip saddr ${ip.api} ip daddr ${ip.db} tcp dport 5432 accept`);
    expect(t).toContain(`ip saddr ${ip.db} ip daddr ${ip.api} tcp sport 5432 tcp flags != syn / syn,ack accept`);
    expect(t).toContain(`ip saddr ${ip.web} ip daddr ${ip.api} tcp dport 8443 accept`);
    expect(t).not.toContain(`ip saddr ${ip.web} ip daddr ${ip.db}`);
    expect(t).toMatch(/ip saddr 10\.90\.0\.0\/24 ip daddr 10\.90\.0\.0\/24 counter packets 0 bytes 0 drop/);
  });

  it('lets a dependent reach PostgreSQL with its own address', async () => {
    const db = await listen(host('db'), ip.db, 5432);
    try {
      const probe = await tcpProbe(host('api'), ip.db, 5432, { timeoutMs: 5_000 });
      expect(probe).toMatchObject({ ok: true, seenSource: ip.api });
    } finally {
      await db.stop();
    }
  });

  it('drops a container that is not a dependent: web cannot reach PostgreSQL', async () => {
    const db = await listen(host('db'), ip.db, 5432);
    try {
      const before = await dropped();
      const probe = await tcpProbe(host('web'), ip.db, 5432, { timeoutMs: 3_000 });
      expect(probe).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect(db.connections).toEqual([]);
      expect(await dropped()).toBeGreaterThan(before);
    } finally {
      await db.stop();
    }
  });

  it('lets a caller reach its callee, and nobody the other way round', async () => {
    const api = await listen(host('api'), ip.api, 8443);
    const web = await listen(host('web'), ip.web, 8443);
    try {
      expect(await tcpProbe(host('web'), ip.api, 8443, { timeoutMs: 5_000 })).toMatchObject({ ok: true, seenSource: ip.web });
      expect(await tcpProbe(host('api'), ip.web, 8443, { timeoutMs: 3_000 })).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect(await tcpProbe(host('db'), ip.api, 8443, { timeoutMs: 3_000 })).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect(web.connections).toEqual([]);
    } finally {
      await Promise.all([api.stop(), web.stop()]);
    }
  });

  it("does not let a callee open a connection from its own port: the reply rule takes no bare SYN (db from 5432 to api's 8443)", async () => {
    const api = await listen(host('api'), ip.api, 8443);
    try {
      const before = await dropped();
      const probe = await tcpProbe(host('db'), ip.api, 8443, { sourcePort: 5432, timeoutMs: 3_000 });
      expect(probe).toMatchObject({ ok: false, error: 'no answer within 3000 ms' });
      expect(api.connections).toEqual([]);
      expect(await dropped()).toBeGreaterThan(before);
    } finally {
      await api.stop();
    }
  });

  it("leaves the host's own traffic to the containers alone (routed, not bridged: published ports, DNS replies)", async () => {
    const db = await listen(host('db'), ip.db, 5432);
    try {
      expect(await tcpProbe(host('h'), ip.db, 5432, { source: GATEWAY, timeoutMs: 5_000 })).toMatchObject({ ok: true, seenSource: GATEWAY });
    } finally {
      await db.stop();
    }
  });

  it.skipIf(!analyze)('systemd-analyze verify accepts the firewall unit', () => {
    const runtime = mkdtempSync(join(tmpdir(), 'podmesh-xdg-'));
    try {
      const unit = join(runtime, 'podmesh-fw-firewall.service');
      writeFileSync(unit, readFileSync(out('systemd/podmesh-fw-firewall.service')));
      writeFileSync(join(runtime, 'fw.target'), '[Unit]\nDescription=fw\n');
      const r = spawnSync(analyze!, ['verify', '--generators=false', unit, join(runtime, 'fw.target')], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: runtime }, timeout: 60_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(runtime, { recursive: true, force: true });
    }
  });

  it('replaces itself when loaded again, and the unit\'s ExecStop removes it', async () => {
    const before = (await table()).replace(/counter packets \d+ bytes \d+/g, 'counter');
    await host('h').exec(unitCommand('ExecStart'), { reject: true });
    expect((await table()).replace(/counter packets \d+ bytes \d+/g, 'counter')).toBe(before);
    await host('h').exec(unitCommand('ExecStop'), { reject: true });
    const tables = (await host('h').exec(['nft', 'list', 'tables'], { reject: true })).stdout;
    expect(tables).not.toContain('podmesh_fw');
    // and without it, web reaches PostgreSQL again: the table was what stopped it
    const db = await listen(host('db'), ip.db, 5432);
    try {
      expect(await tcpProbe(host('web'), ip.db, 5432, { timeoutMs: 5_000 })).toMatchObject({ ok: true, seenSource: ip.web });
    } finally {
      await db.stop();
    }
  });
});
