// Podman 5.4 (Debian 13) on this Debian 12 machine, inside a simulated host (RECIPES.md section 9):
// the trixie root filesystem built once by scripts/podman54-rootfs.sh (cached outside the clone,
// keyed by the script's hash) becomes the root of the host's own mount namespace (pivot_root), so
// every command entering that host sees Debian 13 with this run's storage, /run, /tmp and /mnt;
// nothing touches the cached root filesystem or the machine's Podman.
//
// Bookworm's Podman 4.3 cannot run what Quadlet 5.4 generates (`network create --ignore`,
// `--interface-name`, `run --sdnotify=healthy`); this one can.
//
// pivot_root, not chroot: under `chroot`, the bind mounts of a container's /etc/resolv.conf and
// /etc/hosts land on the chroot's own /etc files (seen in the container's mountinfo) and the
// container reads the machine's nameserver instead of aardvark-dns (observed with Podman 5.4.2 and
// runc 1.1.15 from trixie; the same commands under pivot_root give `nameserver 10.90.0.1`).
//
// Rootless (`rootless: true`): Podman runs as the root filesystem's unprivileged user
// {@link ROOTLESS_USER} (made by the script, with subordinate ids in /etc/subuid and /etc/subgid;
// newuidmap and newgidmap setuid root from Debian's uidmap, pasta from passt), its home a folder of
// the run, its XDG_RUNTIME_DIR a private 0700 folder on the host's /run; root only prepares them.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecOptions, ExecResult, SimHost } from './netns.ts';
import { findTool, inCI, repoRoot } from './tools.ts';

const SCRIPT = join(repoRoot, 'scripts/podman54-rootfs.sh');
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Where cgroup v2 is mounted on this machine: hybrid (`/sys/fs/cgroup/unified`) or unified. */
const CGROUP2 = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
const CGROUP_V1 = '/sys/fs/cgroup';
/** The machine's cgroup v1 hierarchies (hybrid), where rootless Podman and runc make cgroups too. */
const V1_HIERARCHIES = CGROUP2 === CGROUP_V1 ? [] : safeReaddir(CGROUP_V1).filter((h) => h !== 'unified' && existsSync(join(CGROUP_V1, h, 'cgroup.procs'))).sort();

/** Why Podman 5.4 cannot run here, or undefined when it can. */
export function podman54Unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'Podman 5.4 from a root filesystem needs root (mmdebstrap, mounts, pivot_root)';
  for (const name of ['mmdebstrap', 'pivot_root', 'flock']) {
    if (!findTool(name)) return `${name} is missing: run scripts/install-validators.sh (apt-get install mmdebstrap)`;
  }
  if (!existsSync(join(CGROUP2, 'cgroup.procs'))) return `no cgroup v2 hierarchy at ${CGROUP2} (podman run --cgroups=split needs a service cgroup)`;
  return undefined;
}

/** Skips with a message, or fails under CI, when {@link podman54Unavailable} says so. */
export function podman54Ready(): boolean {
  const reason = podman54Unavailable();
  if (!reason) return true;
  if (inCI) throw new Error(`${reason}; required under CI`);
  console.warn(`skipping the Podman 5.4 tests: ${reason}`);
  return false;
}

/**
 * The cached trixie root filesystem with Podman 5.4, built on first use (about 1 min, then reused
 * by every run and every clone on this machine).
 */
export function podman54Rootfs(): string {
  const out = execFileSync(SCRIPT, { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'inherit'] });
  const dir = out.trim().split('\n').pop() ?? '';
  if (!existsSync(join(dir, 'usr/bin/podman'))) throw new Error(`${SCRIPT} printed "${dir}", which holds no usr/bin/podman`);
  return dir;
}

/** The unprivileged user of a rootless host, as scripts/podman54-rootfs.sh creates it in the root filesystem. */
export const ROOTLESS_USER = { name: 'podmesh', uid: 1000, gid: 1000, home: '/home/podmesh', runtimeDir: '/run/user/1000' } as const;

