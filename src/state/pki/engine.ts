// The decision core under reconcile, revoke and rotate: check the CAs, decide each certificate, update inventory and CRLs, then write.
import { join } from 'node:path';
import { writeAtomic } from '../../io/atomic.ts';
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import { isSignedBy, parseCertificate, type ParsedCertificate } from './certificate.ts';
import { buildCrl, isCrlSignedBy, parseCrl, splitCrlPem, type ParsedCrl } from './crl.ts';
import { EMPTY_INVENTORY, issuerOf, parseInventory, serializeInventory } from './inventory.ts';
import {
  createClientCa,
  createRootCa,
  DAY,
  floorToSecond,
  issueLeaf,
  sanDnsNames,
  signingCa,
  validityAt,
  type IssuedCert,
  type LeafRequest,
  type SigningCa,
} from './issue.ts';
import { loadExternalCa, type ExternalCa } from './external-ca.ts';
import { keyMatchesCertificate, keyTypeOf, parsePrivateKeyPem, privateKeyMatchesCertificate } from './keys.ts';
import { canonicalIp } from './names.ts';
import {
  applyChanges,
  KIND_FILES,
  MODE,
  PKI_PATHS,
  planChanges,
  SERVICE_CA_FILE,
  SERVICE_CRL_FILE,
  servicePath,
  type DesiredFile,
  type PkiSnapshot,
} from './store.ts';
import type {
  AuthoritySpec,
  CaPlan,
  CertAction,
  CertKind,
  CertPlan,
  Inventory,
  InventoryEntry,
  Issuer,
  KeySource,
  KeyType,
  PkiResult,
  RevocationReason,
} from './types.ts';
import {
  cachedCertificate,
  parseVerified,
  serializeVerified,
  sha256,
  VERIFIED_FILE,
  VERIFIED_MODE,
  verifiedEntry,
  type VerifiedEntry,
} from './verified.ts';

/** Share of a certificate's lifetime after which it is renewed (the seed: "renewed at 70% lifetime"). */
export const RENEW_AT = 0.7;
/** How many certificates are issued at once (key generation runs on libuv's thread pool). */
const ISSUE_CONCURRENCY = 8;

/** A forced outcome for one certificate: rotate renews, revoke reissues. */
export interface Forced {
  /** The outcome to report. */
  readonly action: 'renew' | 'reissue';
  /** Why, as shown in the plan. */
  readonly reason: string;
}

/** A serial to mark revoked before deciding. */
export interface Revocation {
  /** Service folder of the certificate. */
  readonly service: string;
  /** Which of its certificates. */
  readonly kind: CertKind;
  /** Its current serial, lower-case hex. */
  readonly serial: string;
  /** CRL reason code. */
  readonly reason: RevocationReason;
}

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
  /** Decide without writing. */
  readonly dryRun: boolean;
}

const keyOf = (service: string, kind: CertKind): string => `${service}/${kind}`;
const iso = (d: Date): string => d.toISOString().replace('.000Z', 'Z');
const day = (d: Date): string => d.toISOString().slice(0, 10);

// ---------------------------------------------------------------------------------------------
// CAs

interface CaRole {
  readonly role: Issuer;
  readonly label: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly fix: string;
}

const ROOT: CaRole = {
  role: 'root',
  label: 'CA',
  certPath: PKI_PATHS.rootCert,
  keyPath: PKI_PATHS.rootKey,
  fix: 'move pki/ away to create a new CA (every certificate will be reissued)',
};
const CLIENT_CA: CaRole = {
  role: 'client-ca',
  label: 'client CA',
  certPath: PKI_PATHS.clientCaCert,
  keyPath: PKI_PATHS.clientCaKey,
  fix: 'move pki/client-ca.crt and pki/client-ca.key away to create a new client CA under the current root (every client certificate will be reissued)',
};

const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const fileName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

interface LoadedCa {
  readonly ca: SigningCa;
  readonly certText: string;
  readonly keyText: string;
}

