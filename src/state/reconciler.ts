// The one shape of the state folder's reconcilers (PKI, WireGuard keys, secrets): plan reads and
// decides with the clock and randomness injected, apply writes the plan through the one writer.
import { resolve } from 'node:path';
import type { StateWriter } from '../io/atomic.ts';
import { webCryptoKeySource } from './pki/keys.ts';
import type { KeySource } from './pki/types.ts';
import { nodeRandom, type RandomSource } from './random.ts';

export { nodeRandom, type RandomSource } from './random.ts';

/** The clock and the sources of randomness every reconciler decides with. */
export interface StateContext {
  /** The clock for every decision (certificate validity, renewal, CRL age). */
  readonly now: Date;
  /** Random bytes: WireGuard keys, secrets, certificate serials. */
  readonly random: RandomSource;
  /** Certificate key pairs (WebCrypto by default; RSA keys cannot be drawn from plain bytes). */
  readonly keys: KeySource;
  /**
   * When set, plans record here the text of every state file they read, by absolute path: what a
   * check of the folder after the plan compares with its stamps, instead of reading every file
   * again (synth/fastpath.ts recordSynth).
   */
  readonly reads?: Map<string, string>;
}

/** Records in `ctx.reads` (when set) that a plan read `text` from the state file `abs`. */
export function noteRead(ctx: Pick<StateContext, 'reads'>, abs: string, text: string): void {
  ctx.reads?.set(resolve(abs), text);
}

/** A context with the real clock (or `now`), Node's CSPRNG and WebCrypto keys; `over` replaces parts. */
export function stateContext(over: Partial<StateContext> = {}): StateContext {
  return { now: over.now ?? new Date(), random: over.random ?? nodeRandom, keys: over.keys ?? webCryptoKeySource, ...(over.reads ? { reads: over.reads } : {}) };
}

/**
 * A reconciler of one part of a stack's state folder. `plan` reads and decides, holding any new
 * material in the plan, and writes nothing; it throws a PodmeshError listing every problem.
 * `apply` carries out a plan (and nothing else) through the writer.
 */
export interface Reconciler<Input, Plan, Report> {
  plan(input: Input, ctx: StateContext): Promise<Plan>;
  apply(plan: Plan, writer: StateWriter): Promise<Report>;
}
