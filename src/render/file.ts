// A rendered file as the plan carries it: its text and, for files a host installs, how they install.
import type { Issue } from '../../constructs/core/errors.ts';

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
  /** Restart order of the units (`STAGE` of the layout module): lower first, then by name. */
  readonly stage: number;
  /** Its units are enabled on their own on first install (a timer, which the target does not want). */
  readonly enable: boolean;
}

/** One file of a stack's output. */
export interface RenderedFile {
  readonly content: string;
  /** Absent for files that stay in `out/` (TOPOLOGY.md, the lock, the manifest). */
  readonly install?: Install;
}

/** What a renderer gives: its files (keyed by path in `out/<stack>/`) and the problems it found. */
export interface Rendering {
  readonly files: ReadonlyMap<string, RenderedFile>;
  readonly problems: readonly Issue[];
}
