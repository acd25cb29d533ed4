// WireGuard in a gateway container (wireguard mode 'container'): the model (defaults, version
// gating, the gateway's locked address), the rendered gateway (config, script, unit, routes,
// secrets, compose), and the real parsers (`quadlet -dryrun` of Podman 5.4, `docker compose config`).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { App, type HostProps, type ResolvedStack } from '../../src/index.ts';
import { renderCompose } from '../../src/render/compose.ts';
import { contents, renderInstalled } from '../../src/render/stack.ts';
import { tryResolveStack } from '../../src/resolve/resolve.ts';
import { validateConstructs } from '../../src/synth/select.ts';
import { withPublicKeys } from '../../src/state/wireguard/index.ts';
import { declareAshchanProd } from '../../stacks/ashchan-prod.ts';
import { quadletComplaints, quadletDryRun } from '../helpers/quadlet.ts';
import { tempDir } from '../helpers/stacks.ts';
import { tool } from '../helpers/tools.ts';
import { meshStack } from './stacks.ts';

const quadlet = tool('quadlet');
const dockerCompose = tool('docker-compose');

const KEYS = {
  a: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA=',
  b: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbA=',
  c: 'ccccccccccccccccccccccccccccccccccccccccccA=',
} as const;

type Hosts = Partial<Record<'a' | 'b' | 'c', HostProps>>;
type Wireguard = Parameters<typeof meshStack>[2];

/** The mesh stack (api on a calls and depends on boards on c) with the given host props and wireguard options. */
function mesh(hosts: Hosts, wireguard: Wireguard = {}, app = new App()) {
  return meshStack('mesh', app, wireguard, ['a', 'b', 'c'], { calls: ['boards'], dependsOn: ['boards'] }, { hosts });
}

function resolved(hosts: Hosts, wireguard: Wireguard = {}): ResolvedStack {
  const outcome = tryResolveStack(mesh(hosts, wireguard).stack);
  expect(outcome.issues).toEqual([]);
  return withPublicKeys(outcome.resolved!, KEYS);
}

function problems(hosts: Hosts, wireguard: Wireguard = {}): string[] {
  return tryResolveStack(mesh(hosts, wireguard).stack).issues.map((i) => `${i.path}: ${i.message}`);
}

/** Every file an install of the stack writes, by path in out/<stack>/. */
function rendered(stack: ResolvedStack): Map<string, string> {
  const outcome = renderInstalled(stack);
  expect(outcome.issues).toEqual([]);
  return contents(outcome.files);
}

const modes = (stack: ResolvedStack) => Object.fromEntries(stack.wireguard!.peers.map((p) => [p.host, p.mode]));