/** Loads one CA pair: undefined when both files are absent; issues for anything else that is wrong. */
function loadCa(snapshot: PkiSnapshot, r: CaRole, now: Date, issues: Issue[]): LoadedCa | undefined | 'error' {
  const at = (p: string): string => join(snapshot.stateDir, p);
  const c = snapshot.files.get(r.certPath);
  const k = snapshot.files.get(r.keyPath);
  if (!c && !k) return undefined;
  const fail = (path: string, message: string): 'error' => {
    issues.push({ path: at(path), message });
    return 'error';
  };
  if (!c || !k) {
    const [missing, present] = c ? [r.keyPath, r.certPath] : [r.certPath, r.keyPath];
    return fail(missing, `the ${r.label} ${c ? 'private key' : 'certificate'} is missing while ${fileName(present)} exists. Restore ${fileName(missing)} from backup, or ${r.fix}.`);
  }
  if (c.text === undefined) return fail(r.certPath, `cannot read the ${r.label} certificate (${c.error ?? 'unreadable'}). Give the owner read access, or restore it from backup.`);
  if (k.text === undefined) return fail(r.keyPath, `cannot read the ${r.label} private key (${k.error ?? 'unreadable'}). Give the owner read access, or restore it from backup.`);
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(c.text);
  } catch {
    return fail(r.certPath, `cannot parse the ${r.label} certificate (not PEM X.509). Restore it from backup, or ${r.fix}.`);
  }
  let key;
  try {
    key = parsePrivateKeyPem(k.text);
  } catch {
    return fail(r.keyPath, `cannot parse the ${r.label} private key (not PEM PKCS#8). Restore it from backup, or ${r.fix}.`);
  }
  if (!keyTypeOf(key)) {
    return fail(r.keyPath, `the ${r.label} key is ${key.asymmetricKeyType ?? 'of an unknown type'}${key.asymmetricKeyDetails?.modulusLength ? ` ${key.asymmetricKeyDetails.modulusLength}` : ''}; podmesh signs with ECDSA P-256 or RSA 2048 keys. Restore the right key, or ${r.fix}.`);
  }
  if (!keyMatchesCertificate(key, cert)) {
    return fail(r.keyPath, `does not match ${fileName(r.certPath)} (different public key). Restore both files from the same backup, or ${r.fix}.`);
  }
  if (!cert.isCa) return fail(r.certPath, `is not a CA certificate (basicConstraints CA:TRUE is missing). Restore the ${r.label} certificate, or ${r.fix}.`);
  if (now.getTime() >= cert.notAfter.getTime()) {
    return fail(r.certPath, `the ${r.label} expired on ${iso(cert.notAfter)} (now is ${iso(now)}). ${capital(r.fix)}.`);
  }
  return { ca: signingCa(cert, c.text, key), certText: c.text, keyText: k.text };
}

/** A CA after the run: kept, created, or (dry run) to be created. */
interface CaOutcome {
  readonly plan: CaPlan;
  /** Undefined only for a CA a dry run would create. */
  readonly ca: SigningCa | undefined;
  /** Files to hold: existing text for a kept CA (never rewritten), new PEM for a created one, null in a dry run. */
  readonly certFile: string | null;
  readonly keyFile: string | null;
}

function describeName(cert: ParsedCertificate): string {
  return cert.organization ? `O=${cert.organization}, CN=${cert.commonName}` : `CN=${cert.commonName}`;
}

