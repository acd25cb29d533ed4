// Stack files as JavaScript: bundled by esbuild into a private cache, keyed by the content of every
// file they are made of, and imported from there. No module hooks, no loader thread: a command that
// loads unchanged stacks hashes a few files and imports plain JavaScript.
import { privateCacheRoot } from '../io/cache-root.ts';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';

/** Changes whenever what this module writes changes, so older cache entries are not reused. */
const FORMAT = 1;

/** A stack file that could not be built: where (file:line:column when known) and what. */
export interface BuildProblem {
  /** The stack file (an entry point) the problem stops. */
  readonly entry: string;
  /** `file:line:column` of the problem, the file relative to the working directory, when known. */
  readonly at?: string;
  readonly message: string;
  /** A bare import that resolves to nothing. */
  readonly missing?: string;
}

/** The built stack files: entry path → URL of its JavaScript, or the problems that stop it. */
export type BuiltStacks = ReadonlyMap<string, { readonly url: string; readonly oneOff?: string } | { readonly problems: readonly BuildProblem[] }>;

/** What a cache entry was built from: every input with its sha256, and the entry files' outputs. */
interface CacheIndex {
  readonly format: number;
  readonly entries: Readonly<Record<string, string>>;
  /** Absolute path → sha256 of every file bundled in, and of every package file imported by absolute URL. */
  readonly inputs: Readonly<Record<string, string>>;
}

const sha256 = (path: string): string | undefined => {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
};

/** The cache folder of one stacks folder's builds. Anything else found there is not trusted. */
function cacheRoot(stacksDir: string): string {
  return join(privateCacheRoot(), createHash('sha256').update(stacksDir).digest('hex').slice(0, 16));
}

/** A week: a stacks folder whose stacks were not built for that long (a removed checkout, a test's temp folder) loses its builds. */
const UNUSED_FOR = 7 * 86_400_000;

/** Removes the builds of other stacks folders not built for {@link UNUSED_FOR} (run when building, not on a cache hit). */
function pruneStacksFolders(base: string): void {
  const root = dirname(base);
  const before = Date.now() - UNUSED_FOR;
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    // synth/: synth's no-change records (src/synth/fastpath.ts), pruned by their own rule.
    if (path === base || name === 'synth') continue;
    const st = statSync(join(path, 'index.json'), { throwIfNoEntry: false }) ?? statSync(path, { throwIfNoEntry: false });
    if (st && st.mtimeMs < before) rmSync(path, { recursive: true, force: true });
  }
}

/** The cached build when every file it was made of is unchanged, else undefined. */
function cached(dir: string, entries: readonly string[]): CacheIndex | undefined {
  let index: CacheIndex;
  try {
    index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as CacheIndex;
  } catch {
    return undefined;
  }
  if (index.format !== FORMAT || Object.keys(index.entries).length !== entries.length || !entries.every((e) => index.entries[e] !== undefined)) return undefined;
  for (const [path, hash] of Object.entries(index.inputs)) if (sha256(path) !== hash) return undefined;
  if (!Object.values(index.entries).every((out) => existsSync(join(dir, out)))) return undefined;
  return index;
}

/** Relative or absolute paths (anything else is a package or a built-in). */
const PATH = /^(?:\.{1,2}(?:\/|$)|\/|[A-Za-z]:[\\/])/;
const SCRIPT = /\.(?:[cm]?[jt]s|tsx|jsx)$/;

/**
 * Resolution and loading as Node would see the stack files where they are: packages resolved from
 * the importing file (Node's conditions: `node`, `import`, `default`; `main`, never `module`) and
 * imported by absolute URL, not bundled, so the stacks share podmesh's own module instances; and
 * `import.meta.url`, `.dirname`, `.filename` of each file being its own, not the bundle's.
 */
function nodeSemantics(externals: Set<string>): Plugin {
  return {
    name: 'podmesh-stack-files',
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === 'podmesh-resolving' || PATH.test(args.path) || args.path.startsWith('node:') || args.kind === 'entry-point') return undefined;
        const r = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'podmesh-resolving' });
        if (r.errors.length > 0) return { errors: r.errors.map((e) => ({ ...e, detail: { missing: args.path } })) };
        if (r.external || !r.path) return { path: args.path, external: true };
        // A package shipping TypeScript sources is bundled like the stack files; JavaScript is imported.
        if (/\.(?:[cm]?ts|tsx)$/.test(r.path)) return { path: r.path };
        externals.add(r.path);
        return { path: pathToFileURL(r.path).href, external: true };
      });
      build.onLoad({ filter: SCRIPT }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const url = pathToFileURL(args.path).href;
        const contents = source
          .replace(/\bimport\.meta\.url\b/g, JSON.stringify(url))
          .replace(/\bimport\.meta\.dirname\b/g, JSON.stringify(dirname(args.path)))
          .replace(/\bimport\.meta\.filename\b/g, JSON.stringify(args.path));
        const ext = extname(args.path);
        const loader = ext === '.tsx' ? 'tsx' : ext === '.jsx' ? 'jsx' : /\.[cm]?ts$/.test(ext) ? 'ts' : 'js';
        return { contents, loader, resolveDir: dirname(args.path) };
      });
    },
  };
}

