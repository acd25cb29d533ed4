// The data of an apply: its plan (decided before anything is touched) and the record of installed
// files it keeps on the host.

/** Name of the manifest of installed files, in the host root. */
export const APPLIED_MANIFEST = '.podmesh-applied.json';

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
}

/** `0644` for 0o644. */
export const octal = (m: number): string => `0${m.toString(8)}`;
