// What reconcile has already established about each service certificate, so that a run with nothing
// changed need not parse 2,000 certificates and keys again (natively ~1.5 ms a pair).
//
// `<state>/pki-verified.json` (0600) holds, per `service/kind`, the SHA-256 of the certificate file
// and of the key file as they were when the facts were established (by reading the certificate,
// matching the key against it and checking its signature, or by issuing both), the SHA-256 of the
// issuer's certificate whose signature was checked, and the fields the engine decides on. An entry
// is used only when both file hashes match the files read now; the signature fact only when the
// issuer certificate's hash matches too. Anything else (a missing, corrupt, edited or replaced
// file, a new CA) takes the full path. A missing or unreadable cache is an empty one.
import { createHash, type X509Certificate } from 'node:crypto';
import { parseCertificate, type ParsedCertificate } from './certificate.ts';
import type { KeyType } from './types.ts';

/** The cache, relative to the stack's state folder (outside `pki/`: not part of the PKI a person copies). */
export const VERIFIED_FILE = 'pki-verified.json';
/** Its mode. */
export const VERIFIED_MODE = 0o600;

/** SHA-256 of a file's text, hex. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The established facts of one certificate/key pair. */
export interface VerifiedEntry {
  /** SHA-256 of the certificate file (the leaf, plus the client CA for client.crt). */
  readonly cert: string;
  /** SHA-256 of the key file; the key was read and matched the certificate. */
  readonly key: string;
  /** SHA-256 of the issuer certificate PEM that signed it (checkIssued and signature). */
  readonly issuer: string;
  /** Length of the certificate's own PEM at the start of the file. */
  readonly pemLength: number;
  readonly serial: string;
  readonly commonName: string;
  readonly organization: string | undefined;
  /** Epoch milliseconds. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly isCa: boolean;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly uris: readonly string[];
  readonly ocspUrls: readonly string[];
  readonly keyType: KeyType | undefined;
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * One entry as stored, checked field by field (2,000 entries are read on every run: a schema
 * library costs more than the rest of reading them); an entry that does not match is dropped (its
 * pair takes the full path). Unknown fields are left out.
 */
function entryOf(v: unknown): VerifiedEntry | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const e = v as Record<string, unknown>;
  if (typeof e.cert !== 'string' || typeof e.key !== 'string' || typeof e.issuer !== 'string' || typeof e.serial !== 'string' || typeof e.commonName !== 'string') return undefined;
  if (typeof e.pemLength !== 'number' || typeof e.notBefore !== 'number' || typeof e.notAfter !== 'number' || typeof e.isCa !== 'boolean') return undefined;
  if (e.organization !== undefined && typeof e.organization !== 'string') return undefined;
  if (e.keyType !== undefined && e.keyType !== 'ecdsa-p256' && e.keyType !== 'rsa-2048') return undefined;
  if (!isStrings(e.dnsNames) || !isStrings(e.ipAddresses) || !isStrings(e.uris) || !isStrings(e.ocspUrls)) return undefined;
  return storedFields(e as unknown as VerifiedEntry);
}

/** The stored fields of an entry, in the file's order (unknown fields left out). */
function storedFields(e: VerifiedEntry): VerifiedEntry {
  return {
    cert: e.cert,
    key: e.key,
    issuer: e.issuer,
    pemLength: e.pemLength,
    serial: e.serial,
    commonName: e.commonName,
    organization: e.organization,
    notBefore: e.notBefore,
    notAfter: e.notAfter,
    isCa: e.isCa,
    dnsNames: e.dnsNames,
    ipAddresses: e.ipAddresses,
    uris: e.uris,
    ocspUrls: e.ocspUrls,
    keyType: e.keyType,
  };
}

/**
 * What reconcile established of one CRL of `crl.pem`, by the SHA-256 of its PEM block as the engine
 * writes it (what a kept CRL puts back): it was read and its signature checked against the CA whose
 * certificate PEM hashes to `issuer` (or it was just signed by that CA). A run with nothing to
 * change then neither parses nor verifies the CRLs, nor parses the CAs with @peculiar/x509 (about
 * 30 ms the first time in a process); the fast path's clock horizon takes their dates from here.
 */
export interface VerifiedCrl {
  readonly issuer: string;
  /** Epoch milliseconds. */
  readonly thisUpdate: number;
  readonly nextUpdate: number | null;
  /** Revoked serials, lower-case hex, sorted as the CRL reader sorts them. */
  readonly serials: readonly string[];
  readonly number: number | null;
}

function crlOf(v: unknown): VerifiedCrl | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const c = v as Record<string, unknown>;
  if (typeof c.issuer !== 'string' || typeof c.thisUpdate !== 'number' || (c.nextUpdate !== null && typeof c.nextUpdate !== 'number')) return undefined;
  if (!isStrings(c.serials) || (c.number !== null && typeof c.number !== 'number')) return undefined;
  return crlFields(c as unknown as VerifiedCrl);
}

/** The stored fields of a CRL's facts, in the file's order (unknown fields left out). */
function crlFields(c: VerifiedCrl): VerifiedCrl {
  return { issuer: c.issuer, thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate, serials: c.serials, number: c.number };
}

/** CRL facts read whole from a cache file. */
const crlsRead = new WeakSet<ReadonlyMap<string, VerifiedCrl>>();

