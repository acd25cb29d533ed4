// `podmesh apply`: installs one host's share of a stack (units, configs, certificates, secrets,
// WireGuard keys) under a root folder, prunes what podmesh installed earlier and no longer
// generates, and restarts only the units whose files changed. Planned in full first (the
// dry run prints the plan); a manifest in the host root records what podmesh owns.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join, posix, relative, sep } from 'node:path';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { writeAtomic } from '../io/atomic.ts';
import type { ResolvedHost, ResolvedService, ResolvedStack } from '../resolve/model.ts';
import { containerUnitStem, hostRoot, targetName, unitDirs } from '../render/systemd.ts';
import { supports } from '../render/quadlet/versions.ts';
import { wireguardInstallDir, wireguardUnitName } from '../render/wireguard.ts';
import { secretEnvFile } from '../state/secrets/paths.ts';
import { hostKeyFile, presharedKeyFile } from '../state/wireguard/index.ts';

/** Name of the manifest of installed files, in the host root. */
export const APPLIED_MANIFEST = '.podmesh-applied.json';

/** Modes of installed files and podmesh's own folders. */
const MODE = { file: 0o644, secret: 0o600, privateDir: 0o700, dir: 0o755 } as const;

/** Input of {@link planApply}. */
export interface ApplyOptions {
  /** The resolved stack (from the stack files, with `out/` matching it). */
  readonly stack: ResolvedStack;
  /** Host to install. */
  readonly host: string;
  /** Output folder holding `<stack>/hosts/<host>/`. */
  readonly outDir: string;
  /** State folder holding `<stack>/pki`, `<stack>/secrets`, `<stack>/wireguard`. */
  readonly stateDir: string;
  /** Folder every installed path is placed under. @default '/' */
  readonly root?: string;
  /**
   * Home of the user a rootless host runs as (`%h`, `~`); under `root` it is `<root><home>`.
   * @default - $HOME
   */
  readonly home?: string;
}

/** A file podmesh installs, with what it means for the running units. */
interface Desired {
  /** Path on the host (absolute, without the root). */
  readonly path: string;
  /** Where the content comes from, for the plan. */
  readonly source: string;
  readonly content: string;
  readonly mode: number;
  /** Units to restart when the file changes or goes. */
  readonly units: readonly string[];
  /** A Quadlet or systemd unit file: its change needs a daemon-reload. */
  readonly unitFile: boolean;
  /** A change the service could pick up with its ReloadCmd (certificates, config files). */
  readonly reloadable: boolean;
}

/** One entry of the applied manifest. */
export interface AppliedFile {
  readonly sha256: string;
  /** Octal, e.g. "0600". */
  readonly mode: string;
  readonly units: readonly string[];
  readonly unitFile: boolean;
}

/** `<host root>/.podmesh-applied.json`: what podmesh installed, and commands a failed run left to do. */
export interface AppliedManifest {
  readonly version: 1;
  readonly stack: string;
  readonly host: string;
  /** By host path, sorted. */
  readonly files: Readonly<Record<string, AppliedFile>>;
  /** Left over by a run that stopped before its systemctl commands finished. */
  readonly pending?: { readonly daemonReload: boolean; readonly restart: readonly string[]; readonly enable: boolean };
}

/** A file to write, or an existing file whose mode is repaired. */
export interface PlannedWrite {
  readonly path: string;
  readonly source: string;
  readonly mode: number;
  readonly action: 'create' | 'update' | 'chmod';
}

/** A folder to create or whose mode is repaired. */
export interface PlannedDir {
  readonly path: string;
  readonly mode: number;
  readonly action: 'create' | 'chmod';
}

/** A command, as argv, with why it runs. */
export interface PlannedCommand {
  readonly argv: readonly string[];
  readonly why: string;
}

