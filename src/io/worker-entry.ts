// Where a worker thread's entry is: beside the bundles in dist/ (the build makes it an entry
// point), or its TypeScript source, loaded through tsx, when podmesh runs from its sources (tests).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

declare const __PODMESH_BUNDLED__: boolean | undefined;

/** What `new Worker(code, { eval })` takes to start a worker. */
export interface WorkerEntry {
  readonly code: string | URL;
  readonly eval: boolean;
}

/**
 * The entry of a worker: `bundled` (a URL beside the calling bundle, `new URL('./x.mjs',
 * import.meta.url)`) when podmesh runs built, else `source` (the `.ts` file, through tsx).
 */
export function workerEntry(bundled: URL, source: URL): WorkerEntry {
  if (typeof __PODMESH_BUNDLED__ !== 'undefined') return { code: bundled, eval: false };
  if (!existsSync(fileURLToPath(source))) throw new Error(`internal: the worker ${fileURLToPath(source)} is missing`);
  // Node 20 does not apply --import hooks to a worker's entry: the worker registers tsx itself first.
  const tsx = tsxEsmApi();
  return { code: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(source.href)}); });`, eval: true };
}

/** tsx's ESM API module (its `import` export: require.resolve would answer the CommonJS one). */
function tsxEsmApi(): string {
  const pkgJson = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  const target = pkg.exports['./esm/api']?.import.default;
  if (!target) throw new Error(`internal: ${pkgJson} exports no ./esm/api`);
  return pathToFileURL(join(dirname(pkgJson), target)).href;
}