/** Whether `next` holds exactly the CRL facts `read` was parsed into (so the file need not change for them). */
export function unchangedCrls(read: ReadonlyMap<string, VerifiedCrl>, next: ReadonlyMap<string, VerifiedCrl>): boolean {
  if (!crlsRead.has(read) || read.size !== next.size) return false;
  for (const [k, c] of next) if (read.get(k) !== c) return false;
  return true;
}

/** The cache file's document, or undefined when it is not one. */
function parseDoc(text: string | undefined): { entries?: unknown; crls?: unknown } | undefined {
  if (text === undefined) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const d = doc as { version?: unknown; entries?: unknown; crls?: unknown } | null;
  return d?.version === 1 ? d : undefined;
}

/** Reads the cache: the certificates' facts and the CRLs' ({@link VerifiedCrl}, by block hash); anything unreadable is simply not cached. */
export function parseVerifiedFile(text: string | undefined): { entries: Map<string, VerifiedEntry>; crls: Map<string, VerifiedCrl> } {
  const d = parseDoc(text);
  const crls = new Map<string, VerifiedCrl>();
  let dropped = d === undefined;
  if (d?.crls !== undefined) {
    if (typeof d.crls !== 'object' || d.crls === null) dropped = true;
    else {
      for (const [k, v] of Object.entries(d.crls as Record<string, unknown>)) {
        const c = crlOf(v);
        if (c) crls.set(k, c);
        else dropped = true;
      }
    }
  }
  if (!dropped) crlsRead.add(crls);
  return { entries: entriesOf(d), crls };
}

/** Reads the certificates' facts of the cache; anything unreadable is simply not cached. */
export function parseVerified(text: string | undefined): Map<string, VerifiedEntry> {
  return entriesOf(parseDoc(text));
}

function entriesOf(d: { entries?: unknown } | undefined): Map<string, VerifiedEntry> {
  const out = new Map<string, VerifiedEntry>();
  if (!d || typeof d.entries !== 'object' || d.entries === null) return out;
  let dropped = false;
  for (const [k, v] of Object.entries(d.entries as Record<string, unknown>)) {
    const e = entryOf(v);
    if (e) out.set(k, e);
    else dropped = true;
  }
  if (!dropped) complete.add(out);
  return out;
}

/** Caches read whole (every stored entry valid): only those may be kept without writing them again. */
const complete = new WeakSet<ReadonlyMap<string, VerifiedEntry>>();

/**
 * Whether `next` is exactly the cache `read` was parsed into: the same keys holding the very same
 * entry objects, none dropped when reading. A run with nothing to change then need not serialize
 * 2,000 entries to find the file unchanged.
 */
export function unchangedCache(read: ReadonlyMap<string, VerifiedEntry>, next: ReadonlyMap<string, VerifiedEntry>): boolean {
  if (!complete.has(read) || read.size !== next.size) return false;
  for (const [k, e] of next) if (read.get(k) !== e) return false;
  return true;
}

/** Canonical text of the cache: sorted keys, fixed field order, so an unchanged cache is never rewritten. */
export function serializeVerified(entries: ReadonlyMap<string, VerifiedEntry>, crls: ReadonlyMap<string, VerifiedCrl> = new Map()): string {
  const sorted: Record<string, VerifiedEntry> = {};
  for (const k of [...entries.keys()].sort()) {
    const e = entries.get(k) as VerifiedEntry;
    sorted[k] = storedFields(e);
  }
  const crlFacts: Record<string, VerifiedCrl> = {};
  for (const k of [...crls.keys()].sort()) crlFacts[k] = crlFields(crls.get(k) as VerifiedCrl);
  return `${JSON.stringify({ version: 1, entries: sorted, ...(crls.size > 0 ? { crls: crlFacts } : {}) })}\n`;
}

/**
 * The entry for a certificate whose key matched and whose signature by `issuerPem` was checked (or
 * that was just issued so); undefined when the file does not start with the certificate's own PEM
 * (a hand-edited file), which is then verified on every run.
 */
export function verifiedEntry(cert: Omit<ParsedCertificate, 'x509'>, certText: string, keyText: string, issuerHash: string): VerifiedEntry | undefined {
  if (!certText.startsWith(cert.pem)) return undefined;
  return {
    cert: sha256(certText),
    key: sha256(keyText),
    issuer: issuerHash,
    pemLength: cert.pem.length,
    serial: cert.serial,
    commonName: cert.commonName,
    organization: cert.organization,
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    isCa: cert.isCa,
    dnsNames: [...cert.dnsNames],
    ipAddresses: [...cert.ipAddresses],
    uris: [...cert.uris],
    ocspUrls: [...cert.ocspUrls],
    keyType: cert.keyType,
  };
}

/** A certificate from cached facts; the native object is read only if something asks for it. */
export function cachedCertificate(e: VerifiedEntry, certText: string): ParsedCertificate {
  const pem = certText.slice(0, e.pemLength);
  const { serial, commonName, organization, isCa, dnsNames, ipAddresses, uris, ocspUrls, keyType } = e;
  let x509: X509Certificate | undefined;
  return {
    pem,
    serial,
    commonName,
    organization,
    notBefore: new Date(e.notBefore),
    notAfter: new Date(e.notAfter),
    isCa,
    dnsNames,
    ipAddresses,
    uris,
    ocspUrls,
    keyType,
    get x509() {
      x509 ??= parseCertificate(pem).x509;
      return x509;
    },
  };
}
