// Engine phase 3: each certificate the stack needs: read what is in place, decide keep, create,
// renew or reissue, and issue the new ones (material held in memory until apply).
import { mapLimit } from '../../../io/map-limit.ts';
import type { ExternalCa } from '../external-ca.ts';
import { isSignedBy, parseCertificate, type ParsedCertificate } from '../certificate.ts';
import { availableParallelism } from 'node:os';
import { DAY, factsOf, floorToSecond, issueWith, leafSpec, randomSerial, sanDnsNames, sanUris, aiaOcspUrls, type IssuedCert, type LeafRequest, type SigningCa } from '../issue.ts';
import { isPlatformKeySource, keyMaterial, privateKeyMatchesCertificate } from '../keys.ts';
import { issueInWorkers } from '../pool.ts';
import { canonicalIp } from '../names.ts';
import { KIND_FILES, PKI_PATHS, servicePath, type PkiSnapshot } from '../store.ts';
import type { CertAction, CertKind, InventoryEntry, KeySource, KeyType } from '../types.ts';
import { cachedCertificate, sha256, type VerifiedEntry } from '../verified.ts';
import type { RandomSource } from '../../random.ts';
import { day, iso, type CaOutcome } from './cas.ts';

/** Share of a certificate's lifetime after which it is renewed (the seed: "renewed at 70% lifetime"). */
export const RENEW_AT = 0.7;
/** How many certificates are issued at once (RSA key generation runs on libuv's thread pool). */
const ISSUE_CONCURRENCY = 8;

/** A forced outcome for one certificate: rotate renews, revoke reissues. */
export interface Forced {
  /** The outcome to report. */
  readonly action: 'renew' | 'reissue';
  /** Why, as shown in the plan. */
  readonly reason: string;
}

export const keyOf = (service: string, kind: CertKind): string => `${service}/${kind}`;
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** What is on disk for one service certificate. */
interface ExistingLeaf {
  readonly cert: ParsedCertificate | undefined;
  readonly keyText: string | undefined;
  /** Why the files cannot be reused as they are, regardless of content. */
  readonly fileProblems: readonly string[];
  /** Whether anything (certificate or key) exists. */
  readonly present: boolean;
  /** SHA-256 of the issuer certificate whose signature on this certificate is already known good (cache). */
  readonly signedBy?: string;
  /** The cache entry the facts came from (both files as when it was made). */
  readonly cached?: VerifiedEntry;
}

export function readExisting(snapshot: PkiSnapshot, service: string, kind: CertKind, verified: ReadonlyMap<string, VerifiedEntry>): ExistingLeaf {
  const names = KIND_FILES[kind];
  const c = snapshot.files.get(servicePath(service, names.cert));
  const k = snapshot.files.get(servicePath(service, names.key));
  // Both files exactly as when their facts were established: the key was read and matched then.
  const cached = c?.text !== undefined && k?.text !== undefined ? verified.get(keyOf(service, kind)) : undefined;
  if (cached && c?.text !== undefined && k?.text !== undefined && cached.cert === sha256(c.text) && cached.key === sha256(k.text)) {
    return { cert: cachedCertificate(cached, c.text), keyText: k.text, fileProblems: [], present: true, signedBy: cached.issuer, cached };
  }
  const problems: string[] = [];
  let cert: ParsedCertificate | undefined;
  if (!c) problems.push(`${names.cert} is missing`);
  else if (c.text === undefined) problems.push(`${names.cert} cannot be read (${c.error ?? 'unreadable'})`);
  else {
    try {
      cert = parseCertificate(c.text);
    } catch {
      problems.push(`${names.cert} cannot be parsed`);
    }
  }
  if (!k) problems.push(`${names.key} is missing`);
  else if (k.text === undefined) problems.push(`${names.key} cannot be read (${k.error ?? 'unreadable'})`);
  else if (cert) {
    try {
      if (!privateKeyMatchesCertificate(k.text, cert)) problems.push(`${names.key} does not match ${names.cert}`);
    } catch {
      problems.push(`${names.key} cannot be parsed`);
    }
  }
  return { cert, keyText: k?.text, fileProblems: problems, present: c !== undefined || k !== undefined };
}

