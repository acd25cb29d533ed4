// The worker thread of state-check.ts: checks each folder it is given against its stamps, replies
// once with what it found, and ends. Loads stamps.ts alone.
import { parentPort, workerData } from 'node:worker_threads';
import type { StateCheckRequest, StateCheckResult } from './state-check.ts';
import { checkStamps, StampList } from './stamps.ts';

const results = (workerData as readonly StateCheckRequest[]).map((r): StateCheckResult => {
  const since = Date.now();
  try {
    const checked = checkStamps(r.dir, StampList.text(r.stamps, r.top).stamps, since);
    if (!checked.ok) return { since, ok: false, reason: checked.reason };
    if (!checked.refreshed) return { since, ok: true };
    const next = StampList.of(checked.next);
    return { since, ok: true, next: { stamps: next.text, top: next.top } };
  } catch (e) {
    return { since, ok: false, reason: `${r.dir} cannot be checked (${(e as Error).message})` };
  }
});
parentPort!.postMessage(results);
