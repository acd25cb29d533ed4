// State folders checked against their cache entries on a worker thread while the stacks resolve
// (src/synth/state-check.ts): the worker finds what checkStamps on this thread finds, and a synth
// of an emptied out/ that takes its answer writes what a synth without a cache writes, keeping the
// state only when the folder is as recorded.
import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { App } from 'podmesh';
import { generatedStack } from '../bench/stacks.ts';
import { synth } from '../src/synth.ts';
import { STATE_CHECK_MIN_CHARS, startStateChecks } from '../src/synth/state-check.ts';
import { checkStamps, StampList, takeStamps } from '../src/synth/stamps.ts';
import { tempDir } from './helpers/stacks.ts';

const tmp = tempDir('podmesh-state-check-');
afterAll(() => tmp.cleanup());
let n = 0;
const folder = (): string => {
  const dir = join(tmp.path, `p${n++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** Every file below `dir`: relative path → content. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = readFileSync(join(d, e.name), 'utf8');
    }
  };
  walk(dir, '');
  return out;
}

/** What a worker's result says, in checkStamps' terms. */
async function onWorker(dir: string, stamps: StampList, minChars = 0) {
  const started = startStateChecks([{ dir, stamps }], minChars);
  expect(started).toBeDefined();
  const r = (await started!.results)?.get(stamps);
  expect(r).toBeDefined();
  if (!r!.ok) return { ok: false, reason: r!.reason };
  return { ok: true, next: r!.next ? StampList.text(r!.next.stamps, r!.next.top).stamps : stamps.stamps };
}

describe('state folders checked on a worker', () => {
  it('finds what a check on this thread finds: as recorded, settled, changed, removed, added, damaged', async () => {
    const dir = folder();
    mkdirSync(join(dir, 'pki/services/a'), { recursive: true });
    for (const f of ['ca.crt', 'pki/services/a/server.crt', 'pki/services/a/server.key']) writeFileSync(join(dir, f), `content of ${f}\n`);
    // Stamped as if later than the racy window (no content hashes), and as now (every entry racy: hashed).
    const settled = StampList.of(takeStamps(dir, Date.now() + 60_000));
    expect(settled.stamps.every((s) => s[7] === undefined)).toBe(true);
    const inline = (list: StampList) => {
      const r = checkStamps(dir, list.stamps, Date.now());
      return r.ok ? { ok: true, next: r.next } : { ok: false, reason: r.reason };
    };
    expect(await onWorker(dir, settled)).toEqual({ ok: true, next: settled.stamps });
    expect(await onWorker(dir, StampList.text(settled.text, settled.top))).toEqual(inline(settled));
    // Racy when stamped: checked by content, still racy; two seconds later settled, the marks go, as on this thread.
    const racy = StampList.of(takeStamps(dir, Date.now()));
    expect(racy.stamps.every((s) => s[7] !== undefined)).toBe(true);
    expect(await onWorker(dir, racy)).toEqual({ ok: true, next: racy.stamps });
    await new Promise((r) => setTimeout(r, 2100));
    const fromWorker = await onWorker(dir, racy);
    expect(fromWorker).toEqual(inline(racy));
    expect(fromWorker.next!.every((s) => s[7] === undefined)).toBe(true);
    // A racy file changed within its stamp's clock tick (same size and times): told by its content.
    const key = join(dir, 'pki/services/a/server.key');
    writeFileSync(key, 'a key\n');
    const racyAgain = StampList.of(takeStamps(dir, Date.now()));
    writeFileSync(key, 'A KEY\n');
    // As if the edit had come within the same clock tick as the stamp: the stamp's times made the file's.
    const now = statSync(key);
    const listed = racyAgain.stamps.map((s) => (s[0] === 'pki/services/a/server.key' ? ([...s.slice(0, 3), now.mtimeMs, now.ctimeMs, ...s.slice(5)] as typeof s) : s));
    const patched = StampList.of(listed);
    expect(await onWorker(dir, patched)).toEqual(inline(patched));
    expect((await onWorker(dir, patched)).reason).toMatch(/changed \(content\)/);
    // A file changed, one removed, one added: not as recorded, for the same reason.
    writeFileSync(join(dir, 'pki/services/a/server.crt'), 'another certificate, longer\n');
    expect(await onWorker(dir, settled)).toEqual(inline(settled));
    expect((await onWorker(dir, settled)).ok).toBe(false);
    rmSync(join(dir, 'pki/services/a/server.key'));
    expect(await onWorker(dir, settled)).toEqual(inline(settled));
    // A damaged line, or a top that is not the list's: a list no folder matches.
    expect((await onWorker(dir, StampList.text('[["."', settled.top))).ok).toBe(false);
    expect((await onWorker(dir, StampList.text(settled.text, null))).ok).toBe(false);
  });

  it('is left to this thread for small folders', () => {
    const dir = folder();
    writeFileSync(join(dir, 'a'), 'a');
    const stamps = StampList.of(takeStamps(dir, Date.now()));
    expect(stamps.text.length).toBeLessThan(STATE_CHECK_MIN_CHARS);
    expect(startStateChecks([{ dir, stamps }])).toBeUndefined();
  });

  it('a synth of an emptied out/ takes the worker\'s answer: the state kept when as recorded, planned when it changed, the files a plain synth writes', async () => {
    // 80 services: about 720 files in the state folder, past the worker's threshold.
    const app = () => generatedStack(80, new App(), 'bench-80');
    const dir = folder();
    const plain = folder();
    const seen: { checked: string[][]; kept: string[][]; fast: boolean[] } = { checked: [], kept: [], fast: [] };
    const cache = {
      dir: join(dir, 'cache'),
      onStateChecked: (s: readonly string[]) => seen.checked.push([...s]),
      onKeptState: (s: readonly string[]) => seen.kept.push([...s]),
      onDecision: (d: { fast: boolean }) => seen.fast.push(d.fast),
    };
    const run = () => synth(app(), { outDir: join(dir, 'out'), stateDir: join(dir, 'state'), cache });
    const runPlain = () => synth(app(), { outDir: join(plain, 'out'), stateDir: join(plain, 'state') });
    await run();
    // The second run after the first settles the racy stamps (mtimes within two seconds of the stamp).
    await new Promise((r) => setTimeout(r, 2100));
    await run();
    expect(seen.fast).toEqual([false, true]);
    // The same project without a cache, to compare with.
    for (const f of ['out', 'state']) cpSync(join(dir, f), join(plain, f), { recursive: true, preserveTimestamps: true });

    renameSync(join(dir, 'out'), join(dir, 'out-aside-1'));
    renameSync(join(plain, 'out'), join(plain, 'out-aside-1'));
    const result = await run();
    expect(seen.checked).toEqual([['bench-80']]);
    expect(seen.kept).toEqual([['bench-80']]);
    expect(result).toEqual(await runPlain());
    expect(files(join(dir, 'out'))).toEqual(files(join(plain, 'out')));
    expect(files(join(dir, 'state'))).toEqual(files(join(plain, 'state')));

    // A certificate removed while out/ was away: the worker says so, the state is planned (issued again).
    renameSync(join(dir, 'out'), join(dir, 'out-aside-2'));
    const certs = join(dir, 'state/bench-80/pki/services/svc-7');
    expect(statSync(join(certs, 'server.crt')).isFile()).toBe(true);
    rmSync(join(certs, 'server.crt'));
    const again = await run();
    expect(seen.checked).toEqual([['bench-80'], ['bench-80']]);
    expect(seen.kept).toHaveLength(1);
    expect(again.state[0]?.pki.certificates.filter((c) => c.action !== 'keep').map((c) => `${c.service} ${c.kind}`)).toEqual(['svc-7 server']);
    expect(statSync(join(certs, 'server.crt')).isFile()).toBe(true);
  });
});
