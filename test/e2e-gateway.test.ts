// End to end, WireGuard mode 'container' (issue 20): mTLS between the containers of three
// simulated hosts (network namespaces on one underlay, test/helpers/netns.ts), each with Podman 5.4
// from the trixie root (RECIPES section 9). The stack (api on a, auth on b, boards on c, plain
// services: `hyperf: false`) is synthesized for real into a work folder (`synth()`: certificates,
// WireGuard keys, secrets in its state folder) and each host installed the production way
// (`planApply`/`executeApply`, podmesh apply's functions) into its own root. Per host, every
// generated Quadlet unit (the `.network`, the gateway's `.container`, the service's `.container`)
// and the secrets unit are turned into services by `quadlet -dryrun` and run unchanged
// (test/helpers/quadlet-run.ts): environment, mounts, secrets and AddHost lines as generated.
// The rootful hosts also load their generated bridge firewall (nftables). Not run: the timers.
// The gateway image is this machine's wireguard-go, wg, ip, nft and bash; the service image is
// node, curl and busybox (test/helpers/image.ts) running the Node mTLS sample
// (examples/mtls-sample/server.mjs), imported under the service's generated image name. Calls are
// curl in the caller's container with its own client certificate, by name (remote names come
// from the generated AddHost lines); the callee's handshake log gives the caller's address.
// Host a runs Podman rootless as an unprivileged user (subordinate ids through the trixie root's
// setuid newuidmap/newgidmap, pasta for its network): apply installs into its home (`--home`),
// its files owned by the user, its units come from `quadlet -user -dryrun` over its
// ~/.config/containers/systemd and run as that user, proving the gateway and the service need no
// root; b and c are rootful. Torn down completely; every wait bounded.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, synth, type ResolvedStack } from '../src/index.ts';
import { executeApply, planApply } from '../src/ops/apply.ts';
import { resolveWithLock } from '../src/synth/select.ts';
import { binariesRootfs, buildRootfs } from './helpers/image.ts';
import { createHosts, netnsReady, type SimNetwork } from './helpers/netns.ts';
import { podman54Ready, podman54Rootfs, ROOTLESS_USER, startPodman54, type Podman54 } from './helpers/podman54.ts';
import { generateUnits, parseUnitText, QuadletRunner, SYSTEM_MANAGER, userManager, value } from './helpers/quadlet-run.ts';
import { tool } from './helpers/tools.ts';
import { meshStack } from './wireguard/stacks.ts';

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const wg = tool('wg');
const quadlet = tool('quadlet');
const GATEWAY_BINARIES = ['/usr/bin/bash', '/usr/sbin/ip', '/usr/sbin/nft', '/usr/bin/wg', '/usr/bin/wireguard-go', '/usr/bin/timeout', '/usr/bin/seq', '/usr/bin/sleep'];
const IMAGE = 'localhost/podmesh-e2e/wireguard-gateway:1';
const STACK = 'gw';
const DOMAIN = `${STACK}.local`;
const HOSTS = ['a', 'b', 'c'] as const;
type HostName = (typeof HOSTS)[number];
/** The service of each host (tests/wireguard/stacks.ts): api on a, auth on b, boards on c. */
const SERVICE = { a: 'api', b: 'auth', c: 'boards' } as const;
/** The host whose Podman runs rootless, as {@link ROOTLESS_USER}. */
const ROOTLESS = 'a';
const MTLS = 8443;

