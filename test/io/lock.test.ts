import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, describeHolder, holderAlive, withLock } from '../../src/io/lock.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'podmesh-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const worker = join(import.meta.dirname, 'lock-worker.ts');
const tsx = join(import.meta.dirname, '../../node_modules/.bin/tsx');

describe('the lock', () => {
  it('names its holder to a second taker and gives up after the timeout', async () => {
    // GIVEN a held lock
    const path = join(dir, 'state', '.lock');
    const held = await acquireLock(path, { command: 'podmesh synth' });
    const waits: string[] = [];
    // WHEN a second run asks for it with a short timeout
    const second = acquireLock(path, { command: 'podmesh certs rotate', timeoutSeconds: 0.3, onWait: (m) => waits.push(m) });
    // THEN it waits (saying for whom), then fails naming the holder and the fix
    await expect(second).rejects.toThrow(new RegExp(`another podmesh run holds the lock: pid ${process.pid} \\(podmesh synth\\) since .*raise --lock-timeout`));
    expect(waits).toHaveLength(1);
    expect(waits[0]).toContain(`waiting for pid ${process.pid} (podmesh synth)`);
    await held.release();
    expect(existsSync(path)).toBe(false);
    // and the lock is free again
    await (await acquireLock(path, { command: 'again', timeoutSeconds: 0 })).release();
  });

  it('is taken over from a process that died holding it', async () => {
    // GIVEN a lock whose holder exited without releasing it
    const path = join(dir, '.lock');
    const counter = join(dir, 'n');
    writeFileSync(counter, '0');
    await execa(tsx, [worker, path, counter, 'die']);
    expect(existsSync(path)).toBe(true);
    const dead = JSON.parse(readFileSync(path, 'utf8'));
    expect(holderAlive(dead)).toBe(false);
    // WHEN another run takes it
    const said: string[] = [];
    const lock = await acquireLock(path, { command: 'next', timeoutSeconds: 2, onWait: (m) => said.push(m) });
    // THEN it says so and holds it
    expect(said).toEqual([`took over the lock ${path} from ${describeHolder(dead)}, which is no longer running`]);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('tells a reused pid from its holder by the process start time', () => {
    const me = { pid: process.pid, host: hostname(), command: 'x', since: '' };
    expect(holderAlive(me)).toBe(true);
    expect(holderAlive({ ...me, start: '1' })).toBe(false);
    expect(holderAlive({ ...me, host: 'another-machine' })).toBe(true);
  });

  it('serializes racing processes: eight read-sleep-write increments end at eight', async () => {
    const path = join(dir, '.lock');
    const counter = join(dir, 'n');
    writeFileSync(counter, '0');
    await Promise.all(Array.from({ length: 8 }, () => execa(tsx, [worker, path, counter], { timeout: 60_000 })));
    expect(readFileSync(counter, 'utf8')).toBe('8');
    expect(existsSync(path)).toBe(false);
  }, 90_000);

  it('is released when the work throws', async () => {
    const path = join(dir, '.lock');
    await expect(withLock(path, { command: 'x' }, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(existsSync(path)).toBe(false);
  });
});
