// A large stack's new out/ folder written while it renders (src/io/staged.ts): the same files,
// modes and report as the writer alone gives, stamps as a full walk takes them, and nothing left
// behind when the plan is refused, the worker fails, or out/<stack> appears before the swap.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { App } from 'podmesh';
import { generatedStack } from '../bench/stacks.ts';
import { StagedOutput } from '../src/io/staged.ts';
import { atomicWriter, type StateWriter } from '../src/io/atomic.ts';
import { stampStat } from '../src/io/staging-protocol.ts';
import { progress } from '../src/render/progress.ts';
import { renderStack } from '../src/render/stack.ts';
import { resolveStack } from '../src/resolve/resolve.ts';
import { stagingDir } from '../src/io/writer.ts';
import { applySynth, planSynth, synth, type SynthResult } from '../src/synth.ts';
import { discardStaged } from '../src/synth/plan.ts';
import { writtenStamps } from '../src/synth/fastpath.ts';
import { podmeshProject, tempDir } from './helpers/stacks.ts';
import { repoRoot } from './helpers/tools.ts';

// A rendering problem on demand: the topology renderer of a stack named `broken` reports one.
vi.mock('../src/render/topology.ts', async (original) => {
  const m = await original<typeof import('../src/render/topology.ts')>();
  return {
    ...m,
    renderTopology: (stack: Parameters<typeof m.renderTopology>[0]) =>
      stack.name === 'broken' ? { files: new Map(), problems: [{ path: 'broken', message: 'a rendering problem (test)' }] } : m.renderTopology(stack),
  };
});

