// The batched durable write (io/atomic.ts writeBatch) the PKI writes its files with: temp files,
// one flush for their data, renames, one flush for the renames. A failure or a crash between the
// flush and the renames leaves every visible file as it was; a crash leaves only temp names, which
// the leftovers sweep of the next synth finds.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { atomicWriter, createBatch, FileExistsError, flushPaths, flushTogether, recordingWriter, sharedFlushWriter, writeBatch, type Flush, type FlushTogether, type StateWriter } from '../../src/io/atomic.ts';
import { findLeftovers } from '../../src/state/leftovers.ts';
import { pkiReconciler } from '../../src/state/pki/index.ts';
import { stateContext } from '../../src/state/reconciler.ts';
import { AUTHORITY, meshBindings, tempState, treeState } from './helpers.ts';

const T0 = new Date('2026-03-01T12:00:00Z');
const DAY = 86_400_000;
const repo = resolve(import.meta.dirname, '../..');

/** Every name below `dir` (recursively), sorted, with file contents. */
function contents(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.set(r, readFileSync(join(dir, r), 'utf8'));
    }
  };
  walk('');
  return out;
}

/** The real writer whose batch flush fails (throwing `message`) right after its `what` flush (or a flush of both, `all`). */
function failingAfter(what: 'data' | 'entries', message: string): StateWriter {
  return {
    ...atomicWriter,
    writeBatch: (files, options) =>
      atomicWriter.writeBatch(files, {
        ...options,
        flush: async (paths, flushed) => {
          await flushPaths(paths, flushed);
          if (flushed === what || flushed === 'all') throw new Error(message);
        },
      }),
  };
}

