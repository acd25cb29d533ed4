// Simulated hosts for end-to-end network tests: one network namespace plus one private mount
// namespace per host, all on one underlay switch, torn down completely (also after a crashed run).
//
// Safety: every address configured here lives inside namespaces this module creates. The switch
// is itself a namespace; nothing is linked to or routed through the machine's own interfaces, so a
// simulated host can reach only its peers. See /work/shared/RECIPES.md sections 5 and 6.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { findTool, inCI } from './tools.ts';

/** Every namespace name starts with this plus the run id; stale ones are swept by it. */
const PREFIX = 'pmns';
/** Per-run state (owner, mount namespace files); a private bind mount so nsfs files can live there. */
const RUN_ROOT = '/run/podmesh-netns-test';
const FIXTURES = resolve(import.meta.dirname, '../fixtures/netns');
const RUN_ID = /^[0-9a-f]{8}$/;
const NETNS_OF_RUN = /^pmns([0-9a-f]{8})[-_]/;
const HOST_NAME = /^[a-z][a-z0-9]{0,9}$/;
const WG_IFACE_FILE = /^([a-zA-Z0-9_=+.-]{1,15})\.conf$/;

/** The result of a command run inside a simulated host. */
export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** Options of {@link SimHost.exec}. */
export interface ExecOptions {
  /** Text written to the command's stdin. @default - none */
  readonly input?: string;
  /** Kill the command after this long. @default 20_000 */
  readonly timeoutMs?: number;
  /** Throw when the command exits non-zero. @default false */
  readonly reject?: boolean;
  /** Extra environment variables. @default - none */
  readonly env?: Readonly<Record<string, string>>;
}

