// Entry of the issuing worker threads (pool.ts): generates keys and builds and signs the
// certificates it is sent, in batches, and answers each batch in order. Everything but keys and
// signatures was decided by the main thread. Loads only the encoder (no @peculiar/x509).
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { nativeKeySync } from './keys.ts';
import { buildCertificate, pemOf } from './tbs.ts';
import type { IssuerInit, WorkerReply, WorkerRequest } from './pool.ts';

const port = parentPort;
if (!port) throw new Error('issue-worker.ts runs only as a worker thread');
const init = workerData as { issuers: readonly IssuerInit[] };
const issuers = init.issuers.map((i) => ({ spec: i.spec, key: createPrivateKey({ key: Buffer.from(i.keyDer), format: 'der', type: 'pkcs8' }) as KeyObject }));

port.on('message', (msg: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    const results = msg.jobs.map((job) => {
      const issuer = issuers[job.issuer];
      if (!issuer) throw new Error(`issue worker: no issuer ${job.issuer}`);
      const key = nativeKeySync(job.spec.keyType);
      const der = buildCertificate(job.spec, key.spkiDer, issuer.spec, issuer.key);
      return { certPem: pemOf(der, 'CERTIFICATE'), keyPem: key.keyPem };
    });
    reply = { batch: msg.batch, results };
  } catch (e) {
    reply = { batch: msg.batch, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
  port.postMessage(reply);
});
