// Engine phase: the OCSP responder's part of the state (`pki/ocsp/`): per issuing CA a delegated
// responder certificate (RFC 6960 §4.2.2.2: issued by that CA, id-kp-OCSPSigning, the
// id-pkix-ocsp-nocheck extension, not a CA) with its key, a copy of the issuer certificate, and
// the OpenSSL CA database (`index.txt`) `openssl ocsp -index` answers from, rendered from the
// inventory: every serial issued, V (valid) or R (revoked, with time and reason).
import { isSignedBy, parseCertificate, type ParsedCertificate } from '../certificate.ts';
import { issueWith, randomSerial, tbsSpec } from '../issue.ts';
import { keyMaterial, privateKeyMatchesCertificate } from '../keys.ts';
import { MODE, type DesiredFile, type PkiSnapshot } from '../store.ts';
import type { Inventory, InventoryEntry, Issuer, KeySource } from '../types.ts';
import type { RandomSource } from '../../random.ts';
import { day, type CaOutcome } from './cas.ts';
import { renewAt } from './leaves.ts';
import { OCSP_DIR, OCSP_FILES, OCSP_ISSUERS, ocspPath } from '../ocsp-files.ts';

/** Validity of a responder certificate, in days: short, as a nocheck certificate cannot be revoked; renewed at 70% like the leaves. */
export const RESPONDER_LIFETIME_DAYS = 90;

/** EKU id-kp-OCSPSigning. */
export const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';

/**
 * What a run does with the responder's files: `on` keeps them current (reconcile of a stack with
 * OCSP), `off` leaves whatever is there alone (a stack without OCSP), `keep` (revoke, rotate)
 * keeps the responder certificates and rewrites the index if there is one.
 */
export type OcspMode = 'on' | 'off' | 'keep';

/** What happens to one responder certificate. */
export interface ResponderPlan {
  readonly issuer: Issuer;
  readonly action: 'create' | 'keep' | 'renew' | 'reissue';
  readonly reason: string;
}

/** The subject CN of an issuer's responder certificate. */
export function responderCommonName(ca: ParsedCertificate | undefined, issuer: Issuer): string {
  return `${ca?.commonName ?? issuer} OCSP responder`;
}

/** Why an existing responder certificate cannot stay (undefined when it can), or its renewal reason. */
function judge(certText: string | undefined, keyText: string | undefined, ca: CaOutcome, now: Date): 'keep' | { action: ResponderPlan['action']; reason: string } {
  if (certText === undefined && keyText === undefined) return { action: 'create', reason: 'no responder certificate yet' };
  if (certText === undefined || keyText === undefined) return { action: 'reissue', reason: `the responder ${certText === undefined ? 'certificate' : 'key'} is missing` };
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(certText);
  } catch {
    return { action: 'reissue', reason: 'the responder certificate cannot be parsed' };
  }
  try {
    if (!privateKeyMatchesCertificate(keyText, cert)) return { action: 'reissue', reason: 'the responder key does not match its certificate' };
  } catch {
    return { action: 'reissue', reason: 'the responder key cannot be parsed' };
  }
  if (!ca.ca) return { action: 'reissue', reason: 'issuer changed: a new CA is created' };
  if (!isSignedBy(cert, ca.ca)) return { action: 'reissue', reason: 'issuer changed: not signed by the current CA' };
  if (cert.isCa || !(cert.x509.keyUsage ?? []).includes(OCSP_SIGNING)) return { action: 'reissue', reason: 'not an OCSP signing certificate' };
  if (cert.commonName !== responderCommonName(ca.ca.cert, ca.plan.ca)) return { action: 'reissue', reason: `CN changed: ${cert.commonName}` };
  const t = now.getTime();
  if (t >= cert.notAfter.getTime() || t < cert.notBefore.getTime()) return { action: 'renew', reason: 'outside its validity' };
  const due = renewAt(cert);
  if (t >= due.getTime()) return { action: 'renew', reason: `70% of its lifetime passed on ${day(due)}` };
  return 'keep';
}

/** UTCTime text as the OpenSSL CA database writes it (GeneralizedTime from 2050 on, RFC 5280 §4.1.2.5). */
export function indexTime(d: Date): string {
  const iso = d.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return d.getUTCFullYear() < 2050 ? digits.slice(2) : digits;
}

/** The serial as OpenSSL looks it up (BN_bn2hex: upper case, whole bytes). */
export function indexSerial(hex: string): string {
  const up = hex.toUpperCase();
  return up.length % 2 === 1 ? `0${up}` : up;
}

