// The thread of src/render/helper.ts: keeps the models it is given (structured clones) and renders
// the parts it is asked for (src/render/parts.ts, HELPED_PARTS) while the main thread renders the
// rest. Loads only those renderers. A renderer's problems come back as problems; any other failure
// as an error, on which the main thread renders the parts itself.
import { parentPort } from 'node:worker_threads';
import type { ResolvedStack } from '../resolve/model.ts';
import { withPublicKeys } from '../resolve/public-keys.ts';
import type { HelperReply, HelperRequest } from './helper.ts';
import { HELPED_PARTS, outLocations, settle } from './parts.ts';

const models: ResolvedStack[] = [];

parentPort!.on('message', (req: HelperRequest) => {
  if (req.kind === 'model') {
    models[req.slot] = req.model;
    return;
  }
  let reply: HelperReply;
  try {
    const stack = withPublicKeys(models[req.slot]!, req.publicKeys);
    const where = outLocations(stack, req.outDir);
    reply = { id: req.id, renderings: req.parts.map((p) => settle(() => HELPED_PARTS[p](stack, where))) };
  } catch (e) {
    reply = { id: req.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
  parentPort!.postMessage(reply);
});
