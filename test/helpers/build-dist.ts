// Vitest global set-up: builds dist/ from the current sources once, before any test, so every
// spawned `podmesh` (bin/podmesh.mjs runs dist/) runs the code under test and none of them
// rebuilds on its own. scripts/build.mjs swaps the folder in whole.
// @ts-expect-error: a plain JavaScript module without types
import { build } from '../../scripts/build.mjs';

export default async function setup(): Promise<void> {
  await (build as () => Promise<string[]>)();
}
