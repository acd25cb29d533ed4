// Temporary files and folders an interrupted run left in a state folder (they may hold keys).
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { compare } from '../io/sort.ts';

/**
 * The names podmesh's writers give their temporaries: `io/atomic.ts` writes `.<name>.<12 hex>.tmp`
 * beside the file it replaces and renames a folder it removes to `.<name>.<12 hex>.removed` first,
 * and a first PKI run builds `.pki-<12 hex>.tmp/` before renaming it into place.
 */
const TEMPORARY = /^\.(?:pki-[0-9a-f]{12}\.tmp|.+\.[0-9a-f]{12}\.(?:tmp|removed))$/;

/**
 * Leftovers below a stack's state folder, as sorted relative paths; reads only. A run holding the
 * lock is the only writer, so any temporary found before it writes is an earlier run's.
 */
export function findLeftovers(stackStateDir: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const abs = join(dir, e.name);
      if (TEMPORARY.test(e.name)) found.push(relative(stackStateDir, abs));
      else if (e.isDirectory() && depth < 8) walk(abs, depth + 1);
    }
  };
  walk(stackStateDir, 0);
  return found.sort(compare);
}
