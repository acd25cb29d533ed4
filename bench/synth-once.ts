// One measured synth in a fresh process: prints JSON with wall times and peak RSS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderStack, resolveStacks } from '../src/synth.ts';
import { writeStackOutput } from '../src/io/writer.ts';
import { contents } from '../src/render/stack.ts';
import { Stack, type App } from '../src/index.ts';
import { generatedStack } from './stacks.ts';

const services = Number(process.argv[2]);

/** The synth pipeline without the state folder: resolve, render, write out/. */
async function composeOnly(app: App): Promise<void> {
  const where = { outDir: out, stateDir: join(out, '.state') };
  for (const stack of await resolveStacks(app.node.children.filter(Stack.isStack), out)) {
    await writeStackOutput(out, stack.name, contents(renderStack(stack, where).files));
  }
}
const out = mkdtempSync(join(tmpdir(), 'podmesh-bench-'));
try {
  const t0 = performance.now();
  const app = generatedStack(services);
  const t1 = performance.now();
  await composeOnly(app);
  const t2 = performance.now();
  // A second synth of an unchanged stack: resolve, render and compare, no writes.
  await composeOnly(generatedStack(services));
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
