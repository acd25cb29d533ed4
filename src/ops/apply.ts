// `podmesh apply`: installs one host's share of a stack (units, configs, certificates, secrets,
// WireGuard keys) under a root folder, prunes what podmesh installed earlier and no longer
// generates, and restarts only the units whose files changed. What to install comes from the
// renderers (each file says where it goes, its mode, the units it affects and whether they can
// reload) and from the layout of the state folder; nothing is derived from file names or contents.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { expandHome, hostFolderPath, hostOutDir, pkiFileMode, stackDir, stateInstalls } from '../layout.ts';
import type { ResolvedHost, ResolvedStack } from '../resolve/model.ts';
import { renderInstalled } from '../render/stack.ts';
import { planInstall, type HostFolder, type InstallFile, type InstallTarget } from './apply-plan.ts';
import type { ApplyPlan } from './apply-types.ts';

export { APPLIED_MANIFEST, APPLIED_SHA256, sha256List, type AppliedFile, type AppliedManifest, type ApplyPlan, type PlannedCommand, type PlannedDir, type PlannedWrite } from './apply-types.ts';
export { planInstall, type HostFolder, type InstallFile, type InstallTarget } from './apply-plan.ts';
export { executeApply, formatPlan, formatResult, type ApplyResult, type CommandRunner } from './apply-run.ts';

/** Input of {@link planApply}. */
export interface ApplyOptions {
  /** The resolved stack (from the stack files, with `out/` matching it). */
  readonly stack: ResolvedStack;
  /** Host to install. */
  readonly host: string;
  /** Output folder holding `<stack>/hosts/<host>/` (named in the plan as the files' source). */
  readonly outDir: string;
  /** State folder holding `<stack>/pki`, `<stack>/secrets`, `<stack>/wireguard`. */
  readonly stateDir: string;
  /**
   * Where the stack's state files come from instead of `<stateDir>/<stack>` (a decrypted per-host
   * bundle, `apply --state-bundle`). @default - the state folder
   */
  readonly state?: StateSource;
  /** Folder every installed path is placed under. @default '/' */
  readonly root?: string;
  /**
   * Home of the user a rootless host runs as (`%h`); under `root` it is `<root><home>`.
   * @default - $HOME
   */
  readonly home?: string;
  /** Whether `root` is the running system (systemctl commands run). @default root === '/' */
  readonly live?: boolean;
}

/**
 * Decides what installing `host` of `stack` under `root` changes. Renders the stack as hosts
 * install it, reads the state folder and the target; writes nothing.
 * @throws PodmeshError when the host is unknown, has no files, or state files are missing
 */
export function planApply(options: ApplyOptions): ApplyPlan {
  return planInstall(installTarget(options));
}

/**
 * What installing `host` of `stack` under `root` installs: the files (rendered, and from the
 * state folder), the host folders and volumes. Reads the state folder; writes nothing.
 * @throws PodmeshError when the host is unknown, has no files, or state files are missing
 */
export function installTarget(options: ApplyOptions): InstallTarget {
  const { stack } = options;
  const host = hostOf(stack, options.host);
  const home = homeOf(host, options.home ?? process.env.HOME);
  const source = options.state ?? folderSource(join(options.stateDir, stackDir(stack.name)));
  const files = [...renderedFiles(stack, host, options.outDir), ...stateFiles(stack, host, source)];
  const volumes = stack.volumes.filter((v) => v.host === host.name).map((v) => v.name);
  return { stack: stack.name, host, files, root: options.root ?? '/', home, folders: hostFolders(stack, host), volumes, ...(options.live !== undefined ? { live: options.live } : {}) };
}

/** The host folders the host's services mount. */
function hostFolders(stack: ResolvedStack, host: ResolvedHost): HostFolder[] {
  return stack.services
    .filter((s) => s.host === host.name)
    .flatMap((s) => s.mounts.filter((m) => m.type === 'folder').map((m) => ({ path: hostFolderPath(host, m.source), create: !m.source.startsWith('/'), service: s.path, target: m.target })));
}

/**
 * The host root an apply of `options` installs into, under its root folder: what its lock guards.
 * @throws PodmeshError when the host is unknown or a rootless host has no home
 */
export function applyTarget(options: Pick<ApplyOptions, 'stack' | 'host' | 'root' | 'home'>): string {
  const host = hostOf(options.stack, options.host);
  return join(options.root ?? '/', expandHome(host.install.root, homeOf(host, options.home ?? process.env.HOME)));
}

