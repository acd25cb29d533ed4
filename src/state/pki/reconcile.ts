// The PKI reconciler: brings `.podmesh/<stack>/pki` in line with the stack's authority and certificate bindings.
import { basename, resolve } from 'node:path';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { atomicWriter } from '../../io/atomic.ts';
import type { Reconciler, StateContext } from '../reconciler.ts';
import { nodeRandom, type RandomSource } from '../random.ts';
import { applyPkiPlan, planEngine, type IssueMode, type PkiPlan } from './engine.ts';
import { webCryptoKeySource } from './keys.ts';
import { readPkiSnapshot } from './store.ts';
import type { AuthoritySpec, CertBinding, CertKind, KeySource, PkiResult } from './types.ts';
import { validateAuthority, validateBindings } from './validate.ts';

/** What the PKI of one stack should hold. */
export interface PkiInput {
  /** The stack's state folder, `.podmesh/<stack>`; its last segment names the stack in messages. */
  readonly stateDir: string;
  /** The CAs the stack wants; used only to create missing ones (an existing CA is never replaced). */
  readonly authority: AuthoritySpec;
  /** Every certificate the stack needs; service folders no binding needs are removed. */
  readonly bindings: readonly CertBinding[];
  /**
   * Keep the OCSP responder's files (`pki/ocsp/`: delegated responder certificates and keys, the
   * index) current. Without it they are left as they are.
   * @default false
   */
  readonly ocsp?: boolean;
}

/** Input of {@link reconcilePki}. */
export interface ReconcileOptions extends PkiInput {
  /** The clock for every decision (validity, 70% renewal, CRL age). */
  readonly now: Date;
  /**
   * Decide without writing or issuing (`podmesh certs` dry runs). Certificates it would issue have an empty serial.
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Where new keys come from.
   * @default - WebCrypto ({@link webCryptoKeySource})
   */
  readonly keys?: KeySource;
  /**
   * Random bytes (certificate serials); tests inject a seeded source.
   * @default - Node's CSPRNG
   */
  readonly random?: RandomSource;
  /**
   * New leaves on worker threads (`parallel`), in the main thread (`serial`), or worker threads
   * from PARALLEL_THRESHOLD (4,000) new leaves on with the default key source (`auto`).
   * @default 'auto'
   */
  readonly issueMode?: IssueMode;
  /**
   * Worker threads of a parallel run.
   * @default os.availableParallelism()
   */
  readonly workers?: number;
}

/**
 * Decides, without writing, what reconcile does: creates missing CAs, issues missing certificates,
 * reissues those whose names, IPs, key type or issuer changed, renews those past 70% of their
 * lifetime or expired, keeps the rest, removes service folders no binding needs, and re-signs CRLs
 * that are missing, changed or half-way to expiry. New keys and certificates are held in the plan.
 * @throws PodmeshError for invalid bindings or unusable CA/inventory files.
 */
export async function planPki(input: PkiInput, ctx: StateContext, dryRun = false, issuing: { issueMode?: IssueMode; workers?: number } = {}): Promise<PkiPlan> {
  const stack = basename(resolve(input.stateDir));
  const issues = [...validateAuthority(stack, input.authority), ...validateBindings(stack, input.bindings)];
  if (issues.length > 0) throw new PodmeshError(issues);
  const organization = input.authority.organization;
  const kinds = new Map<string, Set<CertKind>>();
  for (const b of input.bindings) {
    const k = kinds.get(b.service);
    if (k) k.add(b.kind);
    else kinds.set(b.service, new Set([b.kind]));
  }
  return planEngine({
    snapshot: await readPkiSnapshot(input.stateDir, { ...(ctx.reads ? { reads: ctx.reads } : {}), kinds }),
    authority: input.authority,
    requests: input.bindings.map((b) => (organization === undefined ? b : { ...b, organization })),
    prune: true,
    forced: new Map(),
    revocations: [],
    now: ctx.now,
    keys: ctx.keys,
    random: ctx.random,
    dryRun,
    ocsp: input.ocsp ? 'on' : 'off',
    ...issuing,
  });
}

/** The PKI reconciler (plan with the context's clock, keys and random bytes; apply through the writer). */
export const pkiReconciler: Reconciler<PkiInput, PkiPlan, PkiResult> = {
  plan: (input, ctx) => planPki(input, ctx),
  apply: applyPkiPlan,
};

/**
 * Plans and (unless `dryRun`) applies at once. A run with nothing to change writes no file.
 * @throws PodmeshError (having written nothing) for invalid bindings or unusable CA/inventory files.
 */
export async function reconcilePki(options: ReconcileOptions): Promise<PkiResult> {
  const ctx = { now: options.now, keys: options.keys ?? webCryptoKeySource, random: options.random ?? nodeRandom };
  const issuing = { ...(options.issueMode ? { issueMode: options.issueMode } : {}), ...(options.workers ? { workers: options.workers } : {}) };
  const plan = await planPki(options, ctx, options.dryRun ?? false, issuing);
  return options.dryRun ? plan.result : applyPkiPlan(plan, atomicWriter);
}