function setDiff(label: string, have: readonly string[], want: readonly string[]): string | undefined {
  // The common case, nothing changed and in the same order, without building sets.
  if (have.length === want.length && have.every((x, i) => x === want[i])) return undefined;
  const h = new Set(have);
  const w = new Set(want);
  const added = [...w].filter((x) => !h.has(x)).sort();
  const removed = [...h].filter((x) => !w.has(x)).sort();
  if (added.length === 0 && removed.length === 0) return undefined;
  return `${label} changed: ${[...added.map((x) => `+${x}`), ...removed.map((x) => `-${x}`)].join(' ')}`;
}

/** The key type of a certificate's public key, or undefined for anything podmesh does not issue. */
export function certKeyType(cert: ParsedCertificate): KeyType | undefined {
  return cert.keyType;
}

/** Whole days between notBefore and notAfter. */
export function lifetimeDays(cert: ParsedCertificate): number {
  return Math.round((cert.notAfter.getTime() - cert.notBefore.getTime()) / DAY);
}

/** When a certificate is due for renewal: notBefore + 70% of its lifetime. */
export function renewAt(cert: { readonly notBefore: Date; readonly notAfter: Date }): Date {
  const nb = cert.notBefore.getTime();
  return new Date(nb + RENEW_AT * (cert.notAfter.getTime() - nb));
}

export interface Decision {
  readonly action: CertAction;
  readonly reason: string;
  /** Kept because the external CA signed it (see external.ts); its files stay exactly as imported. */
  readonly external?: boolean;
  /** A warning to report with the result. */
  readonly warning?: string;
}