/** The host `name` of `stack`. @throws PodmeshError naming the stack's hosts when it has none of that name */
export function hostOf(stack: ResolvedStack, name: string): ResolvedHost {
  const host = stack.hosts.find((h) => h.name === name);
  if (host) return host;
  throw PodmeshError.at(stack.name, `has no host "${name}". Its hosts: ${stack.hosts.map((h) => h.name).join(', ')}. Pass one of them with --host.`);
}

function homeOf(host: ResolvedHost, home: string | undefined): string {
  if (host.rootless && (!home || !home.startsWith('/'))) {
    throw PodmeshError.at(host.path, `is rootless, so its files go under the user's home, but the home "${home ?? ''}" is not an absolute path. Pass --home /home/USER.`);
  }
  return (home ?? '/root').replace(/\/+$/, '');
}

/** The host's generated files, rendered as installed (compose.yaml finds the state beside it). */
function renderedFiles(stack: ResolvedStack, host: ResolvedHost, outDir: string): InstallFile[] {
  const rendered = renderInstalled(stack);
  if (rendered.issues.length > 0) throw new PodmeshError(rendered.issues);
  const files: InstallFile[] = [];
  for (const [path, f] of rendered.files) {
    if (f.install?.host === host.name) files.push({ source: `${outDir}/${stackDir(stack.name)}/${path}`, content: f.content, install: f.install });
  }
  if (files.length === 0) {
    throw PodmeshError.at(`${outDir}/${stackDir(stack.name)}/${hostOutDir(host.name)}`, `does not exist: host ${host.name} has no generated files. Run \`podmesh synth --stack ${stack.name}\` (a host without services gets none).`);
  }
  return files;
}

/**
 * The files of one stack's state, by path relative to `<state>/<stack>/`: the state folder itself,
 * or a decrypted bundle of it. Reads only.
 */
export interface StateSource {
  /** Where the files come from, for messages and the plan (`.podmesh/ashchan-prod`, `app.age`). */
  readonly where: string;
  /** Whether `rel` is a file, a folder (holding files), or absent. */
  kind(rel: string): 'file' | 'folder' | undefined;
  /** A file's text. */
  read(rel: string): string;
  /** Every file below folder `rel`, as sorted relative paths. */
  list(rel: string): string[];
  /** The message of a file the host needs that the source lacks. */
  missing(rel: string, stack: string, host: string): string;
}

/** A stack's state folder as a {@link StateSource}. */
export function folderSource(stackStateDir: string): StateSource {
  return {
    where: stackStateDir,
    kind(rel) {
      const abs = join(stackStateDir, rel);
      if (!existsSync(abs)) return undefined;
      return statSync(abs).isDirectory() ? 'folder' : 'file';
    },
    read: (rel) => readFileSync(join(stackStateDir, rel), 'utf8'),
    list: (rel) => listFiles(join(stackStateDir, rel)),
    missing: (_rel, stack, host) =>
      `is missing from the state folder, so host ${host} cannot be installed. Run \`podmesh synth --stack ${stack}\` with this state folder (--state), or restore the state folder from backup.`,
  };
}

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

/** One state file a host installs: its path inside `<state>/<stack>/`, its text and its install. */
export interface HostStateFile {
  readonly state: string;
  readonly content: string;
  readonly install: InstallFile['install'];
}

/**
 * Every state file host `host` installs (its services' certificate folders, the secret files they
 * mount, its WireGuard private and preshared keys), read from `source`: what apply installs and
 * what `podmesh state export --host` puts in a bundle.
 * @throws PodmeshError naming every file the source lacks
 */
export function hostStateFiles(stack: ResolvedStack, host: ResolvedHost, source: StateSource): HostStateFile[] {
  const files: HostStateFile[] = [];
  const missing: string[] = [];
  for (const s of stateInstalls(stack, host)) {
    const kind = source.kind(s.state);
    if (kind === undefined || (kind === 'folder') !== s.folder) {
      missing.push(s.state);
      continue;
    }
    if (!s.folder) {
      files.push({ state: s.state, content: source.read(s.state), install: s.install });
      continue;
    }
    for (const file of source.list(s.state)) {
      const install = { ...s.install, path: `${s.install.path}/${file}`, mode: pkiFileMode(file) };
      files.push({ state: `${s.state}/${file}`, content: source.read(`${s.state}/${file}`), install });
    }
  }
  if (missing.length === 0) return files;
  throw new PodmeshError(missing.map((m) => ({ path: `${source.where}/${m}`, message: source.missing(m, stack.name, host.name) })));
}

/** Certificates, secret files and WireGuard keys from the state, where the layout installs them. */
function stateFiles(stack: ResolvedStack, host: ResolvedHost, source: StateSource): InstallFile[] {
  return hostStateFiles(stack, host, source).map((f) => ({ source: `${source.where}/${f.state}`, content: f.content, install: f.install }));
}
