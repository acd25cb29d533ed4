// Builds the engine into dist/ as plain JavaScript (esbuild: one bundle per entry, shared code in
// chunks, packages left to node_modules but the X.509 library's, see BUILT_IN), so the `podmesh` command loads no TypeScript transpiler
// for itself: only stack files are built (src/cli/stack-build.ts, when a command loads them). The sources
// stay the truth: `npm ci` and `npm pack` run this (the `prepare` script), the tests run it first,
// and bin/podmesh.mjs runs it again when a source file is newer than the build (a checkout being
// edited). The output is deterministic: same sources, same files.
//   node scripts/build.mjs            build
//   node scripts/build.mjs --if-stale build only when dist/ is missing or older than a source
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** What the build records about its inputs (for the staleness check), beside the bundles. */
export const INPUTS = 'dist/inputs.json';

/** True when dist/ is missing, or a source it was built from changed or went since. */
export function isStale() {
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(join(root, INPUTS), 'utf8'));
  } catch {
    return true;
  }
  for (const [file, mtimeMs] of Object.entries(recorded.inputs)) {
    try {
      if (statSync(join(root, file)).mtimeMs > mtimeMs) return true;
    } catch {
      return true;
    }
  }
  return false;
}

/** Every `.hbs` file below templates/, relative to the repository, sorted. */
function templateFiles(dir = 'templates') {
  return readdirSync(join(root, dir), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? templateFiles(`${dir}/${e.name}`) : e.name.endsWith('.hbs') ? [`${dir}/${e.name}`] : []))
    .sort();
}

/**
 * The module that stands in for src/render/template-source.ts in dist/: every template
 * precompiled, by src/render/template-compile.ts (built for the occasion, beside the sources so
 * that it finds handlebars, and removed).
 */
async function precompiledTemplates(esbuild, files) {
  const compiler = join(root, `.template-compile.${process.pid}.mjs`);
  try {
    await esbuild({ absWorkingDir: root, entryPoints: ['src/render/template-compile.ts'], bundle: true, format: 'esm', platform: 'node', target: 'node20.19', packages: 'external', outfile: compiler, logLevel: 'warning' });
    const { precompiledModule } = await import(pathToFileURL(compiler).href);
    return precompiledModule(files.map((f) => ({ name: f.slice('templates/'.length, -'.hbs'.length), source: readFileSync(join(root, f), 'utf8') })));
  } finally {
    rmSync(compiler, { force: true });
  }
}

/**
 * The esbuild plugin that puts every template, precompiled, in place of
 * src/render/template-source.ts, and the template files it read (`esbuild`: esbuild's build).
 */
export async function templatesPlugin(esbuild) {
  const templates = templateFiles();
  const templateModule = await precompiledTemplates(esbuild, templates);
  const plugin = {
    name: 'precompiled-templates',
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/]render[\\/]template-source\.ts$/ }, (args) => ({ contents: templateModule, loader: 'ts', resolveDir: dirname(args.path) }));
    },
  };
  return { plugin, templates };
}

/**
 * The packages built into the bundles instead of left to node_modules: what the slow path loads,
 * @peculiar/x509 with the ASN.1, DI and helper modules it is made of, yaml and the handlebars
 * runtime; and zod, which every command that loads a stack needs (the constructs check their props
 * with it). Loaded from node_modules the X.509 library alone is 212 CommonJS modules, each resolved,
 * read and wrapped: 120 to 230 ms at the first certificate or CRL of a process, and again in each
 * issuing worker; built in (from their ES module builds where they have one) they load in about
 * half that. zod is 97 ES modules: 130 ms to import from node_modules, 48 ms as one bundle (this
 * machine, alone); the constructs import it as a namespace (`import * as z`), so the bundle keeps
 * the 18 modules they use, 194 KB, which import in about 5 ms (`import { z }` keeps the whole
 * namespace: 755 KB with every locale; test/lazy-load.test.ts pins it). The PKI's and the renderers' land in the chunks only they load. `reflect-metadata`
 * stays a package: a global polyfill that other code may load too; so does `constructs`, whose
 * classes a stack may import itself and must be the ones podmesh checks against. They stay
 * dependencies (installed with their licenses); the engine's identity and the staleness check
 * cover their files like the sources.
 */
