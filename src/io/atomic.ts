// The one atomic writer of the state folder (and of files replaced in place): whole files or nothing,
// exact modes whatever the umask, folders created private, new files that never overwrite.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, linkSync, lstatSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { chmod, link, mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { mapLimit } from './map-limit.ts';

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

/** The temp name of a write to `abs`: `.<name>.<12 hex>.tmp` beside it (src/state/leftovers.ts knows the pattern). */
function tempName(abs: string): string {
  const slash = abs.lastIndexOf('/');
  return `${abs.slice(0, slash + 1)}.${abs.slice(slash + 1)}.${randomBytes(6).toString('hex')}.tmp`;
}

/** Creates `path` (never replacing one) holding `content` with exactly `mode`, fsynced. */
async function createFile(path: string, content: string | Uint8Array, mode: number): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    await fh.writeFile(content, typeof content === 'string' ? 'utf8' : null);
    await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(path, { force: true });
    throw e;
  }
  await fh.close();
}

/**
 * {@link createFile} without fsync, in this thread: what a batch creates by the thousand. Each of
 * open, write, chmod and close through `fs/promises` is a round trip to libuv's thread pool that
 * costs more than the system call (6,000 small files: about 0.8 s that way, 0.25 s this way).
 */
function createFileSync(path: string, content: string | Uint8Array, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
    fchmodSync(fd, mode);
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw e;
  }
  closeSync(fd);
}

/** A temp file beside `abs` holding `content` with exactly `mode`, fsynced; returns its path. */
async function stage(abs: string, content: string | Uint8Array, mode: number): Promise<string> {
  const tmp = tempName(abs);
  await createFile(tmp, content, mode);
  return tmp;
}

/** Writes `content` (text as UTF-8, or bytes as they are) to `abs` atomically (temp file beside it, chmod, fsync, rename) with exactly `mode`. */
export async function writeAtomic(abs: string, content: string | Uint8Array, mode: number): Promise<void> {
  await rename(await stage(abs, content, mode), abs);
}

/** One file of {@link writeBatch}. */
export interface BatchFile {
  readonly abs: string;
  /** Text (UTF-8) or bytes. */
  readonly content: string | Uint8Array;
  readonly mode: number;
}

/**
 * Makes durable, for the files at `paths`, their contents (`data`), their names in their folders
 * (`entries`: the renames that put them there), or both (`all`: files created under their own
 * names). The default, {@link flushPaths}, is one `syncfs(2)` per file system; tests inject
 * failures here.
 */
export type Flush = (paths: readonly string[], what: 'data' | 'entries' | 'all') => Promise<void>;

/** Options of {@link writeBatch}. */
export interface BatchOptions {
  /**
   * The files go into a folder no reader sees yet (a staging folder renamed into place later, as a
   * first PKI run builds `pki/`): they are created under their own names, and nothing is renamed.
   * The caller makes the folder visible after the batch (whose flushes made the files and their
   * names durable).
   * @default false
   */
  readonly unpublished?: boolean;
  /** @default flushPaths */
  readonly flush?: Flush;
}

/** Whether `sync -f` (coreutils: syncfs(2)) works here; false after it once failed to run. */
let syncfsWorks = true;

const syncfs = (dir: string): Promise<void> =>
  new Promise((resolve, reject) => execFile('sync', ['-f', dir], { timeout: 120_000 }, (err) => (err ? reject(err) : resolve())));

/** The folders holding `paths`, each once. */
const foldersOf = (paths: readonly string[]): string[] => [...new Set(paths.map((p) => dirname(p)))];

