// The certificate engine under reconcile, revoke and rotate: a short orchestrator over its phases
// (engine/cas, engine/inventory, engine/leaves, engine/crls, engine/files). Planning decides and
// issues in memory; applying writes the plan; nothing is written before every check has passed.
import { join } from 'node:path';
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import { atomicWriter, type StateWriter } from '../../io/atomic.ts';
import { nodeRandom, type RandomSource } from '../random.ts';
import { checkCas, settleCas } from './engine/cas.ts';
import { settleCrls } from './engine/crls.ts';
import { desiredFiles } from './engine/files.ts';
import { readInventory, recordOutcome, revokeSerials, type Revocation } from './engine/inventory.ts';
import { settleOcsp, type OcspMode } from './engine/ocsp.ts';
import { decideLeaves, issueLeaves, type Forced, type IssueMode } from './engine/leaves.ts';
import { loadExternalCa } from './external-ca.ts';
import { issuerOf } from './inventory.ts';
import { validityAt, type LeafRequest } from './issue.ts';
import { applyChanges, PKI_PATHS, planChanges, type ChangePlan, type PkiSnapshot } from './store.ts';
import type { AuthoritySpec, CertKind, CertPlan, KeySource, PkiResult } from './types.ts';
import { parseVerifiedFile, serializeVerified, unchangedCache, unchangedCrls, VERIFIED_FILE, VERIFIED_MODE } from './verified.ts';

export { certKeyType, lifetimeDays, PARALLEL_THRESHOLD, renewAt, RENEW_AT, type Forced, type IssueMode } from './engine/leaves.ts';
export type { Revocation } from './engine/inventory.ts';

/** Everything one engine run needs; the caller has validated requests and read the snapshot. */
export interface EngineInput {
  /** The state as read before deciding. */
  readonly snapshot: PkiSnapshot;
  /** What the stack asks of the CAs; undefined when the CAs must already exist (revoke, rotate). */
  readonly authority: AuthoritySpec | undefined;
  /** The certificates in scope. */
  readonly requests: readonly LeafRequest[];
  /** Remove service folders and files that no request needs (reconcile); false leaves them (revoke, rotate). */
  readonly prune: boolean;
  /** Keyed by `service/kind`. */
  readonly forced: ReadonlyMap<string, Forced>;
  /** Serials to mark revoked first. */
  readonly revocations: readonly Revocation[];
  /** The clock for every decision. */
  readonly now: Date;
  /** Where new keys come from. */
  readonly keys: KeySource;
  /**
   * Random bytes (certificate serials).
   * @default - Node's CSPRNG
   */
  readonly random?: RandomSource;
  /** Decide without writing. */
  readonly dryRun: boolean;
  /**
   * Leaves on worker threads or in the main thread (see IssueMode).
   * @default 'auto'
   */
  readonly issueMode?: IssueMode;
  /**
   * Worker threads of a parallel run.
   * @default os.availableParallelism()
   */
  readonly workers?: number;
  /**
   * The OCSP responder's files (`pki/ocsp/`): `on` keeps them current, `off` leaves them alone,
   * `keep` rewrites an existing index only (revoke, rotate).
   * @default 'keep'
   */
  readonly ocsp?: OcspMode;
}

/** A decided PKI run: the file operations, the cache text and the result; new material is held in the operations. */
export interface PkiPlan {
  /** The stack's state folder. */
  readonly stateDir: string;
  /** Whether `pki/` existed when planned (a first run builds it in a temp folder). */
  readonly exists: boolean;
  /** File-system operations in order. */
  readonly changes: ChangePlan;
  /** The verified-facts cache to write after the files, when it changes. */
  readonly verified?: string;
  /** What the run does. */
  readonly result: PkiResult;
}

/**
 * Decides and issues (in memory) without writing. Throws a PodmeshError when the CAs or the
 * inventory are unusable.
 */
