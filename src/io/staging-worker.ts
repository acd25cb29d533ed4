// The worker thread of src/io/staged.ts: writes a stack's files into its staging folder as the
// main thread renders them, so the file system's work (a folder per service, a file per output)
// runs beside the rendering instead of after it. Synchronous calls, sorted-free: each folder is
// made once, parents first; a file sent twice is written twice, the last text winning.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, writeSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { STAT_FIELDS, type StagingBatch, type StagingReply, type WrittenStats } from './staging-protocol.ts';

const stage = (workerData as { stage: string }).stage;
const made = new Set<string>();
let failure: string | undefined;
/** Each file's path (relative) and its stat as written, in the order written. */
const files: string[] = [];
const fileStats: Stats[] = [];

/** Makes `dir` (inside the staging folder) and its missing parents, each once. */
function ensure(dir: string): void {
  if (made.has(dir)) return;
  if (dir !== stage) {
    ensure(dirname(dir));
    mkdirSync(dir);
  } else mkdirSync(dir, { recursive: true });
  made.add(dir);
}

function write(batch: StagingBatch): void {
  const bytes = new Uint8Array(batch.buffer);
  let start = 0;
  for (const [i, path] of batch.paths.entries()) {
    const end = batch.ends[i]!;
    const abs = `${stage}/${path}`;
    ensure(dirname(abs));
    const fd = openSync(abs, 'w', 0o644);
    try {
      for (let at = start; at < end; ) at += writeSync(fd, bytes, at, end - at);
      files.push(path);
      fileStats.push(fstatSync(fd));
    } finally {
      closeSync(fd);
    }
    start = end;
  }
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

parentPort!.on('message', (m: StagingBatch | 'end') => {
  if (m === 'end') {
    let reply: StagingReply;
    try {
      reply = failure === undefined ? { written: stamps() } : { error: failure };
    } catch (e) {
      reply = { error: (e as Error).message };
    }
    parentPort!.postMessage(reply, reply.written ? [reply.written.stats.buffer as ArrayBuffer] : []);
    parentPort!.close();
    return;
  }
  // After a failure the rest is not written: the main thread discards the folder.
  if (failure !== undefined) return;
  try {
    write(m);
  } catch (e) {
    failure = (e as Error).message;
  }
});
