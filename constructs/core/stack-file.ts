// The stack file being loaded, so props that name files (envFiles) resolve against its folder.
import { dirname, isAbsolute, resolve } from 'node:path';

// Kept on globalThis under a registered symbol: a stack file importing `podmesh` from another copy
// of the package (a linked checkout, a second node_modules) still sees what the loader set.
const KEY = Symbol.for('podmesh.loadingStackFile');
type Holder = { [KEY]?: string };

/** The absolute path of the stack file whose default export is running, if a loader set one. */
export function loadingStackFile(): string | undefined {
  return (globalThis as Holder)[KEY];
}

/**
 * Runs a stack file's default export with `file` recorded as the stack file being loaded, and
 * clears it afterwards (also when it throws). Stack files load one at a time, so an async export
 * keeps its file for as long as it is awaited.
 */
export async function whileLoadingStackFile<T>(file: string, run: () => T | Promise<T>): Promise<T> {
  const holder = globalThis as Holder;
  const previous = holder[KEY];
  holder[KEY] = resolve(file);
  try {
    return await run();
  } finally {
    if (previous === undefined) delete holder[KEY];
    else holder[KEY] = previous;
  }
}

/**
 * A path a stack gives, made absolute: against the folder of the stack file being loaded, or the
 * working directory when a stack is built in code without the loader (tests, your own scripts).
 */
export function resolveStackPath(path: string): string {
  if (isAbsolute(path)) return path;
  const file = loadingStackFile();
  return resolve(file === undefined ? process.cwd() : dirname(file), path);
}