describe('wireguard mode: the model', () => {
  it('GIVEN no mode WHEN resolved THEN rootless hosts run a gateway container, rootful ones wg-quick', () => {
    expect(modes(resolved({ a: { rootless: true } }))).toEqual({ a: 'container', b: 'host', c: 'host' });
    expect(modes(resolved({}))).toEqual({ a: 'host', b: 'host', c: 'host' });
  });

  it("GIVEN the stack's mode and one host's own WHEN resolved THEN the host's wins, the stack's applies to the rest", () => {
    expect(modes(resolved({ b: { wireguard: { mode: 'host' } } }, { mode: 'container' }))).toEqual({ a: 'container', b: 'host', c: 'container' });
  });

  it("GIVEN a rootless host with mode 'host' WHEN resolved THEN a problem naming container mode and rootful as the ways out", () => {
    expect(problems({ a: { rootless: true, wireguard: { mode: 'host' } } })).toEqual([
      "mesh/a: is rootless with wireguard mode 'host', but the stack spans 3 hosts joined by WireGuard: a rootless Podman bridge lives in the user's network namespace, where a host interface's routes to this host's slice cannot reach it. Use wireguard: { mode: 'container' } (a gateway container on the stack's network; the default on rootless hosts) or set rootless: false.",
    ]);
  });

  it('GIVEN a rootless host on Podman 4.5 WHEN resolved THEN a problem naming Podman 4.6 and the rootful host mode', () => {
    expect(problems({ b: { rootless: true, podmanVersion: '4.5' } })).toEqual([
      "mesh/b: runs WireGuard in a gateway container (wireguard mode 'container', as rootless hosts must), which needs Podman 4.6 or later for the network's routes through the gateway (podman network create --route, Podman 4.6.0 release notes), but podmanVersion is 4.5. Raise podmanVersion to 4.6 or later, or make the host rootful (rootless: false) with wireguard: { mode: 'host' }.",
    ]);
    expect(problems({ b: { rootless: true, podmanVersion: '4.6' } })).toEqual([]);
  });

  it('GIVEN a bad mode WHEN declared THEN the prop check names it', () => {
    const m = mesh({ a: { wireguard: { mode: 'tunnel' as 'host' } } }, { gatewayImage: 'bad image' });
    expect(validateConstructs([m.stack]).map((i) => `${i.path}: ${i.message}`)).toEqual([
      'mesh: wireguard.gatewayImage: must be an image reference without spaces, e.g. "registry.example.com/wireguard-gateway:1"',
      expect.stringMatching(/^mesh\/a: wireguard\.mode: .*"host".*"container"/),
    ]);
  });

  it("GIVEN container mode WHEN resolved THEN the gateway gets the next free address of its host's slice, locked; the services keep theirs", () => {
    const host = resolved({});
    const container = resolved({ a: { rootless: true }, b: { rootless: true } });
    const gw = Object.fromEntries(container.wireguard!.peers.map((p) => [p.host, p.gateway?.ip]));
    expect(gw).toEqual({ a: '10.90.0.3', b: '10.90.0.67', c: undefined });
    expect(container.lock.networks.mesh!.addresses).toEqual({ ...host.lock.networks.mesh!.addresses, 'wireguard-gateway@a': '10.90.0.3', 'wireguard-gateway@b': '10.90.0.67' });
    // The lock keeps the gateway's address when a service takes the next one.
    const again = tryResolveStack(mesh({ a: { rootless: true }, b: { rootless: true } }).stack, {
      lock: { ...container.lock, networks: { mesh: { ...container.lock.networks.mesh!, addresses: { ...container.lock.networks.mesh!.addresses, 'wireguard-gateway@a': '10.90.0.9' } } } },
    });
    expect(again.resolved!.wireguard!.peers.find((p) => p.host === 'a')!.gateway!.ip).toBe('10.90.0.9');
  });
});

