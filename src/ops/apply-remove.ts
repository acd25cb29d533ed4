// `podmesh apply --remove`: takes a stack off a host from the applied manifest alone (the stack may
// be gone from the stack files): stop and disable its units, remove every file the manifest
// records and the folders that leaves empty, then the manifest; named volumes only on request.
import { existsSync } from 'node:fs';
import { readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { expandHome, hostInstall } from '../layout.ts';
import { runSteps, stepList, type ApplyResult, type CommandRunner } from './apply-run.ts';
import { APPLIED_MANIFEST, APPLIED_SHA256, readAppliedManifest, type AppliedManifest, type PlannedCommand } from './apply-types.ts';

/** Input of {@link planRemove}. */
export interface RemoveOptions {
  readonly stack: string;
  readonly host: string;
  /** Folder every host path is under. @default '/' */
  readonly root?: string;
  /** The user's home, where a rootless install is looked for. @default - $HOME */
  readonly home?: string;
  /** Also `podman volume rm` the stack's named volumes. @default false */
  readonly purgeVolumes?: boolean;
  /** Whether `root` is the running system. @default root === '/' */
  readonly live?: boolean;
}

/** Everything `apply --remove` does, decided before anything is touched. */
export interface RemovePlan {
  readonly stack: string;
  readonly host: string;
  readonly root: string;
  readonly rootless: boolean;
  readonly hostRoot: string;
  readonly live: boolean;
  /** Stop and disable, before the files go (for the running system). */
  readonly before: readonly PlannedCommand[];
  /** Under a root that is not the running system: `systemctl --root=DIR disable …`. */
  readonly offline: readonly PlannedCommand[];
  /** Files the manifest records that exist, then the manifest and checksum list. */
  readonly removes: readonly string[];
  /** Folders to remove when the removals leave them empty (podmesh's own). */
  readonly ownDirs: readonly string[];
  /** daemon-reload, then `podman volume rm` with --purge-volumes. */
  readonly after: readonly PlannedCommand[];
  /** Named volumes kept (without --purge-volumes). */
  readonly keptVolumes: readonly string[];
}

/** Where the stack's manifest would be on a rootful and on a rootless host. */
function candidates(stack: string, home: string | undefined) {
  const rootful = hostInstall(stack, { rootless: false });
  const out = [{ rootless: false, install: rootful, hostRoot: rootful.root }];
  if (home?.startsWith('/')) {
    const rootless = hostInstall(stack, { rootless: true });
    out.push({ rootless: true, install: rootless, hostRoot: expandHome(rootless.root, home.replace(/\/+$/, '')) });
  }
  return out;
}

/**
 * The host root a remove works on, under its root (what its lock guards): the one holding the
 * stack's manifest, else the rootful one.
 */
export function removeTarget(o: Pick<RemoveOptions, 'stack' | 'root' | 'home'>): string {
  const root = o.root ?? '/';
  const found = candidates(o.stack, o.home ?? process.env.HOME).find((c) => existsSync(join(root, c.hostRoot, APPLIED_MANIFEST)));
  return join(root, found?.hostRoot ?? hostInstall(o.stack, { rootless: false }).root);
}

/**
 * Decides what removing `stack` from `host` under `root` does, from the applied manifest. Reads only.
 * @throws PodmeshError when no manifest of the stack is found, it records another host, or
 * volumes are to be purged but the manifest (written before podmesh recorded them) names none
 */
export function planRemove(o: RemoveOptions): RemovePlan {
  const root = o.root ?? '/';
  const home = o.home ?? process.env.HOME;
  const at = (p: string) => join(root, p);
  const found = candidates(o.stack, home).filter((c) => existsSync(at(`${c.hostRoot}/${APPLIED_MANIFEST}`)));
  if (found.length === 0) {
    const where = candidates(o.stack, home).map((c) => `${c.hostRoot}/${APPLIED_MANIFEST}`).join(' or ');
    throw PodmeshError.at(o.stack, `has no applied manifest on this host (${where}${root === '/' ? '' : ` under ${root}`}), so there is nothing podmesh installed to remove. Pass the --root and --home it was applied with.`);
  }
  if (found.length > 1) {
    throw PodmeshError.at(o.stack, `is installed both rootful (${found[0]!.hostRoot}) and rootless (${found[1]!.hostRoot}). Remove the rootless one as its user with --home, and the rootful one as root without it.`);
  }
  const { rootless, install, hostRoot } = found[0]!;
  const manifestPath = `${hostRoot}/${APPLIED_MANIFEST}`;
  const m = readRecord(at(manifestPath), manifestPath);
  if (m.host !== o.host || m.stack !== o.stack) {
    throw PodmeshError.at(manifestPath, `records stack ${m.stack} on host ${m.host}, not ${o.stack} on ${o.host}. Pass --host ${m.host} if this is the host you mean.`);
  }
  if (o.purgeVolumes && m.volumes === undefined) {
    throw PodmeshError.at(manifestPath, `was written before podmesh recorded the stack's volumes, so --purge-volumes does not know them. Run podmesh apply once (it records them), or remove without --purge-volumes and run podman volume rm yourself.`);
  }
  const live = o.live ?? root === '/';
  const systemctl = (...args: string[]) => [...install.systemctl, ...args];
  const files = Object.entries(m.files).sort(([a], [b]) => compare(a, b));
  const units = [...new Set(files.filter(([, f]) => f.unitFile).flatMap(([, f]) => f.units))].sort(compare);
  const enabled = m.enabled ?? [install.target, ...units.filter((u) => u.endsWith('.timer'))];
  const why = `remove ${o.stack} from ${o.host}`;
  const before: PlannedCommand[] = [
    { argv: systemctl('stop', ...[...new Set([...enabled, ...units])]), why },
    { argv: systemctl('disable', ...enabled), why },
  ];
  const offline = live || rootless ? [] : [{ argv: ['systemctl', `--root=${resolve(root)}`, 'disable', ...enabled], why: `${why}, under ${root}` }];
  // The manifest last: a remove that stops midway can run again.
  const removes = [...files.map(([p]) => p), `${hostRoot}/${APPLIED_SHA256}`].filter((p) => existsSync(at(p))).concat(manifestPath);
  const volumes = m.volumes ?? [];
  const after: PlannedCommand[] = [
    { argv: systemctl('daemon-reload'), why: 'unit files removed' },
    ...(o.purgeVolumes ? volumes.map((v) => ({ argv: ['podman', 'volume', 'rm', v], why: '--purge-volumes' })) : []),
  ];
  // The WireGuard folder is podmesh's on rootful hosts only (rootless stacks have no tunnel).
  const ownDirs = rootless ? [hostRoot] : [install.wireguardDir, hostRoot];
  return { stack: o.stack, host: o.host, root, rootless, hostRoot, live, before, offline, removes, ownDirs, after, keptVolumes: o.purgeVolumes ? [] : volumes };
}

function readRecord(abs: string, shown: string): AppliedManifest {
  return readAppliedManifest(abs, shown, ', so apply --remove does not know what to remove. Restore it (or apply the stack again to rewrite it), then remove.');
}

/**
 * Carries out a remove: stop and disable, remove the files (and folders they leave empty, up to
 * and including podmesh's own, never the shared unit folders), the manifest last, daemon-reload,
 * volumes. Stops at the first failure; the manifest stays until every file is gone, so running
 * the same remove again finishes the job.
 * @param runner runs systemctl and podman; undefined skips them (returned in `skipped`)
 */
export async function executeRemove(plan: RemovePlan, runner: CommandRunner | undefined): Promise<ApplyResult> {
  const at = (p: string) => join(plan.root, p);
  const list = stepList(plan.live, runner);
  const { steps, run, command } = list;
  plan.before.forEach(command);
  plan.offline.forEach(run);
  const own = new Set(plan.ownDirs.map(at));
  const top = at(plan.hostRoot);
  for (const p of plan.removes) {
    steps.push({
      name: `remove ${p}`,
      run: async () => {
        await rm(at(p), { force: true });
        // Empty folders left behind go, up to podmesh's own folders (included) or, outside them
        // (units), up to their first non-empty parent below a folder podmesh does not own.
        for (let dir = dirname(at(p)); dir.startsWith(`${top}/`) || own.has(dir); dir = dirname(dir)) {
          if (!existsSync(dir) || (await readdir(dir)).length > 0) break;
          await rmdir(dir);
          if (dir === top) break;
        }
      },
    });
  }
  for (const d of plan.ownDirs) {
    steps.push({
      name: `remove folder ${d} if empty`,
      run: async () => {
        if (existsSync(at(d)) && (await readdir(at(d))).length === 0) await rmdir(at(d));
      },
    });
  }
  plan.after.forEach(command);
  return runSteps(list);
}

/** The dry-run text of a remove, in the order it happens. */
export function formatRemovePlan(plan: RemovePlan): string {
  const where = plan.root === '/' ? '' : ` under ${plan.root}`;
  const cmd = (c: PlannedCommand, later: boolean) => `  ${later ? 'later' : 'run  '} ${c.argv.join(' ')}    # ${c.why}${later ? ' (on the host, once this root is live)' : ''}`;
  const lines = [
    `${plan.stack}/${plan.host}: remove, ${plan.rootless ? 'rootless' : 'rootful'}, host root ${plan.hostRoot}${where}:`,
    ...plan.before.map((c) => cmd(c, !plan.live)),
    ...plan.offline.map((c) => cmd(c, false)),
    ...plan.removes.map((p) => `  remove     ${p}`),
    ...plan.after.map((c) => cmd(c, !plan.live)),
    ...(plan.keptVolumes.length > 0 ? [`  keep volumes ${plan.keptVolumes.join(', ')}    # their data; --purge-volumes removes them`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** The report of a remove run. */
export function formatRemoveResult(plan: RemovePlan, r: ApplyResult): string {
  const lines: string[] = [];
  if (r.failed) {
    lines.push(`${plan.stack}/${plan.host}: remove FAILED at: ${r.failed.step}: ${r.failed.error}`);
    lines.push('  done:', ...r.done.map((s) => `    ✓ ${s}`));
    lines.push('  not done:', `    ✗ ${r.failed.step}`, ...r.notDone.map((s) => `    ✗ ${s}`));
    lines.push(`  Fix the cause and run the same podmesh apply --remove again: ${plan.hostRoot}/${APPLIED_MANIFEST} stays until every file is gone.`);
  } else {
    lines.push(`${plan.stack}/${plan.host}: removed: ${plan.removes.length} files, ${r.done.filter((s) => s.startsWith('run ')).length} commands run`);
  }
  if (r.skipped.length > 0) lines.push('  --no-systemctl: run these yourself:', ...r.skipped.map((c) => `    ${c.argv.join(' ')}`));
  if (r.deferred.length > 0) lines.push(`  ${plan.root} is not the running system: run these on the host once this root is live:`, ...r.deferred.map((c) => `    ${c.argv.join(' ')}`));
  return `${lines.join('\n')}\n`;
}