/** One line of the database: status, expiry, revocation (time and reason), serial, file name (`unknown`), subject. */
function indexLine(e: InventoryEntry): string {
  const subject = `/OU=${e.kind}/CN=${e.service}`;
  const revoked = e.status === 'revoked' && e.revokedAt !== undefined;
  const revocation = revoked ? `${indexTime(new Date(e.revokedAt!))}${e.reason && e.reason !== 'unspecified' ? `,${e.reason}` : ''}` : '';
  return [revoked ? 'R' : 'V', indexTime(new Date(e.notAfter)), revocation, indexSerial(e.serial), 'unknown', subject].join('\t');
}

/**
 * The OpenSSL CA database of an inventory: one line per serial, sorted by serial (the engine holds
 * entries in the order it met them, the inventory file sorts them otherwise: the index must not
 * change with either). Superseded serials stay `V` (superseded is not revoked: they are good until
 * they expire); revoked ones are `R` with their revocation time and reason (left out when unspecified).
 */
export function renderIndex(inventory: Pick<Inventory, 'certificates'>): string {
  const key = (e: InventoryEntry): string => indexSerial(e.serial).padStart(64, '0');
  const sorted = [...inventory.certificates].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return sorted.map((e) => `${indexLine(e)}\n`).join('');
}

/** The attribute file beside the index. */
export const INDEX_ATTR = 'unique_subject = no\n';

/** What the responder phase needs from the run. */
export interface OcspInputs {
  readonly snapshot: PkiSnapshot;
  readonly cas: { readonly root: CaOutcome; readonly clientCa: CaOutcome };
  readonly mode: OcspMode;
  /** The inventory after this run; null when a dry run does not know its new serials. */
  readonly inventory: Inventory | null;
  readonly organization: string | undefined;
  readonly keys: KeySource;
  readonly random: RandomSource;
  readonly now: Date;
  readonly dryRun: boolean;
}

/** The responder files this run wants (content null where a dry run does not compute it) and what it does with each certificate. */
export async function settleOcsp(f: OcspInputs): Promise<{ files: Map<string, DesiredFile>; responders: ResponderPlan[] }> {
  const files = new Map<string, DesiredFile>();
  const responders: ResponderPlan[] = [];
  const text = (file: string): string | undefined => f.snapshot.files.get(ocspPath(file))?.text;
  if (f.mode === 'off') return { files, responders };
  const index = f.inventory === null ? null : renderIndex(f.inventory);
  if (f.mode === 'keep') {
    // revoke and rotate: a stack with a responder gets its index rewritten; nothing else changes.
    if (f.snapshot.files.has(ocspPath(OCSP_FILES.index))) files.set(ocspPath(OCSP_FILES.index), { content: index, mode: MODE.file });
    return { files, responders };
  }
  for (const issuer of OCSP_ISSUERS) {
    const ca = issuer === 'root' ? f.cas.root : f.cas.clientCa;
    const certFile = OCSP_FILES.responderCert(issuer);
    const keyFile = OCSP_FILES.responderKey(issuer);
    const judged = judge(text(certFile), text(keyFile), ca, f.now);
    let cert: string | null;
    let key: string | null;
    if (judged === 'keep') {
      cert = text(certFile)!;
      key = text(keyFile)!;
      responders.push({ issuer, action: 'keep', reason: 'valid and signed by its CA' });
    } else {
      responders.push({ issuer, ...judged });
      if (f.dryRun || !ca.ca) {
        cert = null;
        key = null;
      } else {
        // The serial is drawn before the key is requested, as for every certificate.
        const subject = { commonName: responderCommonName(ca.ca.cert, issuer), organization: f.organization, keyType: ca.ca.keyType };
        const spec = tbsSpec('ocsp', subject, RESPONDER_LIFETIME_DAYS, f.now, randomSerial(f.random));
        const issued = issueWith(spec, await keyMaterial(f.keys, ca.ca.keyType), { spec: ca.ca.spec, key: ca.ca.key });
        cert = issued.certPem;
        key = issued.keyPem;
      }
    }
    files.set(ocspPath(keyFile), { content: key, mode: MODE.key });
    files.set(ocspPath(certFile), { content: cert, mode: MODE.file });
    files.set(ocspPath(OCSP_FILES.issuerCert(issuer)), { content: ca.certFile, mode: MODE.file });
  }
  files.set(ocspPath(OCSP_FILES.index), { content: index, mode: MODE.file });
  files.set(ocspPath(OCSP_FILES.attr), { content: INDEX_ATTR, mode: MODE.file });
  return { files, responders };
}
