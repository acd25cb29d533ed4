// A racer for the lock test: takes the lock, does a read-sleep-write increment, releases.
import { readFileSync, writeFileSync } from 'node:fs';
import { withLock } from '../../src/io/lock.ts';

const [lockPath, counter, mode] = process.argv.slice(2) as [string, string, string?];
await withLock(lockPath, { command: 'lock-worker', timeoutSeconds: 30, pollMs: 5 }, async () => {
  const n = Number(readFileSync(counter, 'utf8'));
  await new Promise((r) => setTimeout(r, 20));
  writeFileSync(counter, String(n + 1));
  // "die" leaves the lock behind, as a process killed inside it would.
  if (mode === 'die') process.exit(0);
});