/** One simulated machine: its own network stack and its own view of /run/wireguard. */
export interface SimHost {
  /** The name given to {@link createHosts}. */
  readonly name: string;
  /** Name of its network namespace (`ip netns`). */
  readonly netns: string;
  /** File holding its mount namespace open (for `nsenter --mount=`). */
  readonly mountNs: string;
  /** Its address on the underlay, e.g. `198.51.100.1`. */
  readonly underlayIp: string;
  /** Its underlay interface, always `eth0`. */
  readonly underlayIface: string;
  /** Runs `cmd` inside the host's network and mount namespaces (as root, cwd `/`). */
  exec(cmd: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

/** Options of {@link createHosts}. */
export interface CreateHostsOptions {
  /**
   * Underlay subnet; host i gets the (i+1)th address.
   * @default '198.51.100.0/24'
   */
  readonly underlay?: string;
  /**
   * Directories that get a private tmpfs in each host's mount namespace.
   * @default - `/run/wireguard`, plus `/var/run/wireguard` when that is a different place
   */
  readonly privateDirs?: readonly string[];
  /**
   * `net.ipv4.conf.all.rp_filter` in each host. Strict by default so a test fails if a route is
   * asymmetric.
   * @default 1
   */
  readonly rpFilter?: 0 | 1 | 2;
}

/** A set of simulated hosts and the way to remove them. */
export interface SimNetwork {
  /** This run's random id (part of every namespace name). */
  readonly runId: string;
  /** The hosts, in the order of the names given. */
  readonly hosts: readonly SimHost[];
  /** A private 0700 folder for configs and keys, removed by teardown. */
  readonly workDir: string;
  /** The host called `name`; throws if there is none. */
  host(name: string): SimHost;
  /** Processes living in this run's namespaces right now. */
  processes(): ProcessInfo[];
  /** What of this run is still on the machine; all empty after teardown. */
  leftovers(): Leftovers;
  /** Stops listeners, brings interfaces down, kills every process in the namespaces, removes all. Idempotent. */
  teardown(): Promise<void>;
}

/** A process found in one of a run's namespaces. */
export interface ProcessInfo {
  readonly pid: number;
  readonly comm: string;
}

/** What a run left behind. */
export interface Leftovers {
  readonly netns: string[];
  readonly mounts: string[];
  readonly processes: ProcessInfo[];
  readonly paths: string[];
}

/** A running echo server, see {@link listen}. */
export interface Listener {
  readonly ip: string;
  readonly port: number;
  /** Source addresses of the connections accepted so far, in order. */
  readonly connections: readonly string[];
  /** Stops the server (SIGTERM, then SIGKILL after 2 s). */
  stop(): Promise<void>;
}

/** Options of {@link listen}. */
export interface ListenOptions {
  /** Serve TLS with this PEM certificate and key instead of plain TCP. @default - plain TCP */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** The server exits by itself after this long. @default 120_000 */
  readonly lifetimeMs?: number;
}

/** Options of {@link tcpProbe}. */
export interface ProbeOptions {
  /** Source address to bind, e.g. the host's slice address. @default - chosen by routing */
  readonly source?: string;
  /** Source port to bind. @default - an ephemeral port */
  readonly sourcePort?: number;
  /** Give up after this long. @default 3_000 */
  readonly timeoutMs?: number;
  /** Speak TLS; with `ca`, the server certificate must verify against it. @default - plain TCP */
  readonly tls?: { readonly ca?: string };
}

/** Outcome of {@link tcpProbe}. */
export type ProbeResult =
  | { readonly ok: true; readonly seenSource: string; readonly localAddress: string; readonly authorized?: boolean; readonly ms: number }
  | { readonly ok: false; readonly error: string; readonly ms: number };

/** Why these tests cannot run here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const name of ['ip', 'nsenter', 'unshare', 'mount', 'umount']) {
    if (!findTool(name)) return `${name} is missing: apt-get install iproute2 util-linux mount`;
  }
  // Root in an unprivileged container may still lack CAP_SYS_ADMIN / CAP_NET_ADMIN.
  const probe = spawnSync(findTool('unshare') ?? 'unshare', ['--net', '--mount', 'true'], { timeout: 5_000, encoding: 'utf8' });
  if (probe.status !== 0) return `cannot create namespaces here: ${(probe.stderr || String(probe.error)).trim()}`;
  return undefined;
}

/**
 * Skips (with a message) or, under CI, fails when namespaces are unavailable. Returns true when
 * the caller may go on; use as `describe.skipIf(!netnsReady())`.
 */
export function netnsReady(): boolean {
  const reason = netnsUnavailable();
  if (!reason) return true;
  if (inCI) throw new Error(`${reason}; required under CI`);
  console.warn(`skipping network namespace tests: ${reason}`);
  return false;
}

/**
 * Creates one network + mount namespace per name, all on one underlay bridge that lives in its
 * own "switch" namespace. Sweeps leftovers of dead earlier runs first. On failure, removes what
 * it created before rethrowing.
 */
export async function createHosts(names: readonly string[], opts: CreateHostsOptions = {}): Promise<SimNetwork> {
  const reason = netnsUnavailable();
  if (reason) throw new Error(`createHosts: ${reason}`);
  for (const name of names) {
    if (!HOST_NAME.test(name)) {
      throw new Error(`createHosts: host name "${name}" must match ${HOST_NAME} (it becomes part of interface names).`);
    }
  }
  if (new Set(names).size !== names.length) throw new Error(`createHosts: duplicate host names in ${names.join(', ')}.`);
  const underlay = parseCidr(opts.underlay ?? '198.51.100.0/24');
  if (names.length > 2 ** (32 - underlay.prefix) - 2) {
    throw new Error(`createHosts: ${names.length} hosts do not fit in ${opts.underlay}.`);
  }

  await sweepStale();
  const run = new Run(randomBytes(4).toString('hex'), opts);
  try {
    await run.create(names, underlay);
  } catch (e) {
    await run.teardown().catch(() => {});
    throw e;
  }
  return run;
}

/**
 * `wg-quick up FILE` inside the host (network and mount namespace). Without a kernel module
 * wg-quick starts wireguard-go by itself. The interface is named after the file (wg0.conf → wg0).
 */
export async function wgUp(host: SimHost, configPath: string): Promise<void> {
  const h = asSimHost(host);
  wgIface(configPath);
  const r = await h.exec([requireTool('wg-quick'), 'up', resolve(configPath)], { timeoutMs: 20_000 });
  if (r.exitCode !== 0) throw new Error(`[${h.name}] wg-quick up ${configPath} failed (${r.exitCode}):\n${r.stderr}`);
  h.wgConfigs.add(resolve(configPath));
}

/** `wg-quick down FILE` inside the host; waits until its wireguard-go has exited. */
export async function wgDown(host: SimHost, configPath: string): Promise<void> {
  const h = asSimHost(host);
  const iface = wgIface(configPath);
  const r = await h.exec([requireTool('wg-quick'), 'down', resolve(configPath)], { timeoutMs: 20_000 });
  h.wgConfigs.delete(resolve(configPath));
  if (r.exitCode !== 0) throw new Error(`[${h.name}] wg-quick down ${configPath} failed (${r.exitCode}):\n${r.stderr}`);
  // The old daemon unlinks /run/wireguard/IFACE.sock when it exits; a new `up` must not race it.
  const gone = await waitFor(() => h.wireguardGoPids(iface).length === 0, 5_000);
  if (!gone) throw new Error(`[${h.name}] wireguard-go ${iface} still running 5 s after wg-quick down.`);
}

/**
 * Holds a "container" address such as `10.90.0.70/26` on a port-less bridge (no dummy links on
 * this machine). The bridge is created on first use.
 */
export async function addSliceAddress(host: SimHost, cidrAddress: string, bridge = 'ctr0'): Promise<void> {
  const h = asSimHost(host);
  parseCidr(cidrAddress);
  if (!h.bridges.has(bridge)) {
    await ip(['-n', h.netns, 'link', 'add', bridge, 'type', 'bridge']);
    await ip(['-n', h.netns, 'link', 'set', bridge, 'up']);
    h.bridges.add(bridge);
  }
  await ip(['-n', h.netns, 'addr', 'add', cidrAddress, 'dev', bridge]);
}

/** Starts the echo server of `test/fixtures/netns/echo-server.mjs` inside `host`, bound to ip:port. */
export async function listen(host: SimHost, ip: string, port: number, opts: ListenOptions = {}): Promise<Listener> {
  const h = asSimHost(host);
  const args = [join(FIXTURES, 'echo-server.mjs'), ip, String(port), String(opts.lifetimeMs ?? 120_000)];
  if (opts.tls) args.push(resolve(opts.tls.cert), resolve(opts.tls.key));
  const child = execa(requireTool('nsenter'), [...h.nsenterArgs(), process.execPath, ...args], {
    reject: false,
    stdin: 'ignore',
    timeout: (opts.lifetimeMs ?? 120_000) + 5_000,
  });
  const connections: string[] = [];
  let stderr = '';
  const ready = new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`[${h.name}] echo server on ${ip}:${port} not listening after 5 s: ${stderr}`)), 5_000);
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const event = JSON.parse(line) as { event: string; remote?: string; message?: string };
        if (event.event === 'listening') {
          clearTimeout(timer);
          ok();
        } else if (event.event === 'connection' && event.remote) connections.push(event.remote);
        else if (event.event === 'error') fail(new Error(`[${h.name}] echo server on ${ip}:${port}: ${event.message}`));
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    void child.then((r) => {
      clearTimeout(timer);
      fail(new Error(`[${h.name}] echo server on ${ip}:${port} exited (${r.exitCode}): ${stderr}`));
    });
  });
  const stop = async (): Promise<void> => {
    h.listeners.delete(stop);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 2_000);
    await child;
    clearTimeout(t);
  };
  h.listeners.add(stop);
  try {
    await ready;
  } catch (e) {
    await stop();
    throw e;
  }
  return { ip, port, connections, stop };
}