const tmp = tempDir('podmesh-staged-');
afterAll(() => tmp.cleanup());
afterEach(() => vi.restoreAllMocks());
let n = 0;
const folder = (): string => {
  const dir = join(tmp.path, `p${n++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** 40 services (the staging threshold is 32), as the benchmark makes them, in a stack named `name`. */
const bigApp = (name = 'bench-40'): App => generatedStack(40, new App(), name);

/** Waits until `done()` holds (10 s at most, looking every 5 ms), running `each` before every look. */
async function until(done: () => boolean, each: () => void = () => {}): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 5) {
    each();
    if (done()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Every file below `dir`: relative path → content and mode. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const abs = join(d, e.name);
      if (e.isDirectory()) walk(abs, `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = `${(statSync(abs).mode & 0o7777).toString(8)} ${readFileSync(abs, 'utf8')}`;
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return out;
}

/** Plans and applies as synth does, without staging: the writer alone. */
async function unstaged(dir: string, app: App): Promise<SynthResult> {
  const plan = await planSynth(app, { outDir: join(dir, 'out'), stateDir: join(dir, 'state'), now: new Date('2026-06-01T00:00:00Z') });
  return applySynth(plan);
}

describe('out/ written while rendering', () => {
  it('writes the files, modes and report the writer alone gives, and stamps them as a full walk does', async () => {
    const [a, b] = [folder(), folder()];
    const start = vi.spyOn(StagedOutput, 'start');
    const now = new Date('2026-06-01T00:00:00Z');
    const plan = await planSynth(bigApp(), { outDir: join(a, 'out'), stateDir: join(a, 'state'), now }, undefined, undefined, { minServices: 32 });
    const staged = plan.stacks[0]!.staged;
    expect(staged).toBeDefined();
    expect(start).toHaveReturnedWith(staged);
    const result = await applySynth(plan);
    await discardStaged(plan);
    // The worker's copy was swapped in.
    expect(staged!.writtenStats()).toBeDefined();
    expect(readdirSync(join(a, 'out'))).toEqual(['bench-40']);
    const plain = await unstaged(b, bigApp());
    expect(result.reports).toEqual(plain.reports);
    // At least a unit and a Policy.php for each of the 40 services.
    expect(result.reports[0]!.added.length).toBeGreaterThan(80);
    expect(files(join(a, 'out'))).toEqual(files(join(b, 'out')));
    // The stats the worker took are those lstat reads now, folders included.
    const since = Date.now();
    const fromWorker = writtenStamps(join(a, 'out', 'bench-40'), since, plan.stacks[0]!.files, staged!.writtenStats());
    expect(fromWorker).toBeDefined();
    expect(fromWorker).toEqual(writtenStamps(join(a, 'out', 'bench-40'), since, plan.stacks[0]!.files));
  });

  it('synth stages a large stack with an absent out/ folder, and the next synth takes the fast path', async () => {
    const dir = folder();
    const staged: string[][] = [];
    const decisions: boolean[] = [];
    const cache = { dir: join(dir, 'cache'), onStaged: (s: readonly string[]) => staged.push([...s]), onDecision: (d: { fast: boolean }) => decisions.push(d.fast) };
    const run = () => synth(bigApp(), { outDir: join(dir, 'out'), stateDir: join(dir, 'state'), cache });
    await run();
    expect(staged).toEqual([['bench-40']]);
    const first = files(join(dir, 'out'));
    await run();
    expect(decisions).toEqual([false, true]);
    expect(files(join(dir, 'out'))).toEqual(first);
    // A stack below the threshold, or a folder already there, is left to the writer.
    await synth(generatedStack(8), { outDir: join(dir, 'out'), stateDir: join(dir, 'state'), cache });
    expect(staged).toEqual([['bench-40']]);
  });

  it('writes nothing for a plan with a rendering problem: no staging folder, no out/', async () => {
    const dir = folder();
    const start = vi.spyOn(StagedOutput, 'start');
    await expect(synth(bigApp('broken'), { outDir: join(dir, 'out'), stateDir: join(dir, 'state') })).rejects.toThrow(/a rendering problem \(test\)/);
    // A copy was started (and so discarded), not skipped.
    expect(start.mock.results[0]?.value).toBeInstanceOf(StagedOutput);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('leaves out/<stack> to the writer when it appeared between plan and apply', async () => {
    const [a, b] = [folder(), folder()];
    const plan = await planSynth(bigApp(), { outDir: join(a, 'out'), stateDir: join(a, 'state'), now: new Date('2026-06-01T00:00:00Z') }, undefined, undefined, { minServices: 32 });
    expect(plan.stacks[0]!.staged).toBeDefined();
    mkdirSync(join(a, 'out', 'bench-40'), { recursive: true });
    writeFileSync(join(a, 'out', 'bench-40', 'stray.txt'), 'not rendered\n');
    const result = await applySynth(plan);
    await discardStaged(plan);
    expect(plan.stacks[0]!.staged!.writtenStats()).toBeUndefined();
    expect(readdirSync(join(a, 'out'))).toEqual(['bench-40']);
    await unstaged(b, bigApp());
    expect(files(join(a, 'out'))).toEqual(files(join(b, 'out')));
    expect(result.reports[0]!.removed).toEqual(['stray.txt']);
  });

  it('a copy the worker could not write, or that differs from the plan, is discarded', async () => {
    const dir = folder();
    const out = join(dir, 'out');
    // A file where a folder must be: the worker fails (ENOTDIR) and says so.
    const failing = StagedOutput.start(out, 's')!;
    expect(failing).toBeDefined();
    failing.add('a', 'file\n');
    failing.add('a/b', 'under a file\n');
    expect(await failing.finish(new Map([['a', 'file\n'], ['a/b', 'under a file\n']]))).toBeUndefined();
    expect(existsSync(stagingDir(out, 's'))).toBe(false);
    // out/ was made for the copy: removed with it.
    expect(existsSync(out)).toBe(false);
    // Written, but not the plan's files: one text differs, one file is missing.
    for (const plan of [new Map([['x.txt', 'other\n']]), new Map([['x.txt', 'x\n'], ['y.txt', 'y\n']])]) {
      const copy = StagedOutput.start(out, 's')!;
      copy.add('x.txt', 'x\n');
      expect(await copy.finish(plan)).toBeUndefined();
      expect(existsSync(stagingDir(out, 's'))).toBe(false);
    }
    // Exactly the plan's files, a path sent twice (the last text counts), a file larger than a batch.
    // Multi-byte UTF-8 too, at a batch's edge: the texts are written without being measured first.
    const big = 'y'.repeat(3 << 20);
    const wide = 'Grüße, ✓ 𝄞\n'.repeat(40_000);
    const copy = StagedOutput.start(out, 's')!;
    copy.add('d/x.txt', 'first\n');
    copy.add('d/e/big.txt', big);
    copy.add('d/x.txt', 'x\n');
    copy.add('d/wide.txt', wide);
    copy.add('d/wide2.txt', wide);
    const stage = await copy.finish(new Map([['d/x.txt', 'x\n'], ['d/e/big.txt', big], ['d/wide.txt', wide], ['d/wide2.txt', wide]]));
    expect(stage).toBe(stagingDir(out, 's'));
    expect(files(stage!)).toEqual({ 'd/e/big.txt': `644 ${big}`, 'd/wide.txt': `644 ${wide}`, 'd/wide2.txt': `644 ${wide}`, 'd/x.txt': '644 x\n' });
    // Many times the ring's 8 MiB, texts of every size: written in order, each whole.
    const many = new Map<string, string>();
    for (let i = 0; i < 400; i++) many.set(`m/${i % 7}/${i}.txt`, `${i} ${'é'.repeat(i * 97)}\n`);
    const through = StagedOutput.start(join(dir, 'out3'), 'u')!;
    for (const [path, text] of many) through.add(path, text);
    const wrapped = await through.finish(many);
    expect(wrapped).toBeDefined();
    expect(files(wrapped!)).toEqual(Object.fromEntries([...many].map(([p, t]) => [p, `644 ${t}`])));
    // Sent faster than the worker writes, most of it waited in the queue, and both threads wrote the
    // end of it: every file's stat is known, as lstat gives it, whichever thread wrote it.
    through.swapped();
    const stats = through.writtenStats()!;
    for (const path of many.keys()) expect(stats.get(path), path).toEqual(stampStat(lstatSync(join(wrapped!, path))));
    // Discarded before it finished: nothing is left, and discarding again does nothing.
    const dropped = StagedOutput.start(join(dir, 'out2'), 't')!;
    for (let i = 0; i < 200; i++) dropped.add(`f/${i}.txt`, `${i}\n`.repeat(4000));
    await dropped.discard();
    await dropped.discard();
    expect(existsSync(join(dir, 'out2'))).toBe(false);
  });

  it('moves queued files into the ring whenever the main thread is free (progress), so the end has none left to write', async () => {
    const dir = folder();
    // Four times the ring's 4 MiB, sent at once: most of it waits in the queue.
    const many = new Map<string, string>();
    for (let i = 0; i < 256; i++) many.set(`q/${i % 16}/${i}.txt`, `${i} ${'x'.repeat(64 << 10)}\n`);
    const copy = StagedOutput.start(join(dir, 'out'), 'q')!;
    for (const [path, text] of many) copy.add(path, text);
    expect(copy.pending).toBeGreaterThan(100);
    // Nothing else is sent; the main thread only gives the copy a moment now and then.
    await until(() => copy.pending === 0, () => copy.progress());
    expect(copy.pending).toBe(0);
    const stage = await copy.finish(many);
    expect(stage).toBeDefined();
    expect(files(stage!)).toEqual(Object.fromEntries([...many].map(([p, t]) => [p, `644 ${t}`])));
  });

  it('applySynth feeds the staging writer while it writes the state: its queue is empty before out/ is finished', async () => {
    const [a, b] = [folder(), folder()];
    const now = new Date('2026-06-01T00:00:00Z');
    const plan = await planSynth(bigApp(), { outDir: join(a, 'out'), stateDir: join(a, 'state'), now }, undefined, undefined, { minServices: 32 });
    const s = plan.stacks[0]!;
    const staged = s.staged!;
    // The plan's own files sent again and again (the last text of each is still the plan's): more
    // than the ring holds, so most of it is queued when the state is written.
    for (let round = 0; round < 8; round++) for (const [path, f] of s.files) staged.add(path, f.content);
    expect(staged.pending).toBeGreaterThan(0);
    // A state writer that takes its time: its first call waits until the queue is empty.
    const seen: number[] = [];
    let first = true;
    const slow = Object.fromEntries(
      Object.entries(atomicWriter).map(([name, f]) => [
        name,
        async (...args: unknown[]) => {
          if (first) {
            first = false;
            await until(() => staged.pending === 0);
            seen.push(staged.pending);
          }
          return (f as (...x: unknown[]) => Promise<unknown>)(...args);
        },
      ]),
    ) as unknown as StateWriter;
    const result = await applySynth(plan, slow);
    await discardStaged(plan);
    expect(seen).toEqual([0]);
    // Still the worker's copy, swapped in, and the same output as the writer alone gives.
    expect(staged.writtenStats()).toBeDefined();
    const plain = await unstaged(b, bigApp());
    expect(result.reports).toEqual(plain.reports);
    expect(files(join(a, 'out'))).toEqual(files(join(b, 'out')));
  });

  it('a sink changes the order the renderers run in, not the outcome: the same files in the same order, each sent once', () => {
    const model = resolveStack(bigApp().node.children[0] as Parameters<typeof resolveStack>[0]);
    const alone = renderStack(model, { outDir: 'out' });
    const sent: [string, string][] = [];
    const sunk = renderStack(model, { outDir: 'out' }, (path, text) => sent.push([path, text]));
    expect([...sunk.files.keys()]).toEqual([...alone.files.keys()]);
    for (const [path, file] of alone.files) expect(sunk.files.get(path), path).toEqual(file);
    expect(sent.map(([p]) => p).sort()).toEqual([...alone.files.keys()].sort());
    expect(new Map(sent)).toEqual(new Map([...alone.files].map(([p, f]) => [p, f.content])));
    // The Hyperf files, several per service, are sent before the compose file.
    expect(sent.findIndex(([p]) => p.endsWith('/Crl.php'))).toBeLessThan(sent.findIndex(([p]) => p.endsWith('/compose.yaml')));
  });

  it("a sink's progress is told between the items of the long renderers, which send nothing meanwhile", () => {
    const model = resolveStack(bigApp().node.children[0] as Parameters<typeof resolveStack>[0]);
    const services = model.services.length;
    // What the sink saw, in order: a path sent, or a tick.
    const seen: string[] = [];
    const sink = Object.assign((path: string) => void seen.push(path), { progress: () => void seen.push('tick') });
    const sunk = renderStack(model, { outDir: 'out' }, sink);
    expect(sunk.issues).toEqual([]);
    const at = (suffix: string) => seen.findIndex((x) => x.endsWith(suffix));
    const ticks = (from: number, to: number) => seen.slice(from, to).filter((x) => x === 'tick').length;
    // The systemd renderer ticks once per service it plans and once per unit it writes, before any
    // unit file is sent; the compose renderer twice per service (building, then writing its YAML) before its one
    // file; the manifest once per file.
    const firstUnit = at('.container');
    const lastHyperf = seen.findLastIndex((x) => x.endsWith('.php'));
    expect(ticks(lastHyperf, firstUnit)).toBeGreaterThanOrEqual(2 * services);
    const compose = at('/compose.yaml');
    expect(ticks(seen.findLastIndex((x, i) => i < compose && x !== 'tick'), compose)).toBeGreaterThanOrEqual(2 * services);
    // (The lock and the manifest are sent together, once the manifest is rendered.)
    const lock = at('podmesh.lock.json');
    expect(seen[lock + 1]).toMatch(/manifest\.json$/);
    expect(ticks(seen.findLastIndex((x, i) => i < lock && x !== 'tick'), lock)).toBe(sunk.files.size - 1);
    // Outside a rendering, and without a sink, nobody is told.
    const before = seen.length;
    progress();
    renderStack(model, { outDir: 'out' });
    expect(seen.length).toBe(before);
  });

  it('the built CLI stages an emptied out/ with its own worker (dist/out-writer.mjs), writing what a synth without it writes', () => {
    const dir = folder();
    podmeshProject(dir);
    mkdirSync(join(dir, 'stacks'));
    writeFileSync(join(dir, 'stacks', 'big.ts'), `import { generatedStack } from ${JSON.stringify(join(repoRoot, 'bench/stacks.ts'))};\nexport default (app) => void generatedStack(40, app);\n`);
    const env = { ...process.env, PODMESH_CACHE_DIR: join(dir, 'cache'), PODMESH_DEBUG_CACHE: '1' };
    const synthCli = (extra: Record<string, string> = {}) => spawnSync(process.execPath, [join(repoRoot, 'bin/podmesh.mjs'), 'synth'], { cwd: dir, env: { ...env, ...extra }, encoding: 'utf8', timeout: 120_000 });
    const first = synthCli();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/out\/ written while rendering, by a worker thread: bench-40\n/);
    const staged = files(join(dir, 'out'));
    // The same folders written by the writer alone (no cache: no staging report, and out/ is there).
    const again = synthCli({ PODMESH_NO_CACHE: '1' });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/up to date/);
    expect(files(join(dir, 'out'))).toEqual(staged);
  });
});