/** A folder of the machine made visible inside the root filesystem. */
export interface Bind {
  /** Path on the machine. */
  readonly source: string;
  /**
   * Path inside the root filesystem: below `/mnt` or `/run` (private tmpfs, created as needed), or
   * an existing folder such as `/root` or `/etc/podmesh` (never created: the cached root stays as built).
   */
  readonly target: string;
  readonly readOnly?: boolean;
}

/** Options of {@link startPodman54}. */
export interface Podman54Options {
  /** A folder of the run (removed by its teardown) for Podman's storage. */
  readonly workDir: string;
  /** Extra folders to show inside the root filesystem. @default - none */
  readonly binds?: readonly Bind[];
  /**
   * Run Podman as {@link ROOTLESS_USER}, whose home is `<workDir>/rootless-home` on the machine.
   * @default false
   */
  readonly rootless?: boolean;
}

/** Options of {@link Podman54.exec}. */
export interface Podman54ExecOptions extends ExecOptions {
  /**
   * Run the command in this cgroup (a name below the run's own cgroup), as systemd runs a unit's
   * processes in the unit's cgroup. @default - the caller's cgroup
   */
  readonly cgroup?: string;
  /** On a rootless runtime, run the command as root (preparing the host), not as the user. @default false */
  readonly asRoot?: boolean;
}

/** Podman 5.4 inside one simulated host. */
export interface Podman54 {
  /** The root filesystem (on the machine; the host's root since {@link startPodman54}). */
  readonly root: string;
  /** The user Podman runs as on a rootless runtime, with its home on the machine; undefined when rootful. */
  readonly rootless?: { readonly user: typeof ROOTLESS_USER; readonly homeOnMachine: string };
  /** `cmd` in the host's namespaces, that is in the Debian 13 root (as the user on a rootless runtime). */
  exec(cmd: readonly string[], opts?: Podman54ExecOptions): Promise<ExecResult>;
  /** `podman ARGS` inside the root filesystem. */
  podman(args: readonly string[], opts?: Podman54ExecOptions): Promise<ExecResult>;
  /** `tar -C dir -c . | podman import CHANGES - name`, `dir` being a path inside the root (a bind). */
  importImage(dir: string, name: string, changes?: readonly string[]): Promise<void>;
  /** cgroups of this run still on the machine (all hierarchies); empty after teardown. */
  cgroups(): string[];
  /** Removes every container, pod, network, volume and image, then the run's cgroups. Idempotent. */
  teardown(): Promise<void>;
}

/**
 * Makes the Podman 5.4 root filesystem the root of `host`'s mount namespace: the root bound onto
 * itself (pivot_root and Podman's layer unpacking need a mount point), proc, sys, dev, tmpfs on
 * /run, /tmp and /mnt, the run's own storage on /var/lib/containers, then `binds`; then
 * pivot_root, and the machine's root is unmounted from the namespace. From then on every
 * `host.exec` runs in Debian 13.
 */
export async function startPodman54(host: SimHost, rootfs: string, opts: Podman54Options): Promise<Podman54> {
  sweepStaleCgroups();
  const storage = join(opts.workDir, 'podman54-storage');
  mkdirSync(storage, { recursive: true, mode: 0o700 });
  const u = ROOTLESS_USER;
  const home = join(opts.workDir, 'rootless-home');
  if (opts.rootless) {
    mkdirSync(home, { mode: 0o700 });
    chownSync(home, u.uid, u.gid);
  }
  const binds = [...(opts.binds ?? []), ...(opts.rootless ? [{ source: home, target: u.home }] : [])];
  const r = (p: string) => join(rootfs, p);
  const q = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;
  const script = [
    `mount --bind ${q(rootfs)} ${q(rootfs)}`,
    `mount -t proc proc ${q(r('proc'))}`,
    `mount --rbind /sys ${q(r('sys'))}`,
    `mount --rbind /dev ${q(r('dev'))}`,
    ...['run', 'tmp', 'mnt'].map((d) => `mount -t tmpfs -o mode=0755 tmpfs ${q(r(d))}`),
    `chmod 1777 ${q(r('tmp'))}`,
    `mount --bind ${q(storage)} ${q(r('var/lib/containers'))}`,
    ...binds.flatMap((b) => [
      /^\/(mnt|run)\//.test(b.target) ? `mkdir -p ${q(r(b.target))}` : `test -d ${q(r(b.target))}`,
      `mount --bind ${q(b.source)} ${q(r(b.target))}`,
      ...(b.readOnly ? [`mount -o remount,bind,ro ${q(r(b.target))}`] : []),
    ]),
    `mkdir ${q(r('mnt/.machine'))}`,
    `cd ${q(rootfs)}`,
    `pivot_root . mnt/.machine`,
    `cd /`,
    `umount -l /mnt/.machine`,
    `rmdir /mnt/.machine`,
    // Rootless Podman warns that "/" is not a shared mount (its own mount namespace then misses
    // mounts made later); shared within this host's namespace only (it was made private).
    ...(opts.rootless ? [`mount --make-rshared /`, `mkdir -p -m 0700 ${u.runtimeDir}`, `chown ${u.uid}:${u.gid} ${u.runtimeDir}`] : []),
  ].join(' && ');
  await host.exec(['sh', '-c', script], { reject: true });
  return new Runtime(host, rootfs, `podmesh-${host.netns}`, opts.rootless ? { user: u, homeOnMachine: home } : undefined);
}