/** One bounded TCP (or TLS) round trip from `from` to toIp:port; never throws for network failures. */
export async function tcpProbe(from: SimHost, toIp: string, port: number, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const h = asSimHost(from);
  const timeoutMs = opts.timeoutMs ?? 3_000;
  const spec = { host: toIp, port, timeoutMs, source: opts.source, sourcePort: opts.sourcePort, tls: opts.tls && { ca: opts.tls.ca && resolve(opts.tls.ca) } };
  const r = await h.exec([process.execPath, join(FIXTURES, 'tcp-probe.mjs'), JSON.stringify(spec)], {
    timeoutMs: timeoutMs + 10_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.exitCode !== 0 || !line.startsWith('{')) {
    throw new Error(`[${h.name}] probe to ${toIp}:${port} crashed (${r.exitCode}): ${r.stderr}`);
  }
  return JSON.parse(line) as ProbeResult;
}

/**
 * Removes what dead runs left behind: their namespaces (after killing the processes inside),
 * mount namespace files, state and work folders. Runs of live processes are left alone.
 * Returns the names of what was removed.
 */
export async function sweepStale(): Promise<string[]> {
  const removed: string[] = [];
  const live = new Set<string>();
  const stale = new Set<string>();
  for (const id of safeReaddir(RUN_ROOT)) {
    if (!RUN_ID.test(id)) continue;
    (ownerAlive(id) ? live : stale).add(id);
  }
  for (const ns of await netnsList()) {
    const id = NETNS_OF_RUN.exec(ns)?.[1];
    if (id && !live.has(id)) stale.add(id);
  }
  for (const entry of safeReaddir(tmpdir())) {
    const id = NETNS_OF_RUN.exec(`${entry}-`)?.[1];
    if (id && entry === `${PREFIX}${id}` && !live.has(id)) stale.add(id);
  }
  for (const id of stale) {
    const errors = await removeRun(id, workDirOf(id), removed);
    if (errors.length) console.warn(`sweepStale: run ${id}: ${errors.join('; ')}`);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------

class Run implements SimNetwork {
  readonly hosts: Host[] = [];
  readonly workDir: string;
  private readonly runDir: string;
  private readonly switchNs: string;
  /** `net:[inode]` / `mnt:[inode]` of every namespace made, to find processes even after deletion. */
  private readonly nsIds = new Set<string>();
  private tornDown = false;

  constructor(
    readonly runId: string,
    private readonly opts: CreateHostsOptions,
  ) {
    this.runDir = join(RUN_ROOT, runId);
    this.workDir = workDirOf(runId);
    this.switchNs = `${PREFIX}${runId}_switch`;
  }

  async create(names: readonly string[], underlay: Cidr): Promise<void> {
    // Owner first, so a concurrent sweep never takes this run for a dead one.
    mkdirSync(this.runDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.runDir, 'owner.json'), JSON.stringify({ pid: process.pid, start: startTime(process.pid) }));
    mkdirSync(join(this.runDir, 'mnt'), { mode: 0o700 });
    // unshare --mount=FILE needs FILE on a private mount (as ip netns does for /run/netns).
    await run('mount', ['--bind', this.runDir, this.runDir]);
    await run('mount', ['--make-private', this.runDir]);
    mkdirSync(this.workDir, { mode: 0o700 });

    await this.addNetns(this.switchNs);
    await ip(['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', this.switchNs, 'link', 'set', 'br0', 'up']);

    const privateDirs = this.opts.privateDirs ?? defaultPrivateDirs();
    for (const [i, name] of names.entries()) {
      const netns = `${PREFIX}${this.runId}-${name}`;
      const mountNs = join(this.runDir, 'mnt', name);
      const underlayIp = intToIp(underlay.network + i + 1);
      const host = new Host(name, netns, mountNs, underlayIp);
      await this.addNetns(netns);
      this.hosts.push(host);

      // Veth pair from the switch to the host; its host end is created directly in the host namespace.
      const port = `p-${name}`;
      await ip(['-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      await ip(['-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
      await ip(['-n', netns, 'addr', 'add', `${underlayIp}/${underlay.prefix}`, 'dev', 'eth0']);
      await ip(['-n', netns, 'link', 'set', 'eth0', 'up']);

      await this.addMountNs(mountNs, privateDirs);
      const sysctl = [
        `echo 1 > /proc/sys/net/ipv4/ip_forward`,
        `echo ${this.opts.rpFilter ?? 1} > /proc/sys/net/ipv4/conf/all/rp_filter`,
        `echo ${this.opts.rpFilter ?? 1} > /proc/sys/net/ipv4/conf/default/rp_filter`,
      ].join(' && ');
      await host.exec(['sh', '-c', sysctl], { reject: true });
    }
  }

  host(name: string): SimHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no simulated host "${name}" (have ${this.hosts.map((x) => x.name).join(', ')})`);
    return h;
  }

  processes(): ProcessInfo[] {
    return processesIn(this.nsIds);
  }

  leftovers(): Leftovers {
    const prefix = `${PREFIX}${this.runId}`;
    return {
      netns: netnsListSync().filter((n) => n.startsWith(prefix)),
      mounts: mountPoints().filter((m) => m === this.runDir || m.startsWith(`${this.runDir}/`)),
      processes: this.processes(),
      paths: [this.runDir, this.workDir].filter(exists),
    };
  }

  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    const errors: string[] = [];
    for (const h of this.hosts) {
      for (const stop of [...h.listeners]) await stop().catch((e: unknown) => errors.push(String(e)));
      for (const conf of [...h.wgConfigs]) await wgDown(h, conf).catch((e: unknown) => errors.push(String(e)));
    }
    errors.push(...(await killAll(this.nsIds)));
    errors.push(...(await removeRun(this.runId, this.workDir, [])));
    if (errors.length) throw new Error(`teardown of run ${this.runId}:\n${errors.join('\n')}`);
  }

  private async addNetns(name: string): Promise<void> {
    await ip(['netns', 'add', name]);
    this.nsIds.add(`net:[${statSync(`/run/netns/${name}`).ino}]`);
    await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private async addMountNs(file: string, privateDirs: readonly string[]): Promise<void> {
    writeFileSync(file, '', { mode: 0o600 });
    for (const dir of privateDirs) mkdirSync(dir, { recursive: true, mode: 0o755 });
    // Inside the new namespace: drop the copies of this run's nsfs files (they would keep other
    // hosts' namespaces referenced), hide the machine's named netns, give each private dir a tmpfs.
    const script = [
      `umount -l ${sh(this.runDir)}`,
      `{ umount -l /run/netns 2>/dev/null || true; }`,
      `mount -t tmpfs -o mode=0755,size=1m tmpfs /run/netns`,
      ...privateDirs.map((d) => `mount -t tmpfs -o mode=0755,size=4m tmpfs ${sh(d)}`),
    ].join(' && ');
    await run('unshare', [`--mount=${file}`, '--propagation', 'private', 'sh', '-c', script]);
    this.nsIds.add(`mnt:[${statSync(file).ino}]`);
  }
}

class Host implements SimHost {
  readonly underlayIface = 'eth0';
  readonly wgConfigs = new Set<string>();
  readonly bridges = new Set<string>();
  readonly listeners = new Set<() => Promise<void>>();

  constructor(
    readonly name: string,
    readonly netns: string,
    readonly mountNs: string,
    readonly underlayIp: string,
  ) {}

  nsenterArgs(): string[] {
    return [`--net=/run/netns/${this.netns}`, `--mount=${this.mountNs}`, '--'];
  }

  async exec(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await execa(requireTool('nsenter'), [...this.nsenterArgs(), ...cmd], {
      reject: false,
      timeout: opts.timeoutMs ?? 20_000,
      forceKillAfterDelay: 1_000,
      ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
      env: { PATH: toolPath(), ...opts.env },
    });
    const result = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? -1 };
    if (r.timedOut) throw new Error(`[${this.name}] ${cmd.join(' ')} timed out after ${opts.timeoutMs ?? 20_000} ms`);
    if (opts.reject && result.exitCode !== 0) {
      throw new Error(`[${this.name}] ${cmd.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
    }
    return result;
  }

  /** wireguard-go daemons serving `iface` in this host's network namespace. */
  wireguardGoPids(iface: string): number[] {
    const id = nsId(`/run/netns/${this.netns}`, 'net');
    if (!id) return [];
    return processesIn(new Set([id]))
      .filter((p) => p.comm === 'wireguard-go' && cmdline(p.pid).at(-1) === iface)
      .map((p) => p.pid);
  }
}

function asSimHost(host: SimHost): Host {
  if (!(host instanceof Host)) throw new Error(`${host.name} was not made by createHosts()`);
  return host;
}

/** Kills every process in the given namespaces: SIGTERM, then SIGKILL; waits until all are gone. */
async function killAll(nsIds: ReadonlySet<string>): Promise<string[]> {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    for (const p of processesIn(nsIds)) {
      try {
        process.kill(p.pid, signal);
      } catch {
        // already gone
      }
    }
    if (await waitFor(() => processesIn(nsIds).length === 0, 2_000)) return [];
  }
  return processesIn(nsIds).map((p) => `process ${p.pid} (${p.comm}) survived SIGKILL`);
}

/** Removes one run's namespaces, mount namespace files, bind mount, state and work folders. */
async function removeRun(id: string, workDir: string, removed: string[]): Promise<string[]> {
  const errors: string[] = [];
  const runDir = join(RUN_ROOT, id);
  const mntFiles = safeReaddir(join(runDir, 'mnt')).map((f) => join(runDir, 'mnt', f));
  const namespaces = (await netnsList()).filter((n) => NETNS_OF_RUN.exec(n)?.[1] === id);
  const ids = new Set<string>();
  for (const ns of namespaces) ids.add(nsId(`/run/netns/${ns}`, 'net') ?? '');
  for (const f of mntFiles) ids.add(nsId(f, 'mnt') ?? '');
  ids.delete('');
  errors.push(...(await killAll(ids)));
  for (const ns of namespaces) {
    await ip(['netns', 'del', ns]).then(
      () => removed.push(`netns ${ns}`),
      (e: unknown) => errors.push(String(e)),
    );
  }
  const mounted = new Set(mountPoints());
  for (const f of [...mntFiles, runDir]) {
    if (!mounted.has(f)) continue;
    await run('umount', [f]).then(
      () => removed.push(`mount ${f}`),
      (e: unknown) => errors.push(String(e)),
    );
  }
  for (const dir of [workDir, runDir]) {
    if (!exists(dir)) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
      removed.push(`dir ${dir}`);
    } catch (e) {
      errors.push(String(e));
    }
  }
  return errors;
}

// --- processes and namespaces ----------------------------------------------------------------

/** Processes (not zombies) whose network or mount namespace is one of `ids` (`net:[n]`, `mnt:[n]`). */
function processesIn(ids: ReadonlySet<string>): ProcessInfo[] {
  if (ids.size === 0) return [];
  const found: ProcessInfo[] = [];
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const net = readlinkSync(`/proc/${pid}/ns/net`);
      const mnt = readlinkSync(`/proc/${pid}/ns/mnt`);
      if (!ids.has(net) && !ids.has(mnt)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      found.push({ pid, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() });
    } catch {
      // exited meanwhile, or a kernel thread without namespaces
    }
  }
  return found;
}

