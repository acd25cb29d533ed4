// `npm run bench`: synth time and peak memory for generated stacks of 10, 100 and 1,000 services,
// the certificates of 1,000 services, and a 50-host, 1,000-service WireGuard mesh through the whole synth.
// Each size runs in its own process so peak memory is that size's alone. Targets are reported,
// not asserted: benchmarks inform, tests decide.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

interface Sample {
  services: number;
  buildMs: number;
  synthMs: number;
  noopSynthMs: number;
  peakRssMb: number;
}

const here = import.meta.dirname;
const sizes = [10, 100, 1000];
const runs = Number(process.env.BENCH_RUNS ?? 3);

function measure(services: number): Sample {
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    const text = execFileSync(process.execPath, ['--import', 'tsx', join(here, 'synth-once.ts'), String(services)], { encoding: 'utf8' });
    samples.push(JSON.parse(text) as Sample);
  }
  // Median by synth time: robust to one slow run on a busy machine.
  samples.sort((a, b) => a.synthMs - b.synthMs);
  return samples[Math.floor(samples.length / 2)]!;
}

const results = sizes.map(measure);
const pad = (s: string, n: number) => s.padStart(n);
console.log(`compose-only synth, median of ${runs} runs (fresh process each)\n`);
console.log(`${pad('services', 9)} ${pad('build ms', 9)} ${pad('synth ms', 9)} ${pad('no-op ms', 9)} ${pad('peak MB', 8)} ${pad('µs/svc', 7)}`);
for (const r of results) {
  console.log(
    `${pad(String(r.services), 9)} ${pad(r.buildMs.toFixed(1), 9)} ${pad(r.synthMs.toFixed(1), 9)} ${pad(r.noopSynthMs.toFixed(1), 9)} ${pad(r.peakRssMb.toFixed(0), 8)} ${pad(((r.synthMs * 1000) / r.services).toFixed(0), 7)}`,
  );
}
const big = results.at(-1)!;
const mid = results.at(-2)!;
const growth = big.synthMs / mid.synthMs / (big.services / mid.services);
console.log(`\ntarget: 1,000 services in under 2,000 ms: ${big.synthMs.toFixed(0)} ms ${big.synthMs < 2000 ? 'OK' : 'MISSED'}`);
console.log(`growth 100→1,000 relative to linear: ${growth.toFixed(2)}× ${growth <= 1.5 ? '(linear or better)' : '(worse than linear)'}`);

// Certificates: 1,000 services = 2,000 leaf certificates, and the openssl CLI for comparison.
const certs = JSON.parse(
  execFileSync(process.execPath, ['--import', 'tsx', join(here, 'certs.ts')], { encoding: 'utf8' }),
) as { leaves: number; issueMs: number; noopMs: number; opensslMs: number; opensslSample: number };
console.log(`\ncertificates of 1,000 services (${certs.leaves} leaves, ECDSA P-256, written to a state folder):`);
console.log(`  first reconcile (issue all):     ${certs.issueMs.toFixed(0).padStart(7)} ms  target 3,000 ms: ${certs.issueMs < 3000 ? 'OK' : 'MISSED'}`);
console.log(`  reconcile with nothing to do:    ${certs.noopMs.toFixed(0).padStart(7)} ms`);
console.log(`  openssl CLI, same leaves:        ${certs.opensslMs.toFixed(0).padStart(7)} ms  (${certs.opensslSample} measured, scaled to ${certs.leaves})`);

// The mesh (issue 5): 50 hosts, 1,000 services, full WireGuard mesh (50 × 49 = 2,450 peer entries),
// the whole synth including the state folder: first with an empty one (≈2,000 certificates issued),
// then with nothing changed. BENCH_MESH=0 skips it.
if (process.env.BENCH_MESH !== '0') {
  const [hosts, services] = [50, 1000];
  const mesh = JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', join(here, 'mesh-once.ts'), String(hosts), String(services)], { encoding: 'utf8', maxBuffer: 1 << 20 }),
  ) as { files: number; outMb: number; firstMs: number; noopMs: number; noop2Ms: number; noop2CpuMs: number; changed: boolean; peakRssMb: number };
  const noop = Math.min(mesh.noopMs, mesh.noop2Ms);
  console.log(`\nmesh of ${hosts} hosts and ${services} services (${hosts * (hosts - 1)} WireGuard peer entries), whole synth with the state folder:`);
  console.log(`  first synth (empty state):        ${mesh.firstMs.toFixed(0).padStart(7)} ms  (issues the certificates)`);
  console.log(
    `  synth with nothing changed:       ${noop.toFixed(0).padStart(7)} ms  target 5,000 ms: ${noop < 5000 ? 'OK' : 'MISSED'}  (runs: ${mesh.noopMs.toFixed(0)}, ${mesh.noop2Ms.toFixed(0)} ms; CPU of the last ${mesh.noop2CpuMs.toFixed(0)} ms)${mesh.changed ? '  CHANGED OUTPUT: BUG' : ''}`,
  );
  console.log(`  out/: ${mesh.files} files, ${mesh.outMb.toFixed(1)} MB`);
  console.log(`  peak RSS:                         ${mesh.peakRssMb.toFixed(0).padStart(7)} MB  target 500 MB: ${mesh.peakRssMb < 500 ? 'OK' : 'MISSED'}`);
}