/** What esbuild's failure says, per entry that imports the failing file. */
function problemsOf(e: unknown, entry: string): BuildProblem[] {
  const errors = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } | null; detail?: { missing?: string } }[] }).errors;
  if (!errors) return [{ entry, message: String((e as Error)?.message ?? e) }];
  return errors.map((x) => ({
    entry,
    message: x.text,
    ...(x.location ? { at: `${x.location.file}:${x.location.line}:${x.location.column + 1}` } : {}),
    ...(x.detail?.missing ? { missing: x.detail.missing } : {}),
  }));
}

/**
 * Builds the stack files `entries` (absolute paths) together, so the code they share is one
 * module, and returns where to import each from. A cache entry is reused while every file it
 * was made of has the same content (sha256, so an edit within the same second or of the same
 * size is seen). When the files do not build together, each is built alone to tell which ones
 * fail and why, and the others still load.
 *
 * Layout: `<cache>/<stacks folder hash>/index.json` names the current build, a folder named by
 * the hash of its inputs that never changes once in place; a concurrent command reads the old
 * index or the new one, and either's files are there.
 */
export async function buildStacks(stacksDir: string, entries: readonly string[]): Promise<BuiltStacks> {
  const base = cacheRoot(resolve(stacksDir));
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const urls = (index: CacheIndex, dir: string) => new Map(entries.map((e) => [e, { url: pathToFileURL(join(dir, index.entries[e]!)).href }]));
  const hit = cached(base, entries);
  if (hit) return urls(hit, base);

  const { build } = await import('esbuild');
  const attempt = async (files: readonly string[]) => {
    const externals = new Set<string>();
    const staging = join(base, `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      const result = await build({
        entryPoints: [...files],
        absWorkingDir: process.cwd(),
        outdir: staging,
        outbase: resolve(stacksDir),
        bundle: true,
        splitting: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        conditions: [],
        mainFields: ['main'],
        // Stack traces point at the stack files' own lines.
        sourcemap: 'inline',
        sourcesContent: false,
        metafile: true,
        logLevel: 'silent',
        outExtension: { '.js': '.mjs' },
        plugins: [nodeSemantics(externals)],
      });
      const outputs: Record<string, string> = {};
      for (const [out, meta] of Object.entries(result.metafile.outputs)) {
        if (meta.entryPoint) outputs[resolve(process.cwd(), meta.entryPoint)] = relative(staging, resolve(process.cwd(), out));
      }
      const inputs: Record<string, string> = {};
      for (const input of [...Object.keys(result.metafile.inputs).map((i) => resolve(process.cwd(), i)), ...externals].sort()) {
        const hash = sha256(input);
        if (hash) inputs[input] = hash;
      }
      return { staging, outputs, inputs };
    } catch (e) {
      rmSync(staging, { recursive: true, force: true });
      throw e;
    }
  };

  try {
    const { staging, outputs, inputs } = await attempt(entries);
    const key = createHash('sha256').update(JSON.stringify([FORMAT, outputs, inputs])).digest('hex').slice(0, 16);
    // Another command may have put the same build in place meanwhile: then its copy serves.
    try {
      if (existsSync(join(base, key))) rmSync(staging, { recursive: true, force: true });
      else renameSync(staging, join(base, key));
    } catch (e) {
      if (!['EEXIST', 'ENOTEMPTY'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      rmSync(staging, { recursive: true, force: true });
    }
    const index: CacheIndex = { format: FORMAT, entries: Object.fromEntries(Object.entries(outputs).map(([e, out]) => [e, `${key}/${out}`])), inputs };
    const tmp = join(base, `.index-${process.pid}-${randomBytes(4).toString('hex')}`);
    writeFileSync(tmp, `${JSON.stringify(index)}\n`, { mode: 0o600 });
    renameSync(tmp, join(base, 'index.json'));
    pruneBuilds(base, key);
    pruneStacksFolders(base);
    return urls(index, base);
  } catch (e) {
    if (!(e as { errors?: unknown }).errors) throw e;
    // Which files fail, each built alone into a folder of its own (removed once loaded).
    const built = new Map<string, { url: string; oneOff: string } | { problems: BuildProblem[] }>();
    for (const entry of entries) {
      try {
        const { staging, outputs } = await attempt([entry]);
        built.set(entry, { url: pathToFileURL(join(staging, outputs[entry]!)).href, oneOff: staging });
      } catch (err) {
        built.set(entry, { problems: problemsOf(err, entry) });
      }
    }
    return built;
  }
}

/** Builds other than `current` older than a day: no command that started before can still need them. */
function pruneBuilds(base: string, current: string): void {
  const dayAgo = Date.now() - 86_400_000;
  for (const name of readdirSync(base)) {
    if (name === current || name === 'index.json') continue;
    const path = join(base, name);
    if (statSync(path).mtimeMs < dayAgo) rmSync(path, { recursive: true, force: true });
  }
}

/** Removes the one-off builds of stack files that did not build together. */
export function removeOneOffBuilds(built: BuiltStacks): void {
  for (const b of built.values()) if ('oneOff' in b && b.oneOff) rmSync(b.oneOff, { recursive: true, force: true });
}