class Runtime implements Podman54 {
  private tornDown = false;

  constructor(
    private readonly host: SimHost,
    readonly root: string,
    /** This run's cgroup name, below the v2 root and (created by Podman) in each v1 hierarchy. */
    private readonly cgroupName: string,
    readonly rootless?: { readonly user: typeof ROOTLESS_USER; readonly homeOnMachine: string },
  ) {}

  exec(cmd: readonly string[], opts: Podman54ExecOptions = {}): Promise<ExecResult> {
    const user = opts.asRoot ? undefined : this.rootless?.user;
    // A user manager's environment (systemd.exec(5)): HOME, USER, LOGNAME, XDG_RUNTIME_DIR.
    const userEnv: Record<string, string> = user ? { HOME: user.home, USER: user.name, LOGNAME: user.name, XDG_RUNTIME_DIR: user.runtimeDir } : {};
    const env = { PATH, PODMAN_IGNORE_CGROUPSV1_WARNING: '1', ...userEnv, ...opts.env };
    // util-linux's setpriv (in the root filesystem): the user's ids and groups, nothing else of root's.
    const argv = user ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', ...cmd] : [...cmd];
    if (!opts.cgroup) return this.host.exec(argv, { ...opts, env });
    // As systemd does for a unit (Delegate=yes): the process starts in its own cgroup, owned by the
    // user on a rootless runtime (a user manager's units get delegated cgroups). Podman's
    // `--cgroups=split` refuses to run from the root cgroup ("could not find cgroup mount").
    const dir = join(CGROUP2, this.cgroupName, opts.cgroup);
    if (!user) return this.host.exec(['sh', '-c', 'mkdir -p "$0" && echo $$ > "$0/cgroup.procs" && exec "$@"', dir, ...argv], { ...opts, env });
    // Rootless on this hybrid machine, Podman 5.4 reports cgroups v1: `--cgroups=split` makes its
    // cgroup below the process's own in the v1 memory hierarchy and runc the container's in every
    // v1 hierarchy, all root's ("mkdir /sys/fs/cgroup/memory/…/runtime: permission denied", then
    // "mkdir /sys/fs/cgroup/cpuset/podmesh-…: permission denied"). There too the unit gets a cgroup
    // handed to the user, the process in it (cpuset's cpus and mems copied from the parent, as v1
    // needs before a task joins). On cgroup v2 hosts systemd's delegation does all of this.
    const dirs = [dir, ...V1_HIERARCHIES.flatMap((h) => [join(CGROUP_V1, h, this.cgroupName), join(CGROUP_V1, h, this.cgroupName, opts.cgroup!)])];
    const script = [
      'owner=$1; shift',
      'for d in "$@"; do',
      '  [ "$d" = -- ] && break',
      '  mkdir -p "$d" || exit 1',
      '  for f in cpuset.cpus cpuset.mems; do [ -f "$d/$f" ] && [ -z "$(cat "$d/$f")" ] && { cat "$(dirname "$d")/$f" > "$d/$f" || exit 1; }; done',
      '  chown -R "$owner" "$d" && echo $$ > "$d/cgroup.procs" || exit 1',
      'done',
      'while [ "$1" != -- ]; do shift; done; shift',
      'exec "$@"',
    ].join('\n');
    return this.host.exec(['sh', '-c', script, 'sh', `${user.uid}:${user.gid}`, ...dirs, '--', ...argv], { ...opts, env });
  }