/** fsync of each path (files or folders), 16 in flight. */
async function fsyncEach(paths: readonly string[]): Promise<void> {
  await mapLimit(paths, 16, async (path) => {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

/**
 * The default {@link Flush}: `syncfs(2)` (Node has no binding; coreutils `sync -f DIR` calls it) once
 * per file system the paths' folders are on: one journal commit for thousands of files, where an
 * fsync each costs a commit each. Where `sync -f` does not run (no coreutils, not Linux), an fsync
 * of every file (`data`) or of every folder holding one (`entries`) instead. `sync -f` reports
 * write-back errors (Linux 5.8 on) by its exit status.
 */
export async function flushPaths(paths: readonly string[], what: 'data' | 'entries' | 'all'): Promise<void> {
  return what === 'data' ? flushTogether(paths, []) : what === 'entries' ? flushTogether([], paths) : flushTogether(paths, paths);
}

/** Makes durable the contents of the files at `data` and the names of those at `entries` (see {@link flushTogether}; tests inject failures). */
export type FlushTogether = (data: readonly string[], entries: readonly string[]) => Promise<void>;

/**
 * {@link flushPaths} of the contents of `data` and the names of `entries` at once: one `syncfs(2)`
 * per file system makes both durable; without it, an fsync of each file of `data`, then of each
 * folder holding one of `entries`.
 */
export async function flushTogether(data: readonly string[], entries: readonly string[]): Promise<void> {
  if (data.length === 0 && entries.length === 0) return;
  const dirs = foldersOf([...data, ...entries]);
  if (syncfsWorks) {
    // One folder per file system (a folder of the batch could be a mount point).
    const byDev = new Map<number, string>();
    for (const dir of dirs) {
      const dev = statSync(dir).dev;
      if (!byDev.has(dev)) byDev.set(dev, dir);
    }
    try {
      for (const dir of byDev.values()) await syncfs(dir);
      return;
    } catch (e) {
      // No `sync` here (not coreutils: it stays so for this process), one without -f (BSD, macOS:
      // a usage error) or a write-back error: an fsync of each path then decides (and reports an
      // I/O error not seen yet).
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') syncfsWorks = false;
    }
  }
  await fsyncEach(data);
  await fsyncEach(foldersOf(entries));
}

/**
 * Writes many files as one durable step, keeping what {@link writeAtomic} guarantees of each file
 * (a reader or a crash sees the old file or the whole new one, never a part; exact modes; new
 * files never overwrite a temp) with one flush for all of them instead of an fsync each:
 * 1. every file is created under its temp name (`.<name>.<12 hex>.tmp`), not fsynced;
 * 2. one flush ({@link flushPaths}: syncfs) makes all their data durable;
 * 3. the temps are renamed into place, in the order given;
 * 4. a second flush makes the renames durable (the batch is done when it returns).
 * Unpublished (see {@link BatchOptions.unpublished}), the files are created under their own names
 * and one flush makes their data and names durable (`all`).
 * A failure before the renames removes the temps and leaves every visible file as it was; a crash
 * leaves only temps, which the next synth removes (src/state/leftovers.ts). A failure during the
 * renames leaves each file old or new, and removes the temps not yet renamed.
 */
export async function writeBatch(files: readonly BatchFile[], options: BatchOptions = {}): Promise<void> {
  if (files.length === 0) return;
  const flush = options.flush ?? flushPaths;
  const unpublished = options.unpublished ?? false;
  const paths = files.map((f) => (unpublished ? f.abs : tempName(f.abs)));
  const created = new Set<string>();
  const removeTemps = (): void => {
    if (!unpublished) for (const p of created) rmSync(p, { force: true });
  };
  try {
    files.forEach((f, i) => {
      createFileSync(paths[i] as string, f.content, f.mode);
      created.add(paths[i] as string);
    });
    // Unpublished: their names too, before the caller's rename makes the folder visible.
    await flush(paths, unpublished ? 'all' : 'data');
  } catch (e) {
    removeTemps();
    throw e;
  }
  if (unpublished) return;
  try {
    // Synchronous: thousands of renames, each far cheaper than a thread-pool round trip.
    for (let i = 0; i < files.length; i++) {
      renameSync(paths[i] as string, (files[i] as BatchFile).abs);
      created.delete(paths[i] as string);
    }
  } catch (e) {
    removeTemps();
    throw e;
  }
  await flush(files.map((f) => f.abs), 'entries');
}

/** Thrown by {@link createAtomic} when the file appeared meanwhile; nothing was overwritten. */
export class FileExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} already exists`);
  }
}

/**
 * Creates `abs` atomically with exactly `mode`, never replacing a file: the temp file is linked
 * into place, so a file that appeared meanwhile makes it fail ({@link FileExistsError}).
 */
export async function createAtomic(abs: string, content: string, mode: number): Promise<void> {
  const tmp = await stage(abs, content, mode);
  try {
    await link(tmp, abs);
  } catch (e) {
    if (errCode(e) === 'EEXIST') throw new FileExistsError(abs);
    throw e;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** One file of {@link createBatch}. */
export interface CreateFile extends BatchFile {
  /**
   * Where a file already at `abs` moves first, replacing one there (a rotated key kept as
   * `<file>.old`). Without it, a file at `abs` fails the batch.
   * @default - none
   */
  readonly moveAside?: string;
}

/**
 * Creates many files, each as {@link createAtomic} does (exact mode, never replacing a file: its
 * temp is linked into place), made durable together instead of with an fsync each:
 * 1. every file is created under its temp name, then one flush makes their data durable;
 * 2. in the order given, a file asked to move aside is renamed, and the temp is linked into place;
 * 3. the temps are removed, and a second flush makes the names durable.
 * A file that appeared meanwhile throws {@link FileExistsError}, overwriting nothing; the files
 * linked before it stay (as after one createAtomic after another) and every temp is removed. A
 * crash leaves at most temps, which the next synth removes (src/state/leftovers.ts).
 */
export async function createBatch(files: readonly CreateFile[], options: Pick<BatchOptions, 'flush'> = {}): Promise<void> {
  if (files.length === 0) return;
  const flush = options.flush ?? flushPaths;
  const temps = files.map((f) => tempName(f.abs));
  const created: string[] = [];
  try {
    files.forEach((f, i) => {
      createFileSync(temps[i] as string, f.content, f.mode);
      created.push(temps[i] as string);
    });
    await flush(temps, 'data');
    for (const [i, f] of files.entries()) {
      if (f.moveAside !== undefined) renameSync(f.abs, f.moveAside);
      try {
        linkSync(temps[i] as string, f.abs);
      } catch (e) {
        if (errCode(e) === 'EEXIST') throw new FileExistsError(f.abs);
        throw e;
      }
    }
  } finally {
    for (const tmp of created) rmSync(tmp, { force: true });
  }
  await flush(files.flatMap((f) => (f.moveAside === undefined ? [f.abs] : [f.abs, f.moveAside])), 'entries');
}

/** Creates `abs` and its missing parents with `mode`; chmods the ones it created (umask-proof). Existing folders keep their mode. */
export async function ensureDir(abs: string, mode: number): Promise<void> {
  const first = await mkdir(abs, { recursive: true, mode });
  if (first === undefined) return;
  for (let d = abs; ; d = dirname(d)) {
    await chmod(d, mode);
    if (d === first || dirname(d) === d) break;
  }
}

/** Permission bits of a folder (not following a symlink), or undefined when it is not one. */
export function dirMode(abs: string): number | undefined {
  try {
    const st = lstatSync(abs);
    return st.isDirectory() ? st.mode & 0o7777 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every write a state reconciler makes, as one interface: reconcilers' `apply` steps receive it,
 * so all of them write through this module (and tests can record or fail writes).
 */
export interface StateWriter {
  /** Replace (or create) a file atomically with exactly `mode`. */
  write(abs: string, content: string, mode: number): Promise<void>;
  /** Replace (or create) many files, each atomically, made durable together ({@link writeBatch}). */
  writeBatch(files: readonly BatchFile[], options?: BatchOptions): Promise<void>;
  /** Create a file atomically; fails with {@link FileExistsError} rather than replace one. */
  create(abs: string, content: string, mode: number): Promise<void>;
  /** Create many files, each as `create` does, made durable together ({@link createBatch}). */
  createBatch(files: readonly CreateFile[]): Promise<void>;
  /** A folder and its missing parents, created with `mode`. */
  mkdir(abs: string, mode: number): Promise<void>;
  /** Set a mode. */
  chmod(abs: string, mode: number): Promise<void>;
  /** Rename in one step (same file system). */
  rename(from: string, to: string): Promise<void>;
  /** Remove a file. */
  unlink(abs: string): Promise<void>;
  /** Remove a folder in one visible step: renamed to a dot-name beside it, then deleted. */
  removeDir(abs: string): Promise<void>;
  /**
   * Makes durable what this writer left for a later flush (see {@link sharedFlushWriter}); absent or
   * a no-op for a writer whose every batch is durable when it returns.
   */
  settle?(): Promise<void>;
}

/** The state writer on the real file system. */
export const atomicWriter: StateWriter = {
  write: writeAtomic,
  writeBatch,
  create: createAtomic,
  createBatch: (files) => createBatch(files),
  mkdir: ensureDir,
  chmod: (abs, mode) => chmod(abs, mode),
  rename: (from, to) => rename(from, to),
  unlink: (abs) => unlink(abs),
  async removeDir(abs) {
    const gone = join(dirname(abs), `.${abs.slice(abs.lastIndexOf('/') + 1)}.${randomBytes(6).toString('hex')}.removed`);
    await rename(abs, gone);
    await rm(gone, { recursive: true, force: true });
  },
};

/**
 * The state writer of one run that writes several batches in a row (a synth: each stack's secrets,
 * PKI and WireGuard keys): a batch's names (its renames or links) are made durable by the next
 * batch's first flush, which makes that batch's data durable in the same `syncfs(2)`, and the last
 * ones by {@link StateWriter.settle}, which the run calls when its state is written. Each file
 * stays old or new whatever happens, and every batch's names are durable before the next batch puts
 * any of its files in place (the order of writeBatch one after another); what a crash can lose is
 * only the last batches' names before the run settles, as a crash during their flush could. Four
 * flushes instead of six for a new multi-host stack's state, each a `sync` process and a wait on
 * the disk.
 */
export function sharedFlushWriter(options: { readonly flush?: FlushTogether } = {}): StateWriter {
  const flushBoth = options.flush ?? flushTogether;
  /** Names of files the last batches put in place, not yet made durable. */
  let pending: string[] = [];
  /** Flushes `data`, `entries` and the pending names together; a failed flush keeps them pending. */
  const together = async (data: readonly string[], entries: readonly string[]): Promise<void> => {
    if (data.length === 0 && entries.length === 0 && pending.length === 0) return;
    const before = pending;
    pending = [];
    try {
      await flushBoth(data, [...before, ...entries]);
    } catch (e) {
      pending = [...before, ...pending];
      throw e;
    }
  };
  const flush: Flush = async (paths, what) => {
    if (what === 'entries') pending.push(...paths);
    else await together(paths, what === 'all' ? paths : []);
  };
  return {
    ...atomicWriter,
    writeBatch: (files, options) => writeBatch(files, { ...options, flush }),
    createBatch: (files) => createBatch(files, { flush }),
    settle: () => together([], []),
  };
}

/** What a {@link recordingWriter} knows a file holds: the text or bytes it last wrote there. */
export type WrittenFiles = ReadonlyMap<string, string | Uint8Array>;

/**
 * `inner`, remembering what it left in each file it wrote (by absolute path, resolved, following
 * the writer's renames and forgetting what it removed). After a synth that changed the state, the
 * record of it hashes those files from this instead of reading thousands of them back
 * (src/synth/fastpath.ts, which checks every such hash against the disk before trusting it).
 * Nothing else about the writes changes.
 */
export function recordingWriter(inner: StateWriter): { readonly writer: StateWriter; readonly written: WrittenFiles } {
  const written = new Map<string, string | Uint8Array>();
  /** Files are known by absolute path: reconcilers may be given a relative state folder. */
  const set = (path: string, content: string | Uint8Array): void => void written.set(resolve(path), content);
  /** Forgets what was written at or below `abs` (a file replaced, removed, or a folder's files). */
  const forget = (path: string): void => {
    const abs = resolve(path);
    if (written.delete(abs)) return;
    const below = `${abs}/`;
    for (const p of [...written.keys()]) if (p.startsWith(below)) written.delete(p);
  };
  /**
   * Runs a write; when it fails, what it may have touched is forgotten (each file old or new: not
   * known): `files` one by one, and whatever was written at or below `paths` (folders too).
   */
  const touching = async (write: () => Promise<void>, files: readonly string[], paths: readonly string[] = []): Promise<void> => {
    try {
      await write();
    } catch (e) {
      for (const f of files) written.delete(resolve(f));
      paths.forEach((p) => forget(p));
      throw e;
    }
  };
  const writer: StateWriter = {
    async write(abs, content, mode) {
      await touching(() => inner.write(abs, content, mode), [abs]);
      set(abs, content);
    },
    async writeBatch(files, options) {
      await touching(
        () => inner.writeBatch(files, options),
        files.map((f) => f.abs),
      );
      for (const f of files) set(f.abs, f.content);
    },
    async create(abs, content, mode) {
      await touching(() => inner.create(abs, content, mode), [abs]);
      set(abs, content);
    },
    async createBatch(files) {
      await touching(
        () => inner.createBatch(files),
        files.flatMap((f) => (f.moveAside === undefined ? [f.abs] : [f.abs, f.moveAside])),
      );
      for (const f of files) {
        if (f.moveAside === undefined) continue;
        const old = written.get(resolve(f.abs));
        if (old === undefined) forget(f.moveAside);
        else set(f.moveAside, old);
      }
      for (const f of files) set(f.abs, f.content);
    },
    mkdir: (abs, mode) => inner.mkdir(abs, mode),
    chmod: (abs, mode) => inner.chmod(abs, mode),
    async rename(fromPath, toPath) {
      await touching(() => inner.rename(fromPath, toPath), [], [fromPath, toPath]);
      const from = resolve(fromPath);
      const to = resolve(toPath);
      const file = written.get(from);
      forget(to);
      if (file !== undefined) {
        written.delete(from);
        written.set(to, file);
        return;
      }
      // A folder: what was written below it moves along.
      const below = `${from}/`;
      for (const [p, content] of [...written]) {
        if (!p.startsWith(below)) continue;
        written.delete(p);
        written.set(`${to}${p.slice(from.length)}`, content);
      }
    },
    async unlink(abs) {
      await touching(() => inner.unlink(abs), [abs]);
      forget(abs);
    },
    async removeDir(abs) {
      await touching(() => inner.removeDir(abs), [], [abs]);
      forget(abs);
    },
    settle: async () => inner.settle?.(),
  };
  return { writer, written };
}
