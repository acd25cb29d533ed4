// Writing a stack's new out/ folder while it renders: the files go, as they are rendered, to a
// worker thread (staging-worker.ts) that writes them into the folder's staging copy, so the file
// system's work overlaps the rendering. Used only where the writer would write every file anyway
// (out/<stack> absent: a first synth, an emptied out/), and only with a second core. The writer
// (writer.ts, writeStackOutput) swaps the folder in as it does its own staging copy, after the
// state, once the worker wrote exactly the files of the plan; anything else (a problem, a check, a
// worker failure, out/<stack> appearing meanwhile) discards the copy and leaves the writer to do as
// before. The staging copy is not out/<stack>: until the swap nothing of the synth is visible.
import { existsSync, rmdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { previousDir, stagingDir, type StagedCopy } from './writer.ts';
import { statsByPath, type StagingBatch, type StagingReply, type StampStat } from './staging-protocol.ts';
import { workerEntry } from './worker-entry.ts';

/** Bytes gathered before a batch is sent: few messages, and the worker starts early. */
const BATCH_BYTES = 1 << 20;

/** A buffer that owns its whole ArrayBuffer (not a slice of Node's pool), so that it can be transferred. */
const batchBuffer = (size: number): Buffer => Buffer.from(new ArrayBuffer(Math.max(size, BATCH_BYTES)));

/** The staging worker: dist/out-writer.mjs built, staging-worker.ts from the sources. */
const stagingWorker = () => workerEntry(new URL('./out-writer.mjs', import.meta.url), new URL('./staging-worker.ts', import.meta.url));

/** A stack's staging copy being written by a worker thread. */
export class StagedOutput implements StagedCopy {
  /** The text last sent for each path (the same string objects the plan holds). */
  private readonly sent = new Map<string, string>();
  private paths: string[] = [];
  private ends: number[] = [];
  private buffer = batchBuffer(BATCH_BYTES);
  private used = 0;
  private readonly reply: Promise<StagingReply>;
  private settled = false;
  private written: ReadonlyMap<string, StampStat> | undefined;
  private inPlace = false;

  private constructor(
    /** The staging folder, `out/.<stack>.podmesh-staging`. */
    readonly stage: string,
    private readonly worker: Worker,
    /** Whether out/ itself was made for it (removed again with the copy, if still empty). */
    private readonly madeOutDir: boolean,
    private readonly outDir: string,
  ) {
    this.reply = new Promise((resolve) => {
      worker.once('message', (r: StagingReply) => resolve(r));
      worker.once('error', (e) => resolve({ error: e.message }));
      worker.once('exit', (code) => resolve({ error: `the staging worker exited (${code})` }));
    });
  }

  /**
   * Starts a staging copy of `out/<stack>` when the writer would write every file of it (the
   * folder and a half-swapped previous one absent) and a second core can do it; undefined otherwise.
   * Removes a staging copy a killed run left.
   */
  static start(outDir: string, stack: string): StagedOutput | undefined {
    if (availableParallelism() < 2) return undefined;
    if (existsSync(join(outDir, stack)) || existsSync(previousDir(outDir, stack))) return undefined;
    const stage = stagingDir(outDir, stack);
    rmSync(stage, { recursive: true, force: true });
    const madeOutDir = !existsSync(outDir);
    const entry = stagingWorker();
    const worker = new Worker(entry.code, { eval: entry.eval, workerData: { stage } });
    // Should the run end without finishing or discarding it (a crash), the thread does not keep the process.
    worker.unref();
    return new StagedOutput(stage, worker, madeOutDir, outDir);
  }

  /** Sends a rendered file (written in the order sent; sent again, the last text wins). */
  add(path: string, content: string): void {
    if (this.settled) return;
    this.sent.set(path, content);
    // A UTF-16 unit takes at most 3 bytes in UTF-8: a text within that bound is written without
    // measuring it first (one pass over it instead of two).
    if (this.used + content.length * 3 > this.buffer.length) {
      this.flush();
      if (content.length * 3 > this.buffer.length) this.buffer = batchBuffer(Buffer.byteLength(content, 'utf8'));
    }
    this.used += this.buffer.write(content, this.used, 'utf8');
    this.paths.push(path);
    this.ends.push(this.used);
  }

  private flush(): void {
    if (this.used === 0) return;
    // The batch's memory moves to the worker (transferred, not copied); the next batch gets new memory.
    const batch: StagingBatch = { paths: this.paths, ends: this.ends, buffer: this.buffer.buffer as ArrayBuffer };
    this.worker.postMessage(batch, [batch.buffer]);
    this.buffer = batchBuffer(BATCH_BYTES);
    this.paths = [];
    this.ends = [];
    this.used = 0;
  }

  /**
   * Waits for the worker; the staging folder when it wrote exactly `files` (every path, each last
   * sent with the text `files` holds, nothing else), else undefined with the copy discarded.
   */
  async finish(files: ReadonlyMap<string, string>): Promise<string | undefined> {
    if (this.settled) return undefined;
    this.flush();
    // Waiting for its answer must keep the process alive.
    this.worker.ref();
    this.worker.postMessage('end');
    const reply = await this.reply;
    this.settled = true;
    await this.worker.terminate();
    const exact = reply.error === undefined && this.sent.size === files.size && [...files].every(([path, text]) => this.sent.get(path) === text);
    if (exact) {
      this.written = statsByPath(reply.written!);
      return this.stage;
    }
    this.remove();
    return undefined;
  }

  /** Tells the copy it became out/<stack> (the writer swapped it in). */
  swapped(): void {
    this.inPlace = true;
  }

  /**
   * The stat of every file and folder of out/<stack> below its top folder, as written, once the
   * copy was swapped in (src/synth/fastpath.ts stamps them without reading them again).
   */
  writtenStats(): ReadonlyMap<string, StampStat> | undefined {
    return this.inPlace ? this.written : undefined;
  }

  /** Ends the worker and removes the staging copy (and out/, when made for it and still empty). */
  async discard(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.worker.terminate();
    this.remove();
  }

  private remove(): void {
    rmSync(this.stage, { recursive: true, force: true });
    if (this.madeOutDir) {
      try {
        rmdirSync(this.outDir);
      } catch {
        // Not empty (another stack's folder is there) or gone: left as it is.
      }
    }
  }
}
