// What src/io/staged.ts and its worker thread (staging-worker.ts) share, apart so the worker loads
// nothing else: a ring of shared memory the files travel through, and the worker's answer.
//
// The ring: the main thread appends records (`[path bytes][data bytes]` as two uint32, then the
// path and the data in UTF-8, padded to 8 bytes), the worker consumes them and writes each file.
// Two counters (bytes appended, bytes consumed; uint32, wrapping) tell the free space. The ring
// full, the main thread keeps the files it is sent in a queue (references to texts it holds anyway)
// and writes the last of them itself at the end; it waits (Atomics.wait) only for a path sent twice,
// whose texts must stay in order. The worker waits while the ring is empty. The memory in flight
// stays bounded by the ring whatever the file system's speed. A record never wraps: where
// one does not fit before the end, a skip record fills the rest. Two more words say when the main
// thread has sent everything (or gave up) and when the worker failed.

/**
 * Control words (Int32) at the start of the shared memory: bytes appended, bytes consumed, the
 * main thread's "all sent" (1), the worker's "failed" (1), and whether the main thread waits for
 * room (1, only for a path sent twice), so that the worker wakes it only then (a wake per file
 * would cost a context switch each).
 */
export const HEAD = 0;
export const TAIL = 1;
export const ENDED = 2;
export const FAILED = 3;
export const MAIN_WAITING = 4;
/** Bytes of control words before the ring. */
export const CONTROL_BYTES = 32;

/** A record header's path length that means "skip to the ring's start". */
export const SKIP = 0xffffffff;
/** Record header: path and data byte counts. */
export const HEADER_BYTES = 8;

/** `n` rounded up to a multiple of 8 (records start 8-aligned, so a header always fits before the end). */
export const align8 = (n: number): number => (n + 7) & ~7;

/** The stat of every file and folder written (folders' taken once all was written), paths relative to the staging folder. */
export interface WrittenStats {
  readonly paths: readonly string[];
  /** Per path, {@link STAT_FIELDS} numbers: is a folder (1) or file (0), size, mtimeMs, ctimeMs, ino, mode. */
  readonly stats: Float64Array;
}

export const STAT_FIELDS = 6;

/** The worker's answer once the ring is drained: what it wrote, or why it stopped. */
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

/** The parts of a stat the fast path stamps. */
export function stampStat(st: { isDirectory(): boolean; size: number; mtimeMs: number; ctimeMs: number; ino: number; mode: number }): StampStat {
  return { folder: st.isDirectory(), size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode };
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
