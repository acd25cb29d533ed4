// The engine's identity for synth's no-change fast path: what, besides the model, the state folder
// and the options, decides what a synth renders. A different identity never reuses a cache entry.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageFile } from '../package-root.ts';

declare const __PODMESH_BUNDLED__: boolean | undefined;

/** Bound on the files hashed from one folder. */
const MAX_FILES = 20_000;

/** Every file below `dir` (sorted, relative), with its stat identity; none when `dir` cannot be read. */
function listFiles(dir: string): { rel: string; abs: string; stat: string }[] {
  let entries;
  try {
    entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch {
    return [];
  }
  const files = entries.filter((e) => e.isFile());
  if (files.length > MAX_FILES) throw new Error(`more than ${MAX_FILES} files in ${dir}`);
  return files
    .map((e) => {
      const abs = join(e.parentPath, e.name);
      const st = statSync(abs, { bigint: true });
      return { rel: relative(dir, abs), abs, stat: `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}` };
    })
    .sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** Content hashes of folders, memoized by the stat identity of every file in them (within a process). */
const memo = new Map<string, { stats: string; hash: string }>();

/** sha256 of every file's path and content below `dir`; re-read only when a file's stat changed. */
function folderHash(dir: string): string {
  const files = listFiles(dir);
  const stats = files.map((f) => `${f.rel}\0${f.stat}`).join('\n');
  const known = memo.get(dir);
  if (known && known.stats === stats) return known.hash;
  const h = createHash('sha256');
  for (const f of files) {
    const text = readFileSync(f.abs);
    h.update(`${f.rel}\0${text.length}\0`).update(text);
  }
  const hash = h.digest('hex');
  memo.set(dir, { stats, hash });
  return hash;
}

/** The installed version of each dependency in podmesh's package.json (looked up like Node does, from the package root up). */
function dependencyVersions(root: string): string[] {
  let pkg: { dependencies?: Record<string, string> };
  try {
    pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as typeof pkg;
  } catch {
    return ['package.json: unreadable'];
  }
  const out: string[] = [];
  for (const name of Object.keys(pkg.dependencies ?? {}).sort()) {
    let version = 'missing';
    for (let d = root, i = 0; i < 64; i++) {
      try {
        version = (JSON.parse(readFileSync(join(d, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
        break;
      } catch {
        const up = dirname(d);
        if (up === d) break;
        d = up;
      }
    }
    out.push(`${name}@${version}`);
  }
  return out;
}

/**
 * The engine's identity: the code (the build's hash of its sources, recorded by
 * scripts/build.mjs in dist/inputs.json; run from sources, a hash of src/ and constructs/),
 * templates/ (read at run time), podmesh's package.json, the installed version of each
 * dependency, and Node's version. Throws when it cannot be made (the caller takes the slow path).
 */
export function engineIdentity(): string {
  const root = fileURLToPath(packageFile(''));
  const h = createHash('sha256');
  h.update(`node ${process.version}\n`);
  if (typeof __PODMESH_BUNDLED__ !== 'undefined') {
    const recorded = JSON.parse(readFileSync(join(root, 'dist', 'inputs.json'), 'utf8')) as { engine?: unknown };
    if (typeof recorded.engine !== 'string') throw new Error('dist/inputs.json has no engine hash: rebuild with node scripts/build.mjs');
    h.update(`code ${recorded.engine}\n`);
  } else {
    h.update(`src ${folderHash(join(root, 'src'))}\nconstructs ${folderHash(join(root, 'constructs'))}\n`);
  }
  h.update(`templates ${folderHash(join(root, 'templates'))}\n`);
  h.update(`package ${createHash('sha256').update(readFileSync(join(root, 'package.json'))).digest('hex')}\n`);
  h.update(`dependencies ${dependencyVersions(root).join(' ')}\n`);
  return h.digest('hex');
}