/** Everything an apply does, decided before anything is touched. */
export interface ApplyPlan {
  readonly stack: string;
  readonly host: string;
  readonly rootless: boolean;
  readonly root: string;
  /** Host root on the host (`/etc/podmesh/<stack>` or `<home>/.config/podmesh/<stack>`). */
  readonly hostRoot: string;
  readonly firstInstall: boolean;
  readonly dirs: readonly PlannedDir[];
  readonly writes: readonly PlannedWrite[];
  /** Files podmesh installed before and no longer generates. */
  readonly removes: readonly string[];
  /** Run before files change: stop units whose files go away. */
  readonly before: readonly PlannedCommand[];
  /** Run after files changed: daemon-reload, restarts or reloads, enable on first install. */
  readonly after: readonly PlannedCommand[];
  /** True when the plan does anything at all. */
  readonly changed: boolean;
  /** @internal contents of the writes, and the manifests to record. */
  readonly contents: ReadonlyMap<string, string>;
  readonly previous: AppliedManifest | undefined;
  readonly manifest: AppliedManifest;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const octal = (m: number) => `0${m.toString(8)}`;

/** Every regular file below `dir`, as sorted `/`-separated relative paths. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) out.push(r);
    }
  };
  walk('');
  return out.sort(compare);
}

/** `[unitName]` for a Quadlet file: `x.container` → `x.service`, `x.network` → `x-network.service`. */
function quadletService(file: string): string | undefined {
  const m = /^(.+)\.(container|network|volume|pod|kube|image|build)$/.exec(file);
  if (!m) return undefined;
  return m[2] === 'container' ? `${m[1]}.service` : `${m[1]}-${m[2]}.service`;
}

/** Certificate folders a service mounts: its own (when it has certificates) and any `pki` mount's. */
function pkiFolders(s: ResolvedService): string[] {
  const own = s.certificates.length > 0 ? [s.name] : [];
  return [...new Set([...own, ...s.mounts.filter((m) => m.type === 'pki').map((m) => m.source.split('/')[0]!)])];
}

/** The host's paths: base folders podmesh installs into. */
function hostPaths(stack: ResolvedStack, host: ResolvedHost, home: string) {
  const expand = (p: string) => p.replace(/^%h/, home).replace(/^~/, home);
  const dirs = unitDirs(host);
  return { quadlet: expand(dirs.quadlet), systemd: expand(dirs.systemd), root: expand(hostRoot(stack.name, host)), wireguard: wireguardInstallDir(stack.name) };
}

/**
 * Decides what installing `host` of `stack` under `root` changes. Reads `out/`, the state folder
 * and the target; writes nothing.
 * @throws PodmeshError when the host is unknown, `out/` has no files for it, or state files are missing
 */
export function planApply(options: ApplyOptions): ApplyPlan {
  const { stack } = options;
  const root = options.root ?? '/';
  const host = stack.hosts.find((h) => h.name === options.host);
  if (!host) {
    throw PodmeshError.at(stack.name, `has no host "${options.host}". Its hosts: ${stack.hosts.map((h) => h.name).join(', ')}. Pass one of them with --host.`);
  }
  const homeOpt = options.home ?? process.env.HOME;
  if (host.rootless && (!homeOpt || !homeOpt.startsWith('/'))) {
    throw PodmeshError.at(host.path, `is rootless, so its files go under the user's home, but the home "${homeOpt ?? ''}" is not an absolute path. Pass --home /home/USER.`);
  }
  const home = (homeOpt ?? '/root').replace(/\/+$/, '');
  const paths = hostPaths(stack, host, home);
  const srcDir = join(options.outDir, stack.name, 'hosts', host.name);
  if (!existsSync(srcDir)) {
    throw PodmeshError.at(srcDir, `does not exist: host ${host.name} has no generated files. Run \`podmesh synth --stack ${stack.name}\` (a host without services gets none).`);
  }
  const stateDir = join(options.stateDir, stack.name);
  const services = stack.services.filter((s) => s.host === host.name);
  const serviceUnit = (name: string) => `${containerUnitStem(stack, { name })}.service`;
  const wgUnit = wireguardUnitName(stack.name);
  const desired: Desired[] = [];
  const missing: string[] = [];

  // Generated files: units into the Quadlet and systemd folders, WireGuard configs, the rest mirrored.
  // compose.yaml reaches certificates and secrets through a path into the checkout's state folder;
  // in the host root they sit beside it (pki/, secrets/), so the installed copy points there.
  const statePrefix = `${relative(srcDir, stateDir).split(sep).join('/')}/`;
  for (const rel of listFiles(srcDir)) {
    const raw = readFileSync(join(srcDir, rel), 'utf8');
    const content = rel === 'compose.yaml' ? raw.replaceAll(statePrefix, './') : raw;
    const source = `${options.outDir}/${stack.name}/hosts/${host.name}/${rel}`;
    const [top, ...restParts] = rel.split('/');
    const rest = restParts.join('/');
    if (top === 'quadlet' && restParts.length === 1) {
      const unit = quadletService(rest);
      desired.push({ path: `${paths.quadlet}/${rest}`, source, content, mode: MODE.file, units: unit ? [unit] : [], unitFile: true, reloadable: false });
    } else if (top === 'systemd' && restParts.length === 1) {
      const units = rest.endsWith('.target') ? [] : [rest];
      desired.push({ path: `${paths.systemd}/${rest}`, source, content, mode: MODE.file, units, unitFile: true, reloadable: false });
    } else if (top === 'wireguard') {
      desired.push({ path: `${paths.wireguard}/${rest}`, source, content, mode: MODE.secret, units: [wgUnit], unitFile: false, reloadable: false });
    } else {
      const svc = top === 'config' ? services.find((s) => s.name === restParts[0]) : undefined;
      desired.push({ path: `${paths.root}/${rel}`, source, content, mode: MODE.file, units: svc ? [serviceUnit(svc.name)] : [], unitFile: false, reloadable: true });
    }
  }

  // State: certificate folders, secret env files, WireGuard keys.
  const state = (rel: string) => {
    const abs = join(stateDir, rel);
    if (!existsSync(abs)) {
      missing.push(abs);
      return undefined;
    }
    return readFileSync(abs, 'utf8');
  };
  const folders = new Map<string, string[]>();
  for (const s of services) for (const f of pkiFolders(s)) folders.set(f, [...(folders.get(f) ?? []), serviceUnit(s.name)]);
  for (const [folder, units] of [...folders].sort(([a], [b]) => compare(a, b))) {
    const dir = join(stateDir, 'pki/services', folder);
    if (!existsSync(dir)) {
      missing.push(dir);
      continue;
    }
    for (const file of listFiles(dir)) {
      const content = readFileSync(join(dir, file), 'utf8');
      const mode = file.endsWith('.key') ? MODE.secret : MODE.file;
      desired.push({ path: `${paths.root}/pki/services/${folder}/${file}`, source: `${stateDir}/pki/services/${folder}/${file}`, content, mode, units, unitFile: false, reloadable: true });
    }
  }
  for (const s of services.filter((x) => x.secretEnvironment.length > 0)) {
    const content = state(secretEnvFile(s.name));
    if (content !== undefined) {
      desired.push({ path: `${paths.root}/${secretEnvFile(s.name)}`, source: `${stateDir}/${secretEnvFile(s.name)}`, content, mode: MODE.secret, units: [serviceUnit(s.name)], unitFile: false, reloadable: false });
    }
  }
  const peers = stack.wireguard?.peers ?? [];
  if (peers.some((p) => p.host === host.name)) {
    const key = state(hostKeyFile(host.name));
    if (key !== undefined) desired.push({ path: `${paths.wireguard}/private.key`, source: `${stateDir}/${hostKeyFile(host.name)}`, content: key, mode: MODE.secret, units: [wgUnit], unitFile: false, reloadable: false });
    if (stack.wireguard!.presharedKeys) {
      for (const p of peers.filter((x) => x.host !== host.name)) {
        const psk = state(presharedKeyFile(host.name, p.host));
        if (psk !== undefined) {
          desired.push({ path: `${paths.wireguard}/psk/${p.host}.key`, source: `${stateDir}/${presharedKeyFile(host.name, p.host)}`, content: psk, mode: MODE.secret, units: [wgUnit], unitFile: false, reloadable: false });
        }
      }
    }
  }
  if (missing.length > 0) {
    throw new PodmeshError(
      missing.map((m) => ({
        path: m,
        message: `is missing from the state folder, so host ${host.name} cannot be installed. Run \`podmesh synth --stack ${stack.name}\` with this state folder (--state), or restore the state folder from backup.`,
      })),
    );
  }

  // Compare with the target.
  const at = (p: string) => join(root, p);
  const manifestPath = `${paths.root}/${APPLIED_MANIFEST}`;
  const previous = readManifest(at(manifestPath), manifestPath);
  const writes: PlannedWrite[] = [];
  const contents = new Map<string, string>();
  const touched: Desired[] = [];
  for (const d of desired.sort((a, b) => compare(a.path, b.path))) {
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
  const wanted = new Set(desired.map((d) => d.path));
  const gone = Object.entries(previous?.files ?? {}).filter(([p]) => !wanted.has(p)).sort(([a], [b]) => compare(a, b));
  const removes = gone.filter(([p]) => existsSync(at(p))).map(([p]) => p);

  // Folders: podmesh's own ones private where they hold keys, the system's unit folders created if missing.
  const dirModes = new Map<string, number>();
  const own = (base: string, mode: (rel: string) => number) => {
    for (const d of desired.filter((x) => x.path.startsWith(`${base}/`))) {
      for (let dir = posix.dirname(d.path); dir.length >= base.length; dir = posix.dirname(dir)) dirModes.set(dir, mode(dir.slice(base.length + 1)));
    }
  };
  own(paths.root, (rel) => (rel === 'pki' || rel.startsWith('pki/') || rel === 'secrets' ? MODE.privateDir : MODE.dir));
  own(paths.wireguard, () => MODE.privateDir);
  const dirs: PlannedDir[] = [];
  for (const [dir, mode] of [...dirModes].sort(([a], [b]) => compare(a, b))) {
    const abs = at(dir);
    if (!existsSync(abs)) dirs.push({ path: dir, mode, action: 'create' });
    else if ((statSync(abs).mode & 0o777) !== mode) dirs.push({ path: dir, mode, action: 'chmod' });
  }
  for (const dir of [paths.quadlet, paths.systemd]) {
    if (desired.some((d) => d.path.startsWith(`${dir}/`)) && !existsSync(at(dir))) dirs.push({ path: dir, mode: MODE.dir, action: 'create' });
  }

  // Commands.
  const systemctl = (...args: string[]) => ['systemctl', ...(host.rootless ? ['--user'] : []), ...args];
  const existingUnits = new Set(desired.flatMap((d) => (d.unitFile ? d.units : [])));
  const firstInstall = previous === undefined || previous.pending?.enable === true;
  const before: PlannedCommand[] = [];
  const stopped = new Set<string>();
  for (const [p, f] of gone) {
    if (!f.unitFile) continue;
    for (const u of f.units.filter((x) => !existingUnits.has(x))) {
      if (stopped.has(u)) continue;
      stopped.add(u);
      before.push({ argv: systemctl('stop', u), why: `${p} is no longer part of the stack` });
    }
  }
  const daemonReload = touched.some((d) => d.unitFile) || gone.some(([, f]) => f.unitFile) || previous?.pending?.daemonReload === true;
  // unit → whether every change behind it could be reloaded, and which file caused it.
  const restarts = new Map<string, { reload: boolean; why: string }>();
  const mark = (u: string, reloadable: boolean, why: string) => {
    if (!existingUnits.has(u)) return;
    const was = restarts.get(u);
    restarts.set(u, { reload: (was?.reload ?? true) && reloadable, why: was?.why ?? why });
  };
  for (const d of touched) for (const u of d.units) mark(u, d.reloadable, `${d.path} changed`);
  for (const [p, f] of gone) for (const u of f.units) mark(u, false, `${p} was removed`);
  for (const u of previous?.pending?.restart ?? []) mark(u, false, 'left over from an unfinished apply');
  const canReload = (unit: string) => {
    if (!supports('ReloadCmd', host.podmanVersion)) return false;
    const file = desired.find((d) => d.unitFile && d.units.includes(unit));
    return !!file && /^ReloadCmd=/m.test(file.content);
  };
  const after: PlannedCommand[] = [];
  if (daemonReload) after.push({ argv: systemctl('daemon-reload'), why: 'unit files changed' });
  const target = targetName(stack.name);
  if (firstInstall) {
    after.push({ argv: systemctl('enable', '--now', target), why: `first install of ${stack.name} on ${host.name}` });
    // Timers (the daily certificate expiry check) are not part of the target: enabled on their own.
    for (const d of desired) {
      const unit = d.units[0];
      if (d.unitFile && unit?.endsWith('.timer')) after.push({ argv: systemctl('enable', '--now', unit), why: `first install of ${stack.name} on ${host.name}` });
    }
  } else {
    const rank = (u: string) => (u === wgUnit ? 0 : u.endsWith('-network.service') ? 1 : u.endsWith('-volume.service') ? 2 : 3);
    const ordered = [...restarts].sort(([a], [b]) => rank(a) - rank(b) || compare(a, b));
    for (const [u, r] of ordered) after.push({ argv: systemctl(r.reload && canReload(u) ? 'reload' : 'restart', u), why: r.why });
  }

  const files: Record<string, AppliedFile> = {};
  for (const d of desired) files[d.path] = { sha256: sha256(d.content), mode: octal(d.mode), units: [...d.units], unitFile: d.unitFile };
  const manifest: AppliedManifest = { version: 1, stack: stack.name, host: host.name, files };
  const changed = dirs.length + writes.length + removes.length + before.length + after.length > 0 || gone.length > 0 || previous?.pending !== undefined;
  return {
    stack: stack.name,
    host: host.name,
    rootless: host.rootless,
    root,
    hostRoot: paths.root,
    firstInstall,
    dirs,
    writes,
    removes,
    before,
    after,
    changed,
    contents,
    previous,
    manifest,
  };
}

function readManifest(abs: string, shown: string): AppliedManifest | undefined {
  if (!existsSync(abs)) return undefined;
  try {
    const m = JSON.parse(readFileSync(abs, 'utf8')) as AppliedManifest;
    if (m.version !== 1 || typeof m.files !== 'object' || m.files === null) throw new Error('unknown format');
    return m;
  } catch (e) {
    throw PodmeshError.at(
      shown,
      `is podmesh's record of installed files, but it cannot be read (${(e as Error).message}). Move it away and apply again: everything is reinstalled, and files of services removed since are then no longer pruned (delete them by hand).`,
    );
  }
}

/** Runs one command (argv[0] is `systemctl`); injected so tests record instead of running. */
export type CommandRunner = (argv: readonly string[]) => Promise<void>;

/** What an apply did; `failed` set when it stopped. */
export interface ApplyResult {
  readonly done: readonly string[];
  readonly failed?: { readonly step: string; readonly error: string };
  readonly notDone: readonly string[];
  /** Commands not run because no runner was given (`--no-systemctl`): the operator runs them. */
  readonly skipped: readonly PlannedCommand[];
}

const serialize = (m: AppliedManifest) => {
  const files = Object.fromEntries(Object.entries(m.files).sort(([a], [b]) => compare(a, b)));
  return `${JSON.stringify({ ...m, files }, null, 2)}\n`;
};

/**
 * Carries out a plan: folders, a manifest recording the union of old and new files and the
 * commands still due, stops, writes, removals, the final manifest, then daemon-reload and
 * restarts; the manifest's pending commands are cleared last. Stops at the first failure; running
 * apply again finishes the job (files are compared again, pending commands are kept).
 * @param runner runs systemctl; undefined skips the commands (they are returned in `skipped`)
 */
export async function executeApply(plan: ApplyPlan, runner: CommandRunner | undefined): Promise<ApplyResult> {
  if (!plan.changed) return { done: [], notDone: [], skipped: [] };
  const at = (p: string) => join(plan.root, p);
  const manifestAbs = at(`${plan.hostRoot}/${APPLIED_MANIFEST}`);
  const restartUnits = plan.after.filter((c) => c.argv.includes('restart') || c.argv.includes('reload')).map((c) => c.argv[c.argv.length - 1]!);
  const pending = { daemonReload: plan.after.some((c) => c.argv.includes('daemon-reload')), restart: restartUnits, enable: plan.firstInstall };
  const steps: { name: string; run: () => Promise<void> }[] = [];
  const skipped: PlannedCommand[] = [];
  const command = (c: PlannedCommand) => {
    if (!runner) skipped.push(c);
    else steps.push({ name: `run ${c.argv.join(' ')}`, run: () => runner(c.argv) });
  };
  for (const d of plan.dirs) {
    steps.push({
      name: `${d.action === 'create' ? 'mkdir' : 'chmod'} ${octal(d.mode)} ${d.path}`,
      run: async () => {
        await mkdir(at(d.path), { recursive: true, mode: d.mode });
        await chmod(at(d.path), d.mode);
      },
    });
  }
  const union: AppliedManifest = { ...plan.manifest, files: { ...(plan.previous?.files ?? {}), ...plan.manifest.files }, pending };
  steps.push({
    name: `record ${plan.hostRoot}/${APPLIED_MANIFEST} (files and pending commands)`,
    run: async () => {
      await mkdir(dirname(manifestAbs), { recursive: true, mode: MODE.dir });
      await writeAtomic(manifestAbs, serialize(union), MODE.secret);
    },
  });
  plan.before.forEach(command);
  for (const w of plan.writes) {
    steps.push({
      name: `${w.action === 'chmod' ? 'chmod' : 'write'} ${octal(w.mode)} ${w.path}`,
      run: async () => (w.action === 'chmod' ? chmod(at(w.path), w.mode) : writeAtomic(at(w.path), plan.contents.get(w.path)!, w.mode)),
    });
  }
  // Empty-folder cleanup stays inside the host root, and keeps the WireGuard folder (rootful hosts have it there).
  const stops = new Set([plan.hostRoot, wireguardInstallDir(plan.stack)].map(at));
  for (const p of plan.removes) {
    steps.push({
      name: `remove ${p}`,
      run: async () => {
        await rm(at(p), { force: true });
        // Empty folders left behind (a removed service's config or certificates) go too.
        for (let dir = dirname(at(p)); !stops.has(dir) && dir.startsWith(at(plan.hostRoot) + '/'); dir = dirname(dir)) {
          if ((await readdir(dir)).length > 0) break;
          await rmdir(dir);
        }
      },
    });
  }
  steps.push({ name: `record ${plan.hostRoot}/${APPLIED_MANIFEST}`, run: () => writeAtomic(manifestAbs, serialize({ ...plan.manifest, pending }), MODE.secret) });
  plan.after.forEach(command);
  steps.push({ name: `clear pending commands in ${plan.hostRoot}/${APPLIED_MANIFEST}`, run: () => writeAtomic(manifestAbs, serialize(plan.manifest), MODE.secret) });

  const done: string[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    try {
      await step.run();
      done.push(step.name);
    } catch (e) {
      const error = (e as { shortMessage?: string }).shortMessage ?? (e as Error).message;
      return { done, failed: { step: step.name, error }, notDone: steps.slice(i + 1).map((s) => s.name), skipped };
    }
  }
  return { done, notDone: [], skipped };
}

/** The dry-run text: folders, files with modes, removals and commands, in the order they happen. */
export function formatPlan(plan: ApplyPlan): string {
  const where = plan.root === '/' ? '' : ` under ${plan.root}`;
  const head = `${plan.stack}/${plan.host}: ${plan.rootless ? 'rootless' : 'rootful'}, host root ${plan.hostRoot}${where}${plan.firstInstall ? ' (first install)' : ''}`;
  if (!plan.changed) return `${head}: up to date, nothing to do\n`;
  const lines = [
    `${head}:`,
    ...plan.dirs.map((d) => `  ${d.action === 'create' ? 'mkdir' : 'chmod'} ${octal(d.mode)} ${d.path}`),
    ...plan.before.map((c) => `  run   ${c.argv.join(' ')}    # ${c.why}`),
    ...plan.writes.map((w) => `  ${w.action === 'chmod' ? 'chmod' : 'write'} ${octal(w.mode)} ${w.path}${w.action === 'chmod' ? '' : `    # ${w.action === 'create' ? 'new' : 'changed'}, from ${w.source}`}`),
    ...plan.removes.map((p) => `  remove     ${p}    # no longer generated`),
    ...plan.after.map((c) => `  run   ${c.argv.join(' ')}    # ${c.why}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** The report of a run: what was done, and on failure what was not, and how to finish. */
export function formatResult(plan: ApplyPlan, r: ApplyResult): string {
  const lines: string[] = [];
  if (!plan.changed) return '';
  if (r.failed) {
    lines.push(`${plan.stack}/${plan.host}: apply FAILED at: ${r.failed.step}: ${r.failed.error}`);
    lines.push('  applied:', ...r.done.map((s) => `    ✓ ${s}`));
    lines.push('  not applied:', `    ✗ ${r.failed.step}`, ...r.notDone.map((s) => `    ✗ ${s}`));
    lines.push(`  Fix the cause and run the same podmesh apply again: it compares every file again and keeps the pending restarts in ${plan.hostRoot}/${APPLIED_MANIFEST}.`);
  } else {
    lines.push(`${plan.stack}/${plan.host}: applied: ${plan.writes.length} files written, ${plan.removes.length} removed, ${r.done.filter((s) => s.startsWith('run ')).length} commands run`);
  }
  if (r.skipped.length > 0) lines.push('  --no-systemctl: run these yourself:', ...r.skipped.map((c) => `    ${c.argv.join(' ')}`));
  return `${lines.join('\n')}\n`;
}
