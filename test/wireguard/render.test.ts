// The wg-quick configs and the tunnel unit: exact values that matter, whole-file snapshots, and the
// real parsers (`wg-quick strip`, `systemd-analyze verify`) over every generated file.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, Host, Network, Stack, synth, type ResolvedStack } from '../../src/index.ts';
import { contents } from '../../src/render/stack.ts';
import { renderWireguard as renderFiles } from '../../src/render/wireguard.ts';
import { resolveStack } from '../../src/resolve/resolve.ts';
import { withPublicKeys } from '../../src/state/wireguard/index.ts';
import { svc, tempDir } from '../helpers/stacks.ts';
import { tool } from '../helpers/tools.ts';
import { meshStack } from './stacks.ts';

/** The rendered texts by path (the install metadata is tested with apply). */
const renderWireguard = (stack: ResolvedStack) => contents(renderFiles(stack).files);

const wgQuick = tool('wg-quick');
const analyze = tool('systemd-analyze');

/** Fixed public keys (not secret), so the snapshots do not depend on random keys. */
const KEYS = {
  a: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA=',
  b: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA=',
  c: 'ccccccccccccccccccccccccccccccccccccccccccA=',
} as const;

function resolved(m: ReturnType<typeof meshStack>): ResolvedStack {
  return withPublicKeys(resolveStack(m.stack), KEYS);
}

