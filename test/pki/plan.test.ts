// The PKI reconciler's two steps: plan (decides and issues in memory, writes nothing) and apply
// (writes exactly the plan, only through the state writer; a first run that fails leaves no pki/).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { atomicWriter, type StateWriter } from '../../src/io/atomic.ts';
import { pkiReconciler } from '../../src/state/pki/index.ts';
import { stateContext } from '../../src/state/reconciler.ts';
import { AUTHORITY, meshBindings, modes, tempState, treeState } from './helpers.ts';

const T0 = new Date('2026-03-01T12:00:00Z');

/** The real writer, recording every call; `failAt` makes the n-th file write throw (after writing those before it). */
function recording(failAt?: number): { writer: StateWriter; calls: string[] } {
  const calls: string[] = [];
  let writes = 0;
  const writer: StateWriter = {
    ...atomicWriter,
    async write(abs, content, mode) {
      calls.push(`write ${abs}`);
      if (++writes === failAt) throw new Error('disk full');
      return atomicWriter.write(abs, content, mode);
    },
    async writeBatch(files, options) {
      for (const [i, f] of files.entries()) {
        calls.push(`write ${f.abs}`);
        if (++writes === failAt) {
          await atomicWriter.writeBatch(files.slice(0, i), options);
          throw new Error('disk full');
        }
      }
      return atomicWriter.writeBatch(files, options);
    },
    async mkdir(abs, mode) {
      calls.push(`mkdir ${abs}`);
      return atomicWriter.mkdir(abs, mode);
    },
    async rename(from, to) {
      calls.push(`rename ${from} ${to}`);
      return atomicWriter.rename(from, to);
    },
  };
  return { writer, calls };
}

describe('pkiReconciler', () => {
  let t: ReturnType<typeof tempState>;
  beforeEach(() => {
    t = tempState();
  });
  afterEach(() => t.cleanup());
  const input = () => ({ stateDir: t.stateDir, authority: AUTHORITY, bindings: meshBindings() });

  it('plans every CA, certificate and key in memory and writes nothing', async () => {
    // WHEN planned against an empty state folder
    const plan = await pkiReconciler.plan(input(), stateContext({ now: T0 }));
    // THEN the plan holds the new material (keys included), and there is no folder
    expect(plan.result.cas.map((c) => c.action)).toEqual(['create', 'create']);
    const writes = plan.changes.ops.filter((o) => o.op === 'write');
    const keys = writes.filter((o) => o.path.endsWith('.key'));
    expect(keys.length).toBe(2 + meshBindings().length);
    for (const k of keys) expect(k.op === 'write' && k.content).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(plan.result.certificates.every((c) => c.action === 'create' && c.serial !== '')).toBe(true);
    expect(existsSync(t.root + '/.podmesh')).toBe(false);
  });

  it('apply writes exactly the plan, every file through the state writer, keys 0600', async () => {
    // GIVEN a plan
    const plan = await pkiReconciler.plan(input(), stateContext({ now: T0 }));
    const { writer, calls } = recording();
    // WHEN applied
    const result = await pkiReconciler.apply(plan, writer);
    // THEN every planned write went through the writer (into the staging folder renamed into place), with the planned bytes
    expect(result).toBe(plan.result);
    const staged = calls.find((c) => c.startsWith('rename '))!.split(' ')[1]!;
    for (const o of plan.changes.ops) {
      if (o.op !== 'write') continue;
      expect(calls).toContain(`write ${join(staged, o.path.slice('pki'.length))}`);
      expect(readFileSync(join(t.stateDir, o.path), 'utf8')).toBe(o.content);
      expect(modes(t.stateDir).get(o.path)).toBe(o.path.endsWith('.key') ? '600' : '644');
    }
    // AND a new plan finds nothing to do
    const again = await pkiReconciler.plan(input(), stateContext({ now: T0 }));
    expect(again.changes.ops).toEqual([]);
  });

  it('a first run whose writer fails half-way leaves no pki/ folder and no temp files', async () => {
    // GIVEN a plan and a writer that fails at the fifth file
    const plan = await pkiReconciler.plan(input(), stateContext({ now: T0 }));
    const { writer } = recording(5);
    // WHEN applied
    await expect(pkiReconciler.apply(plan, writer)).rejects.toThrow('disk full');
    // THEN nothing of the PKI is there, and the next run starts clean
    expect(readdirSync(t.stateDir)).toEqual([]);
    await pkiReconciler.apply(await pkiReconciler.plan(input(), stateContext({ now: T0 })), atomicWriter);
    expect([...treeState(t.stateDir).keys()].filter((p) => p.includes('.tmp'))).toEqual([]);
  });
});
