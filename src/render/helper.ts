// A helper thread for rendering large stacks (src/render/stack.ts, renderStackHelped): it renders
// the compose files and systemd units (src/render/parts.ts, HELPED_PARTS) from a structured clone
// of the model while the main thread renders the rest, so a second core shares the rendering.
// A synth starts it before it resolves its stacks, so its modules load meanwhile, and gives it each
// large model as soon as it is resolved, so the copy is made while the state is planned; the
// render request then names the model and the tunnel's public keys. Any failure of the thread
// gives undefined: the caller then renders those parts itself, and the output is the same either way.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../io/worker-entry.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import type { Rendering } from './file.ts';
import type { HelpedPart } from './parts.ts';

/** A message to the thread: a model to keep, or a request to render parts of a kept one. */
export type HelperRequest =
  | { readonly kind: 'model'; readonly slot: number; readonly model: ResolvedStack }
  | {
      readonly kind: 'render';
      readonly id: number;
      /** The kept model, given the tunnel's public keys (resolve/public-keys.ts), renders as the copy in `outDir`. */
      readonly slot: number;
      readonly publicKeys: Readonly<Record<string, string>>;
      readonly outDir: string;
      readonly parts: readonly HelpedPart[];
    };

/** The thread's answer to a render request: each part's rendering, in the order asked, or why it could not. */
export type HelperReply = { readonly id: number; readonly renderings: readonly Rendering[]; readonly error?: undefined } | { readonly id: number; readonly error: string; readonly renderings?: undefined };

/** The helper's thread: dist/render-worker.mjs built, render-worker.ts from the sources. */
const renderWorker = () => workerEntry(new URL('./render-worker.mjs', import.meta.url), new URL('./render-worker.ts', import.meta.url));

/** A thread rendering parts of stacks beside the main thread. */
export class RenderHelper {
  private nextId = 0;
  private readonly waiting = new Map<number, (r: HelperReply | undefined) => void>();
  /** The models the thread holds, by their slot there. */
  private readonly slots = new Map<ResolvedStack, number>();
  private broken = false;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (r: HelperReply) => {
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
      if (this.waiting.size === 0) worker.unref();
    });
    const fail = () => {
      this.broken = true;
      for (const answer of this.waiting.values()) answer(undefined);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', fail);
    // Idle, it does not keep the process alive.
    worker.unref();
  }

  /** Starts a helper when there is a second core to run it; undefined otherwise. */
  static start(): RenderHelper | undefined {
    if (availableParallelism() < 2) return undefined;
    const entry = renderWorker();
    return new RenderHelper(new Worker(entry.code, { eval: entry.eval }));
  }

  /** Gives the thread `model` to keep (copied now: it must not change later); false when it cannot take it. */
  prepare(model: ResolvedStack): boolean {
    if (this.broken) return false;
    if (this.slots.has(model)) return true;
    const slot = this.slots.size;
    try {
      this.worker.postMessage({ kind: 'model', slot, model } satisfies HelperRequest);
    } catch {
      // Not plain data (a function, a class instance the clone cannot carry): rendered here.
      return false;
    }
    this.slots.set(model, slot);
    return true;
  }

  /**
   * Renders `parts` of `withPublicKeys(model, publicKeys)`'s copy in `outDir` on the thread (the
   * model given to {@link prepare} now if it was not before): each part's rendering in the order
   * asked, or undefined when the thread failed (or failed before) or could not take the model.
   */
  render(model: ResolvedStack, publicKeys: Readonly<Record<string, string>>, outDir: string, parts: readonly HelpedPart[]): Promise<readonly Rendering[] | undefined> {
    if (!this.prepare(model)) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, (r) => resolve(r?.renderings));
      this.worker.ref();
      this.worker.postMessage({ kind: 'render', id, slot: this.slots.get(model)!, publicKeys, outDir, parts } satisfies HelperRequest);
    });
  }

  /** Ends the thread. */
  async close(): Promise<void> {
    this.broken = true;
    await this.worker.terminate();
  }
}