describe('renderWireguard', () => {
  it('GIVEN a three-host stack WHEN rendered THEN each host gets a config and a unit, nothing else', () => {
    const files = renderWireguard(resolved(meshStack()));
    expect([...files.keys()].sort()).toEqual([
      'hosts/a/systemd/podmesh-mesh-wireguard.service',
      'hosts/a/wireguard/wg0.conf',
      'hosts/b/systemd/podmesh-mesh-wireguard.service',
      'hosts/b/wireguard/wg0.conf',
      'hosts/c/systemd/podmesh-mesh-wireguard.service',
      'hosts/c/wireguard/wg0.conf',
    ]);
  });

  it('GIVEN host b WHEN rendered THEN its interface, its key path and a full mesh of sorted peers with their slices', () => {
    const conf = renderWireguard(resolved(meshStack())).get('hosts/b/wireguard/wg0.conf')!;
    const [iface, ...peers] = conf.split('\n\n');
    expect(iface).toContain('[Interface]\nAddress = 10.255.0.2/24\nListenPort = 51820\n');
    expect(iface).toContain('PostUp = wg set %i private-key /etc/podmesh/mesh/wireguard/private.key\n');
    expect(iface).not.toContain('MTU');
    expect(iface).not.toContain('preshared-key');
    expect(peers).toEqual([
      `[Peer]\n# a\nPublicKey = ${KEYS.a}\nEndpoint = 198.51.100.1:51820\nAllowedIPs = 10.255.0.1/32, 10.90.0.0/26\nPersistentKeepalive = 25`,
      `[Peer]\n# c\nPublicKey = ${KEYS.c}\nEndpoint = 198.51.100.3:51820\nAllowedIPs = 10.255.0.3/32, 10.90.0.128/26\nPersistentKeepalive = 25\n`,
    ]);
  });

  it('GIVEN host b without flows WHEN rendered THEN iptables hooks for its own slice only: replies, drops, the RETURN; all removed on down', () => {
    const conf = renderWireguard(resolved(meshStack())).get('hosts/b/wireguard/wg0.conf')!;
    const rules = conf.split('\n').filter((l) => l.startsWith('Post') && l.includes('iptables'));
    const allowed = (verdict: string) => [
      `-i %i -o mesh0 -d 10.90.0.64/26 -m conntrack --ctstate ESTABLISHED,RELATED -j ${verdict}`,
      `-i mesh0 -o %i -s 10.90.0.64/26 -m conntrack --ctstate ESTABLISHED,RELATED -j ${verdict}`,
    ];
    expect(rules).toEqual([
      'PostUp = iptables -N PODMESH-wg0 2>/dev/null || iptables -F PODMESH-wg0',
      ...allowed('ACCEPT').map((r) => `PostUp = iptables -A PODMESH-wg0 ${r}`),
      'PostUp = iptables -C FORWARD -i %i -j PODMESH-wg0 2>/dev/null || iptables -I FORWARD -i %i -j PODMESH-wg0',
      'PostUp = iptables -C FORWARD -o %i -j PODMESH-wg0 2>/dev/null || iptables -I FORWARD -o %i -j PODMESH-wg0',
      'PostUp = iptables -t mangle -N PODMESH-wg0 2>/dev/null || iptables -t mangle -F PODMESH-wg0',
      ...allowed('RETURN').map((r) => `PostUp = iptables -t mangle -A PODMESH-wg0 ${r}`),
      'PostUp = iptables -t mangle -A PODMESH-wg0 -i %i -o mesh0 -j DROP',
      'PostUp = iptables -t mangle -A PODMESH-wg0 -i mesh0 -o %i -j DROP',
      'PostUp = iptables -t mangle -C FORWARD -i %i -j PODMESH-wg0 2>/dev/null || iptables -t mangle -I FORWARD -i %i -j PODMESH-wg0',
      'PostUp = iptables -t mangle -C FORWARD -o %i -j PODMESH-wg0 2>/dev/null || iptables -t mangle -I FORWARD -o %i -j PODMESH-wg0',
      'PostUp = iptables -t nat -C POSTROUTING -s 10.90.0.64/26 -o %i -j RETURN 2>/dev/null || iptables -t nat -I POSTROUTING -s 10.90.0.64/26 -o %i -j RETURN',
      'PostDown = iptables -D FORWARD -i %i -j PODMESH-wg0 2>/dev/null || true',
      'PostDown = iptables -D FORWARD -o %i -j PODMESH-wg0 2>/dev/null || true',
      'PostDown = iptables -F PODMESH-wg0 2>/dev/null || true',
      'PostDown = iptables -X PODMESH-wg0 2>/dev/null || true',
      'PostDown = iptables -t mangle -D FORWARD -i %i -j PODMESH-wg0 2>/dev/null || true',
      'PostDown = iptables -t mangle -D FORWARD -o %i -j PODMESH-wg0 2>/dev/null || true',
      'PostDown = iptables -t mangle -F PODMESH-wg0 2>/dev/null || true',
      'PostDown = iptables -t mangle -X PODMESH-wg0 2>/dev/null || true',
      'PostDown = iptables -t nat -D POSTROUTING -s 10.90.0.64/26 -o %i -j RETURN 2>/dev/null || true',
    ]);
    // wg-quick cuts a line at "#": no hook may contain one
    expect(conf.split('\n').filter((l) => /^Post(Up|Down) = .*#/.test(l))).toEqual([]);
  });

  it('GIVEN api on a calling boards on c (nftables) WHEN rendered THEN a lets the call out, c lets it and a\'s wait in, in its own nft table', () => {
    // GIVEN
    const m = meshStack('mesh', new App(), {}, ['a', 'b', 'c'], { calls: ['boards'] }, { hosts: { c: { firewall: 'nftables' } } });
    // WHEN
    const files = renderWireguard(resolved(m));
    const a = files.get('hosts/a/wireguard/wg0.conf')!;
    const c = files.get('hosts/c/wireguard/wg0.conf')!;
    // THEN a (iptables): only api → boards:8443 leaves; nothing is let in
    expect(a.split('\n').filter((l) => l.includes('-A PODMESH-wg0') && !l.includes('ESTABLISHED') && !l.includes('DROP'))).toEqual([
      'PostUp = iptables -A PODMESH-wg0 -i mesh0 -o %i -s 10.90.0.2/32 -d 10.90.0.130/32 -p tcp --dport 8443 -j ACCEPT',
      'PostUp = iptables -t mangle -A PODMESH-wg0 -i mesh0 -o %i -s 10.90.0.2/32 -d 10.90.0.130/32 -p tcp --dport 8443 -j RETURN',
    ]);
    // AND c (nftables): the call and a's wait (from a's tunnel address) in, nothing out, its table dropped on down
    expect(c.split('\n').filter((l) => l.startsWith('PostUp = nft') || l.startsWith('PostDown'))).toEqual([
      "PostUp = nft 'add table inet podmesh_wg0'",
      "PostUp = nft 'flush table inet podmesh_wg0'",
      "PostUp = nft 'add chain inet podmesh_wg0 forward { type filter hook forward priority filter; policy accept; }'",
      "PostUp = nft 'add chain inet podmesh_wg0 postrouting { type nat hook postrouting priority srcnat - 1; policy accept; }'",
      'PostUp = nft \'add rule inet podmesh_wg0 forward iifname "%i" oifname "mesh0" ip daddr 10.90.0.128/26 ct state established,related accept\'',
      'PostUp = nft \'add rule inet podmesh_wg0 forward iifname "mesh0" oifname "%i" ip saddr 10.90.0.128/26 ct state established,related accept\'',
      'PostUp = nft \'add rule inet podmesh_wg0 forward iifname "%i" oifname "mesh0" ip saddr 10.90.0.2 ip daddr 10.90.0.130 tcp dport 8443 accept\'',
      'PostUp = nft \'add rule inet podmesh_wg0 forward iifname "%i" oifname "mesh0" ip saddr 10.255.0.1 ip daddr 10.90.0.130 tcp dport 8443 accept\'',
      'PostUp = nft \'add rule inet podmesh_wg0 forward iifname "%i" oifname "mesh0" counter drop\'',
      'PostUp = nft \'add rule inet podmesh_wg0 forward iifname "mesh0" oifname "%i" counter drop\'',
      'PostUp = nft \'add rule inet podmesh_wg0 postrouting ip saddr 10.90.0.128/26 oifname "%i" snat ip to ip saddr\'',
      "PostDown = nft 'delete table inet podmesh_wg0' 2>/dev/null || true",
    ]);
    expect(c).not.toContain('iptables');
  });

  it('GIVEN preshared keys, an MTU, no keepalive and another interface name WHEN rendered THEN each shows up', () => {
    const m = meshStack('mesh', new App(), { presharedKeys: true, mtu: 1380, persistentKeepalive: 0, interfaceName: 'pm-mesh' });
    const files = renderWireguard(resolved(m));
    const conf = files.get('hosts/a/wireguard/pm-mesh.conf')!;
    expect(conf).toContain('MTU = 1380\n');
    expect(conf).toContain(`PostUp = wg set %i peer ${KEYS.b} preshared-key /etc/podmesh/mesh/wireguard/psk/b.key\n`);
    expect(conf).toContain(`PostUp = wg set %i peer ${KEYS.c} preshared-key /etc/podmesh/mesh/wireguard/psk/c.key\n`);
    expect(conf).not.toContain('PersistentKeepalive');
    expect(files.get('hosts/a/systemd/podmesh-mesh-wireguard.service')).toContain('ExecStart=/usr/bin/wg-quick up /etc/podmesh/mesh/wireguard/pm-mesh.conf\n');
  });

  it('GIVEN two networks across the hosts WHEN rendered THEN a peer routes both of its slices and a host forwards both of its own', () => {
    const stack = new Stack(new App(), 'mesh');
    const [ha, hb, hc] = ['a', 'b', 'c'].map((h, i) => new Host(stack, h, { endpoint: `198.51.100.${i + 1}:51820` }));
    const mesh = new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'mesh.local', bridgeName: 'mesh0' });
    const admin = new Network(stack, 'admin', { subnet: '10.91.0.0/24', domain: 'admin.local', bridgeName: 'admin0' });
    svc(stack, 'api', { host: ha, network: mesh });
    svc(stack, 'auth', { host: hb, network: mesh });
    svc(stack, 'boards', { host: hc, network: mesh });
    svc(stack, 'console', { host: ha, network: admin });
    svc(stack, 'audit', { host: hc, network: admin });
    const files = renderWireguard(withPublicKeys(resolveStack(stack), KEYS));
    const a = files.get('hosts/a/wireguard/wg0.conf')!;
    expect(a).toContain('AllowedIPs = 10.255.0.3/32, 10.90.0.128/26, 10.91.0.128/25\n');
    expect(a).toContain('AllowedIPs = 10.255.0.2/32, 10.90.0.64/26\n');
    expect(a).toContain('-i %i -o admin0 -d 10.91.0.0/25 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT');
    expect(a).toContain('-i %i -o mesh0 -d 10.90.0.0/26 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT');
    expect(a).toContain('iptables -t mangle -A PODMESH-wg0 -i admin0 -o %i -j DROP');
    expect(a).toContain('iptables -t mangle -A PODMESH-wg0 -i mesh0 -o %i -j DROP');
  });

  it('GIVEN the same stack twice WHEN rendered THEN byte-identical, and the whole files match their snapshots', async () => {
    const one = renderWireguard(resolved(meshStack('mesh', new App(), { presharedKeys: true })));
    const two = renderWireguard(resolved(meshStack('mesh', new App(), { presharedKeys: true })));
    expect([...one]).toEqual([...two]);
    await expect(one.get('hosts/a/wireguard/wg0.conf')).toMatchFileSnapshot('./__snapshots__/mesh.a.wg0.conf');
    await expect(one.get('hosts/a/systemd/podmesh-mesh-wireguard.service')).toMatchFileSnapshot('./__snapshots__/podmesh-mesh-wireguard.service');
  });

  it('GIVEN a single-host stack WHEN rendered THEN nothing', () => {
    expect(renderWireguard(resolveStack(meshStack('mesh', new App(), {}, ['a']).stack)).size).toBe(0);
  });
});

