// The messages between src/io/staged.ts and its worker thread (staging-worker.ts), apart so the
// worker loads nothing else.

/** Files sent to the worker in one message: their paths, where each ends in `buffer` (UTF-8, back to back). */
export interface StagingBatch {
  readonly paths: readonly string[];
  readonly ends: readonly number[];
  readonly buffer: ArrayBuffer;
}

/** Numbers per entry of {@link WrittenStats}: is a folder (1) or file (0), size, mtimeMs, ctimeMs, ino, mode. */
export const STAT_FIELDS = 6;

/** The stat of every file and folder written (folders' taken once all was written), paths relative to the staging folder. */
export interface WrittenStats {
  readonly paths: readonly string[];
  readonly stats: Float64Array;
}

/** The worker's answer to `'end'`: what it wrote, or why it stopped. */
export type StagingReply = { readonly written: WrittenStats; readonly error?: undefined } | { readonly error: string; readonly written?: undefined };

/** A stat as the fast path stamps it (src/synth/fastpath.ts, Stamp). */
export interface StampStat {
  readonly folder: boolean;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly mode: number;
}

/** {@link WrittenStats} by path. */
export function statsByPath(w: WrittenStats): Map<string, StampStat> {
  const out = new Map<string, StampStat>();
  w.paths.forEach((path, i) => {
    const at = i * STAT_FIELDS;
    const s = w.stats;
    out.set(path, { folder: s[at] === 1, size: s[at + 1]!, mtimeMs: s[at + 2]!, ctimeMs: s[at + 3]!, ino: s[at + 4]!, mode: s[at + 5]! });
  });
  return out;
}