describe('wireguard mode container: what is rendered', () => {
  const stack = resolved({ a: { rootless: true }, b: { rootless: true } }, { presharedKeys: true });
  const files = rendered(stack);

  it('GIVEN rootless a and b, rootful c WHEN rendered THEN a and b get the gateway (no wg-quick unit), c keeps wg-quick', () => {
    const wireguardFiles = [...files.keys()].filter((p) => /wireguard/.test(p)).sort();
    expect(wireguardFiles).toEqual([
      'hosts/a/quadlet/podmesh-mesh-wireguard.container',
      'hosts/a/wireguard/gateway.sh',
      'hosts/a/wireguard/image/Containerfile',
      'hosts/a/wireguard/wg0.conf',
      'hosts/b/quadlet/podmesh-mesh-wireguard.container',
      'hosts/b/wireguard/gateway.sh',
      'hosts/b/wireguard/image/Containerfile',
      'hosts/b/wireguard/wg0.conf',
      'hosts/c/systemd/podmesh-mesh-wireguard.service',
      'hosts/c/wireguard/wg0.conf',
    ]);
  });

  it("GIVEN host a WHEN rendered THEN its network routes the other slices and the tunnel subnet through the gateway's address", () => {
    expect(files.get('hosts/a/quadlet/mesh.network')).toContain(
      'PodmanArgs=--route=10.255.0.0/24,10.90.0.3 --route=10.90.0.64/26,10.90.0.3 --route=10.90.0.128/26,10.90.0.3 --interface-name=mesh0\n',
    );
    // Host c runs wg-quick: its network has no routes (the host's own routes do it).
    expect(files.get('hosts/c/quadlet/mesh.network')).not.toContain('--route');
  });

  it('GIVEN host a WHEN rendered THEN the gateway: NET_ADMIN and /dev/net/tun only, UDP port published, keys as Podman secrets', () => {
    const unit = files.get('hosts/a/quadlet/podmesh-mesh-wireguard.container')!;
    const keys = unit.split('\n').filter((l) => /^(Image|IP|PublishPort|Secret|Volume|Exec|ReadOnly|Tmpfs|NoNewPrivileges|DropCapability|AddCapability|AddDevice|Sysctl|UserNS|PodmanArgs)=/.test(l));
    expect(keys).toEqual([
      'Image=localhost/podmesh-wireguard-gateway:trixie',
      'IP=10.90.0.3',
      'PublishPort=51820:51820/udp',
      'Secret=mesh-wireguard-private-key,type=mount,target=wireguard-private-key,mode=0400',
      'Secret=mesh-wireguard-psk-b,type=mount,target=wireguard-psk-b,mode=0400',
      'Secret=mesh-wireguard-psk-c,type=mount,target=wireguard-psk-c,mode=0400',
      'Volume=%h/.config/podmesh/mesh/wireguard/wg0.conf:/etc/podmesh/wireguard/wg0.conf:ro,Z',
      'Volume=%h/.config/podmesh/mesh/wireguard/gateway.sh:/etc/podmesh/wireguard/gateway.sh:ro,Z',
      'Tmpfs=/run/secrets:mode=0755',
      'Exec=/bin/bash /etc/podmesh/wireguard/gateway.sh',
      'ReadOnly=true',
      'NoNewPrivileges=true',
      'DropCapability=all',
      'AddCapability=NET_ADMIN',
      'AddDevice=/dev/net/tun',
      'Sysctl=net.ipv4.ip_forward=1',
    ]);
    // The secrets unit makes the secrets from the installed key files: only paths on command lines.
    const secrets = files.get('hosts/a/systemd/podmesh-mesh-secrets.service')!;
    expect(secrets).toContain('mesh-wireguard-private-key \\"$$HOME/.config/podmesh/mesh/wireguard/private.key\\"');
    expect(secrets).toContain('mesh-wireguard-psk-c \\"$$HOME/.config/podmesh/mesh/wireguard/psk/c.key\\"');
  });

  it('GIVEN rootless host a and rootful container-mode host c WHEN rendered THEN only the rootless gateway turns br_netfilter off in the rootless network namespace once started', () => {
    const post = (unit: string) => unit.split('\n').filter((l) => l.startsWith('ExecStartPost='));
    expect(post(files.get('hosts/a/quadlet/podmesh-mesh-wireguard.container')!)).toEqual([
      `ExecStartPost=/usr/bin/podman unshare --rootless-netns /bin/sh -c "f=/proc/sys/net/bridge/bridge-nf-call-iptables; [ ! -e \\"$$f\\" ] || echo 0 > \\"$$f\\""`,
    ]);
    const mixed = rendered(resolved({ a: { rootless: true }, c: { wireguard: { mode: 'container' } } }));
    expect(mixed.get('hosts/c/quadlet/podmesh-mesh-wireguard.container')).toContain('UserNS=auto');
    expect(post(mixed.get('hosts/c/quadlet/podmesh-mesh-wireguard.container')!)).toEqual([]);
  });

  it("GIVEN rootful host c in container mode and b in host mode WHEN rendered THEN only c's bridge firewall lets its gateway's ICMP errors into the slice, before the slice-wide drop", () => {
    const stack = resolved({ c: { wireguard: { mode: 'container' } } });
    const files = rendered(stack);
    const gateway = stack.wireguard!.peers.find((p) => p.host === 'c')!.gateway!.ip;
    const c = files.get('hosts/c/firewall/bridge.nft')!.split('\n').map((l) => l.trim());
    const accept = c.indexOf(`ip saddr ${gateway} ip daddr 10.90.0.128/26 icmp type destination-unreachable accept comment "WireGuard gateway: path MTU and unreachable errors"`);
    expect(accept).toBeGreaterThan(-1);
    expect(accept).toBeLessThan(c.indexOf('ip saddr 10.90.0.128/26 ip daddr 10.90.0.128/26 counter drop'));
    expect(files.get('hosts/b/firewall/bridge.nft')).not.toContain('icmp');
  });

  it('GIVEN host a WHEN rendered THEN the setconf file has no private key and the script configures, routes and filters wg0', () => {
    const conf = files.get('hosts/a/wireguard/wg0.conf')!;
    expect(conf).not.toMatch(/PrivateKey|PresharedKey|PostUp|Address/);
    expect(conf).toContain(`[Interface]\nListenPort = 51820\n\n[Peer]\n# b\nPublicKey = ${KEYS.b}\nEndpoint = 198.51.100.2:51820\nAllowedIPs = 10.255.0.2/32, 10.90.0.64/26\n`);
    const script = files.get('hosts/a/wireguard/gateway.sh')!.split('\n');
    expect(script).toEqual(
      expect.arrayContaining([
        'wg setconf wg0 /etc/podmesh/wireguard/wg0.conf',
        'wg set wg0 private-key /run/secrets/wireguard-private-key',
        `wg set wg0 peer ${KEYS.c} preshared-key /run/secrets/wireguard-psk-c`,
        'ip address add 10.255.0.1/24 dev wg0',
        'ip route replace 10.90.0.128/26 dev wg0',
        // api (a) → boards (c): the call's mTLS port and the dependency's port; everything else dropped.
        `nft 'add rule inet podmesh_wg0 forward iifname "eth0" oifname "wg0" ip saddr 10.90.0.2 ip daddr 10.90.0.130 tcp dport 8443 accept'`,
        `nft 'add rule inet podmesh_wg0 forward iifname "eth0" oifname "wg0" ip saddr 10.90.0.2 ip daddr 10.90.0.130 tcp dport 9002 accept'`,
        `nft 'add rule inet podmesh_wg0 forward iifname "wg0" oifname "eth0" counter drop'`,
        `nft 'add rule inet podmesh_wg0 forward iifname "eth0" oifname "wg0" counter drop'`,
      ]),
    );
    expect(script.join('\n')).not.toMatch(/snat|postrouting/);
  });

  it("GIVEN api's wait for boards on c WHEN rendered THEN it runs in a's gateway (the host has no route into the tunnel)", () => {
    const api = files.get('hosts/a/quadlet/mesh-api.container')!;
    expect(api).toMatch(/^ExecStartPre=\/usr\/bin\/podman exec podmesh-mesh-wireguard \/bin\/bash -c .* podmesh-wait boards c 10\.90\.0\.130 8443 300$/m);
    expect(api).toContain('After=podmesh-mesh-wireguard.service\n');
  });

  it('GIVEN host a WHEN its compose file is rendered THEN the gateway service, its secrets from the state folder and the routes for podman-compose', () => {
    const compose = contents(renderCompose(stack, { stateDir: '/state/mesh', folders: () => '/data' })).get('hosts/a/compose.yaml')!;
    expect(compose).toContain('x-podman.routes: ["10.255.0.0/24,10.90.0.3", "10.90.0.64/26,10.90.0.3", "10.90.0.128/26,10.90.0.3"]');
    expect(compose).toMatch(/wireguard-private-key:\n\s+file: \/state\/mesh\/wireguard\/a\.key/);
    expect(compose).toMatch(/wireguard-psk-b:\n\s+file: \/state\/mesh\/wireguard\/psk\/a--b\.key/);
  });

  const dir = tempDir('podmesh-gateway-');
  afterAll(() => dir.cleanup());
  const write = (prefix: string) => {
    for (const [p, text] of files) {
      if (!p.startsWith(prefix)) continue;
      const target = join(dir.path, p);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, text);
    }
  };

  it.skipIf(!quadlet)('GIVEN the rootless host a WHEN quadlet -dryrun -user reads its units THEN no complaint, and podman gets the routes, the device and the capability', () => {
    write('hosts/a/');
    const r = quadletDryRun(quadlet!, join(dir.path, 'hosts/a/quadlet'));
    expect(quadletComplaints(r.stderr)).toEqual([]);
    expect(r.status).toBe(0);
    expect(r.services.get('mesh-network.service')).toContain('--route=10.90.0.128/26,10.90.0.3');
    const gateway = r.services.get('podmesh-mesh-wireguard.service')!;
    for (const arg of ['--device /dev/net/tun', '--cap-add net_admin', '--cap-drop all', '--sysctl net.ipv4.ip_forward=1', '--secret mesh-wireguard-private-key,type=mount,target=wireguard-private-key,mode=0400', '--publish 51820:51820/udp']) {
      expect(gateway).toContain(arg);
    }
  });

  it.skipIf(!dockerCompose)('GIVEN host a WHEN docker compose config reads its compose file THEN it is valid, the gateway with NET_ADMIN and the tun device', () => {
    const file = join(dir.path, 'c/compose.yaml');
    mkdirSync(dirname(file), { recursive: true });
    mkdirSync(join(dir.path, 'c/wireguard'), { recursive: true });
    writeFileSync(file, contents(renderCompose(stack, { stateDir: dir.path, folders: () => '/data' })).get('hosts/a/compose.yaml')!);
    mkdirSync(join(dir.path, 'wireguard/psk'), { recursive: true });
    for (const f of ['wireguard/a.key', 'wireguard/psk/a--b.key', 'wireguard/psk/a--c.key']) writeFileSync(join(dir.path, f), 'x\n');
    const r = spawnSync(dockerCompose!, ['-f', file, 'config', '--format', 'json'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const gw = JSON.parse(r.stdout).services['podmesh-wireguard-gateway'];
    expect([gw.cap_add, gw.cap_drop, gw.devices.map((d: { source: string }) => d.source), gw.networks.mesh.ipv4_address]).toEqual([['NET_ADMIN'], ['ALL'], ['/dev/net/tun'], '10.90.0.3']);
    expect(gw.secrets.map((s: { source: string; mode: number }) => [s.source, s.mode])).toEqual([
      ['wireguard-private-key', 0o400],
      ['wireguard-psk-b', 0o400],
      ['wireguard-psk-c', 0o400],
    ]);
  });
});

describe('wireguard mode container on a rootful host', () => {
  const files = rendered(resolved({}, { mode: 'container' }));

  it('GIVEN rootful hosts in container mode WHEN rendered THEN the gateway runs in a user namespace of its own (UserNS=auto), its 0600 files handed to its root (U), and no wg-quick unit', () => {
    const unit = files.get('hosts/c/quadlet/podmesh-mesh-wireguard.container')!;
    expect(unit).toContain('\nUserNS=auto\n');
    expect(unit).toContain('Volume=/etc/podmesh/mesh/wireguard/wg0.conf:/etc/podmesh/wireguard/wg0.conf:ro,Z,U\n');
    expect(unit).toContain('Volume=/etc/podmesh/mesh/wireguard/gateway.sh:/etc/podmesh/wireguard/gateway.sh:ro,Z,U\n');
    expect(files.has('hosts/c/systemd/podmesh-mesh-wireguard.service')).toBe(false);
  });

  it('GIVEN container mode WHEN TOPOLOGY.md lists the firewall THEN the tunnel flows say the gateways enforce them', () => {
    expect(files.get('TOPOLOGY.md')).toContain('| api (10.90.0.2) | boards (10.90.0.130) | 8443/tcp | a → c | calls | tunnel (gateway nftables → gateway nftables) |');
  });
});

describe('ashchan-prod, every host rootless', () => {
  it('GIVEN ashchan-prod declared rootless on every host WHEN resolved and rendered THEN no problem, a gateway per host, mTLS flows filtered in the gateways', () => {
    const app = new App();
    const outcome = tryResolveStack(declareAshchanProd(app, { rootless: true }));
    expect(outcome.issues).toEqual([]);
    const stack = withPublicKeys(outcome.resolved!, { edge: KEYS.a, app: KEYS.b, data: KEYS.c });
    expect(modes(stack)).toEqual({ edge: 'container', app: 'container', data: 'container' });
    const files = rendered(stack);
    for (const h of ['edge', 'app', 'data']) expect(files.has(`hosts/${h}/quadlet/podmesh-ashchan-prod-wireguard.container`)).toBe(true);
    // gateway (edge, 10.90.0.10) calls auth (app, 10.90.0.21) on its mTLS port: allowed into app's slice.
    expect(files.get('hosts/app/wireguard/gateway.sh')).toContain(`iifname "wg0" oifname "eth0" ip saddr 10.90.0.10 ip daddr 10.90.0.21 tcp dport 8443 accept`);
  });

  it.skipIf(!quadlet)('GIVEN ashchan-prod declared rootless on every host WHEN quadlet -user -dryrun reads each host\'s units THEN every unit converts without a complaint', () => {
    const outcome = tryResolveStack(declareAshchanProd(new App(), { rootless: true }));
    const files = rendered(withPublicKeys(outcome.resolved!, { edge: KEYS.a, app: KEYS.b, data: KEYS.c }));
    for (const host of ['edge', 'app', 'data']) {
      const dir = tempDir('podmesh-gateway-quadlet-');
      try {
        const units = [...files].filter(([path]) => path.startsWith(`hosts/${host}/quadlet/`));
        for (const [path, text] of units) writeFileSync(join(dir.path, path.slice(`hosts/${host}/quadlet/`.length)), text);
        const r = quadletDryRun(quadlet!, dir.path, true);
        expect(quadletComplaints(r.stderr), host).toEqual([]);
        expect(r.status, r.stderr).toBe(0);
        // Every unit file became a service (the gateway's among them).
        expect(r.services.size, host).toBe(units.filter(([p]) => /\.(container|network|volume|pod|kube|image|build)$/.test(p)).length);
        expect([...r.services.keys()], host).toContain('podmesh-ashchan-prod-wireguard.service');
      } finally {
        dir.cleanup();
      }
    }
  });

  it.skipIf(!quadlet)('GIVEN a rootless Podman 5.4 host WHEN quadlet -user reads its service unit THEN --hosts-file names the remote-hosts file under %h, a specifier systemd expands (not %%h, a literal)', () => {
    const outcome = tryResolveStack(declareAshchanProd(new App(), { rootless: true }));
    const files = rendered(withPublicKeys(outcome.resolved!, { edge: KEYS.a, app: KEYS.b, data: KEYS.c }));
    const unit = files.get('hosts/app/quadlet/ashchan-auth.container')!;
    expect(unit).toMatch(/^PodmanArgs=.* --hosts-file %h\/\.config\/podmesh\/ashchan-prod\/remote-hosts$/m);
    const dir = tempDir('podmesh-gateway-quadlet-');
    try {
      writeFileSync(join(dir.path, 'ashchan-auth.container'), unit);
      writeFileSync(join(dir.path, 'ashchan-mesh.network'), files.get('hosts/app/quadlet/ashchan-mesh.network')!);
      const r = quadletDryRun(quadlet!, dir.path, true);
      expect(quadletComplaints(r.stderr)).toEqual([]);
      expect(r.services.get('ashchan-auth.service')).toMatch(/^ExecStart=.* --hosts-file %h\/\.config\/podmesh\/ashchan-prod\/remote-hosts /m);
    } finally {
      dir.cleanup();
    }
  });
});
