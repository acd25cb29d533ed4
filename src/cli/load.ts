// Loads the stack files of a folder into one App: each `stacks/*.ts` default-exports `(app) => void`.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App } from '../../constructs/core/app.ts';
import { IssueCollector, PodmeshError } from '../../constructs/core/errors.ts';
import { whileLoadingStackFile } from '../../constructs/core/stack-file.ts';
import { compare } from '../io/sort.ts';

/** A stack file's default export; it may be async (an awaited promise, reported like a throw). */
export type StackDefinition = (app: App) => void | Promise<void>;

/**
 * Imports every `*.ts` file directly in `dir` (sorted by name; sub-folders hold shared code) and
 * lets each add its stacks to a new App. Problems of all files are reported together.
 */
export async function loadStacks(dir: string): Promise<App> {
  const abs = resolve(dir);
  if (!existsSync(abs)) {
    throw PodmeshError.at(dir, 'no such folder. Stacks live in stacks/*.ts, each default-exporting (app: App) => void; pass --stacks DIR for another folder.');
  }
  const files = (await readdir(abs, { withFileTypes: true }))
    .filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name) && !/\.(test|spec|d)\./.test(e.name))
    .map((e) => e.name)
    .sort(compare);
  const app = new App();
  const issues = new IssueCollector();
  for (const file of files) {
    const where = join(dir, file);
    try {
      const mod = (await import(pathToFileURL(join(abs, file)).href)) as { default?: unknown };
      if (typeof mod.default !== 'function') {
        issues.add(where, 'has no default export. A stack file default-exports a function (app: App) => void that creates its Stack.');
        continue;
      }
      // Paths a stack gives (envFiles) resolve against the stack file's folder, not the cwd.
      await whileLoadingStackFile(join(abs, file), () => (mod.default as StackDefinition)(app));
    } catch (e) {
      if (e instanceof PodmeshError) issues.addAll(e.issues);
      else issues.add(where, `failed to load: ${(e as Error).message}`);
    }
  }
  issues.throwIfAny();
  return app;
}
