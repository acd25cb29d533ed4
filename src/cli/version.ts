// podmesh's own package.json, read next to the code (so an installed copy reports its own version).
import { readFileSync } from 'node:fs';
import { packageFile } from '../package-root.ts';

/** The fields of podmesh's package.json the CLI uses. */
export interface PodmeshPackage {
  readonly name: string;
  readonly version: string;
  readonly devDependencies?: Readonly<Record<string, string>>;
}

/** Reads `package.json` at the root of this podmesh. */
export function podmeshPackage(): PodmeshPackage {
  return JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as PodmeshPackage;
}
