// `npm run bench`: podmesh beside what it is compared with, in one run on one machine, so the
// ratios hold where absolute times drift. Whole processes (as a user runs them), medians of
// BENCH_RUNS (default 5), peak RSS from GNU time; each anchor's runs take turns with its podmesh
// figure's. Installs nothing at run time: cdk8s is a devDependency. Targets are reported,
// not asserted: benchmarks inform, tests decide.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMAND_V8_FLAGS } from '../src/cli/load.ts';
import { RACY_MS } from '../src/synth/stamps.ts';

const repo = join(import.meta.dirname, '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TIME = ['/usr/bin/time', '/bin/time'].find((t) => existsSync(t));
const tsx = join(repo, 'node_modules/tsx/dist/cli.mjs');
const podmesh = join(repo, 'bin/podmesh.mjs');

/** One whole-process run: wall milliseconds and peak RSS (MB, when GNU time is there). */
interface Sample {
  readonly ms: number;
  readonly rssMb?: number;
}

function once(argv: readonly string[], cwd: string): Sample {
  const report = join(work, 'time.txt');
  const cmd = TIME ? [TIME, '-f', '%M', '-o', report, ...argv] : argv;
  const t = performance.now();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 600_000 });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return TIME ? { ms, rssMb: Number(readFileSync(report, 'utf8').trim().split('\n').at(-1)) / 1024 } : { ms };
}

/** One command to measure: its arguments, folder, and what to do before each run (not measured). */
interface Measured {
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly before?: () => void;
}

const middleSample = (samples: Sample[]): Sample => samples.sort((a, b) => a.ms - b.ms)[Math.floor(samples.length / 2)]!;

/** The median run (by time) of a command. */
function median(m: Measured): Sample {
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    m.before?.();
    samples.push(once(m.argv, m.cwd));
  }
  return middleSample(samples);
}

/**
 * The median runs of podmesh's command and its anchor's, taken in turns (podmesh, anchor, podmesh,
 * ...): a machine whose speed drifts during the row moves both sides alike, not one side's runs only.
 */
function sideBySide(podmesh: Measured, anchor: Measured): [Sample, Sample] {
  const a: Sample[] = [];
  const b: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    podmesh.before?.();
    a.push(once(podmesh.argv, podmesh.cwd));
    anchor.before?.();
    b.push(once(anchor.argv, anchor.cwd));
  }
  return [middleSample(a), middleSample(b)];
}