export async function planEngine(input: EngineInput): Promise<PkiPlan> {
  const { snapshot, now, keys, dryRun } = input;
  const random = input.random ?? nodeRandom;
  const issues: Issue[] = [];
  const warnings: string[] = [];
  const loaded = checkCas(snapshot, input.authority, now, issues);
  const inventory = readInventory(snapshot, issues, warnings);
  const external = loadExternalCa(snapshot, issues);
  if (issues.length > 0) throw new PodmeshError(issues);

  const cas = await settleCas(loaded, input.authority, { keys, random, now, dryRun }, warnings);
  const caFor = (kind: CertKind) => (issuerOf(kind) === 'root' ? cas.root : cas.clientCa);
  // Facts established by earlier runs, used only for files whose hashes still match.
  const { entries: verified, crls: verifiedCrls } = parseVerifiedFile(snapshot.verified?.text);
  const entries = revokeSerials(inventory, input.revocations, snapshot, verified, now);
  const revoked = new Map([...entries.values()].filter((e) => e.status === 'revoked').map((e) => [e.serial, e]));
  const decided = decideLeaves(input.requests, { snapshot, verified, caFor, revoked, forced: input.forced, now, external }, warnings);
  const issued = await issueLeaves(decided, caFor, {
    keys,
    random,
    now,
    dryRun,
    ...(input.issueMode ? { mode: input.issueMode } : {}),
    ...(input.workers ? { workers: input.workers } : {}),
  });
  recordOutcome(entries, decided, issued, input.prune, dryRun);
  const crlFile = snapshot.files.get(PKI_PATHS.crl);
  const crls = await settleCrls(cas, entries, crlFile?.text, inventory, now, verifiedCrls);
  const finalInventory = { version: 1 as const, crlNumbers: crls.crlNumbers, certificates: [...entries.values()] };
  const want = desiredFiles({ snapshot, cas, caFor, decided, issued, inventory: finalInventory, crlPem: crls.pem, external, verified, prune: input.prune, dryRun });
  const anyIssued = decided.some((d) => d.decision.action !== 'keep');
  const ocsp = await settleOcsp({
    snapshot,
    cas,
    mode: input.ocsp ?? 'keep',
    inventory: dryRun && anyIssued ? null : finalInventory,
    organization: input.authority?.organization ?? cas.root.ca?.cert.organization,
    keys,
    random,
    now,
    dryRun,
  });
  for (const [path, file] of ocsp.files) want.files.set(path, file);
  const wantedServices = new Set(decided.map((d) => d.req.service));
  const changes = planChanges(snapshot, { files: want.files, prune: input.prune ? wantedServices : undefined });
  // Unchanged cache (the same entries as read): its text is what is on disk.
  const verifiedText =
    snapshot.verified?.text !== undefined && unchangedCache(verified, want.verified) && unchangedCrls(verifiedCrls, crls.verified)
      ? snapshot.verified.text
      : serializeVerified(want.verified, crls.verified);
  const certificates: CertPlan[] = decided.map(({ req, existing, decision }, i) => {
    const cert = decision.action === 'keep' ? existing.cert : issued[i]?.cert;
    const planned = { serial: cert?.serial ?? '', notAfter: cert?.notAfter ?? validityAt(now, req.lifetimeDays).notAfter };
    return { service: req.service, kind: req.kind, action: decision.action, reason: decision.reason, ...planned };
  });
  return {
    stateDir: snapshot.stateDir,
    exists: snapshot.exists,
    changes,
    ...(snapshot.verified?.text !== verifiedText || snapshot.verified.mode !== VERIFIED_MODE ? { verified: verifiedText } : {}),
    result: {
      cas: [cas.root.plan, cas.clientCa.plan],
      certificates,
      removedServices: input.prune ? snapshot.services.filter((s) => !wantedServices.has(s)) : [],
      crl: {
        action: !crlFile ? 'create' : crls.reasons.length > 0 ? 'resign' : 'keep',
        reason: crls.reasons.length > 0 ? crls.reasons.join('; ') : 'unchanged and fresh',
      },
      files: changes.changes,
      warnings,
      dryRun,
    },
  };
}

/** Writes a (non-dry-run) plan: the files in their safe order, then the verified cache. */
export async function applyPkiPlan(plan: PkiPlan, writer: StateWriter = atomicWriter): Promise<PkiResult> {
  await applyChanges({ stateDir: plan.stateDir, exists: plan.exists }, plan.changes, writer);
  // After the files it describes: a run interrupted in between leaves hashes that no longer match.
  // Only a cache: a state folder it cannot be written to costs the next run time, not correctness.
  if (plan.verified !== undefined) await writer.write(join(plan.stateDir, VERIFIED_FILE), plan.verified, VERIFIED_MODE).catch(() => undefined);
  return plan.result;
}

/** Plans and, unless `dryRun`, applies. */
export async function runEngine(input: EngineInput): Promise<PkiResult> {
  const plan = await planEngine(input);
  return input.dryRun ? plan.result : applyPkiPlan(plan);
}
