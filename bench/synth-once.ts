// One measured synth in a fresh process: prints JSON with wall times and peak RSS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synth } from '../constructs/index.ts';
import { generatedStack } from './stacks.ts';

const services = Number(process.argv[2]);
const out = mkdtempSync(join(tmpdir(), 'podmesh-bench-'));
try {
  const t0 = performance.now();
  const app = generatedStack(services);
  const t1 = performance.now();
  await synth(app, { outDir: out });
  const t2 = performance.now();
  // A second synth of an unchanged stack: resolve, render and compare, no writes.
  await synth(generatedStack(services), { outDir: out });
  const t3 = performance.now();
  process.stdout.write(
    `${JSON.stringify({
      services,
      buildMs: t1 - t0,
      synthMs: t2 - t1,
      noopSynthMs: t3 - t2,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
    })}\n`,
  );
} finally {
  rmSync(out, { recursive: true, force: true });
}
