// A no-change synth and every stack file's `import … from 'podmesh'` load no renderer, planner or
// PKI engine: what they import statically must not reach the heavy packages (yaml, handlebars,
// @peculiar/*: about 330 CommonJS modules, 1.8 MB), which load at the slow path's first use.
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';

const HEAVY = /^(?:yaml|handlebars|reflect-metadata|@peculiar\/[^/]+)(?:\/|$)/;

/** The files `entry` imports with static `import` statements, transitively, each with one path that leads to it. */
function staticClosure(meta: Metafile, entry: string): Map<string, string[]> {
  const via = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  for (let n = 0; n < queue.length && n < 10_000; n++) {
    const file = queue[n]!;
    for (const i of meta.inputs[file]?.imports ?? []) {
      if (i.kind !== 'import-statement' || via.has(i.path)) continue;
      via.set(i.path, [...via.get(file)!, i.path]);
      queue.push(i.path);
    }
  }
  return via;
}

describe('lazy loading of the slow path', () => {
  it('the package entry, the CLI and what a no-change synth imports reach no heavy package statically; the slow path does', async () => {
    const entries = ['src/index.ts', 'src/cli/main.ts', 'src/synth/run.ts', 'src/cli/load.ts', 'src/cli/describe.ts', 'src/synth/plan.ts', 'src/synth/apply.ts'];
    const { metafile } = await build({
      entryPoints: entries,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      packages: 'external',
      outdir: 'unused',
      write: false,
      metafile: true,
      logLevel: 'silent',
      define: { __PODMESH_BUNDLED__: 'true' },
    });
    for (const entry of entries.slice(0, 5)) {
      const reached = [...staticClosure(metafile, entry)].filter(([file]) => HEAVY.test(file)).map(([, path]) => path.join(' -> '));
      expect(reached, entry).toEqual([]);
    }
    // The check can fail: the planner and the writer of state do import them.
    for (const entry of entries.slice(5)) expect([...staticClosure(metafile, entry).keys()].some((f) => HEAVY.test(f)), entry).toBe(true);
  });

  it('zod is built in with only what the constructs use: no locale but English (an `import { z }` would take them all)', async () => {
    const { metafile } = await build({
      entryPoints: ['src/index.ts'],
      bundle: true,
      format: 'esm',
      platform: 'node',
      // Every package external but zod, as in the build (scripts/build.mjs BUILT_IN).
      plugins: [{ name: 'only-zod', setup: (b) => b.onResolve({ filter: /^[^./]/ }, (a) => (/^zod(\/|$)/.test(a.path) ? undefined : { path: a.path, external: true })) }],
      outdir: 'unused',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    // What ends up in the bundle (the inputs list what was read, shaken off or not).
    const kept = Object.values(metafile.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([f]) => f));
    const zod = kept.filter((f) => f.includes('node_modules/zod/'));
    expect(zod.length).toBeGreaterThan(5);
    expect(zod.filter((f) => f.includes('/locales/') && !f.endsWith('/index.js'))).toEqual(['node_modules/zod/v4/locales/en.js']);
  });
});