function caWarnings(r: CaRole, ca: SigningCa, cn: string, spec: AuthoritySpec): string[] {
  const out: string[] = [];
  const want = spec.organization ? `O=${spec.organization}, CN=${cn}` : `CN=${cn}`;
  const have = describeName(ca.cert);
  const never = `An existing ${r.label} is never replaced: ${r.fix}.`;
  if (have !== want) out.push(`${r.certPath}: kept the existing ${r.label} "${have}"; the stack asks for "${want}". ${never}`);
  if (ca.keyType !== spec.keyType) out.push(`${r.certPath}: kept the existing ${r.label} key (${ca.keyType}); the stack asks for ${spec.keyType}. ${never}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Leaves

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
}

function readExisting(snapshot: PkiSnapshot, service: string, kind: CertKind, verified: ReadonlyMap<string, VerifiedEntry>): ExistingLeaf {
  const names = KIND_FILES[kind];
  const c = snapshot.files.get(servicePath(service, names.cert));
  const k = snapshot.files.get(servicePath(service, names.key));
  // Both files exactly as when their facts were established: the key was read and matched then.
  const cached = c?.text !== undefined && k?.text !== undefined ? verified.get(keyOf(service, kind)) : undefined;
  if (cached && c?.text !== undefined && k?.text !== undefined && cached.cert === sha256(c.text) && cached.key === sha256(k.text)) {
    return { cert: cachedCertificate(cached, c.text), keyText: k.text, fileProblems: [], present: true, signedBy: cached.issuer };
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

interface Decision {
  readonly action: CertAction;
  readonly reason: string;
  /** Kept because the external CA signed it (see external.ts); its files stay exactly as imported. */
  readonly external?: boolean;
  /** A warning to report with the result. */
  readonly warning?: string;
}

function decide(
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
function caHash(ca: SigningCa): string {
  let h = caHashes.get(ca);
  if (h === undefined) {
    h = sha256(ca.cert.pem);
    caHashes.set(ca, h);
  }
  return h;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// ---------------------------------------------------------------------------------------------
// CRLs

interface CrlOutcome {
  /** The CRL to keep or the new one; null when a dry run would sign it. */
  readonly pem: string | null;
  /** Why it is (re)signed; undefined when kept. */
  readonly reason: string | undefined;
}

async function decideCrl(
  existing: ParsedCrl | undefined,
  ca: CaOutcome,
  revokedSerials: readonly string[],
  now: Date,
): Promise<string | undefined> {
  const name = ca.plan.ca === 'root' ? 'root CRL' : 'client CA CRL';
  if (ca.plan.action === 'create') return `${name}: new CA`;
  if (!existing) return `${name}: missing`;
  if (!ca.ca || !(await isCrlSignedBy(existing, ca.ca))) return `${name}: not signed by the current ${ca.plan.ca === 'root' ? 'root CA' : 'client CA'}`;
  if (existing.serials.join(',') !== revokedSerials.join(',')) return `${name}: revoked set changed`;
  if (!existing.nextUpdate) return `${name}: has no nextUpdate`;
  const half = existing.thisUpdate.getTime() + (existing.nextUpdate.getTime() - existing.thisUpdate.getTime()) / 2;
  if (now.getTime() >= half) return `${name}: past half its validity (signed ${iso(existing.thisUpdate)})`;
  return undefined;
}

function parseCrls(text: string | undefined): (ParsedCrl | undefined)[] {
  if (text === undefined) return [];
  return splitCrlPem(text).map((pem) => {
    try {
      return parseCrl(pem);
    } catch {
      return undefined;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The run

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Decides, issues and (unless dry run) writes. Throws a PodmeshError, having written nothing, when the
 * CAs or the inventory are unusable.
 */
export async function runEngine(input: EngineInput): Promise<PkiResult> {
  const { snapshot, now, keys, dryRun } = input;
  const at = (p: string): string => join(snapshot.stateDir, p);
  const issues: Issue[] = [];
  const warnings: string[] = [];

  // 1. CAs: load, or plan to create; every problem is reported before anything is written.
  const rootLoad = loadCa(snapshot, ROOT, now, issues);
  const clientLoad = loadCa(snapshot, CLIENT_CA, now, issues);
  if (rootLoad === undefined && !input.authority) {
    issues.push({ path: at(ROOT.certPath), message: 'there is no CA yet. Run podmesh synth first to create it.' });
  }
  if (clientLoad === undefined && !input.authority && rootLoad !== undefined) {
    issues.push({ path: at(CLIENT_CA.certPath), message: 'there is no client CA yet. Run podmesh synth first to create it.' });
  }
  if (clientLoad && clientLoad !== 'error' && rootLoad !== 'error') {
    if (rootLoad === undefined) {
      issues.push({
        path: at(CLIENT_CA.certPath),
        message: `was issued by a root CA that is gone (pki/ca.crt and pki/ca.key are absent). Restore ca.crt and ca.key from backup, or move pki/ away to create a new CA (every certificate will be reissued).`,
      });
    } else if (!isSignedBy(clientLoad.ca.cert, rootLoad.ca)) {
      issues.push({
        path: at(CLIENT_CA.certPath),
        message: `was not issued by the root CA in pki/ca.crt. Restore the client CA that belongs to this root, or ${CLIENT_CA.fix}.`,
      });
    }
  }

  // 2. Inventory.
  let inventory: Inventory = EMPTY_INVENTORY;
  const invFile = snapshot.files.get(PKI_PATHS.inventory);
  if (invFile) {
    const parsed = invFile.text === undefined ? `cannot be read (${invFile.error ?? 'unreadable'})` : parseInventory(invFile.text);
    if (typeof parsed === 'string') {
      issues.push({
        path: at(PKI_PATHS.inventory),
        message: `the certificate inventory is unusable: ${parsed}. Restore it from backup; deleting it rebuilds it from the certificates in place but forgets every revocation.`,
      });
    } else inventory = parsed;
  } else if (snapshot.services.length > 0) {
    warnings.push(`${PKI_PATHS.inventory} was missing: rebuilt from the certificates in place; earlier revocations are no longer known.`);
  }
  const external = loadExternalCa(snapshot, issues);
  if (issues.length > 0) throw new PodmeshError(issues);

  // 3. Create missing CAs (a dry run only plans them).
  const makeCa = async (r: CaRole, load: LoadedCa | undefined, create: () => Promise<IssuedCert>, lifetime: number): Promise<CaOutcome> => {
    if (load) {
      return {
        plan: { ca: r.role, action: 'keep', reason: `existing ${r.label}, valid until ${day(load.ca.cert.notAfter)}`, serial: load.ca.cert.serial, notAfter: load.ca.cert.notAfter },
        ca: load.ca,
        certFile: load.certText,
        keyFile: load.keyText,
      };
    }
    const reason = `no ${r.label} yet`;
    if (dryRun) {
      return { plan: { ca: r.role, action: 'create', reason, serial: '', notAfter: validityAt(now, lifetime).notAfter }, ca: undefined, certFile: null, keyFile: null };
    }
    const issued = await create();
    return {
      plan: { ca: r.role, action: 'create', reason, serial: issued.cert.serial, notAfter: issued.cert.notAfter },
      ca: signingCa(parseCertificate(issued.certPem), issued.certPem, parsePrivateKeyPem(issued.keyPem)),
      certFile: issued.certPem,
      keyFile: issued.keyPem,
    };
  };
  const spec = input.authority;
  const root = await makeCa(ROOT, rootLoad as LoadedCa | undefined, () => createRootCa(spec as AuthoritySpec, keys, now), spec?.rootLifetimeDays ?? 0);
  const clientCa = await makeCa(
    CLIENT_CA,
    clientLoad as LoadedCa | undefined,
    () => createClientCa(spec as AuthoritySpec, root.ca as SigningCa, keys, now),
    spec?.clientCaLifetimeDays ?? 0,
  );
  if (spec) {
    if (root.plan.action === 'keep' && root.ca) warnings.push(...caWarnings(ROOT, root.ca, spec.rootCommonName, spec));
    if (clientCa.plan.action === 'keep' && clientCa.ca) warnings.push(...caWarnings(CLIENT_CA, clientCa.ca, spec.clientCaCommonName, spec));
  }
  const caFor = (kind: CertKind): CaOutcome => (issuerOf(kind) === 'root' ? root : clientCa);

  // Facts established by earlier runs, used only for files whose hashes still match.
  const verified = parseVerified(snapshot.verified?.text);

  // 4. Inventory changes that come before decisions (revocations).
  const entryOf = (service: string, kind: CertKind, cert: IssuedCert['cert'], status: InventoryEntry['status']): InventoryEntry => ({
    service,
    kind,
    serial: cert.serial,
    issuer: issuerOf(kind),
    notBefore: iso(cert.notBefore),
    notAfter: iso(cert.notAfter),
    status,
  });
  const entries = new Map<string, InventoryEntry>(inventory.certificates.map((e) => [e.serial, e]));
  for (const r of input.revocations) {
    // A serial the inventory lost (rebuilt inventory) is recorded from the certificate in place.
    const cert = readExisting(snapshot, r.service, r.kind, verified).cert;
    const e = entries.get(r.serial) ?? (cert && cert.serial === r.serial ? entryOf(r.service, r.kind, cert, 'active') : undefined);
    if (e) entries.set(r.serial, { ...e, status: 'revoked', revokedAt: iso(now), reason: r.reason });
  }
  const revoked = new Map([...entries.values()].filter((e) => e.status === 'revoked').map((e) => [e.serial, e]));

  // 5. Decide and issue leaves.
  const requests = [...input.requests].sort((a, b) => cmp(a.service, b.service) || cmp(a.kind, b.kind));
  const decided = requests.map((req) => {
    const existing = readExisting(snapshot, req.service, req.kind, verified);
    const decision = decide(req, existing, caFor(req.kind), revoked, input.forced.get(keyOf(req.service, req.kind)), now, external);
    if (decision.warning) warnings.push(decision.warning);
    if (external && decision.action !== 'keep') {
      warnings.push(`${req.service}/${req.kind}: issued by the local CA (${decision.reason}) while services trust only the external CA in ${PKI_PATHS.externalCa}: run podmesh certs csr and podmesh certs import for it.`);
    }
    return { req, existing, decision };
  });
  const issued = dryRun
    ? decided.map(() => undefined)
    : await mapLimit(decided, ISSUE_CONCURRENCY, async ({ req, decision }) =>
        decision.action === 'keep' ? undefined : issueLeaf(req, caFor(req.kind).ca as SigningCa, keys, now),
      );

  // 6. Inventory: new serials active, replaced ones superseded, revoked ones stay revoked.
  const current = new Map<string, string>(); // service/kind → serial in place after the run
  decided.forEach(({ req, existing, decision }, i) => {
    const old = existing.cert;
    const fresh = issued[i];
    if (decision.action === 'keep' && old) {
      const e = entries.get(old.serial);
      // decide() never keeps a revoked serial, so a kept one is active (this also repairs a stale status).
      entries.set(old.serial, e ? { ...e, status: 'active' } : entryOf(req.service, req.kind, old, 'active'));
      current.set(keyOf(req.service, req.kind), old.serial);
      return;
    }
    if (old && !entries.has(old.serial)) entries.set(old.serial, entryOf(req.service, req.kind, old, 'superseded'));
    if (fresh) {
      entries.set(fresh.cert.serial, entryOf(req.service, req.kind, fresh.cert, 'active'));
      current.set(keyOf(req.service, req.kind), fresh.cert.serial);
    }
  });
  const inScope = new Set(requests.map((r) => keyOf(r.service, r.kind)));
  for (const [serial, e] of entries) {
    if (e.status !== 'active') continue;
    const k = keyOf(e.service, e.kind);
    const stale = inScope.has(k) ? current.get(k) !== serial && !(dryRun && !current.has(k)) : input.prune;
    if (stale) entries.set(serial, { ...e, status: 'superseded' });
  }

  // 7. CRLs: one per issuer, root first; re-signed only when missing, changed or half-way to nextUpdate.
  const crlFile = snapshot.files.get(PKI_PATHS.crl);
  const existingCrls = parseCrls(crlFile?.text);
  const crlNumbers = { ...inventory.crlNumbers };
  const crlOutcome = async (ca: CaOutcome, index: number): Promise<CrlOutcome> => {
    const role = ca.plan.ca;
    const revokedHere = [...entries.values()].filter((e) => e.status === 'revoked' && e.issuer === role);
    const serials = revokedHere.map((e) => e.serial).sort((a, b) => cmp(a.padStart(64, '0'), b.padStart(64, '0')));
    const existing = existingCrls[index];
    const reason = await decideCrl(existing, ca, serials, now);
    if (!reason) return { pem: (existing as ParsedCrl).pem, reason };
    const number = Math.max(crlNumbers[role], existing?.number ?? 0) + 1;
    crlNumbers[role] = number;
    if (!ca.ca) return { pem: null, reason };
    const pem = await buildCrl(
      {
        entries: revokedHere.map((e) => ({ serial: e.serial, revokedAt: new Date(e.revokedAt ?? iso(now)), reason: e.reason ?? 'unspecified' })),
        number,
        thisUpdate: floorToSecond(now),
      },
      ca.ca,
    );
    return { pem, reason };
  };
  // In order: the client CA's CRL number must not be taken before the root's.
  const crls = [await crlOutcome(root, 0), await crlOutcome(clientCa, 1)];
  const crlReasons = crls.map((c) => c.reason).filter((r): r is string => r !== undefined);

  // 8. The desired files.
  const files = new Map<string, DesiredFile>();
  const put = (path: string, content: string | null, mode: number): void => void files.set(path, { content, mode });
  put(PKI_PATHS.rootKey, root.keyFile, MODE.key);
  put(PKI_PATHS.rootCert, root.certFile, MODE.file);
  put(PKI_PATHS.clientCaKey, clientCa.keyFile, MODE.key);
  put(PKI_PATHS.clientCaCert, clientCa.certFile, MODE.file);
  const anyIssued = decided.some((d) => d.decision.action !== 'keep');
  const finalInventory: Inventory = { version: 1, crlNumbers, certificates: [...entries.values()] };
  put(PKI_PATHS.inventory, dryRun && anyIssued ? null : serializeInventory(finalInventory), MODE.file);
  const crlPem = crls.some((c) => c.pem === null) ? null : crls.map((c) => c.pem).join('');
  put(PKI_PATHS.crl, crlPem, MODE.file);
  const rootPem = root.ca ? root.ca.cert.pem : null;
  const clientCaPem = clientCa.ca ? clientCa.ca.cert.pem : null;
  // The cache after this run: reconcile keeps only the services it wants, revoke and rotate the rest too.
  const nextVerified = new Map(input.prune ? [] : verified);
  decided.forEach(({ req, existing, decision }, i) => {
    const names = KIND_FILES[req.kind];
    const fresh = issued[i];
    put(servicePath(req.service, SERVICE_CA_FILE), external ? external.bundle : rootPem, MODE.file);
    // client.crt carries its chain (leaf, then the client CA) so that servers trusting only the root accept it.
    const chain = req.kind === 'client' ? clientCaPem : '';
    let certPem: string | null = null;
    let keyPem: string | null = null;
    if (decision.external) {
      certPem = snapshot.files.get(servicePath(req.service, names.cert))?.text ?? null;
      keyPem = existing.keyText ?? null;
    } else if (decision.action === 'keep' && existing.cert) {
      certPem = existing.cert.pem;
      keyPem = existing.keyText ?? null;
    } else if (fresh) {
      certPem = fresh.certPem;
      keyPem = fresh.keyPem;
    }
    const certFile = certPem === null || chain === null ? null : decision.external ? certPem : certPem + chain;
    put(servicePath(req.service, names.cert), certFile, MODE.file);
    put(servicePath(req.service, names.key), keyPem, MODE.key);
    // A kept certificate passed decide(): its key matched and its issuer's signature checked out. A new
    // one was just signed by the issuer for this key; it is read back natively for the exact facts.
    const issuerCa = caFor(req.kind).ca;
    const facts = decision.action === 'keep' ? existing.cert : fresh ? parseCertificate(fresh.certPem) : undefined;
    // Certificates of an external CA are never cached as signed by the local issuer.
    const entry = !decision.external && facts && certFile !== null && keyPem !== null && issuerCa ? verifiedEntry(facts, certFile, keyPem, caHash(issuerCa)) : undefined;
    if (entry) nextVerified.set(keyOf(req.service, req.kind), entry);
    else nextVerified.delete(keyOf(req.service, req.kind));
  });
  // Every service folder carries the CRLs (MTLS_CRL_FILE), also those outside a scoped run
  // (revoke, rotate --service): a revocation reaches every server with the next deploy.
  const crlHolders = new Set([...requests.map((r) => r.service), ...(input.prune ? [] : snapshot.services)]);
  for (const service of crlHolders) put(servicePath(service, SERVICE_CRL_FILE), crlPem, MODE.file);
  const wantedServices = new Set(requests.map((r) => r.service));
  const plan = planChanges(snapshot, { files, prune: input.prune ? wantedServices : undefined });
  if (!dryRun) {
    await applyChanges(snapshot, plan);
    // After the files it describes: a run interrupted in between leaves hashes that no longer match.
    const text = serializeVerified(nextVerified);
    if (snapshot.verified?.text !== text || snapshot.verified.mode !== VERIFIED_MODE) {
      // Only a cache: a state folder it cannot be written to costs the next run time, not correctness.
      await writeAtomic(join(snapshot.stateDir, VERIFIED_FILE), text, VERIFIED_MODE).catch(() => undefined);
    }
  }

  const certificates: CertPlan[] = decided.map(({ req, existing, decision }, i) => {
    const fresh = issued[i];
    const cert = decision.action === 'keep' ? existing.cert : fresh?.cert;
    return {
      service: req.service,
      kind: req.kind,
      action: decision.action,
      reason: decision.reason,
      serial: cert?.serial ?? '',
      notAfter: cert?.notAfter ?? validityAt(now, req.lifetimeDays).notAfter,
    };
  });
  return {
    cas: [root.plan, clientCa.plan],
    certificates,
    removedServices: input.prune ? snapshot.services.filter((s) => !wantedServices.has(s)) : [],
    crl: {
      action: !crlFile ? 'create' : crlReasons.length > 0 ? 'resign' : 'keep',
      reason: crlReasons.length > 0 ? crlReasons.join('; ') : 'unchanged and fresh',
    },
    files: plan.changes,
    warnings,
    dryRun,
  };
}
