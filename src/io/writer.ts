// The only code that writes `out/`: compares, swaps a stack's folder atomically, prunes stale files.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { link, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
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

const staging = (outDir: string, stack: string) => join(outDir, `.${stack}.podmesh-staging`);
const previous = (outDir: string, stack: string) => join(outDir, `.${stack}.podmesh-previous`);

/**
 * Makes `out/<stack>/` hold exactly `files`.
 *
 * Nothing is written when nothing changed. Otherwise the new tree is built beside the old one
 * (unchanged files hard-linked, so they keep their mtimes) and swapped in with two renames; a
 * synth killed at any point leaves the previous tree, which the next run restores if needed.
 * With `check`, only compares.
 */
export async function writeStackOutput(
  outDir: string,
  stack: string,
  files: ReadonlyMap<string, string>,
  options: { readonly check?: boolean } = {},
): Promise<WriteReport> {
  const target = join(outDir, stack);
  if (!options.check) await recover(outDir, stack);
  const existing = existsSync(target) ? await listFiles(target) : [];
  const existingSet = new Set(existing);
  const added: string[] = [];
  const modified: string[] = [];
  const same = new Set<string>();
  for (const path of [...files.keys()].sort(compare)) {
    if (!existingSet.has(path)) added.push(path);
    else if (!sameContent(join(target, path), files.get(path) as string)) modified.push(path);
    else same.add(path);
  }
  const removed = existing.filter((p) => !files.has(p));
  const report = { stack, added, modified, removed, unchanged: same.size };
  if (options.check || !changed(report)) return report;

  const stage = staging(outDir, stack);
  await rm(stage, { recursive: true, force: true });
  for (const [path, content] of [...files].sort(([a], [b]) => compare(a, b))) {
    const dest = join(stage, path);
    await mkdir(dirname(dest), { recursive: true });
    if (same.has(path)) await link(join(target, path), dest);
    else await writeFile(dest, content, { mode: 0o644 });
  }
  const old = previous(outDir, stack);
  if (existsSync(target)) await rename(target, old);
  await rename(stage, target);
  await rm(old, { recursive: true, force: true });
  return report;
}

/**
 * Whether a file holds exactly `content`. Synchronous on purpose: thousands of small files compare
 * far faster without a thread-pool round trip per open, stat, read and close; a size that differs
 * from the content's UTF-8 length settles it without reading.
 */
function sameContent(abs: string, content: string): boolean {
  const fd = openSync(abs, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size !== Buffer.byteLength(content, 'utf8')) return false;
    return readFileSync(fd, 'utf8') === content;
  } finally {
    closeSync(fd);
  }
}

/** Finishes or undoes a swap that a killed synth left half done. */
async function recover(outDir: string, stack: string): Promise<void> {
  const target = join(outDir, stack);
  const old = previous(outDir, stack);
  if (existsSync(old)) {
    if (existsSync(target)) await rm(old, { recursive: true, force: true });
    else await rename(old, target);
  }
  await rm(staging(outDir, stack), { recursive: true, force: true });
}

/**
 * Removes `out/<name>/` folders of stacks that no longer exist, recognised by their manifest.
 * Returns the names removed (or that would be, with `check`).
 */
export async function pruneStacks(outDir: string, keep: ReadonlySet<string>, manifest: string, options: { readonly check?: boolean } = {}): Promise<string[]> {
  if (!existsSync(outDir)) return [];
  const gone: string[] = [];
  for (const entry of (await readdir(outDir, { withFileTypes: true })).sort((a, b) => compare(a.name, b.name))) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || keep.has(entry.name)) continue;
    if (!existsSync(join(outDir, entry.name, manifest))) continue;
    gone.push(entry.name);
    if (!options.check) await rm(join(outDir, entry.name), { recursive: true, force: true });
  }
  return gone;
}

/** Every file below `dir`, as sorted relative paths with `/` separators (synchronous: thousands of folders). */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p).split('\\').join('/'));
    }
  };
  walk(dir);
  return out.sort(compare);
}