export function decide(
  req: LeafRequest,
  existing: ExistingLeaf,
  issuer: CaOutcome,
  revoked: ReadonlyMap<string, InventoryEntry>,
  forced: Forced | undefined,
  now: Date,
  external: ExternalCa | undefined,
): Decision {
  const { cert } = existing;
  if (!existing.present) return { action: 'create', reason: 'no certificate yet' };
  if (!cert) return { action: 'reissue', reason: existing.fileProblems.join('; ') };
  const reissue: string[] = [...existing.fileProblems];
  if (forced?.action === 'reissue') reissue.push(forced.reason);
  const wasRevoked = revoked.get(cert.serial);
  if (wasRevoked && forced?.action !== 'reissue') reissue.push(`serial was revoked on ${wasRevoked.revokedAt ?? '?'} but is still in place`);
  // The cache may vouch for the signature (same certificate and issuer files as last verified).
  const signedLocally = issuer.ca !== null && issuer.ca !== undefined && (existing.signedBy === caHash(issuer.ca) || isSignedBy(cert, issuer.ca));
  const ext = external !== undefined && !signedLocally && external.signed(cert);
  if (ext) {
    // Signed by the imported external CA: no local issuer check.
  } else if (!issuer.ca) reissue.push(`issuer changed: a new ${issuer.plan.ca === 'root' ? 'root CA' : 'client CA'} is created`);
  else if (!signedLocally) reissue.push(`issuer changed: not signed by the current ${issuer.plan.ca === 'root' ? 'root CA' : 'client CA'}`);
  if (cert.commonName !== req.commonName) reissue.push(`CN changed: ${cert.commonName} → ${req.commonName}`);
  const dns = setDiff('SAN DNS', cert.dnsNames.map((d) => d.toLowerCase()), sanDnsNames(req).map((d) => d.toLowerCase()));
  if (dns) reissue.push(dns);
  const ips = setDiff('SAN IPs', cert.ipAddresses, req.ipAddresses.map(canonicalIp));
  if (ips) reissue.push(ips);
  const uris = setDiff('SAN URI', cert.uris, sanUris(req));
  if (uris) reissue.push(uris);
  // An external CA puts its own AIA (or none) into what it signs.
  const ocsp = ext ? undefined : setDiff('OCSP URL', cert.ocspUrls, aiaOcspUrls(req));
  if (ocsp) reissue.push(ocsp);
  const kt = certKeyType(cert);
  if (kt !== req.keyType) reissue.push(`key type changed: ${kt ?? 'unsupported'} → ${req.keyType}`);
  // An external CA sets the subject's other attributes by its own policy (Vault: the role's organization).
  if (!ext && (cert.organization ?? '') !== (req.organization ?? '')) {
    reissue.push(`organization changed: ${cert.organization ?? '(none)'} → ${req.organization ?? '(none)'}`);
  }
  if (reissue.length > 0) return { action: 'reissue', reason: reissue.join('; ') };

  if (forced?.action === 'renew') return { action: 'renew', reason: forced.reason };
  const t = now.getTime();
  if (ext && t < cert.notAfter.getTime()) {
    // The external CA renews (podmesh certs csr / import); its lifetime is its own business.
    const due = renewAt(cert);
    const late = t >= due.getTime();
    return {
      action: 'keep',
      external: true,
      reason: `signed by the external CA, valid until ${day(cert.notAfter)}`,
      ...(late ? { warning: `${req.service}/${req.kind}: signed by the external CA and ${RENEW_AT * 100}% of its lifetime passed on ${day(due)}: run podmesh certs csr, have the CA sign it, then podmesh certs import.` } : {}),
    };
  }
  if (t >= cert.notAfter.getTime()) return { action: 'renew', reason: `expired on ${iso(cert.notAfter)}` };
  if (t < cert.notBefore.getTime()) return { action: 'renew', reason: `not valid before ${iso(cert.notBefore)}` };
  const life = lifetimeDays(cert);
  if (life !== req.lifetimeDays) return { action: 'renew', reason: `lifetime changed: ${life} → ${req.lifetimeDays} days` };
  const due = renewAt(cert);
  if (t >= due.getTime()) return { action: 'renew', reason: `${RENEW_AT * 100}% of its lifetime passed on ${iso(floorToSecond(due))}` };
  return { action: 'keep', reason: `valid until ${day(cert.notAfter)}, renews after ${day(due)}` };
}

const caHashes = new WeakMap<SigningCa, string>();
/** SHA-256 of a CA's certificate PEM: what cached signature facts are keyed by. */
export function caHash(ca: SigningCa): string {
  let h = caHashes.get(ca);
  if (h === undefined) {
    h = sha256(ca.cert.pem);
    caHashes.set(ca, h);
  }
  return h;
}

/** One certificate's request, what is in place and the decision. */
export interface Decided {
  readonly req: LeafRequest;
  readonly existing: ExistingLeaf;
  readonly decision: Decision;
}

/** What deciding the leaves needs. */
export interface LeafContext {
  readonly snapshot: PkiSnapshot;
  readonly verified: ReadonlyMap<string, VerifiedEntry>;
  readonly caFor: (kind: CertKind) => CaOutcome;
  readonly revoked: ReadonlyMap<string, InventoryEntry>;
  readonly forced: ReadonlyMap<string, Forced>;
  readonly now: Date;
  readonly external: ExternalCa | undefined;
}

/** Decides every request (sorted by service, then kind); warnings about external-CA certificates go to `warnings`. */
export function decideLeaves(requests: readonly LeafRequest[], c: LeafContext, warnings: string[]): Decided[] {
  const sorted = [...requests].sort((a, b) => cmp(a.service, b.service) || cmp(a.kind, b.kind));
  return sorted.map((req) => {
    const existing = readExisting(c.snapshot, req.service, req.kind, c.verified);
    const decision = decide(req, existing, c.caFor(req.kind), c.revoked, c.forced.get(keyOf(req.service, req.kind)), c.now, c.external);
    if (decision.warning) warnings.push(decision.warning);
    if (c.external && decision.action !== 'keep') {
      warnings.push(`${req.service}/${req.kind}: issued by the local CA (${decision.reason}) while services trust only the external CA in ${PKI_PATHS.externalCa}: run podmesh certs csr and podmesh certs import for it.`);
    }
    return { req, existing, decision };
  });
}