function nsId(file: string, kind: 'net' | 'mnt'): string | undefined {
  try {
    return `${kind}:[${statSync(file).ino}]`;
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Field 22 of /proc/PID/stat: tells a live owner from a later process that reused its pid. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function ownerAlive(id: string): boolean {
  const file = join(RUN_ROOT, id, 'owner.json');
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as { pid: number; start?: string };
    return startTime(owner.pid) === owner.start;
  } catch {
    // No owner yet: a run being created right now, unless the folder is old.
    try {
      return Date.now() - statSync(join(RUN_ROOT, id)).mtimeMs < 30_000;
    } catch {
      return false;
    }
  }
}

async function netnsList(): Promise<string[]> {
  const r = await execa(requireTool('ip'), ['netns', 'list'], { reject: false, timeout: 10_000 });
  return parseNetnsList(String(r.stdout ?? ''));
}

function netnsListSync(): string[] {
  return safeReaddir('/run/netns');
}

function parseNetnsList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter(Boolean);
}

// --- small utilities ---------------------------------------------------------------------------

function defaultPrivateDirs(): string[] {
  const dirs = ['/run/wireguard'];
  let varRun = '/var/run';
  try {
    varRun = resolve('/var', readlinkSync('/var/run'));
  } catch {
    // /var/run is a real folder
  }
  if (varRun !== '/run') dirs.push('/var/run/wireguard');
  return dirs;
}

