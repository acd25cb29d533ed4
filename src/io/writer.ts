// The only code that writes `out/`: compares, swaps a stack's folder atomically, prunes stale files.
import { closeSync, existsSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync, type BigIntStats } from 'node:fs';
import { dirname, join } from 'node:path';
import { compare } from './sort.ts';

/** What writing (or checking) a stack's output found. */
export interface WriteReport {
  readonly stack: string;
  readonly added: readonly string[];
  readonly modified: readonly string[];
  readonly removed: readonly string[];
  readonly unchanged: number;
}

/** Whether a report found any difference. */
export function changed(r: WriteReport): boolean {
  return r.added.length + r.modified.length + r.removed.length > 0;
}

/**
 * A comparison of rendered files with `out/<stack>/`, and what it saw there: the identity
 * (inode, size, change time) of every file and folder it read. A write given the comparison
 * trusts it while every one of those is still the same, and compares again otherwise.
 */
export interface Comparison {
  readonly report: WriteReport;
  /** Relative path (folders end in `/`; the stack folder is `''`) to identity; empty when the folder was absent. */
  readonly seen: ReadonlyMap<string, string>;
}

/** Where the new tree of `out/<stack>` is built before it is swapped in. */
export const stagingDir = (outDir: string, stack: string): string => join(outDir, `.${stack}.podmesh-staging`);
/** Where the old tree waits during the swap (a killed swap leaves it; see recover). */
export const previousDir = (outDir: string, stack: string): string => join(outDir, `.${stack}.podmesh-previous`);
const staging = stagingDir;
const previous = previousDir;

/**
 * A staging copy of `out/<stack>` written while the stack rendered (src/io/staged.ts): the
 * staging folder once it holds exactly the files given, else undefined (and no copy is left).
 */
export interface StagedCopy {
  finish(files: ReadonlyMap<string, string>): Promise<string | undefined>;
  /** Called once the copy is out/<stack>. */
  swapped(): void;
  discard(): Promise<void>;
}