/**
 * How leaves are issued: `auto` uses worker threads ({@link PARALLEL_THRESHOLD} new leaves or more,
 * default key source, more than one core), `serial` the main thread, `parallel` workers whenever
 * the key source allows (tests force both to compare them).
 */
export type IssueMode = 'auto' | 'serial' | 'parallel';

/**
 * New leaves from which worker threads pay. A worker first loads the encoder (@peculiar/asn1-x509
 * and asn1js) and warms up: 0.5 s or more on this 2-core machine. Since the encoder reuses what
 * repeats (tbs.ts), a leaf costs little more than its key and signature (0.3–1 ms here), so two
 * workers break even only near 2 × start-up / per-leaf cost, about 3,000 leaves; measured under
 * load, they did not pay at 2,000 (README: Parallel issuance).
 */
export const PARALLEL_THRESHOLD = 4000;

/** What issuing the leaves needs. */
export interface IssueSources {
  readonly keys: KeySource;
  readonly random: RandomSource;
  readonly now: Date;
  readonly dryRun: boolean;
  /** @default 'auto' */
  readonly mode?: IssueMode;
  /** Worker threads for a parallel run. @default os.availableParallelism() */
  readonly workers?: number;
}

/**
 * Issues every certificate not kept (none in a dry run), in request order; undefined for the rest.
 * Everything but keys and signatures is decided here first, in request order (serials drawn from
 * `random` one after the other), so the result is the same on one thread or many.
 */
export async function issueLeaves(
  decided: readonly Decided[],
  caFor: (kind: CertKind) => CaOutcome,
  src: IssueSources,
): Promise<(IssuedCert | undefined)[]> {
  if (src.dryRun) return decided.map(() => undefined);
  const specs = decided.map(({ req, decision }) => (decision.action === 'keep' ? undefined : leafSpec(req, src.now, randomSerial(src.random))));
  const todo = specs.flatMap((spec, i) => (spec ? [{ index: i, spec, ca: caFor((decided[i] as Decided).req.kind).ca as SigningCa }] : []));
  const out: (IssuedCert | undefined)[] = decided.map(() => undefined);
  const mode = src.mode ?? 'auto';
  const workers = src.workers ?? availableParallelism();
  const parallel =
    isPlatformKeySource(src.keys) &&
    todo.length > 0 &&
    (mode === 'parallel' || (mode === 'auto' && workers > 1 && todo.length >= PARALLEL_THRESHOLD));
  if (parallel) {
    const cas = [...new Set(todo.map((t) => t.ca))];
    const issuers = cas.map((ca) => ({ spec: ca.spec, keyDer: new Uint8Array(ca.key.export({ type: 'pkcs8', format: 'der' })) }));
    const results = await issueInWorkers(todo.map((t) => ({ spec: t.spec, issuer: cas.indexOf(t.ca) })), issuers, { workers });
    todo.forEach((t, k) => {
      const r = results[k] as { certPem: string; keyPem: string };
      out[t.index] = { cert: factsOf(t.spec, r.certPem), ...r };
    });
    return out;
  }
  // The main thread: keys requested in request order (an injected source sees the same sequence
  // as before), ISSUE_CONCURRENCY in flight (native RSA keys are generated on libuv's thread pool;
  // P-256 keys, cheaper than the round trip, right here).
  const issued = await mapLimit(todo, ISSUE_CONCURRENCY, async (t) => issueWith(t.spec, await keyMaterial(src.keys, t.spec.keyType), { spec: t.ca.spec, key: t.ca.key }));
  todo.forEach((t, k) => (out[t.index] = issued[k]));
  return out;
}
