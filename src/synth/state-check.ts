// Checking state folders against the stamps their cache entries recorded on a worker thread
// (state-check-worker.ts), while this one resolves the stacks: a synth the fast path did not
// serve plans only the state folders that changed, and learns which did by an lstat of every file
// in them (9,000 for a 1,000-service stack, about 75 ms), which no step before the plan needs.
// Only with a second core and a large folder; a worker that fails leaves the check to this
// thread, as without one (fastpath.ts beforePlan).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../io/worker-entry.ts';
import type { Stamp, StampList } from './stamps.ts';

/** One folder to check: its path and the stamps recorded (as the entry's text, and its top). */
export interface StateCheckRequest {
  readonly dir: string;
  readonly stamps: string;
  readonly top: Stamp | null;
}

/**
 * What a check found, with the time it started (`since`): the folder as recorded, and the stamps
 * to record next when racy ones have settled (`next`, as JSON, and its top); or why it is not.
 */
export type StateCheckResult =
  | { readonly since: number; readonly ok: true; readonly next?: { readonly stamps: string; readonly top: Stamp | null } }
  | { readonly since: number; readonly ok: false; readonly reason: string };

/** Below this many characters of stamps in all (about 650 stamps), checking on this thread costs less than starting a worker. */
export const STATE_CHECK_MIN_CHARS = 1 << 16;

/** The checks of state folders started on a worker: their results by the stamps they checked, or undefined when the worker failed. */
export interface StateChecks {
  readonly results: Promise<ReadonlyMap<StampList, StateCheckResult> | undefined>;
  /** Stops the worker when its results are not needed (the fast path served the run). */
  stop(): void;
}

const checkWorker = () => workerEntry(new URL('./state-check.mjs', import.meta.url), new URL('./state-check-worker.ts', import.meta.url));

/**
 * Starts checking each folder against its stamps on a worker thread, or undefined when this thread
 * should (one core, folders too small to be worth a worker, or a worker that cannot start).
 */
export function startStateChecks(folders: readonly { readonly dir: string; readonly stamps: StampList }[], minChars = STATE_CHECK_MIN_CHARS): StateChecks | undefined {
  if (folders.length === 0 || availableParallelism() < 2) return undefined;
  const requests: StateCheckRequest[] = folders.map((f) => ({ dir: f.dir, stamps: f.stamps.text, top: f.stamps.top }));
  if (requests.reduce((n, r) => n + r.stamps.length, 0) < minChars) return undefined;
  let worker: Worker;
  try {
    const entry = checkWorker();
    worker = new Worker(entry.code, { eval: entry.eval, workerData: requests });
  } catch {
    return undefined;
  }
  const results = new Promise<ReadonlyMap<StampList, StateCheckResult> | undefined>((resolve) => {
    worker.once('message', (r: readonly StateCheckResult[]) => resolve(Array.isArray(r) && r.length === folders.length ? new Map(folders.map((f, i) => [f.stamps, r[i]!])) : undefined));
    worker.once('error', () => resolve(undefined));
    worker.once('exit', () => resolve(undefined));
  });
  return { results, stop: () => void worker.terminate() };
}
