// Apply planning from install metadata: given the files a host should hold (content plus where,
// mode, units, reload and restart stage), compare with the target and decide writes, removals,
// folders and systemctl commands. Nothing here knows a file name convention.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { MODE, expandHome } from '../layout.ts';
import type { Install } from '../render/file.ts';
import type { ResolvedHost } from '../resolve/model.ts';
import { APPLIED_MANIFEST, APPLIED_SHA256, octal, readAppliedManifest, sha256List, type AppliedFile, type AppliedManifest, type ApplyPlan, type PlannedCommand, type PlannedDir, type PlannedWrite } from './apply-types.ts';

/** A file a host should hold: its content, where it comes from (for the plan), and how it installs. */
export interface InstallFile {
  readonly source: string;
  readonly content: string;
  readonly install: Install;
}

/** Input of {@link planInstall}. */
export interface InstallTarget {
  readonly stack: string;
  /** The host: its name, rootless or not, and its install paths and unit names. */
  readonly host: Pick<ResolvedHost, 'name' | 'rootless' | 'install'>;
  readonly files: readonly InstallFile[];
  /** Folder every installed path is placed under. */
  readonly root: string;
  /** The user's home, for `%h` in rootless paths. */
  readonly home: string;
  /** Host folders mounted into the host's containers. @default - none */
  readonly folders?: readonly HostFolder[];
  /** Podman named volumes of the host's services (recorded for `apply --remove`). @default - none */
  readonly volumes?: readonly string[];
  /**
   * Whether `root` is the running system, so systemctl commands run (else only `systemctl
   * --root=DIR enable` on first install). Tests simulate a live host under a temporary root.
   * @default root === '/'
   */
  readonly live?: boolean;
}

/** A folder of the host mounted into a container (a `hostPath`). */
export interface HostFolder {
  /** On the host, `%h` unexpanded. */
  readonly path: string;
  /** Created when missing (a relative `hostPath`, below the host root); else only checked. */
  readonly create: boolean;
  /** Construct path of the service mounting it, and where. */
  readonly service: string;
  readonly target: string;
}

/** An install with `%h` expanded, its content and source. */
interface Desired extends Install {
  readonly source: string;
  readonly content: string;
}

/** A file of the previous apply that is no longer wanted. */
type Gone = readonly [path: string, file: AppliedFile];

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Decides what installing `files` on a host under `root` changes. Reads the target (and podmesh's
 * record of what it installed there); writes nothing.
 * @throws PodmeshError when the record of installed files cannot be read
 */
export function planInstall(t: InstallTarget): ApplyPlan {
  const at = (p: string) => join(t.root, p);
  const hostRoot = expandHome(t.host.install.root, t.home);
  const desired = t.files.map((f) => ({ ...f.install, path: expandHome(f.install.path, t.home), source: f.source, content: f.content })).sort((a, b) => compare(a.path, b.path));
  const manifestPath = `${hostRoot}/${APPLIED_MANIFEST}`;
  const previous = readManifest(at(manifestPath), manifestPath);
  const live = t.live ?? t.root === '/';
  const { writes, contents, touched } = compareWithTarget(desired, at);
  const wanted = new Set(desired.map((d) => d.path));
  const gone: Gone[] = Object.entries(previous?.files ?? {}).filter(([p]) => !wanted.has(p)).sort(([a], [b]) => compare(a, b));
  const removes = gone.filter(([p]) => existsSync(at(p))).map(([p]) => p);
  const ownDirs = [hostRoot, expandHome(t.host.install.wireguardDir, t.home)];
  const dirs = [
    ...plannedDirs(desired, ownDirs, [t.host.install.quadletDir, t.host.install.systemdDir].map((d) => expandHome(d, t.home)), at),
    ...folderDirs(t.folders ?? [], t.home, at),
  ];
  const firstInstall = previous === undefined || previous.pending?.enable === true;
  const commands = plannedCommands(t, desired, touched, gone, previous, firstInstall);
  const offline = live || !firstInstall ? [] : offlineEnables(t, desired);
  const files: Record<string, AppliedFile> = {};
  for (const d of desired) files[d.path] = { sha256: sha256(d.content), mode: octal(d.mode), units: [...d.units], unitFile: d.unitFile };
  const enabled = [t.host.install.target, ...desired.filter((d) => d.unitFile && d.enable).flatMap((d) => d.units)];
  const volumes = [...new Set(t.volumes ?? [])].sort(compare);
  const manifest: AppliedManifest = { version: 1, stack: t.stack, host: t.host.name, rootless: t.host.rootless, enabled, volumes, files };
  const list = sha256List(manifest);
  // A host applied before the checksum list existed gets it on the next apply.
  const listAbs = at(`${hostRoot}/${APPLIED_SHA256}`);
  const listStale = !existsSync(listAbs) || readFileSync(listAbs, 'utf8') !== list;
  const changed = dirs.length + writes.length + removes.length + commands.before.length + commands.after.length > 0 || gone.length > 0 || previous?.pending !== undefined || listStale;
  return { stack: t.stack, host: t.host.name, rootless: t.host.rootless, root: t.root, hostRoot, firstInstall, dirs, writes, removes, ...commands, live, offline, ownDirs, changed, contents, previous, manifest, sha256List: list, sha256ListStale: listStale };
}