/** The gateway image's files. */
function gatewayRootfs(root: string): void {
  binariesRootfs(root, GATEWAY_BINARIES.map((b) => [b, b.replace(/^\/usr\/sbin\//, '/usr/bin/')] as const), BUSYBOX!, ['sh', 'cat'], ['var']);
  // Debian's merged /usr: the generated units name /bin/bash.
  symlinkSync('/usr/bin/bash', join(root, 'bin/bash'));
  symlinkSync('/run', join(root, 'var/run'));
}

/** What a call by curl gave: its exit code, the HTTP status (0 without an answer), the body, curl's error. */
interface Call {
  readonly exitCode: number;
  readonly status: number;
  readonly body: string;
  readonly error: string;
}

interface Host {
  readonly name: HostName;
  /** The root `podmesh apply --root` installs into (rootless: `<root>/home/podmesh` is the user's home). */
  root: string;
  podman: Podman54;
  /** Its generated units (Quadlet's services and the secrets unit). */
  units: ReturnType<typeof generateUnits>;
  runner: QuadletRunner;
}

describe.skipIf(!(netnsReady() && podman54Ready() && BUSYBOX && wg && quadlet))('end to end: mTLS between services across WireGuard gateway containers on three Podman 5.4 hosts', () => {
  let net: SimNetwork;
  const hosts: Host[] = [];
  let stack: ResolvedStack;
  let out = '';
  let state = '';
  const ip = (service: string) => stack.services.find((s) => s.name === service)!.ip;
  const host = (name: HostName) => hosts.find((h) => h.name === name)!;
  /** The container of a host's service, as its generated unit names it. */
  const container = (name: HostName) => `${STACK}-${SERVICE[name]}-1`;

  /** GIVEN api (a, rootless) and auth (b) calling boards (c), boards calling api back, every host in wireguard mode 'container', plain (non-Hyperf) services. */
  const meshOf = () =>
    meshStack(STACK, new App(), { mode: 'container', gatewayImage: IMAGE }, HOSTS, { calls: ['boards'], hyperf: false }, {
      hosts: { [ROOTLESS]: { rootless: true } },
      auth: { calls: ['boards'], hyperf: false },
      boards: { calls: ['api'], hyperf: false },
    });

  /** `podmesh synth` of the stack into the work folder (optionally rotating hosts' WireGuard keys), then the stack as apply resolves it. */
  const synthesize = async (rotate?: readonly HostName[]): Promise<ResolvedStack> => {
    await synth(meshOf().app, { outDir: out, stateDir: state, stacks: [STACK], ...(rotate ? { rotateWireguard: { [STACK]: rotate } } : {}) });
    const r = await resolveWithLock(meshOf().stack, out);
    if (!r.resolved) throw new Error(JSON.stringify(r.issues));
    return r.resolved;
  };

  /** `podmesh apply --host H --root R [--home /home/podmesh] --no-systemctl`, through its functions; a rootless host's files then belong to the user. */
  const apply = async (h: Host, s: ResolvedStack) => {
    const plan = planApply({ stack: s, host: h.name, outDir: out, stateDir: state, root: h.root, ...(h.podman.rootless ? { home: ROOTLESS_USER.home } : {}) });
    const r = await executeApply(plan, undefined);
    if (r.failed) throw new Error(`apply of ${h.name}: ${r.failed.step}: ${r.failed.error}`);
    // The user runs apply on a rootless host: here root does, then hands the files over.
    if (h.podman.rootless) execFileSync('chown', ['-R', `${ROOTLESS_USER.uid}:${ROOTLESS_USER.gid}`, h.podman.rootless.homeOnMachine]);
  };

  /** curl in `from`'s service container with its own client certificate, to `to`'s service by name. */
  const call = async (from: HostName, to: HostName, path = '/whoami'): Promise<Call> => {
    const url = `https://${SERVICE[to]}.${DOMAIN}:${MTLS}${path}`;
    const r = await host(from).podman.podman(
      ['exec', container(from), 'curl', '-sS', '--connect-timeout', '4', '--max-time', '8', '--cacert', '/etc/mtls/ca.crt', '--cert', '/etc/mtls/client.crt', '--key', '/etc/mtls/client.key', '-w', '\n%{http_code}', url],
      { timeoutMs: 20_000 },
    );
    const lines = r.stdout.split('\n');
    return { exitCode: r.exitCode, status: Number(lines.at(-1)) || 0, body: lines.slice(0, -1).join('\n'), error: r.stderr.trim() };
  };

  /** A declared call, retried while it fails (bounded: the first packets make the WireGuard handshake; a service may still be starting). */
  const callUntilOk = async (from: HostName, to: HostName): Promise<Call> => {
    let c = await call(from, to);
    for (let i = 0; i < 5 && c.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 1_000));
      c = await call(from, to);
    }
    return c;
  };

  /** The handshakes `to`'s service logged from `from`'s service (its client certificate's CN). */
  const handshakes = async (to: HostName, from: HostName): Promise<{ event: string; client_cn: string; remote?: string }[]> => {
    const r = await host(to).podman.podman(['logs', container(to)], { timeoutMs: 20_000 });
    return r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; client_cn: string; remote?: string })
      .filter((l) => l.event === 'mtls_handshake_complete' && l.client_cn === `${SERVICE[from]}.${DOMAIN}`);
  };

  /** THEN the call got 200 from `to`, which saw `from`'s certificate, and whose last handshake with it came from `from`'s own container address. */
  const expectMtls = async (c: Call, from: HostName, to: HostName) => {
    expect(c.status, `${from} -> ${to}: ${c.error}`).toBe(200);
    expect(JSON.parse(c.body)).toEqual({ client_cn: `${SERVICE[from]}.${DOMAIN}`, client_spiffe_id: `spiffe://${DOMAIN}/${STACK}/${SERVICE[from]}`, server_cn: `${SERVICE[to]}.${DOMAIN}` });
    expect((await handshakes(to, from)).at(-1)?.remote).toBe(ip(SERVICE[from]));
  };

  beforeAll(async () => {
    net = await createHosts([...HOSTS]);
    out = join(net.workDir, 'out');
    state = join(net.workDir, 'state');
    stack = await synthesize();
    const image = join(net.workDir, 'image');
    gatewayRootfs(image);
    const serviceImage = join(net.workDir, 'service-image');
    buildRootfs(serviceImage, BUSYBOX!);
    const rootfs = podman54Rootfs();
    for (const name of HOSTS) {
      const rootless = name === ROOTLESS;
      const notifyDir = { machine: join(net.workDir, `notify-${name}`), inside: '/run/podmesh-notify' };
      mkdirSync(notifyDir.machine, { mode: 0o700 });
      // br_netfilter (loaded on this machine) passes bridged frames through the host's nat hooks,
      // where netavark's masquerade rewrites a container's packets to the gateway container (their
      // destination is outside the slice): see README, "WireGuard in a gateway container".
      await net.host(name).exec(['sysctl', '-w', 'net.bridge.bridge-nf-call-iptables=0'], { reject: true });
      const h = { name, root: join(net.workDir, `root-${name}`) } as Host;
      const images = [
        { source: image, target: '/mnt/image', readOnly: true },
        { source: serviceImage, target: '/mnt/service-image', readOnly: true },
      ];
      if (rootless) {
        // The user's Podman sends READY=1 itself: the socket's folder is the user's.
        chownSync(notifyDir.machine, ROOTLESS_USER.uid, ROOTLESS_USER.gid);
        h.podman = await startPodman54(net.host(name), rootfs, {
          workDir: join(net.workDir, `podman-${name}`),
          binds: [...images, { source: notifyDir.machine, target: notifyDir.inside }],
          rootless: true,
        });
        // apply --root R --home /home/podmesh installs into R/home/podmesh: the user's home, as the simulated host sees it.
        mkdirSync(join(h.root, 'home'), { recursive: true });
        symlinkSync(h.podman.rootless!.homeOnMachine, join(h.root, ROOTLESS_USER.home));
      } else {
        mkdirSync(join(h.root, 'etc/podmesh'), { recursive: true });
        // Rootful netavark keeps network configs in /etc/containers/networks, which is the cached root
        // filesystem's (shared by every run): each host gets its own.
        const networks = join(net.workDir, `networks-${name}`);
        mkdirSync(networks, { mode: 0o755 });
        h.podman = await startPodman54(net.host(name), rootfs, {
          workDir: join(net.workDir, `podman-${name}`),
          binds: [
            ...images,
            { source: notifyDir.machine, target: notifyDir.inside },
            { source: join(h.root, 'etc/podmesh'), target: '/etc/podmesh' },
            { source: networks, target: '/etc/containers/networks' },
          ],
        });
      }
      await apply(h, stack);
      // The gateway's root is an unprivileged host id (UserNS=auto rootful, the user's namespace
      // rootless; pasta opens it too), which opens /dev/net/tun: this machine's node is 0600, the
      // distributions' 0666. A private 0666 node over it, in this simulated host's mount namespace only.
      await h.podman.exec(['sh', '-c', 'mknod -m 0666 /run/podmesh-tun c 10 200 && mount --bind /run/podmesh-tun /dev/net/tun'], { reject: true, asRoot: true });
      // Every Quadlet unit apply installed (network, gateway, service), the secrets unit and, on
      // rootful hosts, the bridge firewall (podmesh-gw-firewall.service); not the timers. The
      // firewall once broke every cross-host call: its slice-wide drop also dropped the gateway's
      // ICMP "fragmentation needed" (wg0's MTU is 1420, the bridge's 1500), so the callee's TLS
      // answer never crossed; it now accepts ICMP errors from the gateway's address.
      const quadletDir = rootless ? join(h.podman.rootless!.homeOnMachine, '.config/containers/systemd') : join(h.root, 'etc/containers/systemd');
      const units = generateUnits(quadletDir, rootless);
      const secrets = `podmesh-${STACK}-secrets.service`;
      units.push(parseUnitText(secrets, readFileSync(join(quadletDir, '../../systemd', rootless ? 'user' : 'system', secrets), 'utf8')));
      const firewall = `podmesh-${STACK}-firewall.service`;
      if (!rootless) units.push(parseUnitText(firewall, readFileSync(join(quadletDir, '../../systemd/system', firewall), 'utf8')));
      const manager = rootless ? userManager(ROOTLESS_USER.uid, ROOTLESS_USER.home) : SYSTEM_MANAGER;
      h.units = units;
      h.runner = new QuadletRunner(units, h.podman, manager, { notifyDir, startTimeoutMs: 60_000 });
      hosts.push(h);
    }
    // The hosts' Podmans are independent: import and start on all three at once.
    await Promise.all(hosts.map(async (h) => {
      await h.podman.importImage('/mnt/image', IMAGE, ['--change', 'ENV=PATH=/usr/bin:/bin']);
      // The service's image, under the name its generated unit gives (which names no command: the image's CMD runs).
      const unit = h.units.find((u) => u.name === `${STACK}-${SERVICE[h.name]}.service`);
      const name = unit && value(unit, 'X-Container', 'Image');
      if (!name) throw new Error(`no generated unit with an image for ${SERVICE[h.name]} on ${h.name}`);
      await h.podman.importImage('/mnt/service-image', name, ['--change', 'ENV=PATH=/usr/bin:/bin', '--change', 'CMD=["/usr/bin/node","/app/server.mjs"]']);
      await h.runner.start();
      // The rootless network namespace's bridge-nf-call-iptables (1 in a new namespace) is the
      // gateway unit's own ExecStartPost: without it api → boards fails (the source is rewritten).
      if (h.podman.rootless) {
        const r = await h.podman.podman(['unshare', '--rootless-netns', 'cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'], { timeoutMs: 20_000 });
        if (r.stdout.trim() !== '0') throw new Error(`bridge-nf-call-iptables in ${h.name}'s rootless network namespace: ${r.stdout}${r.stderr}`);
      }
    }));
  }, 300_000);

  /** Stops the units (last started first), ends their health checks, tears the Podmans and the namespaces down. Idempotent. */
  const teardown = async () => {
    const errors: string[] = [];
    for (const h of hosts) {
      errors.push(...((await h.runner?.stop().catch((e: unknown) => [String(e)])) ?? []));
      await h.runner?.close();
      await h.podman?.teardown();
    }
    await net?.teardown();
    return errors;
  };
  afterAll(() => teardown(), 180_000);

  it('GIVEN the generated units WHEN started THEN each host runs its network, secrets, gateway and service from them, the remote names in the service\'s /etc/hosts', async () => {
    for (const h of hosts) {
      expect(h.runner.started.map((r) => r.unit), h.name).toEqual([...(h.podman.rootless ? [] : [`podmesh-${STACK}-firewall.service`]), 'mesh-network.service', `podmesh-${STACK}-secrets.service`, `podmesh-${STACK}-wireguard.service`, `${STACK}-${SERVICE[h.name]}.service`]);
      // The rootful hosts' bridge firewall is loaded, with the gateway's ICMP errors let through.
      if (!h.podman.rootless) {
        const table = await h.podman.exec(['nft', 'list', 'table', 'bridge', `podmesh_${STACK}`], { asRoot: true });
        expect(table.stdout, `${h.name}: ${table.stderr}`).toMatch(/icmp type destination-unreachable accept comment "WireGuard gateway: path MTU and unreachable errors"/);
      }
      // The generated AddHost= lines: every remote service's name, at its address.
      const hostsFile = await h.podman.podman(['exec', container(h.name), 'cat', '/etc/hosts'], { timeoutMs: 20_000 });
      for (const other of HOSTS.filter((x) => x !== h.name)) {
        expect(hostsFile.stdout, h.name).toMatch(new RegExp(`^${ip(SERVICE[other]).replace(/\./g, '\\.')}\\s+${SERVICE[other]}\\.${STACK}\\.local$`, 'm'));
      }
    }
  });

  it('GIVEN the gateways up WHEN a service calls another on a different host by name with its client certificate THEN mTLS succeeds and the callee sees the caller container\'s own address', async () => {
    // Out of the rootless host: api (a) to boards (c).
    await expectMtls(await callUntilOk('a', 'c'), 'a', 'c');
    // Between rootful hosts: auth (b) to boards (c).
    await expectMtls(await callUntilOk('b', 'c'), 'b', 'c');
    // Into the rootless host: boards (c) to api (a).
    await expectMtls(await callUntilOk('c', 'a'), 'c', 'a');
  }, 90_000);

  it('GIVEN host a rootless WHEN its gateway and service run THEN Podman is rootless, its files are the user\'s and the tunnel runs as the unprivileged user', async () => {
    const a = host(ROOTLESS);
    const info = await a.podman.podman(['info', '--format', '{{.Host.Security.Rootless}}'], { timeoutMs: 20_000 });
    expect(info.stdout.trim()).toBe('true');
    const key = join(a.podman.rootless!.homeOnMachine, `.config/podmesh/${STACK}/pki/services/api/client.key`);
    const st = execFileSync('stat', ['-c', '%u %a', key], { encoding: 'utf8' }).trim();
    expect(st).toBe(`${ROOTLESS_USER.uid} 600`);
    // The container's PID 1 (bash) and its wireguard-go, seen from the machine: owned by the user's uid.
    const pid = await a.podman.podman(['inspect', '--format', '{{.State.Pid}}', `podmesh-${STACK}-wireguard`], { timeoutMs: 20_000 });
    const status = readFileSync(`/proc/${Number(pid.stdout.trim())}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)\s+(\d+)/m.exec(status)?.slice(1)).toEqual([String(ROOTLESS_USER.uid), String(ROOTLESS_USER.uid)]);
    const children = readFileSync(`/proc/${Number(pid.stdout.trim())}/task/${Number(pid.stdout.trim())}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    const wgGo = children.find((c) => readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'wireguard-go');
    expect(wgGo).toBeDefined();
    expect(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${wgGo}/status`, 'utf8'))?.[1]).toBe(String(ROOTLESS_USER.uid));
    // The service's node, too.
    const node = await a.podman.podman(['inspect', '--format', '{{.State.Pid}}', container('a')], { timeoutMs: 20_000 });
    expect(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${Number(node.stdout.trim())}/status`, 'utf8'))?.[1]).toBe(String(ROOTLESS_USER.uid));
  }, 60_000);

  it('GIVEN no call from api to auth WHEN api calls auth on host b by name THEN the connection times out: a\'s gateway drops it', async () => {
    const c = await call('a', 'b');
    // curl's 28: the connection timed out, nothing answered (not a refusal by auth's policy, 403).
    expect(c.exitCode, c.error).toBe(28);
    expect(c.status).toBe(0);
    expect(await handshakes('b', 'a')).toEqual([]);
    // The drop is counted in a's gateway (the flow leaves a's slice undeclared).
    const t = await host('a').podman.podman(['exec', `podmesh-${STACK}-wireguard`, 'nft', 'list', 'table', 'inet', 'podmesh_wg0'], { timeoutMs: 10_000 });
    expect(t.stdout).toMatch(/iifname "eth0" oifname "wg0" counter packets [1-9]\d* bytes \d+ drop/);
  }, 60_000);

  it("GIVEN a's key rotated (`wireguard rotate`) and applied to b and c only WHEN the services call THEN a is locked out both ways, b still gets through", async () => {
    const rotated = await synthesize(['a']);
    await Promise.all(hosts.filter((x) => x.name !== 'a').map(async (h) => {
      await apply(h, rotated);
      await h.runner.restart([`podmesh-${STACK}-wireguard.service`]);
    }));
    const ac = await call('a', 'c');
    expect(ac.exitCode, ac.error).toBe(28);
    const ca = await call('c', 'a');
    expect(ca.exitCode, ca.error).toBe(28);
    await expectMtls(await callUntilOk('b', 'c'), 'b', 'c');
  }, 90_000);

  it('GIVEN the run WHEN its units stop and it is torn down THEN no namespace, mount, process or cgroup is left', async () => {
    const podmans = hosts.map((h) => h.podman);
    expect(await teardown()).toEqual([]);
    expect(net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    for (const p of podmans) expect(p.cgroups()).toEqual([]);
  }, 120_000);
});