describe('writeBatch', () => {
  let t: ReturnType<typeof tempState>;
  let dir: string;
  beforeEach(() => {
    t = tempState();
    dir = join(t.root, 'batch');
    mkdirSync(join(dir, 'a'), { recursive: true });
    mkdirSync(join(dir, 'b'));
    writeFileSync(join(dir, 'a', 'old.txt'), 'old\n', { mode: 0o644 });
  });
  afterEach(() => t.cleanup());
  const files = () => [
    { abs: join(dir, 'a', 'old.txt'), content: 'new\n', mode: 0o644 },
    { abs: join(dir, 'a', 'x.key'), content: 'secret\n', mode: 0o600 },
    { abs: join(dir, 'b', 'y.crt'), content: 'cert\n', mode: 0o644 },
  ];

  it('flushes the data before the first rename and the renames after the last, with exact modes and no temps left', async () => {
    // GIVEN a flush that records what is visible when it is called
    const seen: { what: string; visible: Map<string, string> }[] = [];
    const flush: Flush = async (paths, what) => {
      seen.push({ what, visible: new Map([...contents(dir)].filter(([p]) => !p.includes('.tmp'))) });
      await flushPaths(paths, what);
    };
    // WHEN three files are written in one batch
    await writeBatch(files(), { flush });
    // THEN the data flush saw only the old file, the entries flush every new one
    expect(seen.map((s) => s.what)).toEqual(['data', 'entries']);
    expect([...seen[0]!.visible]).toEqual([['a/old.txt', 'old\n']]);
    expect(seen[1]!.visible.get('a/old.txt')).toBe('new\n');
    // AND the files are in place with their modes, and no temp name remains
    expect([...contents(dir)]).toEqual([
      ['a/old.txt', 'new\n'],
      ['a/x.key', 'secret\n'],
      ['b/y.crt', 'cert\n'],
    ]);
    expect((statSync(join(dir, 'a', 'x.key')).mode & 0o777).toString(8)).toBe('600');
  });

  it('unpublished (a folder nobody sees yet), creates the files under their own names with one flush of data and names', async () => {
    // GIVEN a flush that records what is visible when it is called
    const seen: { what: string; visible: string[] }[] = [];
    const flush: Flush = async (paths, what) => {
      seen.push({ what, visible: [...contents(dir).keys()] });
      await flushPaths(paths, what);
    };
    // WHEN files are written unpublished into a new folder
    mkdirSync(join(dir, 'c'));
    await writeBatch(
      files().map((f) => ({ ...f, abs: join(dir, 'c', f.abs.slice(dir.length + 3)) })),
      { flush, unpublished: true },
    );
    // THEN one flush saw every file under its own name, and no temp name was ever made
    expect(seen).toEqual([{ what: 'all', visible: ['a/old.txt', 'c/old.txt', 'c/x.key', 'c/y.crt'] }]);
    expect(contents(dir).get('c/old.txt')).toBe('new\n');
    expect((statSync(join(dir, 'c', 'x.key')).mode & 0o777).toString(8)).toBe('600');
  });

  it('a failure between the data flush and the renames changes no visible file and leaves no temp', async () => {
    // GIVEN a flush that makes the data durable, then fails
    const flush: Flush = async (paths, what) => {
      await flushPaths(paths, what);
      if (what === 'data') throw new Error('injected failure after the flush');
    };
    // WHEN the batch runs
    await expect(writeBatch(files(), { flush })).rejects.toThrow('injected failure after the flush');
    // THEN only the old file is there, unchanged
    expect([...contents(dir)]).toEqual([['a/old.txt', 'old\n']]);
  });

  it('a file that cannot be created fails the batch before any rename, and no temp outlives it', async () => {
    // GIVEN 40 files, the 21st in a folder that does not exist
    const many = Array.from({ length: 40 }, (_, i) => ({ abs: join(dir, i === 20 ? 'missing' : 'a', `f${i}`), content: `${i}\n`, mode: 0o644 }));
    // WHEN they are written as one batch
    await expect(writeBatch(many)).rejects.toThrow(/ENOENT/);
    // THEN nothing new is visible and every temp the other writers made is gone
    expect([...contents(dir)]).toEqual([['a/old.txt', 'old\n']]);
  });

  it('a crash between the data flush and the renames leaves the old files and temp names the leftovers sweep finds', () => {
    // GIVEN a process that is killed right after the data flush
    const script = join(t.root, 'crash.mts');
    writeFileSync(
      script,
      `import { writeBatch, flushPaths } from ${JSON.stringify(join(repo, 'src/io/atomic.ts'))};
const files = ${JSON.stringify(files())};
await writeBatch(files, { flush: async (paths, what) => { await flushPaths(paths, what); if (what === 'data') process.kill(process.pid, 'SIGKILL'); } });
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repo, timeout: 30_000, encoding: 'utf8' });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    // THEN every visible file is as it was; the new contents exist only under temp names
    const after = contents(dir);
    expect(after.get('a/old.txt')).toBe('old\n');
    const temps = [...after.keys()].filter((p) => p !== 'a/old.txt');
    expect(temps).toHaveLength(3);
    for (const p of temps) expect(p).toMatch(/^(a|b)\/\.(old\.txt|x\.key|y\.crt)\.[0-9a-f]{12}\.tmp$/);
    // AND they are exactly what the next synth removes as an interrupted run's leftovers
    expect(findLeftovers(dir)).toEqual([...temps].sort());
  });
});

describe('createBatch', () => {
  let t: ReturnType<typeof tempState>;
  let dir: string;
  beforeEach(() => {
    t = tempState();
    dir = join(t.root, 'create');
    mkdirSync(join(dir, 'psk'), { recursive: true });
    writeFileSync(join(dir, 'h0.key'), 'old key\n', { mode: 0o600 });
  });
  afterEach(() => t.cleanup());

  it('creates every file with its mode after one data flush, moves a replaced one aside, and leaves no temp', async () => {
    // GIVEN a flush that records what is visible when it is called
    const seen: { what: string; visible: string[] }[] = [];
    const flush: Flush = async (paths, what) => {
      seen.push({ what, visible: [...contents(dir).keys()].filter((p) => !p.includes('.tmp')) });
      await flushPaths(paths, what);
    };
    // WHEN two new keys and a rotated one (kept as .old) are created as one batch
    await createBatch(
      [
        { abs: join(dir, 'h0.key'), content: 'new key\n', mode: 0o600, moveAside: join(dir, 'h0.key.old') },
        { abs: join(dir, 'h1.key'), content: 'h1\n', mode: 0o600 },
        { abs: join(dir, 'psk', 'h0--h1.key'), content: 'psk\n', mode: 0o640 },
      ],
      { flush },
    );
    // THEN the data flush saw only the old key, the entries flush every new one
    expect(seen).toEqual([
      { what: 'data', visible: ['h0.key'] },
      { what: 'entries', visible: ['h0.key', 'h0.key.old', 'h1.key', 'psk/h0--h1.key'] },
    ]);
    // AND the files hold their contents with exact modes, and no temp name remains
    expect([...contents(dir)]).toEqual([
      ['h0.key', 'new key\n'],
      ['h0.key.old', 'old key\n'],
      ['h1.key', 'h1\n'],
      ['psk/h0--h1.key', 'psk\n'],
    ]);
    expect((statSync(join(dir, 'psk', 'h0--h1.key')).mode & 0o777).toString(8)).toBe('640');
  });

  it('refuses to replace a file that is there, overwriting nothing and leaving no temp', async () => {
    // WHEN a batch would create h1.key and then h0.key, which exists
    const create = createBatch([
      { abs: join(dir, 'h1.key'), content: 'h1\n', mode: 0o600 },
      { abs: join(dir, 'h0.key'), content: 'not the old key\n', mode: 0o600 },
    ]);
    // THEN it fails naming h0.key
    await expect(create).rejects.toThrow(FileExistsError);
    await expect(create).rejects.toMatchObject({ path: join(dir, 'h0.key') });
    // AND h0.key is untouched, the key linked before it stays, and no temp is left
    expect([...contents(dir)]).toEqual([
      ['h0.key', 'old key\n'],
      ['h1.key', 'h1\n'],
    ]);
  });
});

describe('sharedFlushWriter', () => {
  let t: ReturnType<typeof tempState>;
  let dir: string;
  beforeEach(() => {
    t = tempState();
    dir = join(t.root, 'shared');
    mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(join(dir, 'a', 'old.txt'), 'old\n', { mode: 0o644 });
  });
  afterEach(() => t.cleanup());
  /** Names below `dir`, temps left out. */
  const visible = (): string[] => [...contents(dir).keys()].filter((p) => !p.includes('.tmp'));
  const rel = (paths: readonly string[]): string[] => paths.map((p) => p.slice(dir.length + 1).replace(/\/\.([^/]*)\.[0-9a-f]{12}\.tmp$/, '/$1 (temp)')).sort();

  it('makes each batch\'s names durable with the next batch\'s data, the last ones when settled: four flushes for three batches', async () => {
    // GIVEN a shared writer whose flush records what it is given and what is visible then
    const seen: { data: string[]; entries: string[]; visible: string[] }[] = [];
    const flush: FlushTogether = async (data, entries) => {
      seen.push({ data: rel(data), entries: rel(entries), visible: visible() });
      await flushTogether(data, entries);
    };
    const writer = sharedFlushWriter({ flush });
    // WHEN a batch replaces a file, an unpublished one fills a new folder, and a third creates keys
    await writer.writeBatch([{ abs: join(dir, 'a', 'old.txt'), content: 'new\n', mode: 0o644 }]);
    mkdirSync(join(dir, 'staged'));
    await writer.writeBatch([{ abs: join(dir, 'staged', 'ca.crt'), content: 'ca\n', mode: 0o644 }], { unpublished: true });
    await writer.createBatch([{ abs: join(dir, 'a', 'h0.key'), content: 'key\n', mode: 0o600 }]);
    expect(seen).toHaveLength(3);
    await writer.settle!();
    // THEN the flushes: the first batch's data; the second's data and names with the first's
    // names (renamed by then); the third's data; at settling, the third's names
    expect(seen).toEqual([
      { data: ['a/old.txt (temp)'], entries: [], visible: ['a/old.txt'] },
      { data: ['staged/ca.crt'], entries: ['a/old.txt', 'staged/ca.crt'], visible: ['a/old.txt', 'staged/ca.crt'] },
      { data: ['a/h0.key (temp)'], entries: [], visible: ['a/old.txt', 'staged/ca.crt'] },
      { data: [], entries: ['a/h0.key'], visible: ['a/h0.key', 'a/old.txt', 'staged/ca.crt'] },
    ]);
    expect(contents(dir).get('a/old.txt')).toBe('new\n');
    expect((statSync(join(dir, 'a', 'h0.key')).mode & 0o777).toString(8)).toBe('600');
    // AND settling again flushes nothing
    await writer.settle!();
    expect(seen).toHaveLength(4);
  });

  it('keeps names whose flush failed for the next flush, and a failed batch leaves its files as they were', async () => {
    // GIVEN a flush that fails once, for the second batch
    const seen: string[][] = [];
    let calls = 0;
    const flush: FlushTogether = async (data, entries) => {
      if (++calls === 2) throw new Error('injected flush failure');
      seen.push(rel(entries));
      await flushTogether(data, entries);
    };
    const writer = sharedFlushWriter({ flush });
    await writer.writeBatch([{ abs: join(dir, 'a', 'one.txt'), content: '1\n', mode: 0o644 }]);
    // WHEN the second batch's data flush fails
    await expect(writer.writeBatch([{ abs: join(dir, 'a', 'old.txt'), content: '2\n', mode: 0o644 }])).rejects.toThrow('injected flush failure');
    // THEN its file is as it was, no temp is left, and settling makes the first batch's names durable
    expect([...contents(dir)]).toEqual([
      ['a/old.txt', 'old\n'],
      ['a/one.txt', '1\n'],
    ]);
    await writer.settle!();
    expect(seen.at(-1)).toEqual(['a/one.txt']);
  });
});

describe('the PKI apply with batched durability', () => {
  let t: ReturnType<typeof tempState>;
  beforeEach(() => {
    t = tempState();
  });
  afterEach(() => t.cleanup());
  const input = () => ({ stateDir: t.stateDir, authority: AUTHORITY, bindings: meshBindings() });
  /** The real writer whose batch flush fails right after making the data durable. */
  const failingAfterFlush = failingAfter('data', 'injected failure after the flush');

  it('a renewal whose batch fails after its flush leaves the state folder exactly as it was', async () => {
    // GIVEN a PKI issued at T0
    await pkiReconciler.apply(await pkiReconciler.plan(input(), stateContext({ now: T0 })), atomicWriter);
    const before = treeState(t.stateDir);
    const beforeText = contents(t.stateDir);
    // WHEN 300 days later every leaf is renewed and the batch fails between flush and renames
    const plan = await pkiReconciler.plan(input(), stateContext({ now: new Date(T0.getTime() + 300 * DAY) }));
    expect(plan.result.certificates.every((c) => c.action === 'renew')).toBe(true);
    await expect(pkiReconciler.apply(plan, failingAfterFlush)).rejects.toThrow('injected failure after the flush');
    // THEN every file, mode and folder is as before, and no temp name is left
    expect(treeState(t.stateDir)).toEqual(before);
    expect(contents(t.stateDir)).toEqual(beforeText);
    // AND a run with the real writer then renews them
    const again = await pkiReconciler.plan(input(), stateContext({ now: new Date(T0.getTime() + 300 * DAY) }));
    await pkiReconciler.apply(again, atomicWriter);
    expect(contents(t.stateDir).get('pki/services/auth/server.crt')).not.toBe(beforeText.get('pki/services/auth/server.crt'));
  });

  it('a first run whose batch fails after its flush leaves no pki/ and no staging folder', async () => {
    // WHEN the first run's batch fails between its flush and the publishing rename
    const plan = await pkiReconciler.plan(input(), stateContext({ now: T0 }));
    await expect(pkiReconciler.apply(plan, failingAfterFlush)).rejects.toThrow('injected failure after the flush');
    // THEN the state folder is empty
    expect(readdirSync(t.stateDir)).toEqual([]);
  });
});

describe('recordingWriter', () => {
  let t: ReturnType<typeof tempState>;
  let dir: string;
  beforeEach(() => {
    t = tempState();
    dir = join(t.root, 'rec');
  });
  afterEach(() => t.cleanup());
  /** Each claim as [path relative to dir, text], sorted; every one checked against the disk. */
  const claims = (written: ReadonlyMap<string, string | Uint8Array>): [string, string][] => {
    const out = [...written].map(([abs, c]): [string, string] => [abs.slice(dir.length + 1), typeof c === 'string' ? c : Buffer.from(c).toString('utf8')]).sort((x, y) => (x[0] < y[0] ? -1 : 1));
    for (const [rel, text] of out) expect(readFileSync(join(dir, rel), 'utf8'), rel).toBe(text);
    return out;
  };

  it('knows what each file it wrote holds, through renames of files and folders, keys moved aside and removals', async () => {
    const { writer, written } = recordingWriter(atomicWriter);
    const at = (rel: string) => join(dir, rel);
    await writer.mkdir(at('a'), 0o700);
    await writer.mkdir(at('b'), 0o700);
    await writer.write(at('a/x'), 'x1', 0o600);
    await writer.writeBatch([
      { abs: at('a/y'), content: 'y1', mode: 0o600 },
      { abs: at('b/z'), content: Buffer.from('z1'), mode: 0o644 },
    ]);
    await writer.create(at('b/c'), 'c1', 0o600);
    expect(claims(written)).toEqual([
      ['a/x', 'x1'],
      ['a/y', 'y1'],
      ['b/c', 'c1'],
      ['b/z', 'z1'],
    ]);
    // A rotated key: the old one moves aside, the new one takes its name.
    await writer.createBatch([{ abs: at('a/x'), content: 'x2', mode: 0o600, moveAside: at('a/x.old') }]);
    // A file renamed, a folder renamed (what is below it moves along), a file and a folder removed.
    await writer.rename(at('b/z'), at('b/w'));
    await writer.rename(at('a'), at('d'));
    await writer.unlink(at('d/y'));
    await writer.mkdir(at('e'), 0o700);
    await writer.write(at('e/f'), 'f1', 0o600);
    await writer.removeDir(at('e'));
    expect(claims(written)).toEqual([
      ['b/c', 'c1'],
      ['b/w', 'z1'],
      ['d/x', 'x2'],
      ['d/x.old', 'x1'],
    ]);
  });

  it('forgets the files a failed write may have touched, and a file renamed over one it knew', async () => {
    const { writer, written } = recordingWriter(failingAfter('entries', 'injected failure after the renames'));
    await writer.mkdir(join(dir, 'a'), 0o700);
    await writer.mkdir(join(dir, 'b'), 0o700);
    await writer.write(join(dir, 'a/x'), 'x1', 0o600);
    await writer.write(join(dir, 'b/y'), 'y1', 0o600);
    // The batch renamed x2 into place before it failed: its claim on a/x is gone, not stale.
    await expect(writer.writeBatch([{ abs: join(dir, 'a/x'), content: 'x2', mode: 0o600 }])).rejects.toThrow('injected failure');
    expect(claims(written)).toEqual([['b/y', 'y1']]);
    // A relative path is known by its absolute one.
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      await writer.write('b/rel', 'r1', 0o600);
    } finally {
      process.chdir(cwd);
    }
    expect(claims(written)).toEqual([
      ['b/rel', 'r1'],
      ['b/y', 'y1'],
    ]);
    await writer.unlink(join(dir, 'b/rel'));
    // A file not written by it, renamed over one it knew: neither is claimed.
    writeFileSync(join(dir, 'b/other'), 'not written by it');
    await writer.rename(join(dir, 'b/other'), join(dir, 'b/y'));
    expect(claims(written)).toEqual([]);
  });

  it('knows every file a first PKI apply leaves, as it is on disk', async () => {
    const input = { stateDir: t.stateDir, authority: AUTHORITY, bindings: meshBindings() };
    const { writer, written } = recordingWriter(atomicWriter);
    await pkiReconciler.apply(await pkiReconciler.plan(input, stateContext({ now: T0 })), writer);
    const onDisk = contents(t.stateDir);
    const claimed = new Map([...written].map(([abs, c]) => [abs.slice(t.stateDir.length + 1), typeof c === 'string' ? c : Buffer.from(c).toString('utf8')]));
    expect(claimed.size).toBeGreaterThan(10);
    for (const [rel, text] of claimed) expect(onDisk.get(rel), rel).toBe(text);
    // Written outside the writer, not claimed: only what the PKI keeps of its own checks.
    expect([...onDisk.keys()].filter((rel) => !claimed.has(rel))).toEqual([]);
  });
});