/** Files to create, update or chmod, and the ones whose content changes (their units restart). */
function compareWithTarget(desired: readonly Desired[], at: (p: string) => string) {
  const writes: PlannedWrite[] = [];
  const contents = new Map<string, string>();
  const touched: Desired[] = [];
  for (const d of desired) {
    const abs = at(d.path);
    const st = existsSync(abs) ? lstatSync(abs) : undefined;
    let action: PlannedWrite['action'] | undefined;
    if (!st || !st.isFile()) action = 'create';
    else if (readFileSync(abs, 'utf8') !== d.content) action = 'update';
    else if ((st.mode & 0o777) !== d.mode) action = 'chmod';
    if (!action) continue;
    writes.push({ path: d.path, source: d.source, mode: d.mode, action });
    contents.set(d.path, d.content);
    if (action !== 'chmod') touched.push(d);
  }
  return { writes, contents, touched };
}

/**
 * Folders to create or repair: below podmesh's own folders, private (0700) where they hold a
 * private file at any depth, else 0755; the host root itself stays 0755 (configs and compose are
 * read from it). System unit folders are only created when missing.
 */
function plannedDirs(desired: readonly Desired[], ownDirs: readonly string[], unitDirs: readonly string[], at: (p: string) => string): PlannedDir[] {
  const [hostRoot] = ownDirs;
  const modes = new Map<string, number>();
  for (const base of ownDirs) {
    for (const d of desired.filter((x) => x.path.startsWith(`${base}/`))) {
      for (let dir = posix.dirname(d.path); dir.length >= base.length; dir = posix.dirname(dir)) {
        const priv = dir !== hostRoot && (modes.get(dir) === MODE.privateDir || d.mode === MODE.secret);
        modes.set(dir, priv ? MODE.privateDir : MODE.dir);
      }
    }
  }
  const dirs: PlannedDir[] = [];
  for (const [dir, mode] of [...modes].sort(([a], [b]) => compare(a, b))) {
    const abs = at(dir);
    if (!existsSync(abs)) dirs.push({ path: dir, mode, action: 'create' });
    else if ((statSync(abs).mode & 0o777) !== mode) dirs.push({ path: dir, mode, action: 'chmod' });
  }
  for (const dir of unitDirs) {
    if (desired.some((d) => d.path.startsWith(`${dir}/`)) && !existsSync(at(dir))) dirs.push({ path: dir, mode: MODE.dir, action: 'create' });
  }
  return dirs;
}

/**
 * Host folders to create (relative `hostPath`s, below the host root; never removed, they hold
 * data). An absolute one that is missing or not a folder stops the plan: podmesh does not create
 * folders outside its own, and Podman would refuse to start the container.
 * @throws PodmeshError naming every such folder, its service and the fix
 */
function folderDirs(folders: readonly HostFolder[], home: string, at: (p: string) => string): PlannedDir[] {
  const dirs = new Map<string, PlannedDir>();
  const problems: Issue[] = [];
  for (const f of folders) {
    const path = expandHome(f.path, home);
    const st = existsSync(at(path)) ? statSync(at(path)) : undefined;
    if (st && !st.isDirectory()) {
      problems.push({ path: f.service, message: `mounts ${path} at ${f.target}, but ${at(path)} is not a folder. Move the file away, or mount another path.` });
    } else if (!st && f.create) {
      dirs.set(path, { path, mode: MODE.dir, action: 'create' });
    } else if (!st) {
      problems.push({
        path: f.service,
        message: `mounts host folder ${path} at ${f.target}, but ${at(path)} does not exist: Podman would refuse to start the container. Create it on the host (mkdir -p ${path}, owned by the container's user), or give a relative hostPath, which apply creates below the host root.`,
      });
    }
  }
  if (problems.length > 0) throw new PodmeshError(problems);
  return [...dirs.values()].sort((a, b) => compare(a.path, b.path));
}

