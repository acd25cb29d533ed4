// End to end, WireGuard mode 'container' (issue 20): three simulated hosts (network namespaces on
// one underlay, test/helpers/netns.ts), each with Podman 5.4 from the trixie root (RECIPES section
// 9). Per host, the generated `.network`, the gateway's `.container` and the secrets unit are
// turned into services by `quadlet -dryrun` and run unchanged (test/helpers/quadlet-run.ts);
// the gateway image is this machine's wireguard-go, wg, ip, nft and bash; one stand-in listener
// container per host takes its service's address and answers each connection with its
// /proc/net/tcp, from which the test reads the source address the listener saw.
// Host a runs Podman rootless as an unprivileged user (subordinate ids through the trixie root's
// setuid newuidmap/newgidmap, pasta for its network): its units come from `quadlet -user -dryrun`
// over its ~/.config/containers/systemd and run as that user, proving the gateway needs no root;
// b and c are rootful. Torn down completely; every wait bounded.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, type ResolvedStack } from '../src/index.ts';
import { renderInstalled } from '../src/render/stack.ts';
import { tryResolveStack } from '../src/resolve/resolve.ts';
import { wireguardKeyPath } from '../src/layout.ts';
import { withPublicKeys } from '../src/state/wireguard/index.ts';
import { binariesRootfs } from './helpers/image.ts';
import { createHosts, netnsReady, type SimNetwork } from './helpers/netns.ts';
import { podman54Ready, podman54Rootfs, ROOTLESS_USER, startPodman54, type Podman54 } from './helpers/podman54.ts';
import { generateUnits, parseUnitText, QuadletRunner, SYSTEM_MANAGER, userManager } from './helpers/quadlet-run.ts';
import { tool } from './helpers/tools.ts';
import { meshStack } from './wireguard/stacks.ts';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const wg = tool('wg');
const quadlet = tool('quadlet');
const GATEWAY_BINARIES = ['/usr/bin/bash', '/usr/sbin/ip', '/usr/sbin/nft', '/usr/bin/wg', '/usr/bin/wireguard-go', '/usr/bin/timeout', '/usr/bin/seq', '/usr/bin/sleep'];
const IMAGE = 'localhost/podmesh-e2e/wireguard-gateway:1';
const STACK = 'gw';
const HOSTS = ['a', 'b', 'c'] as const;
/** The service of each host (tests/wireguard/stacks.ts): api on a, auth on b, boards on c. */
const SERVICE = { a: 'api', b: 'auth', c: 'boards' } as const;
/** The host whose Podman runs rootless, as {@link ROOTLESS_USER}. */
const ROOTLESS = 'a';
const MTLS = 8443;

