// A rendered file as the plan carries it: its text and, for files a host installs, how they install.

/**
 * How a file of `out/<stack>/hosts/<host>/` lands on its host. Renderers fill it; `apply` consumes
 * it and never parses file names or contents.
 */
export interface Install {
  /** Host that installs the file. */
  readonly host: string;
  /** Absolute path on the host (before any test root), from the layout module. */
  readonly path: string;
  /** Permission bits of the installed file. */
  readonly mode: number;
  /** Units to restart (or reload) when the file changes or goes. */
  readonly units: readonly string[];
  /** A Quadlet or systemd unit file: its change needs a daemon-reload. */
  readonly unitFile: boolean;
  /** Whether the affected units pick the change up with their reload command instead of a restart. */
  readonly reloadable: boolean;
}

/** One file of a stack's output. */
export interface RenderedFile {
  readonly content: string;
  /** Absent for files that stay in `out/` (TOPOLOGY.md, the lock, the manifest). */
  readonly install?: Install;
}