function workDirOf(id: string): string {
  return join(tmpdir(), `${PREFIX}${id}`);
}

function wgIface(configPath: string): string {
  const m = WG_IFACE_FILE.exec(basename(configPath));
  if (!m?.[1]) throw new Error(`${configPath}: wg-quick needs a file named IFACE.conf with IFACE of at most 15 characters.`);
  return m[1];
}

function requireTool(name: string): string {
  const path = findTool(name);
  if (!path) throw new Error(`${name} not found`);
  return path;
}

/** PATH for commands in a host: wg-quick calls wg and wireguard-go by name. */
function toolPath(): string {
  const dirs = ['wg', 'wireguard-go', 'ip'].map((t) => findTool(t)).filter((p): p is string => !!p).map(dirname);
  return [...new Set([...dirs, ...(process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')])].join(':');
}

async function run(name: string, args: readonly string[]): Promise<void> {
  const r = await execa(requireTool(name), args, { reject: false, timeout: 20_000, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`${name} ${args.join(' ')} exited ${r.exitCode}: ${String(r.stderr)}`);
}

function ip(args: readonly string[]): Promise<void> {
  return run('ip', args);
}

/** Polls `check` every 50 ms until it holds or `ms` have passed; whether it held. */
export async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > until) return false;
    await sleep(50);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function sh(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

interface Cidr {
  readonly network: number;
  readonly prefix: number;
}

function parseCidr(cidr: string): Cidr {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const prefix = Number(m?.[5]);
  if (!m || octets.some((o) => o > 255) || prefix > 32) {
    throw new Error(`"${cidr}" is not an IPv4 address with prefix length, e.g. "10.90.0.10/26".`);
  }
  const addr = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return { network: addr - (addr % size), prefix };
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