/** What changes when a file or folder is replaced, written or has entries added or removed. */
const identity = (st: BigIntStats): string => `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/**
 * Compares `files` with `out/<stack>/`. Synchronous on purpose: thousands of small files compare
 * far faster without a thread-pool round trip per open, stat, read and close; a size that differs
 * from the content's UTF-8 length settles a file without reading it.
 */
export function compareStackOutput(outDir: string, stack: string, files: ReadonlyMap<string, string>): Comparison {
  const target = join(outDir, stack);
  const seen = new Map<string, string>();
  const existing = walk(target, seen);
  const present = new Set(existing);
  const added: string[] = [];
  const modified: string[] = [];
  let unchanged = 0;
  for (const path of [...files.keys()].sort(compare)) {
    if (!present.has(path)) added.push(path);
    else if (!sameContent(join(target, path), files.get(path) as string, seen, path)) modified.push(path);
    else unchanged++;
  }
  const removed = existing.filter((p) => !files.has(p));
  return { report: { stack, added, modified, removed, unchanged }, seen };
}

/** Whether everything a comparison saw is still as it was (nothing added, removed or written since). */
function stillAsSeen(target: string, seen: ReadonlyMap<string, string>): boolean {
  if (seen.size === 0) return statOrAbsent(target) === undefined;
  for (const [path, id] of seen) {
    const st = statOrAbsent(join(target, path));
    if (!st || identity(st) !== id) return false;
  }
  return true;
}

/**
 * Makes `out/<stack>/` hold exactly `files`.
 *
 * Nothing is written when nothing changed. Otherwise the new tree is built beside the old one
 * (unchanged files hard-linked, so they keep their mtimes) and swapped in with two renames; a
 * synth killed at any point leaves the previous tree, which the next run restores if needed.
 * With `check`, only compares. Given the comparison a plan made (`since`), it is reused when
 * nothing in the folder changed since; otherwise the files are compared again.
 */
export async function writeStackOutput(
  outDir: string,
  stack: string,
  files: ReadonlyMap<string, string>,
  options: { readonly check?: boolean; readonly since?: Comparison; readonly staged?: StagedCopy } = {},
): Promise<WriteReport> {
  const target = join(outDir, stack);
  // A staging copy was started with the folder absent and no swap to recover: swapped in when
  // the folder is still absent and the copy holds exactly these files.
  if (options.staged && !options.check && options.since && options.since.seen.size === 0 && statOrAbsent(target) === undefined && !existsSync(previous(outDir, stack))) {
    const stage = await options.staged.finish(files);
    if (stage !== undefined && statOrAbsent(target) === undefined) {
      renameSync(stage, target);
      options.staged.swapped();
      return options.since.report;
    }
  }
  await options.staged?.discard();
  if (!options.check) recover(outDir, stack);
  const compared = options.since && stillAsSeen(target, options.since.seen) ? options.since : compareStackOutput(outDir, stack, files);
  const report = compared.report;
  if (options.check || !changed(report)) return report;

  // Sorted paths, each folder created once: thousands of small files are written synchronously,
  // which on ext4 is several times faster than a thread-pool round trip per open, write and close.
  const stage = staging(outDir, stack);
  rmSync(stage, { recursive: true, force: true });
  const toWrite = new Set([...report.added, ...report.modified]);
  // One mkdir per folder, parents first: a recursive mkdir of a new deep folder costs a failed
  // call per missing level, and the staging tree is new, so every folder is made exactly once.
  mkdirSync(stage, { recursive: true });
  const made = new Set<string>([stage]);
  const ensure = (dir: string): void => {
    if (made.has(dir)) return;
    if (dir.startsWith(`${stage}/`)) {
      ensure(dirname(dir));
      mkdirSync(dir);
    } else mkdirSync(dir, { recursive: true });
    made.add(dir);
  };
  for (const path of [...files.keys()].sort(compare)) {
    const dest = join(stage, path);
    ensure(dirname(dest));
    if (toWrite.has(path)) writeFileSync(dest, encoded(files.get(path) as string), { mode: 0o644 });
    else linkSync(join(target, path), dest);
  }
  const old = previous(outDir, stack);
  if (existsSync(target)) renameSync(target, old);
  renameSync(stage, target);
  rmSync(old, { recursive: true, force: true });
  return report;
}

/** Two buffers reused by every comparison: the expected bytes and the file's, so comparing thousands of files allocates nothing per file. */
let expected = Buffer.alloc(1 << 16);
let actual = Buffer.alloc(1 << 16);

/** `text` as UTF-8 in the reused `expected` buffer (valid until the next call): writing thousands of files allocates no buffer per file. */
function encoded(text: string): Buffer {
  const size = Buffer.byteLength(text, 'utf8');
  if (expected.length < size) [expected, actual] = [Buffer.alloc(size * 2), Buffer.alloc(size * 2)];
  expected.write(text, 0, 'utf8');
  return expected.subarray(0, size);
}

/** Whether a file holds exactly `content`; records the identity of what it read in `seen`. */
function sameContent(abs: string, content: string, seen: Map<string, string>, path: string): boolean {
  const fd = openSync(abs, 'r');
  try {
    const st = fstatSync(fd, { bigint: true });
    seen.set(path, identity(st));
    const size = Buffer.byteLength(content, 'utf8');
    if (Number(st.size) !== size) return false;
    if (expected.length <= size) [expected, actual] = [Buffer.alloc(size * 2), Buffer.alloc(size * 2)];
    expected.write(content, 0, 'utf8');
    let read = 0;
    for (let n = 1; n > 0 && read < size; read += n) n = readSync(fd, actual, read, size - read, read);
    // One byte more would mean the file grew since its size was taken.
    return read === size && readSync(fd, actual, size, 1, size) === 0 && expected.compare(actual, 0, size, 0, size) === 0;
  } finally {
    closeSync(fd);
  }
}

/** Finishes or undoes a swap that a killed synth left half done. */
function recover(outDir: string, stack: string): void {
  const target = join(outDir, stack);
  const old = previous(outDir, stack);
  if (existsSync(old)) {
    if (existsSync(target)) rmSync(old, { recursive: true, force: true });
    else renameSync(old, target);
  }
  rmSync(staging(outDir, stack), { recursive: true, force: true });
}

/**
 * Removes `out/<name>/` folders of stacks that no longer exist, recognised by their manifest.
 * Returns the names removed (or that would be, with `check`).
 */
export async function pruneStacks(outDir: string, keep: ReadonlySet<string>, manifest: string, options: { readonly check?: boolean } = {}): Promise<string[]> {
  if (!existsSync(outDir)) return [];
  const gone: string[] = [];
  for (const entry of readdirSync(outDir, { withFileTypes: true }).sort((a, b) => compare(a.name, b.name))) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || keep.has(entry.name)) continue;
    if (!existsSync(join(outDir, entry.name, manifest))) continue;
    gone.push(entry.name);
    if (!options.check) rmSync(join(outDir, entry.name), { recursive: true, force: true });
  }
  return gone;
}

/** lstat, or undefined when nothing is there (ENOENT, or a file where a folder should be: ENOTDIR). */
function statOrAbsent(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/**
 * Every file below `dir`, as sorted relative paths with `/` separators; the identity of each
 * folder goes into `seen` (files' identities are taken when they are read). Nothing when `dir`
 * is absent.
 */
function walk(dir: string, seen: Map<string, string>): string[] {
  // A file where a folder of the path should be (ENOTDIR) is absent too: writing names that file.
  const top = statOrAbsent(dir);
  if (!top) return [];
  const out: string[] = [];
  const visit = (abs: string, rel: string, st: BigIntStats) => {
    seen.set(rel, identity(st));
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const p = `${rel}${e.name}`;
      if (e.isDirectory()) visit(join(abs, e.name), `${p}/`, lstatSync(join(abs, e.name), { bigint: true }));
      else out.push(p);
    }
  };
  visit(dir, '', top);
  return out.sort(compare);
}
