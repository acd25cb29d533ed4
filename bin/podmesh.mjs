#!/usr/bin/env node
// Entry point of the `podmesh` command: the engine as built JavaScript (dist/, see
// scripts/build.mjs), so no TypeScript transpiler loads for podmesh itself; the commands that load
// stack files build them (src/cli/stack-build.ts, cached by content). In a checkout (scripts/ is not in the package) dist/ is
// rebuilt first when a source changed since the last build.
import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

// A command lives for seconds. At V8's default eagerness its optimizing compiler, on background
// threads, spends more CPU on the functions run once per service than their optimized code saves:
// about a second in a 1,000-service synth, on two cores taken from the rendering and the output
// writer. Eight times the default budget (66 KB) optimizes only what stays hot longer (README,
// "V8's optimizing compiler"). A budget given to node itself is kept.
const given = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
if (!/--interrupt[-_]budget/.test(given)) setFlagsFromString('--interrupt-budget=540672');

if (existsSync(new URL('../scripts/build.mjs', import.meta.url))) {
  const { build, isStale } = await import('../scripts/build.mjs');
  if (isStale()) await build();
}
await import('../dist/cli.mjs');
