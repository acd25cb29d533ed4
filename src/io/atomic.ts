// The one atomic writer of the state folder (and of files replaced in place): whole files or nothing,
// exact modes whatever the umask, folders created private, new files that never overwrite.
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { chmod, link, mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

/** A temp file beside `abs` holding `content` (text as UTF-8, or bytes) with exactly `mode`, fsynced; returns its path. */
async function stage(abs: string, content: string | Uint8Array, mode: number): Promise<string> {
  const slash = abs.lastIndexOf('/');
  const tmp = `${abs.slice(0, slash + 1)}.${abs.slice(slash + 1)}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await (typeof content === 'string' ? fh.writeFile(content, 'utf8') : fh.writeFile(content));
    await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

/** Writes `content` to `abs` atomically (temp file beside it, chmod, fsync, rename) with exactly `mode`. */
export async function writeAtomic(abs: string, content: string | Uint8Array, mode: number): Promise<void> {
  await rename(await stage(abs, content, mode), abs);
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
  /** Create a file atomically; fails with {@link FileExistsError} rather than replace one. */
  create(abs: string, content: string, mode: number): Promise<void>;
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
}

/** The state writer on the real file system. */
export const atomicWriter: StateWriter = {
  write: writeAtomic,
  create: createAtomic,
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
