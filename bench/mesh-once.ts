// One measured multi-host synth in a fresh process: the whole pipeline (`synth()`: resolve, state
// reconcile of certificates, WireGuard keys and secrets, render, write), first with an empty state
// folder, then again with nothing changed. Prints JSON with wall times and peak RSS.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synth } from '../constructs/synth.ts';
import { meshStack } from './stacks.ts';

const [hosts, services] = process.argv.slice(2).map(Number) as [number, number];
const dir = mkdtempSync(join(tmpdir(), 'podmesh-bench-mesh-'));
const du = (p: string): number => readdirSync(p, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).reduce((n, d) => n + statSync(join(d.parentPath, d.name)).size, 0);
try {
  const opts = { outDir: join(dir, 'out'), stateDir: join(dir, 'state') };
  let t = performance.now();
  const first = await synth(meshStack(hosts, services), opts);
  const firstMs = performance.now() - t;
  t = performance.now();
  const again = await synth(meshStack(hosts, services), opts);
  const noopMs = performance.now() - t;
  const files = first.reports[0]!.added.length;
  process.stdout.write(
    `${JSON.stringify({ hosts, services, files, outMb: du(opts.outDir) / 1e6, firstMs, noopMs, changed: again.changed, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
