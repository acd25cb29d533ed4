// Snapshots of a folder (content hashes, modes and mtimes) to prove what a run did not touch.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** `relative path → sha256 mode mtime` for every file below `dir` (`link target` for a symbolic link). */
export function treeState(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      // A link (a project's node_modules/podmesh) by its target, not followed.
      else if (e.isSymbolicLink()) out[relative(dir, p)] = `link ${readlinkSync(p)}`;
      else {
        const st = statSync(p);
        const hash = createHash('sha256').update(readFileSync(p)).digest('hex');
        out[relative(dir, p)] = `${hash} ${(st.mode & 0o777).toString(8)} ${st.mtimeMs}`;
      }
    }
  };
  walk(dir);
  return out;
}
