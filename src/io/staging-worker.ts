// The worker thread of src/io/staged.ts: writes a stack's files into its staging folder as the
// main thread renders them (through the shared ring of staging-protocol.ts), so the file system's
// work (a folder per service, a file per output) runs beside the rendering instead of after it.
// Each folder is made once, parents first; a file sent twice is written twice, the last text winning.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, writeSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { align8, CONTROL_BYTES, ENDED, FAILED, HEAD, HEADER_BYTES, MAIN_WAITING, SKIP, STAT_FIELDS, TAIL, type StagingReply, type WrittenStats } from './staging-protocol.ts';

const { stage, shared } = workerData as { stage: string; shared: SharedArrayBuffer };
const control = new Int32Array(shared, 0, CONTROL_BYTES / 4);
const ring = new Uint8Array(shared, CONTROL_BYTES);
const view = new DataView(shared, CONTROL_BYTES);
const size = ring.length;
const decoder = new TextDecoder();

const made = new Set<string>();
/** Each file's path (relative) and its stat as written, in the order written. */
const files: string[] = [];
const fileStats: Stats[] = [];
let failure: string | undefined;

/** Makes `dir` (inside the staging folder) and its missing parents, each once. */
function ensure(dir: string): void {
  if (made.has(dir)) return;
  if (dir !== stage) {
    ensure(dirname(dir));
    try {
      mkdirSync(dir);
    } catch (e) {
      // The main thread writes a file too large for the ring itself, and may have made its folder.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  } else mkdirSync(dir, { recursive: true });
  made.add(dir);
}

/** Writes the record at ring offset `at` (not a skip); its length in the ring. */
function writeRecord(at: number): number {
  const pathBytes = view.getUint32(at, true);
  const dataBytes = view.getUint32(at + 4, true);
  const start = at + HEADER_BYTES;
  const path = decoder.decode(ring.subarray(start, start + pathBytes));
  if (failure === undefined) {
    try {
      const abs = `${stage}/${path}`;
      ensure(dirname(abs));
      const fd = openSync(abs, 'w', 0o644);
      try {
        const from = start + pathBytes;
        for (let done = 0; done < dataBytes; ) done += writeSync(fd, ring, from + done, dataBytes - done);
        files.push(path);
        fileStats.push(fstatSync(fd));
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      failure = (e as Error).message;
      // The main thread stops waiting for room and sends no more; what it sent is consumed unwritten.
      Atomics.store(control, FAILED, 1);
    }
  }
  return align8(HEADER_BYTES + pathBytes + dataBytes);
}

/**
 * What was written, for the fast path's stamps of the new folder (src/synth/fastpath.ts,
 * writtenStamps): each file's stat as it was closed (a file written twice: the last), then each
 * folder's but the staging folder's own (the swap changes that one), taken now that all is written.
 */
function stamps(): WrittenStats {
  const last = new Map<string, Stats>();
  files.forEach((p, i) => last.set(p, fileStats[i]!));
  const dirs = [...made].filter((d) => d !== stage).map((d) => d.slice(stage.length + 1));
  const paths = [...last.keys(), ...dirs];
  const stats = new Float64Array(paths.length * STAT_FIELDS);
  paths.forEach((p, i) => {
    const st = i < last.size ? last.get(p)! : lstatSync(`${stage}/${p}`);
    stats.set([st.isDirectory() ? 1 : 0, st.size, st.mtimeMs, st.ctimeMs, st.ino, st.mode], i * STAT_FIELDS);
  });
  return { paths, stats };
}

// Consume until the main thread has sent everything and the ring is empty. The main thread wakes
// this one only now and then (every 256 KiB, while it writes the queue's end, at the end), so each wait is
// short: what was appended meanwhile is written at most 20 ms later.
let tail = Atomics.load(control, TAIL);
for (;;) {
  const head = Atomics.load(control, HEAD);
  if (head !== tail) {
    while (tail !== head) {
      const at = (tail >>> 0) % size;
      const used = view.getUint32(at, true) === SKIP ? size - at : writeRecord(at);
      tail = (tail + used) | 0;
      Atomics.store(control, TAIL, tail);
      // TAIL is stored before the flag is read, and the main thread sets the flag before it looks at
      // TAIL again and waits: one of the two sees the other.
      if (Atomics.load(control, MAIN_WAITING) === 1) Atomics.notify(control, TAIL);
    }
    continue;
  }
  // HEAD is written before ENDED: once ENDED reads 1, HEAD is final.
  if (Atomics.load(control, ENDED) === 1) {
    if (Atomics.load(control, HEAD) === tail) break;
    continue;
  }
  Atomics.wait(control, HEAD, head, 20);
}

let reply: StagingReply;
try {
  reply = failure === undefined ? { written: stamps() } : { error: failure };
} catch (e) {
  reply = { error: (e as Error).message };
}
parentPort!.postMessage(reply, reply.written ? [reply.written.stats.buffer as ArrayBuffer] : []);
