// Rendering a large stack on two threads (src/render/helper.ts): the helper's thread renders the
// compose files and systemd units from a structured clone of the model, and the outcome is the one
// a single thread gives, file for file, in the same order, through a sink too; a helper that cannot
// help (its thread ended, a model the clone cannot carry) leaves its parts to the main thread.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { App, type Stack } from 'podmesh';
import { generatedStack, meshStack } from '../bench/stacks.ts';
import { RenderHelper } from '../src/render/helper.ts';
import { renderStack, renderStackHelped, type RenderOutcome } from '../src/render/stack.ts';
import type { ResolvedStack } from '../src/resolve/model.ts';
import { withPublicKeys } from '../src/resolve/public-keys.ts';
import { resolveStack } from '../src/resolve/resolve.ts';
import { planSynth, synth } from '../src/synth.ts';
import { tempDir } from './helpers/stacks.ts';

const tmp = tempDir('podmesh-helper-');
afterAll(() => tmp.cleanup());
afterEach(() => vi.restoreAllMocks());

const stackOf = (app: App): Stack => app.node.children[0] as Stack;
const where = { outDir: 'out' };

/** Three hosts over WireGuard (public keys given as the state would), 40 services. */
const mesh = (): { model: ResolvedStack; keys: Record<string, string> } => {
  const model = resolveStack(stackOf(meshStack(3, 40)));
  const keys = Object.fromEntries(['h0', 'h1', 'h2'].map((h, i) => [h, `${String.fromCharCode(97 + i).repeat(42)}A=`]));
  return { model, keys };
};

/** The same outcome: every file (text and install) in the same order, and the same problems. */
function expectSame(helped: RenderOutcome, alone: RenderOutcome): void {
  expect([...helped.files.keys()]).toEqual([...alone.files.keys()]);
  for (const [path, file] of alone.files) expect(helped.files.get(path), path).toEqual(file);
  expect(helped.issues).toEqual(alone.issues);
}

describe('renderStackHelped', () => {
  it('renders what one thread renders, WireGuard keys included, and sends every file to the sink', async () => {
    const helper = RenderHelper.start();
    if (!helper) return expect.fail('this test needs two cores');
    try {
      for (const { model, keys } of [{ model: resolveStack(stackOf(generatedStack(40))), keys: {} }, mesh()]) {
        const alone = renderStack(withPublicKeys(model, keys), where);
        const sent = new Map<string, string>();
        const helped = await renderStackHelped(model, keys, where, helper, (path, text) => sent.set(path, text));
        expect(helped.files.size).toBeGreaterThan(40);
        expectSame(helped, alone);
        expect([...sent].sort()).toEqual([...helped.files].map(([path, f]) => [path, f.content]).sort());
      }
      // The lock records the keys: the helped model is the one given the keys.
      const { model, keys } = mesh();
      const lock = (await renderStackHelped(model, keys, where, helper)).files.get('podmesh.lock.json')!.content;
      expect(lock).toContain(keys.h1);
    } finally {
      await helper.close();
    }
  });

  it('renders on the main thread what a helper cannot: its thread ended, a model that does not clone', async () => {
    const model = resolveStack(stackOf(generatedStack(40)));
    const alone = renderStack(model, where);
    const ended = RenderHelper.start()!;
    await ended.close();
    const render = vi.spyOn(RenderHelper.prototype, 'render');
    expectSame(await renderStackHelped(model, {}, where, ended), alone);
    await expect(render.mock.results[0]!.value).resolves.toBeUndefined();

    const helper = RenderHelper.start()!;
    try {
      // A function in the model: the structured clone refuses it, the renderers never read it.
      const odd = { ...model, note: () => 'not data' } as unknown as ResolvedStack;
      expect(helper.prepare(odd)).toBe(false);
      expectSame(await renderStackHelped(odd, {}, where, helper), alone);
      // The helper still serves the next model.
      expectSame(await renderStackHelped(model, {}, where, helper), alone);
      await expect(render.mock.results[2]!.value).resolves.toHaveLength(2);
    } finally {
      await helper.close();
    }
  });
});

describe('synth of a large stack', () => {
  it('is rendered with a helper (the model given as soon as it resolved) and writes what a plan without it renders', async () => {
    const dir = join(tmp.path, 'synth');
    mkdirSync(dir, { recursive: true });
    const options = { outDir: join(dir, 'out'), stateDir: join(dir, 'state') };
    const prepare = vi.spyOn(RenderHelper.prototype, 'prepare');
    const render = vi.spyOn(RenderHelper.prototype, 'render');
    await synth(generatedStack(40), { ...options, cache: { dir: join(dir, 'cache') } });
    expect(prepare).toHaveBeenCalled();
    expect(render).toHaveBeenCalledTimes(1);
    await expect(render.mock.results[0]!.value).resolves.toHaveLength(2);
    // A plan without a policy renders on one thread.
    const plan = await planSynth(generatedStack(40), options);
    const stackOut = join(options.outDir, 'bench-40');
    const written = readdirSync(stackOut, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    expect(written.length).toBe(plan.stacks[0]!.files.size);
    for (const [path, file] of plan.stacks[0]!.files) expect(readFileSync(join(stackOut, path), 'utf8'), path).toBe(file.content);
  });

  it('starts no helper for a small stack or a run its constructs serve, and copies no model the fast path may yet serve', async () => {
    const dir = join(tmp.path, 'small');
    mkdirSync(dir, { recursive: true });
    const start = vi.spyOn(RenderHelper, 'start');
    const prepare = vi.spyOn(RenderHelper.prototype, 'prepare');
    const decisions: { fast: boolean; by?: string }[] = [];
    const options = { outDir: join(dir, 'out'), stateDir: join(dir, 'state'), cache: { dir: join(dir, 'cache'), onDecision: (d: { fast: boolean; by?: string }) => void decisions.push(d) } };
    await synth(generatedStack(8), options);
    expect(start).not.toHaveBeenCalled();
    await synth(generatedStack(40), options);
    expect([start.mock.calls.length, prepare.mock.calls.length]).toEqual([1, 1]);
    // The lock was new: this run resolves, and the model's fingerprint serves it. The helper's thread
    // started (it loads beside the resolution), but no model was copied to it.
    await synth(generatedStack(40), options);
    expect(decisions.at(-1)).toMatchObject({ fast: true, by: 'model' });
    expect([start.mock.calls.length, prepare.mock.calls.length]).toEqual([2, 1]);
    await synth(generatedStack(40), options);
    expect(decisions.at(-1)).toMatchObject({ fast: true, by: 'constructs' });
    expect(start).toHaveBeenCalledTimes(2);
  });
});
