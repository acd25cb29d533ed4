// One writer at a time: an exclusive lock file naming its holder, waited for, taken over when its holder died.
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm, rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { PodmeshError } from '../../constructs/core/errors.ts';

/** Who holds a lock, as written into the lock file. */
export interface LockHolder {
  readonly pid: number;
  /** Start time of the holder process in clock ticks since boot (`/proc/<pid>/stat` field 22), so a reused pid is told apart. */
  readonly start?: string;
  readonly host: string;
  /** The command line that took it, for the waiting message (`podmesh synth`). */
  readonly command: string;
  /** ISO time it was taken. */
  readonly since: string;
}

/** How {@link acquireLock} waits. */
export interface LockOptions {
  /** What the caller is doing, shown to whoever waits for it. */
  readonly command: string;
  /** Seconds to wait for a live holder before giving up. @default 60 */
  readonly timeoutSeconds?: number;
  /** Called once when the lock is busy and once when a dead holder's lock is taken over. */
  readonly onWait?: (message: string) => void;
  /** Milliseconds between tries. @default 100 */
  readonly pollMs?: number;
  /** Mode of the lock's folder when it has to be created. @default 0o700 */
  readonly dirMode?: number;
}

/** A held lock; `release` is idempotent. */
export interface Lock {
  readonly path: string;
  release(): Promise<void>;
}

/** Start time of a process, or undefined when it does not exist (or /proc is not there). */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is in parentheses and may hold spaces; fields after the last ')' are plain.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the holder recorded in a lock file is still running. Unknown (another machine) counts as alive. */
export function holderAlive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true;
  const start = processStart(h.pid);
  if (start !== undefined) return h.start === undefined || h.start === start;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as LockHolder;
    return Number.isInteger(h.pid) && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/** Describes a holder for people: `pid 4242 (podmesh synth) since 2026-12-01T10:00:00Z`. */
export function describeHolder(h: LockHolder): string {
  const where = h.host === hostname() ? '' : ` on ${h.host}`;
  return `pid ${h.pid}${where} (${h.command}) since ${h.since}`;
}

/** Creates the lock file if nobody has it; returns false when it exists. */
async function tryCreate(path: string, holder: LockHolder): Promise<boolean> {
  try {
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(holder)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    // The folder went away (a previous holder that had made it removed it again on release).
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

async function readHolder(path: string): Promise<{ text: string; holder?: LockHolder } | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    return { text, holder: parseHolder(text) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Removes a lock whose holder is dead, exactly once among racing takers: the removal happens under
 * a second lock (`<path>.takeover`), and only if the file still holds the dead holder's text.
 */
async function takeOver(path: string, staleText: string, self: LockHolder): Promise<boolean> {
  const guard = `${path}.takeover`;
  if (!(await tryCreate(guard, self))) {
    const g = await readHolder(guard);
    // A taker killed between its two steps leaves the guard behind; it is as dead as the lock.
    if (g?.holder && !holderAlive(g.holder)) await rm(guard, { force: true });
    return false;
  }
  try {
    const now = await readHolder(path);
    if (now?.text !== staleText) return false;
    await rm(path, { force: true });
    return true;
  } finally {
    await rm(guard, { force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes the lock at `path` (creating its folder 0700 if needed). A live holder is waited for up to
 * the timeout, then a PodmeshError names it; a dead holder's lock (killed process, reused pid) is
 * taken over. A damaged lock file (not JSON) is treated as a dead holder's only when it is older
 * than the timeout, since a holder may be between creating and filling it.
 */
export async function acquireLock(path: string, options: LockOptions): Promise<Lock> {
  // A folder made only to hold the lock goes again on release, so a refused run leaves nothing.
  let created = await mkdir(dirname(path), { recursive: true, mode: options.dirMode ?? 0o700 });
  const self: LockHolder = { pid: process.pid, start: processStart(process.pid), host: hostname(), command: options.command, since: new Date().toISOString() };
  const timeoutMs = (options.timeoutSeconds ?? 60) * 1000;
  const deadline = Date.now() + timeoutMs;
  let told = false;
  let unreadableSince: number | undefined;
  for (;;) {
    if (await tryCreate(path, self)) return heldLock(path, created);
    const seen = await readHolder(path);
    if (!seen) {
      // Released between our two steps (its folder too, if its holder had made it): try again,
      // but never past the deadline.
      if (Date.now() >= deadline) throw busy(path, undefined, timeoutMs);
      created = (await mkdir(dirname(path), { recursive: true, mode: options.dirMode ?? 0o700 })) ?? created;
      continue;
    }
    const dead = seen.holder ? !holderAlive(seen.holder) : Date.now() - (unreadableSince ??= Date.now()) > timeoutMs;
    if (dead && (await takeOver(path, seen.text, self))) {
      options.onWait?.(`took over the lock ${path} from ${seen.holder ? describeHolder(seen.holder) : 'an unreadable holder'}, which is no longer running`);
      continue;
    }
    if (Date.now() >= deadline) throw busy(path, seen.holder, timeoutMs);
    if (!told && seen.holder) {
      options.onWait?.(`waiting for ${describeHolder(seen.holder)} to release ${path} (up to ${timeoutMs / 1000} s)`);
      told = true;
    }
    await sleep(options.pollMs ?? 100);
  }
}

function busy(path: string, holder: LockHolder | undefined, timeoutMs: number): PodmeshError {
  const who = holder ? describeHolder(holder) : 'a holder whose lock file is unreadable';
  return new PodmeshError([{ path, message: `another podmesh run holds the lock: ${who}. Wait for it to finish, or raise --lock-timeout (waited ${timeoutMs / 1000} s).` }]);
}

function heldLock(path: string, createdDir: string | undefined): Lock {
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      await rm(path, { force: true });
      if (createdDir) await removeEmptyUpTo(dirname(path), createdDir);
    },
  };
}

/** Removes `dir` and its parents up to `top` while they are empty (a run that wrote nothing there). */
async function removeEmptyUpTo(dir: string, top: string): Promise<void> {
  for (let d = dir, i = 0; i < 64; d = dirname(d), i++) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
    if (d === top) return;
  }
}

/** Runs `fn` holding the lock at `path`, releasing it however `fn` ends. */
export async function withLock<T>(path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * The lock of a folder sits beside it (`.podmesh/` → `.podmesh.lock`, `out/` → `.out.podmesh.lock`),
 * so taking it changes nothing in the folder, not even its mtime, and a refused run leaves it as it was.
 */
export function lockBeside(dir: string): string {
  const name = basename(dir);
  return join(dirname(dir), name.startsWith('.') ? `${name}.lock` : `.${name}.podmesh.lock`);
}
