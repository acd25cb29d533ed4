// reconcilePki: brings `.podmesh/<stack>/pki` in line with the stack's authority and certificate bindings.
import { basename, resolve } from 'node:path';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { runEngine } from './engine.ts';
import { webCryptoKeySource } from './keys.ts';
import { readPkiSnapshot } from './store.ts';
import type { AuthoritySpec, CertBinding, KeySource, PkiResult } from './types.ts';
import { validateAuthority, validateBindings } from './validate.ts';

/** Input of {@link reconcilePki}. */
export interface ReconcileOptions {
  /** The stack's state folder, `.podmesh/<stack>`; its last segment names the stack in messages. */
  readonly stateDir: string;
  /** The CAs the stack wants; used only to create missing ones (an existing CA is never replaced). */
  readonly authority: AuthoritySpec;
  /** Every certificate the stack needs; service folders no binding needs are removed. */
  readonly bindings: readonly CertBinding[];
  /** The clock for every decision (validity, 70% renewal, CRL age). */
  readonly now: Date;
  /**
   * Decide without writing (`podmesh diff`). Certificates it would issue have an empty serial.
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Where new keys come from.
   * @default - WebCrypto ({@link webCryptoKeySource})
   */
  readonly keys?: KeySource;
}

/**
 * Creates missing CAs, issues missing certificates, reissues those whose names, IPs, key type or
 * issuer changed, renews those past 70% of their lifetime or expired, keeps the rest, removes
 * service folders no binding needs, and re-signs CRLs that are missing, changed or half-way to
 * expiry. A run with nothing to change writes no file.
 * @throws PodmeshError (having written nothing) for invalid bindings or unusable CA/inventory files.
 */
export async function reconcilePki(options: ReconcileOptions): Promise<PkiResult> {
  const stack = basename(resolve(options.stateDir));
  const issues = [...validateAuthority(stack, options.authority), ...validateBindings(stack, options.bindings)];
  if (issues.length > 0) throw new PodmeshError(issues);
  const organization = options.authority.organization;
  return runEngine({
    snapshot: await readPkiSnapshot(options.stateDir),
    authority: options.authority,
    requests: options.bindings.map((b) => (organization === undefined ? b : { ...b, organization })),
    prune: true,
    forced: new Map(),
    revocations: [],
    now: options.now,
    keys: options.keys ?? webCryptoKeySource,
    dryRun: options.dryRun ?? false,
  });
}
