// podmesh's own package.json, read next to the code (so an installed copy reports its own version).
import { readFileSync } from 'node:fs';

/** The fields of podmesh's package.json the CLI uses. */
export interface PodmeshPackage {
  readonly name: string;
  readonly version: string;
  readonly devDependencies?: Readonly<Record<string, string>>;
}

/** Reads `package.json` at the root of this podmesh (two folders above src/cli/). */
export function podmeshPackage(): PodmeshPackage {
  return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as PodmeshPackage;
}
