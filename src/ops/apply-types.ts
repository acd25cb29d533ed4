// The data of an apply: its plan (decided before anything is touched) and the record of installed
// files it keeps on the host.
import { readFileSync } from 'node:fs';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';

/** Name of the manifest of installed files, in the host root. */
export const APPLIED_MANIFEST = '.podmesh-applied.json';

/**
 * Name of apply's checksum list in the host root, beside its manifest, in `sha256sum -c` format
 * (`<sha256>  <host path>`, one installed file a line): the daily check reads it without Node.
 */
export const APPLIED_SHA256 = '.podmesh-applied.sha256';

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
  /** Rootless host (`systemctl --user`): what `apply --remove` needs without the stack. */
  readonly rootless?: boolean;
  /** Units enabled on first install (the target, timers): `apply --remove` disables them. */
  readonly enabled?: readonly string[];
  /** Podman named volumes of the host's services: `apply --remove --purge-volumes` removes them. */
  readonly volumes?: readonly string[];
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
  /**
   * True when `root` is the running system (`/`, or a test simulating one): `before` and `after`
   * run. Else they are only printed, and only {@link offline} runs.
   */
  readonly live: boolean;
  /** Under a root that is not the running system: `systemctl --root=DIR enable …` on first install. */
  readonly offline: readonly PlannedCommand[];
  /** Folders podmesh owns (the host root, the WireGuard folder): kept when pruning empties them. */
  readonly ownDirs: readonly string[];
  /** Commands a run that stops midway leaves to the next: recorded in the applied manifest first. */
  readonly pending: NonNullable<AppliedManifest['pending']>;
  /** True when the plan does anything at all. */
  readonly changed: boolean;
  /** @internal contents of the writes, and the manifests to record. */
  readonly contents: ReadonlyMap<string, string>;
  readonly previous: AppliedManifest | undefined;
  readonly manifest: AppliedManifest;
  /** Content of {@link APPLIED_SHA256} for `manifest`. */
  readonly sha256List: string;
  /** The checksum list on the host differs from `sha256List` (missing: a host applied before it existed). */
  readonly sha256ListStale: boolean;
}

/** `0644` for 0o644. */
export const octal = (m: number): string => `0${m.toString(8)}`;

/** The {@link APPLIED_SHA256} text of a manifest: `<sha256>  <host path>` lines, sorted by path. */
export function sha256List(m: Pick<AppliedManifest, 'files'>): string {
  return Object.entries(m.files)
    .sort(([a], [b]) => compare(a, b))
    .map(([p, f]) => `${f.sha256}  ${p}\n`)
    .join('');
}

/**
 * Reads the applied manifest at `abs` (shown as `shown`).
 * @param fix what follows "cannot be read (why)" in the error: the consequence and the way out
 * @throws PodmeshError when it is not JSON or not a version 1 manifest
 */
export function readAppliedManifest(abs: string, shown: string, fix: string): AppliedManifest {
  try {
    const m = JSON.parse(readFileSync(abs, 'utf8')) as AppliedManifest;
    if (m.version !== 1 || typeof m.files !== 'object' || m.files === null) throw new Error('unknown format');
    return m;
  } catch (e) {
    throw PodmeshError.at(shown, `is podmesh's record of installed files, but it cannot be read (${(e as Error).message})${fix}`);
  }
}
