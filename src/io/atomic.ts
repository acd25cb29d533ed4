// Replacing one file so that readers see the old content or the new, never a mix; folder modes.
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';

/** Writes `content` to `abs` atomically (temp file beside it, chmod, fsync, rename) with exactly `mode`. */
export async function writeAtomic(abs: string, content: string, mode: number): Promise<void> {
  const slash = abs.lastIndexOf('/');
  const tmp = `${abs.slice(0, slash + 1)}.${abs.slice(slash + 1)}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(content, 'utf8');
    await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, abs);
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