const BUILT_IN = /^(@peculiar\/[^/]+|asn1js|pvtsutils|pvutils|tsyringe|tslib|yaml|handlebars|zod)(\/|$)/;

/**
 * Every package external (left to node_modules) but {@link BUILT_IN}'s. A Node built-in that
 * CommonJS code built in `require`s (yaml's `process` and `buffer`) comes from
 * `process.getBuiltinModule`: an ES module bundle has no `require`.
 */
const packagesOutside = {
  name: 'packages-outside',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind === 'require-call' && isBuiltin(args.path)) return { path: args.path.replace(/^node:/, ''), namespace: 'node-builtin' };
      return BUILT_IN.test(args.path) ? undefined : { path: args.path, external: true };
    });
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({ contents: `module.exports = process.getBuiltinModule(${JSON.stringify(`node:${args.path}`)});`, loader: 'js' }));
  },
};

/** Builds dist/ into a fresh folder and swaps it in, so a reader never sees half a build. */
export async function build() {
  const staging = join(root, `dist.${process.pid}.tmp`);
  try {
    return await buildVia(staging);
  } finally {
    // A build that failed leaves no half-made folder behind (a finished one was renamed into place).
    rmSync(staging, { recursive: true, force: true });
  }
}

/** {@link build}, in the folder `staging`. */
async function buildVia(staging) {
  const { build: esbuild } = await import('esbuild');
  rmSync(staging, { recursive: true, force: true });
  // The templates precompiled, in place of the module that compiles them at run time.
  const { plugin: precompiled, templates } = await templatesPlugin(esbuild);
  const result = await esbuild({
    absWorkingDir: root,
    // pki-worker: the certificate engine's issuing worker threads load it beside the bundles (src/state/pki/pool.ts).
    // out-writer: the thread writing a large stack's new out/ folder while it renders (src/io/staged.ts).
    // state-check: the thread checking large state folders against their stamps while the stacks resolve (src/synth/state-check.ts).
    entryPoints: { index: 'src/index.ts', cli: 'src/cli/main.ts', 'pki-worker': 'src/state/pki/issue-worker.ts', 'out-writer': 'src/io/staging-worker.ts', 'state-check': 'src/synth/state-check-worker.ts' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.19',
    // Packages stay in node_modules, but for those built in (their ES module builds: smaller, and
    // the parts the engine does not import left out).
    mainFields: ['module', 'main'],
    outdir: staging,
    outExtension: { '.js': '.mjs' },
    define: { __PODMESH_BUNDLED__: 'true' },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    plugins: [packagesOutside, precompiled],
  });
  const inputs = {};
  // The engine's identity: the content of every source bundled in (synth's no-change fast path,
  // src/synth/engine-id.ts, keys its cache by it; templates/ and packages are added at run time).
  const engine = createHash('sha256');
  // The templates are built in too: a changed one makes dist/ stale.
  // (The built-ins' stand-ins are no files.)
  const sources = Object.keys(result.metafile.inputs).filter((f) => !f.startsWith('node-builtin:'));
  for (const file of [...new Set([...sources, ...templates])].sort()) {
    inputs[file] = statSync(join(root, file)).mtimeMs;
    const text = readFileSync(join(root, file));
    engine.update(`${file}\0${text.length}\0`).update(text);
  }
  mkdirSync(staging, { recursive: true });
  writeFileSync(join(staging, 'inputs.json'), `${JSON.stringify({ engine: engine.digest('hex'), inputs }, null, 2)}\n`);
  const dist = join(root, 'dist');
  const old = join(root, `dist.${process.pid}.old`);
  try {
    renameSync(dist, old);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  try {
    renameSync(staging, dist);
  } catch (e) {
    // Another build swapped its (identical) dist/ in first: keep that one.
    if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    rmSync(staging, { recursive: true, force: true });
  }
  rmSync(old, { recursive: true, force: true });
  return Object.keys(result.metafile.outputs).map((o) => relative(staging, join(root, o)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!process.argv.includes('--if-stale') || isStale()) await build();
}
