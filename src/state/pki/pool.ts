// Issues many leaf certificates on worker threads (one per core, issue-worker.ts): key generation,
// encoding and signing spread over the cores. The main thread has already decided everything but
// keys and signatures (serials, validity, names: see engine/leaves.ts), so results do not depend on
// scheduling; they come back in job order. Any failure rejects the whole run (nothing is written:
// apply comes later) and every worker is ended; workers also end when the run is done.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { workerEntry, type WorkerEntry } from '../../io/worker-entry.ts';
import type { IssuerSpec, TbsSpec } from './tbs.ts';

/** One certificate to issue: its contents and which issuer (index into the issuers) signs it. */
export interface PoolJob {
  readonly spec: TbsSpec;
  readonly issuer: number;
}

/** An issuer as a worker receives it once: encoding data and its private key (PKCS#8 DER). */
export interface IssuerInit {
  readonly spec: IssuerSpec;
  readonly keyDer: Uint8Array;
}

/** A batch sent to a worker. */
export interface WorkerRequest {
  readonly batch: number;
  readonly jobs: readonly PoolJob[];
}

/** A worker's answer to one batch: the certificates in job order, or why it failed. */
export type WorkerReply =
  | { readonly batch: number; readonly results: readonly { readonly certPem: string; readonly keyPem: string }[]; readonly error?: undefined }
  | { readonly batch: number; readonly error: string; readonly results?: undefined };

/** How the pool runs. */
export interface PoolOptions {
  /**
   * Worker threads to start (at most one per job batch).
   * @default os.availableParallelism()
   */
  readonly workers?: number;
  /**
   * Certificates per message: large enough that messaging costs little, small enough to balance.
   * @default 32
   */
  readonly batchSize?: number;
}

/** The issuing worker: dist/pki-worker.mjs built, issue-worker.ts from the sources. */
const issueWorker = (): WorkerEntry => workerEntry(new URL('./pki-worker.mjs', import.meta.url), new URL('./issue-worker.ts', import.meta.url));

let live = 0;

/** Worker threads of this module running now (0 once every run has settled). */
export function liveWorkers(): number {
  return live;
}

/**
 * Issues `jobs` on worker threads; answers `{ certPem, keyPem }` per job, in job order.
 * @throws Error when a worker fails to start or to issue; all workers have ended by then.
 */
export function issueInWorkers(jobs: readonly PoolJob[], issuers: readonly IssuerInit[], options: PoolOptions = {}): Promise<{ certPem: string; keyPem: string }[]> {
  const batchSize = Math.max(1, options.batchSize ?? 32);
  const batches: PoolJob[][] = [];
  for (let i = 0; i < jobs.length; i += batchSize) batches.push(jobs.slice(i, i + batchSize));
  const count = Math.max(1, Math.min(options.workers ?? availableParallelism(), batches.length));
  if (batches.length === 0) return Promise.resolve([]);
  const entry = issueWorker();
  const out: ({ certPem: string; keyPem: string }[] | undefined)[] = new Array(batches.length);
  // Settles once every worker of the run has exited: a caller never outlives its threads.
  return new Promise((resolve, reject) => {
    const workers: Worker[] = [];
    /** Workers this run ended (work done, or another failed): their exit is expected. */
    const ended = new Set<Worker>();
    const end = (w: Worker): void => {
      if (ended.has(w)) return;
      ended.add(w);
      void w.terminate();
    };
    let next = 0;
    let received = 0;
    let error: Error | undefined;
    let running = 0;
    const fail = (e: Error): void => {
      error ??= e;
      for (const w of workers) end(w);
      if (running === 0) reject(error);
    };
    const feed = (w: Worker): void => {
      if (next < batches.length) {
        const batch = next++;
        w.postMessage({ batch, jobs: batches[batch] as PoolJob[] } satisfies WorkerRequest);
      } else end(w);
    };
    for (let i = 0; i < count && !error; i++) {
      let w: Worker;
      try {
        // No inherited node flags: some are refused in workers (--input-type), none is needed there.
        w = new Worker(entry.code, { workerData: { issuers }, eval: entry.eval, execArgv: [] });
      } catch (e) {
        fail(e as Error);
        break;
      }
      live++;
      running++;
      workers.push(w);
      w.on('message', (reply: WorkerReply) => {
        if (error) return;
        if (reply.error !== undefined) {
          fail(new Error(`issuing worker failed: ${reply.error}`));
          return;
        }
        out[reply.batch] = [...reply.results];
        received++;
        feed(w);
      });
      w.on('error', (e) => fail(new Error(`issuing worker failed: ${e.message}`)));
      w.on('exit', (code) => {
        live--;
        running--;
        if (!ended.has(w)) error ??= new Error(`issuing worker exited (code ${code}) before finishing`);
        if (running > 0) {
          if (error) for (const x of workers) end(x);
          return;
        }
        if (error) reject(error);
        else if (received < batches.length) reject(new Error(`internal: issuing workers ended with ${batches.length - received} batches unanswered`));
        else resolve(out.flatMap((r) => r ?? []));
      });
      feed(w);
    }
  });
}