/** Stops before the files change; daemon-reload, then enable (first install) or restarts after. */
function plannedCommands(t: InstallTarget, desired: readonly Desired[], touched: readonly Desired[], gone: readonly Gone[], previous: AppliedManifest | undefined, firstInstall: boolean) {
  const systemctl = (...args: string[]) => [...t.host.install.systemctl, ...args];
  const existingUnits = new Set(desired.flatMap((d) => (d.unitFile ? d.units : [])));
  const before: PlannedCommand[] = [];
  const stopped = new Set<string>();
  for (const [p, f] of gone.filter(([, x]) => x.unitFile)) {
    for (const u of f.units.filter((x) => !existingUnits.has(x) && !stopped.has(x))) {
      stopped.add(u);
      before.push({ argv: systemctl('stop', u), why: `${p} is no longer part of the stack` });
    }
  }
  const daemonReload = touched.some((d) => d.unitFile) || gone.some(([, f]) => f.unitFile) || previous?.pending?.daemonReload === true;
  const after: PlannedCommand[] = daemonReload ? [{ argv: systemctl('daemon-reload'), why: 'unit files changed' }] : [];
  const restarts = restartSet(desired, touched, gone, previous, existingUnits);
  if (firstInstall) {
    const why = `first install of ${t.stack} on ${t.host.name}`;
    after.push({ argv: systemctl('enable', '--now', t.host.install.target), why });
    // Units outside the target (the daily certificate expiry timer) are enabled on their own.
    for (const d of desired.filter((x) => x.unitFile && x.enable)) for (const u of d.units) after.push({ argv: systemctl('enable', '--now', u), why });
  } else {
    for (const r of restarts) after.push({ argv: systemctl(r.reload ? 'reload' : 'restart', r.unit), why: r.why });
  }
  const pending = { daemonReload, restart: firstInstall ? [] : restarts.map((r) => r.unit), enable: firstInstall };
  return { before, after, pending };
}

/**
 * First install under a root that is not the running system: the enables, as `systemctl
 * --root=DIR enable` (symlinks in the root, no manager involved). Rootful only: systemctl 252
 * refuses `--user --root=` ("Failed to enable: Invalid argument"), and `--global` only finds units
 * in /etc/systemd/user, not a user's ~/.config/systemd/user; a rootless host's enables stay with
 * the commands to run on the host.
 */
function offlineEnables(t: InstallTarget, desired: readonly Desired[]): PlannedCommand[] {
  if (t.host.rootless) return [];
  const why = `first install of ${t.stack} on ${t.host.name}, into ${t.root}`;
  const units = [t.host.install.target, ...desired.filter((d) => d.unitFile && d.enable).flatMap((d) => d.units)];
  return units.map((u) => ({ argv: ['systemctl', `--root=${resolve(t.root)}`, 'enable', u], why }));
}

/** A unit to restart, or reload when every change behind it can be reloaded. */
interface Restart {
  readonly unit: string;
  readonly reload: boolean;
  readonly why: string;
}

/** The units whose files changed or went, in their stage order (tunnel, networks, volumes, services), then by name. */
function restartSet(desired: readonly Desired[], touched: readonly Desired[], gone: readonly Gone[], previous: AppliedManifest | undefined, existingUnits: ReadonlySet<string>): Restart[] {
  const stage = new Map<string, number>();
  for (const d of desired) for (const u of d.units) stage.set(u, Math.min(stage.get(u) ?? d.stage, d.stage));
  const found = new Map<string, Restart>();
  const mark = (unit: string, reloadable: boolean, why: string) => {
    if (!existingUnits.has(unit)) return;
    const was = found.get(unit);
    found.set(unit, { unit, reload: (was?.reload ?? true) && reloadable, why: was?.why ?? why });
  };
  for (const d of touched) for (const u of d.units) mark(u, d.reloadable, `${d.path} changed`);
  for (const [p, f] of gone) for (const u of f.units) mark(u, false, `${p} was removed`);
  for (const u of previous?.pending?.restart ?? []) mark(u, false, 'left over from an unfinished apply');
  return [...found.values()].sort((a, b) => stage.get(a.unit)! - stage.get(b.unit)! || compare(a.unit, b.unit));
}

function readManifest(abs: string, shown: string): AppliedManifest | undefined {
  if (!existsSync(abs)) return undefined;
  return readAppliedManifest(abs, shown, '. Move it away and apply again: everything is reinstalled, and files of services removed since are then no longer pruned (delete them by hand).');
}