/** The gateway image's files (also the listeners' image: busybox nc and cat). */
function gatewayRootfs(root: string): void {
  binariesRootfs(root, GATEWAY_BINARIES.map((b) => [b, b.replace(/^\/usr\/sbin\//, '/usr/bin/')] as const), BUSYBOX!, ['sh', 'cat', 'nc'], ['var']);
  // Debian's merged /usr: the generated units name /bin/bash.
  symlinkSync('/usr/bin/bash', join(root, 'bin/bash'));
  symlinkSync('/run', join(root, 'var/run'));
}

const genkey = () => execFileSync(wg!, ['genkey'], { encoding: 'utf8' }).trim();
const pubkey = (key: string) => execFileSync(wg!, ['pubkey'], { input: `${key}\n`, encoding: 'utf8' }).trim();

/** The hex address of /proc/net/tcp (`0200005A`) as dotted IPv4. */
const hexIp = (h: string) => [6, 4, 2, 0].map((i) => parseInt(h.slice(i, i + 2), 16)).join('.');

interface Host {
  readonly name: (typeof HOSTS)[number];
  /** Where its installed files go on the machine: `/` of a rootful host, the user's home (`%h`) of a rootless one. */
  root: string;
  podman: Podman54;
  runner: QuadletRunner;
}

describe.skipIf(!(netnsReady() && podman54Ready() && BUSYBOX && wg && quadlet))('end to end: WireGuard gateway containers on three Podman 5.4 hosts', () => {
  let net: SimNetwork;
  const hosts: Host[] = [];
  const keys: Record<string, string> = Object.fromEntries(HOSTS.map((h) => [h, genkey()]));
  let stack: ResolvedStack;
  const ip = (service: string) => stack.services.find((s) => s.name === service)!.ip;

  /** Where a host path (`/etc/…` rootful, `%h/…` rootless) is on the machine. */
  const onMachine = (h: Host, path: string) => join(h.root, path.replace(/^%h\//, ''));

  /** Writes host h's installed files (as apply would) under its root, the user's own on a rootless host. */
  const install = (h: Host, s: ResolvedStack) => {
    const written: string[] = [];
    for (const file of renderInstalled(s).files.values()) {
      if (file.install?.host !== h.name) continue;
      written.push(onMachine(h, file.install.path));
      mkdirSync(dirname(written.at(-1)!), { recursive: true });
      writeFileSync(written.at(-1)!, file.content, { mode: file.install.mode });
    }
    written.push(onMachine(h, wireguardKeyPath(s.hosts.find((x) => x.name === h.name)!)));
    writeFileSync(written.at(-1)!, `${keys[h.name]}\n`, { mode: 0o600 });
    if (h.podman.rootless) execFileSync('chown', ['-R', `${ROOTLESS_USER.uid}:${ROOTLESS_USER.gid}`, h.root]);
  };

  /** A connection from `from`'s listener container to `to`'s service: the source `to`'s listener saw, or the failure. */
  const connect = async (from: (typeof HOSTS)[number], to: (typeof HOSTS)[number]): Promise<string> => {
    const h = hosts.find((x) => x.name === from)!;
    // stdin stays open for 2 s: busybox nc stops reading the answer when its stdin ends.
    const r = await h.podman.podman(['exec', `listener-${from}`, '/bin/sh', '-c', 'sleep 2 | /bin/busybox nc -w 3 "$0" "$1"', ip(SERVICE[to]), String(MTLS)], { timeoutMs: 10_000 });
    const port = MTLS.toString(16).toUpperCase().padStart(4, '0');
    // busybox nc listens on [::]: the accepted connection is in tcp6, its peer a v4-mapped address.
    const line = r.stdout.split('\n').find((l) => new RegExp(`^\\s*\\d+: [0-9A-F]{8,32}:${port} [0-9A-F]{8,32}:[0-9A-F]{4} 01 `).test(l));
    return line ? hexIp(line.trim().split(/\s+/)[2]!.split(':')[0]!.slice(-8)) : `failed (${r.exitCode}): ${r.stderr.trim()}`;
  };

  beforeAll(async () => {
    // GIVEN api (a, rootless) and auth (b) calling boards (c), boards calling api back, every host in wireguard mode 'container'
    const m = meshStack(STACK, new App(), { mode: 'container', gatewayImage: IMAGE }, HOSTS, { calls: ['boards'] }, {
      hosts: { [ROOTLESS]: { rootless: true } },
      auth: { calls: ['boards'] },
      boards: { calls: ['api'] },
    });
    const outcome = tryResolveStack(m.stack);
    if (outcome.issues.length > 0) throw new Error(JSON.stringify(outcome.issues));
    stack = withPublicKeys(outcome.resolved!, Object.fromEntries(HOSTS.map((h) => [h, pubkey(keys[h]!)])));
    net = await createHosts([...HOSTS]);
    const image = join(net.workDir, 'image');
    gatewayRootfs(image);
    const rootfs = podman54Rootfs();
    for (const name of HOSTS) {
      const rootless = name === ROOTLESS;
      const notifyDir = { machine: join(net.workDir, `notify-${name}`), inside: '/run/podmesh-notify' };
      mkdirSync(notifyDir.machine, { mode: 0o700 });
      // br_netfilter (loaded on this machine) passes bridged frames through the host's nat hooks,
      // where netavark's masquerade rewrites a container's packets to the gateway container (their
      // destination is outside the slice): see README, "WireGuard in a gateway container".
      await net.host(name).exec(['sysctl', '-w', 'net.bridge.bridge-nf-call-iptables=0'], { reject: true });
      const h = { name } as Host;
      if (rootless) {
        // The user's Podman sends READY=1 itself: the socket's folder is the user's.
        chownSync(notifyDir.machine, ROOTLESS_USER.uid, ROOTLESS_USER.gid);
        h.podman = await startPodman54(net.host(name), rootfs, {
          workDir: join(net.workDir, `podman-${name}`),
          binds: [
            { source: image, target: '/mnt/image', readOnly: true },
            { source: notifyDir.machine, target: notifyDir.inside },
          ],
          rootless: true,
        });
        h.root = h.podman.rootless!.homeOnMachine;
      } else {
        h.root = join(net.workDir, `root-${name}`);
        mkdirSync(join(h.root, 'etc/podmesh'), { recursive: true });
        // Rootful netavark keeps network configs in /etc/containers/networks, which is the cached root
        // filesystem's (shared by every run): each host gets its own.
        const networks = join(net.workDir, `networks-${name}`);
        mkdirSync(networks, { mode: 0o755 });
        h.podman = await startPodman54(net.host(name), rootfs, {
          workDir: join(net.workDir, `podman-${name}`),
          binds: [
            { source: image, target: '/mnt/image', readOnly: true },
            { source: notifyDir.machine, target: notifyDir.inside },
            { source: join(h.root, 'etc/podmesh'), target: '/etc/podmesh' },
            { source: networks, target: '/etc/containers/networks' },
          ],
        });
      }
      install(h, stack);
      // The gateway's root is an unprivileged host id (UserNS=auto rootful, the user's namespace
      // rootless; pasta opens it too), which opens /dev/net/tun: this machine's node is 0600, the
      // distributions' 0666. A private 0666 node over it, in this simulated host's mount namespace only.
      await h.podman.exec(['sh', '-c', 'mknod -m 0666 /run/podmesh-tun c 10 200 && mount --bind /run/podmesh-tun /dev/net/tun'], { reject: true, asRoot: true });
      // The network, the gateway and the secrets unit; the services' own units are not run (stand-ins instead).
      const quadletDir = rootless ? '.config/containers/systemd' : 'etc/containers/systemd';
      const units = generateUnits(join(h.root, quadletDir), rootless).filter((u) => /-network\.service$|-wireguard\.service$/.test(u.name));
      const secrets = `podmesh-${STACK}-secrets.service`;
      units.push(parseUnitText(secrets, readFileSync(join(h.root, rootless ? '.config/systemd/user' : 'etc/systemd/system', secrets), 'utf8')));
      const manager = rootless ? userManager(ROOTLESS_USER.uid, ROOTLESS_USER.home) : SYSTEM_MANAGER;
      h.runner = new QuadletRunner(units, h.podman, manager, { notifyDir, startTimeoutMs: 60_000 });
      hosts.push(h);
    }
    // The hosts' Podmans are independent: import, start and run the listener on all three at once.
    await Promise.all(hosts.map(async (h) => {
      await h.podman.importImage('/mnt/image', IMAGE, ['--change', 'ENV=PATH=/usr/bin:/bin']);
      await h.runner.start();
      // The rootless network namespace's bridge-nf-call-iptables (1 in a new namespace) is the
      // gateway unit's own ExecStartPost: without it api → boards fails (`nc: timed out`).
      if (h.podman.rootless) {
        const r = await h.podman.podman(['unshare', '--rootless-netns', 'cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'], { timeoutMs: 20_000 });
        if (r.stdout.trim() !== '0') throw new Error(`bridge-nf-call-iptables in ${h.name}'s rootless network namespace: ${r.stdout}${r.stderr}`);
      }
      const l = await h.podman.podman(['run', '-d', '--name', `listener-${h.name}`, '--network', 'mesh', '--ip', ip(SERVICE[h.name]), IMAGE, '/bin/busybox', 'nc', '-ll', '-p', String(MTLS), '-e', '/bin/busybox', 'cat', '/proc/net/tcp', '/proc/net/tcp6'], { timeoutMs: 60_000 });
      if (l.exitCode !== 0) throw new Error(`listener on ${h.name}: ${l.stderr}`);
    }));
  }, 300_000);

  /** Removes the listeners, stops the units (last started first), tears the Podmans and the namespaces down. Idempotent. */
  const teardown = async () => {
    const errors: string[] = [];
    for (const h of hosts) {
      await h.podman?.podman(['rm', '-f', '-t', '0', `listener-${h.name}`], { timeoutMs: 30_000 }).catch(() => undefined);
      errors.push(...((await h.runner?.stop().catch((e: unknown) => [String(e)])) ?? []));
      await h.podman?.teardown();
    }
    await net?.teardown();
    return errors;
  };
  afterAll(() => teardown(), 180_000);

  it('GIVEN the gateways up WHEN a declared flow crosses hosts THEN it arrives with the caller container\'s own address', async () => {
    // The handshakes happen on the first packets: allow a few tries, bounded.
    let seen = '';
    for (let i = 0; i < 5 && seen !== ip('api'); i++) seen = await connect('a', 'c');
    expect(seen).toBe(ip('api'));
    expect(await connect('b', 'c')).toBe(ip('auth'));
    // Into the rootless host: boards (c) to api (a).
    expect(await connect('c', 'a')).toBe(ip('boards'));
  }, 60_000);

  it('GIVEN host a rootless WHEN its gateway runs THEN Podman is rootless and the tunnel runs as the unprivileged user', async () => {
    const a = hosts.find((h) => h.name === ROOTLESS)!;
    const info = await a.podman.podman(['info', '--format', '{{.Host.Security.Rootless}}'], { timeoutMs: 20_000 });
    expect(info.stdout.trim()).toBe('true');
    // The container's PID 1 (bash) and its wireguard-go, seen from the machine: owned by the user's uid.
    const pid = await a.podman.podman(['inspect', '--format', '{{.State.Pid}}', `podmesh-${STACK}-wireguard`], { timeoutMs: 20_000 });
    const status = readFileSync(`/proc/${Number(pid.stdout.trim())}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)\s+(\d+)/m.exec(status)?.slice(1)).toEqual([String(ROOTLESS_USER.uid), String(ROOTLESS_USER.uid)]);
    const children = readFileSync(`/proc/${Number(pid.stdout.trim())}/task/${Number(pid.stdout.trim())}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    const wgGo = children.find((c) => readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'wireguard-go');
    expect(wgGo).toBeDefined();
    expect(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${wgGo}/status`, 'utf8'))?.[1]).toBe(String(ROOTLESS_USER.uid));
  }, 60_000);

  it('GIVEN no call from api to auth WHEN api connects to auth on host b THEN the gateway drops it', async () => {
    expect(await connect('a', 'b')).toMatch(/^failed/);
    // The drop is counted in a's gateway (the flow leaves a's slice undeclared).
    const a = hosts.find((h) => h.name === 'a')!;
    const t = await a.podman.podman(['exec', `podmesh-${STACK}-wireguard`, 'nft', 'list', 'table', 'inet', 'podmesh_wg0'], { timeoutMs: 10_000 });
    expect(t.stdout).toMatch(/iifname "eth0" oifname "wg0" counter packets [1-9]\d* bytes \d+ drop/);
  }, 60_000);

  it("GIVEN a's key rotated and deployed to b and c only WHEN api calls boards THEN a is locked out, b still gets through", async () => {
    const oldKey = keys.a!;
    keys.a = genkey();
    const rotated = withPublicKeys(stack, { a: pubkey(keys.a) });
    await Promise.all(hosts.filter((x) => x.name !== 'a').map(async (h) => {
      install(h, rotated);
      await h.runner.restart([`podmesh-${STACK}-wireguard.service`]);
    }));
    keys.a = oldKey;
    expect(await connect('a', 'c')).toMatch(/^failed/);
    expect(await connect('c', 'a')).toMatch(/^failed/);
    expect(await connect('b', 'c')).toBe(ip('auth'));
  }, 90_000);

  it('GIVEN the run WHEN its units stop and it is torn down THEN no namespace, mount, process or cgroup is left', async () => {
    const podmans = hosts.map((h) => h.podman);
    expect(await teardown()).toEqual([]);
    expect(net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    for (const p of podmans) expect(p.cgroups()).toEqual([]);
  }, 120_000);
});
