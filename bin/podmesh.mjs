#!/usr/bin/env node
// Entry point of the `podmesh` command: the engine as built JavaScript (dist/, see
// scripts/build.mjs), so no TypeScript transpiler loads for podmesh itself; the commands that load
// stack files build them (src/cli/stack-build.ts, cached by content). In a checkout (scripts/ is not in the package) dist/ is
// rebuilt first when a source changed since the last build.
import { existsSync } from 'node:fs';

if (existsSync(new URL('../scripts/build.mjs', import.meta.url))) {
  const { build, isStale } = await import('../scripts/build.mjs');
  if (isStale()) await build();
}
await import('../dist/cli.mjs');
