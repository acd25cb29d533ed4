// Writing a stack's new out/ folder while it renders: the files go, as they are rendered, to a
// worker thread (staging-worker.ts) through a ring of shared memory (staging-protocol.ts), and the
// worker writes them into the folder's staging copy, so the file system's work overlaps the
// rendering. Used only where the writer would write every file anyway (out/<stack> absent: a first
// synth, an emptied out/), and only with a second core. The writer (writer.ts, writeStackOutput)
// swaps the folder in as it does its own staging copy, after the state, once the worker wrote
// exactly the files of the plan; anything else (a problem, a check, a worker failure, out/<stack>
// appearing meanwhile) discards the copy and leaves the writer to do as before. The staging copy is
// not out/<stack>: until the swap nothing of the synth is visible.
import { existsSync, lstatSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { previousDir, stagingDir, type StagedCopy } from './writer.ts';
import { align8, CONTROL_BYTES, ENDED, FAILED, HEAD, HEADER_BYTES, MAIN_WAITING, SKIP, stampStat, statsByPath, TAIL, type StagingReply, type StampStat } from './staging-protocol.ts';
import { workerEntry } from './worker-entry.ts';
import { writeTextFile } from './text-bytes.ts';

/** The ring's size (a power of two, so positions survive the counters' wrapping): the most memory the files in flight take (4 MiB). */
const RING_BYTES = 1 << 22;
/** Bytes appended between wakes of the worker (it also looks every 20 ms on its own). */
const WAKE_BYTES = 1 << 18;
/** At the end, the most bytes the ring is filled to while this thread writes queued files too. */
const DRAIN_BYTES = 1 << 18;
/** How long the main thread waits, in all, for room in the ring (a path sent twice) before it gives the copy up (the writer then does it all). */
const WAIT_LIMIT_MS = 60_000;

/** The buffer the main thread encodes the small files it writes into. */
const SCRATCH = Buffer.alloc(1 << 16);

/** The staging worker: dist/out-writer.mjs built, staging-worker.ts from the sources. */
const stagingWorker = () => workerEntry(new URL('./out-writer.mjs', import.meta.url), new URL('./staging-worker.ts', import.meta.url));

/** A stack's staging copy being written by a worker thread. */
export class StagedOutput implements StagedCopy {
  /** The text last sent for each path (the same string objects the plan holds). */
  private readonly sent = new Map<string, string>();
  private readonly control: Int32Array;
  private readonly ring: Buffer;
  /** Bytes appended (HEAD as this thread last stored it). */
  private head = 0;
  /** Given up: the worker or a write of this thread failed, or the worker never made room in time; nothing more is sent, and the copy will be discarded. */
  private gaveUp = false;
  private waited = 0;
  /** Files too large for the ring, written by this thread: their stats. */
  private readonly own = new Map<string, StampStat>();
  private readonly reply: Promise<StagingReply>;
  private settled = false;
  private written: ReadonlyMap<string, StampStat> | undefined;
  private inPlace = false;

  private constructor(
    /** The staging folder, `out/.<stack>.podmesh-staging`. */
    readonly stage: string,
    private readonly worker: Worker,
    shared: SharedArrayBuffer,
    /** Whether out/ itself was made for it (removed again with the copy, if still empty). */
    private readonly madeOutDir: boolean,
    private readonly outDir: string,
  ) {
    this.control = new Int32Array(shared, 0, CONTROL_BYTES / 4);
    this.ring = Buffer.from(shared, CONTROL_BYTES, RING_BYTES);
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
    const shared = new SharedArrayBuffer(CONTROL_BYTES + RING_BYTES);
    const entry = stagingWorker();
    // A small young generation: the worker's own objects are a path and a stat per file.
    const worker = new Worker(entry.code, { eval: entry.eval, workerData: { stage, shared }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    // Should the run end without finishing or discarding it (a crash), the thread does not keep the process.
    worker.unref();
    return new StagedOutput(stage, worker, shared, madeOutDir, outDir);
  }

  /**
   * Files sent but not yet in the ring (path, text, path, text, ...; from index `next`): the ring
   * full, they wait here instead of the rendering. The texts are the plan's own strings, so the
   * queue costs only its references.
   */
  private readonly queued: string[] = [];
  private next = 0;
  /** A path was sent twice: every text goes through the ring, in the order sent. */
  private repeated = false;

  /** Sends a rendered file (written in the order sent; sent again, the last text wins). Never waits. */
  add(path: string, content: string): void {
    if (this.settled) return;
    const again = this.sent.has(path);
    this.sent.set(path, content);
    if (this.gaveUp) return;
    if (again) this.repeated = true;
    if (align8(HEADER_BYTES + Buffer.byteLength(path, 'utf8') + content.length * 3) > RING_BYTES / 2) {
      // The worker may still hold an earlier text of this path, to be written after this one.
      if (again) this.gaveUp = true;
      else this.writeHere(path, content);
      return;
    }
    this.queued.push(path, content);
    this.pump();
  }

  /** Files sent that still wait in the queue for room in the ring. */
  get pending(): number {
    return (this.queued.length - this.next) / 2;
  }

  /**
   * Moves queued files into the ring, as far as it has room: called between the items of a long
   * renderer that sends nothing meanwhile (src/render/progress.ts) and while the state is written
   * (src/synth/apply.ts), so the worker does not sit idle while files wait in the queue.
   */
  progress(): void {
    if (!this.settled && !this.gaveUp && this.next < this.queued.length) this.pump();
  }

  /** Moves queued files into the ring while it has room (and holds fewer than `most` bytes). */
  private pump(most = RING_BYTES): void {
    const q = this.queued;
    while (this.next < q.length && RING_BYTES - this.free() < most && this.put(q[this.next]!, q[this.next + 1]!)) this.next += 2;
    if (this.next === q.length) {
      q.length = 0;
      this.next = 0;
    }
  }

  /** Bytes free in the ring. */
  private free(): number {
    return RING_BYTES - ((this.head - Atomics.load(this.control, TAIL)) >>> 0);
  }

  /** Appends a record when the ring has room for it (false otherwise). */
  private put(path: string, content: string): boolean {
    const pathBytes = Buffer.byteLength(path, 'utf8');
    // A UTF-16 unit takes at most 3 bytes in UTF-8: room for that is reserved, and the text is
    // written without being measured first (one pass over it instead of two).
    const most = align8(HEADER_BYTES + pathBytes + content.length * 3);
    let at = (this.head >>> 0) % RING_BYTES;
    if (at + most > RING_BYTES) {
      // No room before the ring's end: the rest of it is skipped.
      if (this.free() < RING_BYTES - at + most) return false;
      this.ring.writeUInt32LE(SKIP, at);
      this.advance(RING_BYTES - at);
      at = 0;
    }
    if (this.free() < most) return false;
    this.ring.write(path, at + HEADER_BYTES, 'utf8');
    const dataBytes = this.ring.write(content, at + HEADER_BYTES + pathBytes, 'utf8');
    this.ring.writeUInt32LE(pathBytes, at);
    this.ring.writeUInt32LE(dataBytes, at + 4);
    this.advance(align8(HEADER_BYTES + pathBytes + dataBytes));
    return true;
  }

  /**
   * Sends the rest of the queue before the end: the ring full, this thread writes the newest queued
   * file itself while the worker takes the oldest, so both cores write the remainder. (A path sent
   * twice must keep its order: then this thread only waits for room.)
   */
  private drain(): void {
    const q = this.queued;
    while (!this.gaveUp) {
      // The ring is kept short now: what is in it when the queue runs out is the worker's alone to write.
      this.pump(this.repeated ? RING_BYTES : DRAIN_BYTES);
      if (q.length === 0) return;
      this.wake();
      if (this.repeated) this.waitForRoom();
      else {
        const content = q.pop()!;
        this.writeHere(q.pop()!, content);
      }
    }
  }

  /** Waits until the worker consumed something (or gives the copy up: the worker failed or the waits ran out). */
  private waitForRoom(): void {
    Atomics.store(this.control, MAIN_WAITING, 1);
    try {
      const tail = Atomics.load(this.control, TAIL);
      if (Atomics.load(this.control, FAILED) === 1 || this.waited >= WAIT_LIMIT_MS) {
        this.gaveUp = true;
        return;
      }
      const t = performance.now();
      Atomics.wait(this.control, TAIL, tail, 50);
      this.waited += performance.now() - t;
    } finally {
      Atomics.store(this.control, MAIN_WAITING, 0);
    }
  }

  /** Bytes appended since the worker was last woken. */
  private unannounced = 0;

  private advance(bytes: number): void {
    this.head = (this.head + bytes) | 0;
    Atomics.store(this.control, HEAD, this.head);
    this.unannounced += bytes;
    if (this.unannounced >= WAKE_BYTES) this.wake();
  }

  private wake(): void {
    this.unannounced = 0;
    Atomics.notify(this.control, HEAD);
  }

  /** Folders this thread made (or found) for the files it wrote. */
  private readonly madeHere = new Set<string>();

  /** A file written by this thread (too large for the ring, or taken from the queue at the end); its folders made as the worker makes them, tolerating each other. */
  private writeHere(path: string, content: string): void {
    try {
      const abs = `${this.stage}/${path}`;
      const dir = dirname(abs);
      if (!this.madeHere.has(dir)) {
        mkdirSync(dir, { recursive: true });
        this.madeHere.add(dir);
      }
      // A small text goes through one reused buffer: thousands of files at the end, no buffer each;
      // a large one in pieces of another (text-bytes.ts).
      if (content.length * 3 <= SCRATCH.length) writeFileSync(abs, SCRATCH.subarray(0, SCRATCH.write(content, 0, 'utf8')), { mode: 0o644 });
      else writeTextFile(abs, content, 0o644);
      this.own.set(path, stampStat(lstatSync(abs)));
    } catch {
      this.gaveUp = true;
    }
  }

  /** Tells the worker that everything was sent (or that it is to stop). */
  private end(): void {
    Atomics.store(this.control, ENDED, 1);
    Atomics.notify(this.control, HEAD);
  }

  /**
   * Waits for the worker; the staging folder when it wrote exactly `files` (every path, each last
   * sent with the text `files` holds, nothing else), else undefined with the copy discarded.
   */
  async finish(files: ReadonlyMap<string, string>): Promise<string | undefined> {
    if (this.settled) return undefined;
    this.drain();
    this.end();
    // Waiting for its answer must keep the process alive.
    this.worker.ref();
    const reply = await this.reply;
    this.settled = true;
    await this.worker.terminate();
    const exact = !this.gaveUp && reply.error === undefined && this.sent.size === files.size && [...files].every(([path, text]) => this.sent.get(path) === text);
    if (exact) {
      // The worker's stat of a path is the later one where both wrote it.
      this.written = new Map([...this.own, ...statsByPath(reply.written!)]);
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
    this.end();
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
