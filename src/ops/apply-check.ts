// `podmesh apply --check`: drift. Compares a host (under its root) with the record of the last
// apply (`.podmesh-applied.json`) and with what apply would install now. Reads only; takes no lock.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { DATA_DIR, expandHome } from '../layout.ts';
import type { InstallTarget } from './apply-plan.ts';
import { APPLIED_MANIFEST, APPLIED_SHA256, octal, readAppliedManifest, type AppliedManifest } from './apply-types.ts';

/** A file changed on the host since the last apply, not by podmesh. */
export interface HandDrift {
  /**
   * `changed`: its sha256 differs from the one the last apply recorded; `removed`: recorded, missing
   * (or no longer a regular file); `added`: in podmesh's own folders, not recorded; `mode`: its
   * permissions differ from the recorded ones.
   */
  readonly kind: 'changed' | 'removed' | 'added' | 'mode';
  readonly path: string;
  /** For `mode`: recorded and found, octal. */
  readonly recorded?: string;
  readonly found?: string;
}

/** What the next apply would change because the stack (or the state folder) changed since the last one. */
export interface StackChange {
  readonly kind: 'new' | 'changed' | 'mode' | 'gone';
  readonly path: string;
}

/** The result of a drift check. */
export interface DriftReport {
  readonly stack: string;
  readonly host: string;
  readonly root: string;
  readonly hostRoot: string;
  /** Sorted by path, then kind. */
  readonly byHand: readonly HandDrift[];
  readonly stackChanges: readonly StackChange[];
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * Compares the host under `t.root` with the applied manifest and with `t.files`. Reads only.
 * "By hand" means: differs from what the last apply recorded (content, mode, presence), whatever
 * the stack now says; files in podmesh's own folders (the host root, the WireGuard folder) that
 * the manifest does not record are `added`, except the manifest, its checksum list, the host
 * folders services mount and the host root's `data/` folder (their data).
 * @throws PodmeshError when the host has no applied manifest (nothing was installed there)
 */
export function checkDrift(t: InstallTarget): DriftReport {
  const at = (p: string) => join(t.root, p);
  const hostRoot = expandHome(t.host.install.root, t.home);
  const manifestPath = `${hostRoot}/${APPLIED_MANIFEST}`;
  const manifest = readApplied(at(manifestPath), manifestPath, t);
  const byHand: HandDrift[] = [];
  for (const [path, f] of Object.entries(manifest.files)) {
    const abs = at(path);
    const st = existsSync(abs) ? lstatSync(abs) : undefined;
    if (!st || !st.isFile()) {
      byHand.push({ kind: 'removed', path });
      continue;
    }
    if (sha256(readFileSync(abs)) !== f.sha256) byHand.push({ kind: 'changed', path });
    const found = octal(st.mode & 0o777);
    if (found !== f.mode) byHand.push({ kind: 'mode', path, recorded: f.mode, found });
  }
  const own = [hostRoot, expandHome(t.host.install.wireguardDir, t.home)];
  const skip = new Set([manifestPath, `${hostRoot}/${APPLIED_SHA256}`]);
  // Host folders hold data: the ones mounted now, and the data folder below the host root, where
  // relative ones live and stay after the stack stops mounting them.
  const data = [`${hostRoot}/${DATA_DIR}`, ...(t.folders ?? []).map((f) => expandHome(f.path, t.home))];
  for (const path of ownFiles(own, at)) {
    if (manifest.files[path] || skip.has(path) || data.some((d) => path === d || path.startsWith(`${d}/`))) continue;
    byHand.push({ kind: 'added', path });
  }
  const order = ['removed', 'changed', 'mode', 'added'];
  byHand.sort((a, b) => compare(a.path, b.path) || order.indexOf(a.kind) - order.indexOf(b.kind));
  return { stack: t.stack, host: t.host.name, root: t.root, hostRoot, byHand, stackChanges: stackChanges(t, manifest) };
}

function readApplied(abs: string, shown: string, t: InstallTarget): AppliedManifest {
  if (!existsSync(abs)) {
    throw PodmeshError.at(shown, `does not exist${t.root === '/' ? '' : ` under ${t.root}`}: ${t.stack} was never applied to host ${t.host.name} here, so there is nothing to compare. Run podmesh apply --stack ${t.stack} --host ${t.host.name} first (or pass the --root/--home it was applied with).`);
  }
  return readAppliedManifest(abs, shown, '. Run podmesh apply to install the host again; it records the files anew.');
}

/** Every regular file or symlink below podmesh's own folders (host paths), deduplicated and sorted. */
function ownFiles(dirs: readonly string[], at: (p: string) => string): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(at(dir), { withFileTypes: true })) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else found.add(p);
    }
  };
  for (const d of dirs) if (existsSync(at(d)) && lstatSync(at(d)).isDirectory()) walk(d);
  return [...found].sort(compare);
}

/** Desired files against the manifest: what the next apply changes because the stack changed. */
function stackChanges(t: InstallTarget, m: AppliedManifest): StackChange[] {
  const changes: StackChange[] = [];
  const wanted = new Set<string>();
  for (const f of t.files) {
    const path = expandHome(f.install.path, t.home);
    wanted.add(path);
    const was = m.files[path];
    if (!was) changes.push({ kind: 'new', path });
    else if (was.sha256 !== sha256(f.content)) changes.push({ kind: 'changed', path });
    else if (was.mode !== octal(f.install.mode)) changes.push({ kind: 'mode', path });
  }
  for (const path of Object.keys(m.files)) if (!wanted.has(path)) changes.push({ kind: 'gone', path });
  return changes.sort((a, b) => compare(a.path, b.path));
}

/** The text of a drift check: files changed by hand (exit 1 when any), then what the next apply changes. */
export function formatDrift(r: DriftReport): string {
  const where = r.root === '/' ? '' : ` under ${r.root}`;
  const head = `${r.stack}/${r.host}: host root ${r.hostRoot}${where}`;
  const lines: string[] = [];
  if (r.byHand.length === 0) lines.push(`${head}: no drift: every file the last apply installed is as it was installed`);
  else {
    lines.push(`${head}: ${r.byHand.length} change${r.byHand.length === 1 ? '' : 's'} by hand since the last apply:`);
    for (const d of r.byHand) {
      if (d.kind === 'changed') lines.push(`  changed  ${d.path}    # content differs from what apply installed`);
      else if (d.kind === 'removed') lines.push(`  removed  ${d.path}    # apply installed it; it is missing`);
      else if (d.kind === 'added') lines.push(`  added    ${d.path}    # in podmesh's folder, not installed by apply`);
      else lines.push(`  mode     ${d.path}    # ${d.found}, apply installed it ${d.recorded}`);
    }
    lines.push('  The next podmesh apply restores changed, removed and mode-changed files; added files it leaves alone (delete them, or add them to the stack).');
  }
  if (r.stackChanges.length > 0) {
    lines.push(`  For information, the next apply changes (the stack or state changed since the last apply):`);
    const word = { new: 'new     ', changed: 'update  ', mode: 'chmod   ', gone: 'remove  ' } as const;
    for (const c of r.stackChanges) lines.push(`    ${word[c.kind]} ${c.path}`);
  }
  return `${lines.join('\n')}\n`;
}