  podman(args: readonly string[], opts: Podman54ExecOptions = {}): Promise<ExecResult> {
    return this.exec(['podman', ...args], opts);
  }

  async importImage(dir: string, name: string, changes: readonly string[] = []): Promise<void> {
    const q = (p: string) => `'${p.replace(/'/g, `'\\''`)}'`;
    const r = await this.exec(['sh', '-c', `tar -C ${q(dir)} -c . | podman import ${changes.map(q).join(' ')} - ${q(name)}`], { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new Error(`podman import ${name}: ${r.stderr}`);
  }

  cgroups(): string[] {
    const found: string[] = [];
    for (const base of [CGROUP2, ...safeReaddir(CGROUP_V1).map((h) => join(CGROUP_V1, h))]) {
      const dir = join(base, this.cgroupName);
      if (existsSync(dir)) found.push(dir);
    }
    return [...new Set(found)];
  }

  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    const errors: string[] = [];
    const step = async (args: string[]) => {
      const r = await this.podman(args, { timeoutMs: 90_000 }).catch((e: unknown) => ({ exitCode: -1, stderr: String(e), stdout: '' }));
      if (r.exitCode !== 0) errors.push(`podman ${args.join(' ')}: ${r.stderr.trim()}`);
    };
    await step(['rm', '-af', '-t', '0']);
    // Rootless: the user's pause process (holding its user and mount namespaces) outlives
    // `system reset`; ended by its id, from the file Podman keeps it in.
    const pause = this.rootless ? await this.exec(['cat', `${this.rootless.user.runtimeDir}/libpod/tmp/pause.pid`]).catch(() => undefined) : undefined;
    await step(['system', 'reset', '-f']);
    const pausePid = Number(pause?.stdout.trim());
    if (pause?.exitCode === 0 && Number.isInteger(pausePid) && pausePid > 1) {
      try {
        process.kill(pausePid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    // conmon and the health checks lived in the units' cgroups: kill what is left, then remove them.
    for (const dir of this.cgroups()) {
      for (const sub of subtree(dir)) {
        for (const pid of readPids(sub)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
    }
    for (const dir of this.cgroups()) {
      for (const sub of subtree(dir).reverse()) {
        for (let i = 0; ; i++) {
          try {
            rmdirSync(sub);
            break;
          } catch (e) {
            if (i >= 40) {
              errors.push(`cgroup ${sub}: ${String(e)}`);
              break;
            }
            await sleep(50);
          }
        }
      }
    }
    if (errors.length) throw new Error(`Podman 5.4 teardown:\n${errors.join('\n')}`);
  }
}

/**
 * Removes the cgroups of runs whose simulated host is gone (a crashed test; its processes were
 * killed with its namespaces by netns.ts's sweep). Only empty cgroups can be removed; others stay.
 */
export function sweepStaleCgroups(): string[] {
  const removed: string[] = [];
  for (const base of [CGROUP2, ...safeReaddir(CGROUP_V1).map((h) => join(CGROUP_V1, h))]) {
    for (const entry of safeReaddir(base)) {
      const netns = /^podmesh-(pmns[0-9a-f]{8}-[a-z][a-z0-9]*)$/.exec(entry)?.[1];
      if (!netns || existsSync(join('/run/netns', netns))) continue;
      for (const dir of subtree(join(base, entry)).reverse()) {
        try {
          rmdirSync(dir);
          removed.push(dir);
        } catch {
          // still in use: left for a later sweep
        }
      }
    }
  }
  return removed;
}

/** `dir` and every cgroup below it, parents first. */
function subtree(dir: string): string[] {
  const out = [dir];
  for (const entry of safeReaddir(dir)) {
    const p = join(dir, entry);
    try {
      if (statSync(p).isDirectory()) out.push(...subtree(p));
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

function readPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

