// manifest.json: every generated file of a stack with its sha256, sorted, without timestamps.
import { createHash } from 'node:crypto';
import { compare } from '../io/sort.ts';

/** Name of the manifest inside `out/<stack>/`. */
export const MANIFEST = 'manifest.json';

/** Renders the manifest of `files` (which must not contain the manifest itself). */
export function renderManifest(stack: string, files: ReadonlyMap<string, string>): string {
  const entries = [...files.keys()].sort(compare).map((path) => ({
    path,
    sha256: createHash('sha256').update(files.get(path)!).digest('hex'),
  }));
  return `${JSON.stringify({ stack, generator: 'podmesh', files: entries }, null, 2)}\n`;
}
