// One measured multi-host synth in a fresh process: the whole pipeline (`synth()`: resolve, state
// reconcile of certificates, WireGuard keys and secrets, render, write), first with an empty state
// folder, then twice again with nothing changed. Prints JSON with wall times and peak RSS. The runs
// use synth's no-change fast path (as the CLI does) with a cache folder of their own, unless
// BENCH_CACHE=0; `fast` says which runs it served. Peak RSS: `firstPeakRssMb` when the first synth
// returned, `peakRssMb` of the whole process.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synth } from 'podmesh';
import { meshStack } from './stacks.ts';

const [hosts, services] = process.argv.slice(2).map(Number) as [number, number];
// BENCH_WORK: a folder to work in that the caller deletes later (bench/run.ts: when the whole bench
// ends, so no measured run follows the deletion of thousands of files; see moveAside there).
const dir = mkdtempSync(join(process.env.BENCH_WORK ?? tmpdir(), 'podmesh-bench-mesh-'));
const du = (p: string): number => readdirSync(p, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).reduce((n, d) => n + statSync(join(d.parentPath, d.name)).size, 0);
try {
  const fast: boolean[] = [];
  const cache = process.env.BENCH_CACHE === '0' ? false : { dir: join(dir, 'cache'), onDecision: (d: { fast: boolean }) => void fast.push(d.fast) };
  const opts = { outDir: join(dir, 'out'), stateDir: join(dir, 'state'), cache } as const;
  // CPU time beside wall time: on a shared machine the wall time of the first synth (thousands
  // of certificates, keys and files) swings with the other processes, the CPU time much less.
  const firstCpu0 = process.cpuUsage();
  let t = performance.now();
  const first = await synth(meshStack(hosts, services), opts);
  const firstMs = performance.now() - t;
  const firstCpu = process.cpuUsage(firstCpu0);
  // The high-water mark so far: the first synth's peak (module loading included), before the
  // no-change runs add their own allocations to a heap that still holds the first run's garbage.
  const firstPeakRssMb = process.resourceUsage().maxRSS / 1024;
  t = performance.now();
  const again = await synth(meshStack(hosts, services), opts);
  const noopMs = performance.now() - t;
  // Once more: two no-op samples in the same process (the machine may be busy during one).
  const cpu0 = process.cpuUsage();
  t = performance.now();
  const third = await synth(meshStack(hosts, services), opts);
  const noop2Ms = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const files = first.reports[0]!.added.length;
  process.stdout.write(
    `${JSON.stringify({
      hosts,
      services,
      files,
      outMb: du(opts.outDir) / 1e6,
      firstMs,
      firstCpuMs: (firstCpu.user + firstCpu.system) / 1000,
      noopMs,
      noop2Ms,
      noop2CpuMs: (cpu.user + cpu.system) / 1000,
      changed: again.changed || third.changed,
      fast,
      firstPeakRssMb,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
    })}\n`,
  );
} finally {
  if (process.env.BENCH_WORK === undefined) rmSync(dir, { recursive: true, force: true });
}