describe('generated files under the real tools', () => {
  const dir = tempDir('podmesh-wg-tools-');
  const out = join(dir.path, 'out');
  let confs: string[] = [];
  let units: string[] = [];
  beforeAll(async () => {
    for (const [id, wg] of [['plain', {}], ['psk', { presharedKeys: true, mtu: 1420, interfaceName: 'pm0' }]] as const) {
      await synth(meshStack(id, new App(), wg).app, { outDir: out, stateDir: join(dir.path, 'state'), stacks: [id] });
    }
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    confs = walk(out).filter((f) => f.includes('/wireguard/') && f.endsWith('.conf'));
    units = walk(out).filter((f) => f.endsWith('-wireguard.service'));
  });
  afterAll(() => dir.cleanup());

  // `wg-quick strip` parses the wg-quick keys and passes the rest through, so the check also
  // requires that only keys of `wg setconf` are left; tunnel.test.ts loads the same output for real.
  it.skipIf(!wgQuick)('wg-quick strip parses every config and leaves only wg setconf keys', () => {
    expect(confs).toHaveLength(6);
    for (const f of confs) {
      const r = spawnSync(wgQuick!, ['strip', f], { encoding: 'utf8', timeout: 10_000 });
      expect(r.status, `${f}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('[Interface]\nListenPort = 51820\n');
      expect(r.stdout.match(/^PublicKey = [A-Za-z0-9+/]{43}=$/gm)).toHaveLength(2);
      const keys = new Set(r.stdout.split('\n').filter((l) => l.includes(' = ')).map((l) => l.split(' = ')[0]));
      expect([...keys].sort()).toEqual(['AllowedIPs', 'Endpoint', 'ListenPort', 'PersistentKeepalive', 'PublicKey']);
    }
  });

  it.skipIf(!wgQuick)('wg-quick strip refuses a config whose file name is no interface name (the tool does judge)', () => {
    const bad = join(dir.path, 'not an interface.conf');
    writeFileSync(bad, readFileSync(confs[0]!, 'utf8'), { mode: 0o600 });
    const r = spawnSync(wgQuick!, ['strip', bad], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('must be a valid interface name');
  });

  it.skipIf(!analyze)('systemd-analyze verify accepts every tunnel unit', () => {
    expect(units).toHaveLength(6);
    const runtime = mkdtempSync(join(tmpdir(), 'podmesh-xdg-'));
    try {
      for (const id of ['plain', 'psk']) {
        // one folder per stack: units of the same name verify together with the mesh target they order before
        const folder = join(runtime, id);
        mkdirSync(folder);
        const unit = units.find((u) => u.includes(`/${id}/hosts/a/`))!;
        writeFileSync(join(folder, `podmesh-${id}-wireguard.service`), readFileSync(unit));
        writeFileSync(join(folder, `${id}.target`), `[Unit]\nDescription=mesh ${id}\n`);
        const r = spawnSync(analyze!, ['verify', '--generators=false', join(folder, `podmesh-${id}-wireguard.service`), join(folder, `${id}.target`)], {
          encoding: 'utf8',
          env: { ...process.env, XDG_RUNTIME_DIR: runtime },
          timeout: 60_000,
        });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
      }
    } finally {
      rmSync(runtime, { recursive: true, force: true });
    }
  });

  it.skipIf(!analyze)('systemd-analyze verify rejects a broken tunnel unit (the check has teeth)', () => {
    const folder = mkdtempSync(join(tmpdir(), 'podmesh-verify-'));
    try {
      const text = readFileSync(units[0]!, 'utf8').replace('Type=oneshot', 'Type=oneshoot');
      writeFileSync(join(folder, 'podmesh-x-wireguard.service'), text);
      const r = spawnSync(analyze!, ['verify', '--generators=false', join(folder, 'podmesh-x-wireguard.service')], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr).toContain('Failed to parse service type');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('every unit runs wg-quick on the installed config of its own stack', () => {
    for (const u of units) {
      const id = u.includes('/psk/') ? 'psk' : 'plain';
      const iface = id === 'psk' ? 'pm0' : 'wg0';
      const text = readFileSync(u, 'utf8');
      expect(text).toContain(`ExecStart=/usr/bin/wg-quick up /etc/podmesh/${id}/wireguard/${iface}.conf\n`);
      expect(text).toContain(`ExecStop=/usr/bin/wg-quick down /etc/podmesh/${id}/wireguard/${iface}.conf\n`);
      expect(text).toContain('Type=oneshot\nRemainAfterExit=true\n');
      expect(text).toContain(`Before=${id}.target\n`);
    }
  });
});
