// Stamps of a folder: what the fast path (fastpath.ts) records of out/<stack> and the state folder
// and checks again before it trusts its cache. Apart from the engine, so that the worker thread
// that checks a state folder while the stacks resolve (state-check-worker.ts) loads only this.
import { hash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { WrittenFiles } from '../io/atomic.ts';

/**
 * A file whose mtime or ctime is not this much older than the moment its stamp was taken may still
 * change without its stat changing (same size, a timestamp within the file system's granularity):
 * its content hash is recorded and checked instead (git's racy-timestamp rule). Two seconds covers
 * the coarsest timestamps of common file systems.
 */
export const RACY_MS = 2000;
/** Bound on the files of one folder a stamp covers. */
const MAX_FILES = 500_000;


/**
 * One file, folder or link: path (relative), type, size, mtime and ctime (ms with their fraction:
 * sub-microsecond differences are lost, which matters only within the racy window, where the
 * content decides), inode, mode, and the content hash when racy.
 */
export type Stamp = [rel: string, type: 'f' | 'd' | 'l', size: number, mtimeMs: number, ctimeMs: number, ino: number, mode: number, hash?: string];
type Stats = import('node:fs').Stats;

/** sha256 in hex (one-shot: about half createHash's cost per call, which counts over 9,000 small files). */
export const sha256 = (data: string | Uint8Array): string => hash('sha256', data);

/** Every entry below `dir` (sorted by path), as lstat sees it; [] when `dir` does not exist; throws on anything unreadable. */
function walkStats(dir: string): { rel: string; st: Stats }[] {
  const out: { rel: string; st: Stats }[] = [];
  const top = lstatSync(dir, { throwIfNoEntry: false });
  if (!top) return out;
  out.push({ rel: '.', st: top });
  if (!top.isDirectory()) return out;
  const walk = (abs: string, prefix: string): void => {
    for (const name of readdirSync(abs).sort()) {
      if (out.length > MAX_FILES) throw new Error(`more than ${MAX_FILES} entries in ${dir}`);
      const p = join(abs, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const st = lstatSync(p);
      out.push({ rel, st });
      if (st.isDirectory()) walk(p, rel);
    }
  };
  walk(dir, '');
  return out;
}

const typeOf = (st: Stats): Stamp[1] | undefined => (st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : undefined);

/** The content hash of a file (its bytes) or link (its target). */
function contentHash(abs: string, type: Stamp[1]): string {
  return type === 'l' ? sha256(`link:${readlinkSync(abs)}`) : sha256(readFileSync(abs));
}

/**
 * Stamps of `dir` taken at `since` (ms, before the walk): files whose timestamps are not safely
 * older get their content hash, read from disk (or, for a file in `written`, of what the state
 * writer left there: a claim, which only a {@link checkStamps} of the stamps against the disk
 * turns into a fact); such folders get the mark `dir` (their list of entries is read again when
 * checked).
 */
export function takeStamps(dir: string, since: number, written?: WrittenFiles): Stamp[] {
  const stamps: Stamp[] = [];
  for (const { rel, st } of walkStats(dir)) {
    const type = typeOf(st);
    if (!type) throw new Error(`${join(dir, rel)} is neither a file, a folder nor a link`);
    const stamp: Stamp = [rel, type, st.size, st.mtimeMs, st.ctimeMs, st.ino, st.mode];
    if (Math.max(st.mtimeMs, st.ctimeMs) >= since - RACY_MS) {
      const abs = join(dir, rel);
      const text = type === 'f' ? written?.get(abs) : undefined;
      stamp.push(type === 'd' ? 'dir' : text !== undefined ? sha256(text) : contentHash(abs, type));
    }
    stamps.push(stamp);
  }
  return stamps;
}

/**
 * Whether `dir` is as stamped: every recorded entry there with the same stat, racy files with the
 * same content, and no entry added. A folder whose stat is as recorded and not racy has the same
 * entries (adding, removing or renaming one changes its mtime and ctime), so only racy folders are
 * listed again. Returns the stamps to record next (racy entries that have since become safely older
 * than `since` lose their mark), or a reason it is not.
 *
 * `seen`, when given, holds texts of files in `dir` (by absolute path) that were read after
 * `since`: a racy file among them is held against its stamp by that text instead of being read
 * again. Then the check says that the stamped contents are what that reader saw (the question a
 * plan that read them asks), and that no entry's stat changed since; a change after that reading
 * that left the stat alone is for the next check to find, which reads every stamped hash's file.
 */
export function checkStamps(dir: string, recorded: readonly Stamp[], since: number, seen?: ReadonlyMap<string, string>): { ok: true; next: Stamp[]; refreshed: boolean } | { ok: false; reason: string } {
  if (recorded.length === 0) return lstatSync(dir, { throwIfNoEntry: false }) ? { ok: false, reason: `${dir}: an entry was added` } : { ok: true, next: [], refreshed: false };
  // The recorded entries of each folder: needed only for racy folders, built at the first one.
  let children: Map<string, string[]> | undefined;
  const childrenOf = (rel: string): string[] => {
    if (!children) {
      children = new Map();
      for (const [r] of recorded) {
        if (r === '.') continue;
        const slash = r.lastIndexOf('/');
        const parent = slash < 0 ? '.' : r.slice(0, slash);
        let list = children.get(parent);
        if (!list) children.set(parent, (list = []));
        list.push(r.slice(slash + 1));
      }
    }
    return children.get(rel) ?? [];
  };
  const prefix = `${dir}/`;
  const next: Stamp[] = [];
  let refreshed = false;
  for (const r of recorded) {
    const [rel, rType, size, mtime, ctime, ino, mode, hash] = r;
    const abs = rel === '.' ? dir : prefix + rel;
    const changed = entryChanged(abs, r);
    if (changed) return { ok: false, reason: changed };
    if (hash === undefined) {
      next.push(r);
      continue;
    }
    if (rType === 'd') {
      let names: string[];
      try {
        names = readdirSync(abs).sort();
      } catch (e) {
        return { ok: false, reason: `${abs} cannot be read (${(e as Error).message})` };
      }
      const expected = [...childrenOf(rel)].sort();
      if (names.length !== expected.length || names.some((n, i) => n !== expected[i])) return { ok: false, reason: `${abs}: ${names.length > expected.length ? 'an entry was added' : 'an entry was added or removed'}` };
    } else {
      let h: string;
      const text = rType === 'f' ? seen?.get(abs) : undefined;
      try {
        h = text !== undefined ? sha256(text) : contentHash(abs, rType);
      } catch (e) {
        return { ok: false, reason: `${abs} cannot be read (${(e as Error).message})` };
      }
      if (h !== hash) return { ok: false, reason: `${abs}: changed (content)` };
    }
    // The entry's mtime and ctime are the recorded ones (entryChanged compared them).
    if (Math.max(mtime, ctime) < since - RACY_MS) {
      next.push([rel, rType, size, mtime, ctime, ino, mode]);
      refreshed = true;
    } else next.push(r);
  }
  return { ok: true, next, refreshed };
}

/**
 * Why the top of `dir` (its entry '.') is not as recorded (`top`), or undefined when it is (or when
 * the stamps record no folder: {@link checkStamps} decides). One lstat: what tells an emptied or
 * replaced out/<stack> before the model is fingerprinted. Not a substitute for checkStamps.
 */
export function topChanged(dir: string, top: Stamp | null): string | undefined {
  return top ? entryChanged(dir, top) : undefined;
}

/** Why the entry at `abs` is not as its stamp `r` records it (type, size, mtime, ctime, inode, mode), or undefined when it is: one lstat. */
function entryChanged(abs: string, r: Stamp): string | undefined {
  let st: Stats | undefined;
  try {
    st = lstatSync(abs, { throwIfNoEntry: false });
  } catch (e) {
    return `${abs} cannot be read (${(e as Error).message})`;
  }
  if (!st) return `${abs}: an entry was removed`;
  if (typeOf(st) !== r[1]) return `${abs}: replaced`;
  if (st.size !== r[2] || st.mtimeMs !== r[3] || st.ctimeMs !== r[4] || st.ino !== r[5] || st.mode !== r[6]) return `${abs}: changed (stat)`;
  return undefined;
}

/** What a list of stamps that cannot be read stands for: a folder that nothing on disk matches. */
const UNMATCHED: readonly Stamp[] = Object.freeze([['.', 'd', -1, -1, -1, -1, -1, 'dir'] as Stamp]);

/** The first stamp of a list when it is its folder's own ('.'): what tells an emptied or replaced folder with one lstat. */
const topOf = (list: readonly Stamp[]): Stamp | null => (list[0]?.[0] === '.' ? list[0] : null);

/**
 * A list of stamps and its JSON text, whichever is known first. A cache entry holds each list on a
 * line of its own and its top in its head: a list is parsed at first use (a 1,000-service state
 * folder's is 9,000 stamps, 0.9 MB), and one recorded again as it was read is written back as
 * the text it was read from. A text that is not such a list, or whose top is not the one given,
 * reads as a list that no folder matches: the slow path, never a wrong fast one.
 */
export class StampList {
  private constructor(
    private list: readonly Stamp[] | undefined,
    private json: string | undefined,
    /** The folder's own stamp, or null when the list has none (the folder was absent). */
    readonly top: Stamp | null,
  ) {}

  static of(list: readonly Stamp[]): StampList {
    return new StampList(list, undefined, topOf(list));
  }

  static text(json: string, top: Stamp | null): StampList {
    return new StampList(undefined, json, top);
  }

  get stamps(): readonly Stamp[] {
    if (this.list === undefined) {
      let list: unknown;
      try {
        list = JSON.parse(this.json!);
      } catch {
        list = undefined;
      }
      this.list = Array.isArray(list) && JSON.stringify(topOf(list as Stamp[])) === JSON.stringify(this.top) ? (list as Stamp[]) : UNMATCHED;
    }
    return this.list;
  }

  get text(): string {
    return (this.json ??= JSON.stringify(this.list));
  }
}