/** The median of some numbers. */
function middle(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/**
 * A project folder of stack files inside this checkout (in .cache/): they import 'podmesh' (the
 * package's own name), 'constructs' and what else stacks/lib needs from this checkout's
 * node_modules, as an installed podmesh's project does from its own.
 */
function project(name: string, stacks: Record<string, string>): string {
  const dir = join(work, name);
  for (const [file, text] of Object.entries(stacks)) {
    mkdirSync(join(dir, 'stacks', file, '..'), { recursive: true });
    writeFileSync(join(dir, 'stacks', file), text);
  }
  return dir;
}

/**
 * Empties an output folder for the next run by moving it into the bench's trash, deleted when the
 * bench ends. Not `rm -rf` right before a run: on ext4 without a journal (these machines) the
 * allocator skips inodes freed in the last half minute (`recently_deleted`), and creating 9,000
 * files right after deleting as many costs seconds of kernel time that belong to the cleanup, not
 * to the run measured. Both sides of a row are emptied the same way.
 */
let trashed = 0;
function moveAside(dir: string): void {
  if (!existsSync(dir)) return;
  mkdirSync(join(work, 'trash'), { recursive: true });
  renameSync(dir, join(work, 'trash', String(trashed++)));
}

interface Row {
  readonly work: string;
  readonly podmesh: Sample;
  readonly anchor?: { readonly what: string; readonly sample: Sample };
  /** Ratio target (podmesh / anchor), or an absolute target in ms. */
  readonly target: { readonly ratio: number } | { readonly ms: number };
}

mkdirSync(join(repo, '.cache'), { recursive: true });
const work = mkdtempSync(join(repo, '.cache', 'bench-'));
const rows: Row[] = [];
try {
  // 1. Start-up: a command that needs no stack.
  const [help, nodeE0] = sideBySide({ argv: ['node', podmesh, '--help'], cwd: repo }, { argv: ['node', '-e', '0'], cwd: repo });
  rows.push({ work: 'podmesh --help', podmesh: help, anchor: { what: 'node -e 0', sample: nodeE0 }, target: { ratio: 2 } });

  // 2. Both Ashchan stacks, nothing changed (a first synth made the state folder and out/).
  const ashchan = join(work, 'ashchan');
  cpSync(join(repo, 'stacks'), join(ashchan, 'stacks'), { recursive: true });
  once(['node', podmesh, 'synth'], ashchan);
  writeFileSync(join(work, 'hello.ts'), "const greeting: string = 'hello';\nconsole.log(greeting);\n");
  const [ashchanSynth, hello] = sideBySide({ argv: ['node', podmesh, 'synth'], cwd: ashchan }, { argv: ['node', tsx, join(work, 'hello.ts')], cwd: repo });
  rows.push({ work: 'synth of both Ashchan stacks, nothing changed', podmesh: ashchanSynth, anchor: { what: 'tsx hello.ts', sample: hello }, target: { ratio: 1.3 } });

  // 3. 1,000 services on one host: with the state folder present and out/ empty, then nothing changed.
  const big = project('big', { 'bench.ts': `import { generatedStack } from '${repo}/bench/stacks.ts';\nexport default (app) => void generatedStack(1000, app);\n` });
  once(['node', podmesh, 'synth'], big);
  const [emptyOut, cdk8s] = sideBySide(
    { argv: ['node', podmesh, 'synth'], cwd: big, before: () => moveAside(join(big, 'out')) },
    { argv: ['node', tsx, join(repo, 'bench/cdk8s-anchor.ts'), '1000', join(work, 'cdk8s.out')], cwd: repo, before: () => moveAside(join(work, 'cdk8s.out')) },
  );
  rows.push({ work: '1,000 services, state present, empty out/', podmesh: emptyOut, anchor: { what: 'cdk8s: 1,000 Deployments + Services', sample: cdk8s }, target: { ratio: 1.5 } });
  // A no-change synth as a person makes it, not within RACY_MS (2 s) of the last one's writes: files
  // that young are "racy" (src/synth/stamps.ts), and the fast path reads them to know them unchanged.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, RACY_MS);
  rows.push({ work: '1,000 services, nothing changed', podmesh: median({ argv: ['node', podmesh, 'synth'], cwd: big }), target: { ms: 1000 } });

  // 4. Certificates: 2,000 ECDSA P-256 leaves, in process, beside openssl and the native floor.
  // One process measures everything; the others only the two reconciles (each process one sample
  // of them), whose medians the rows report. With the V8 flags the commands set (see the mesh below).
  const certsRun = (only: boolean) =>
    JSON.parse(execFileSync(process.execPath, [...COMMAND_V8_FLAGS, '--import', 'tsx', join(repo, 'bench/certs.ts')], { encoding: 'utf8', env: { ...process.env, BENCH_WORK: work, ...(only ? { BENCH_CERTS_ONLY: 'reconcile' } : {}) } })) as {
      leaves: number;
      issueMs: number;
      noopMs: number;
      opensslMs: number;
      nativeMs: number;
    };
  const certs = certsRun(false);
  const certRuns = [certs, ...Array.from({ length: RUNS - 1 }, () => certsRun(true))];
  const perLeaf = (ms: number) => ({ ms: ms / certs.leaves });
  const issueMs = middle(certRuns.map((r) => r.issueMs));
  rows.push({ work: `certificates: ${certs.leaves} leaves, per leaf`, podmesh: perLeaf(issueMs), anchor: { what: 'native keygen + sign', sample: perLeaf(certs.nativeMs) }, target: { ms: 1.5 } });
  rows.push({ work: '  the same through the openssl CLI, per leaf', podmesh: perLeaf(issueMs), anchor: { what: 'openssl req + x509', sample: perLeaf(certs.opensslMs) }, target: { ratio: 1 } });
  rows.push({ work: `  reconcile of ${certs.leaves} certificates, nothing to do`, podmesh: { ms: middle(certRuns.map((r) => r.noopMs)) }, target: { ms: 300 } });

  // 5. The mesh: 50 hosts, 1,000 services, full WireGuard mesh, the whole synth with its state folder.
  if (process.env.BENCH_MESH !== '0') {
    // In process (synth() of the built engine), with the V8 flags the commands set before they load
    // stacks (src/cli/load.ts): the engine as `podmesh synth` runs it. The library alone leaves V8's
    // flags to its host.
    // Each process one sample of the first synth and of the no-change synth (the faster of its two).
    const meshRuns = Array.from({ length: RUNS }, () => {
      const mesh = JSON.parse(execFileSync(process.execPath, [...COMMAND_V8_FLAGS, '--import', 'tsx', join(repo, 'bench/mesh-once.ts'), '50', '1000'], { encoding: 'utf8', maxBuffer: 1 << 20, env: { ...process.env, BENCH_WORK: work } })) as {
        firstMs: number;
        noopMs: number;
        noop2Ms: number;
        changed: boolean;
        firstPeakRssMb: number;
      };
      if (mesh.changed) throw new Error('the mesh benchmark\'s second synth changed its output: a determinism bug');
      return mesh;
    });
    // Peak RSS: the highest of the first synths' own peaks (each process's when its first synth
    // returned; the later no-change runs keep its garbage too).
    rows.push({ work: '50 hosts / 1,000 services, first synth', podmesh: { ms: middle(meshRuns.map((m) => m.firstMs)), rssMb: Math.max(...meshRuns.map((m) => m.firstPeakRssMb)) }, target: { ms: 5000 } });
    rows.push({ work: '50 hosts / 1,000 services, nothing changed', podmesh: { ms: middle(meshRuns.map((m) => Math.min(m.noopMs, m.noop2Ms))) }, target: { ms: 600 } });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const ms = (s: Sample) => (s.ms < 10 ? s.ms.toFixed(2) : s.ms.toFixed(0));
const mb = (s: Sample | undefined) => (s?.rssMb === undefined ? '' : s.rssMb.toFixed(0));
console.log(`podmesh beside its anchors: whole processes, medians of ${RUNS}, one run on this machine (ms; peak RSS in MB)\n`);
console.log(['work'.padEnd(48), 'podmesh'.padStart(9), 'MB'.padStart(5), 'anchor'.padStart(9), 'MB'.padStart(5), 'ratio'.padStart(7), '  target'].join(' '));
for (const r of rows) {
  const ratio = r.anchor ? r.podmesh.ms / r.anchor.sample.ms : undefined;
  const met = 'ratio' in r.target ? ratio !== undefined && ratio <= r.target.ratio : r.podmesh.ms <= r.target.ms;
  const target = 'ratio' in r.target ? `≤ ${r.target.ratio}×` : `≤ ${r.target.ms} ms`;
  console.log(
    [
      r.work.padEnd(48),
      ms(r.podmesh).padStart(9),
      mb(r.podmesh).padStart(5),
      (r.anchor ? ms(r.anchor.sample) : '').padStart(9),
      mb(r.anchor?.sample).padStart(5),
      (ratio === undefined ? '' : `${ratio.toFixed(2)}×`).padStart(7),
      `  ${target} ${met ? 'met' : 'MISSED'}${r.anchor ? `  (anchor: ${r.anchor.what})` : ''}`,
    ].join(' '),
  );
}
