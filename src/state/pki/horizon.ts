// The clock horizon of a stack's state folder: the first moment after `now` at which a PKI decision
// could change with the clock alone (used by synth's no-change fast path, src/synth/fastpath.ts).
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseCrl, splitCrlPem } from './crl.ts';
import { renewAt } from './engine/leaves.ts';
import { PKI_PATHS } from './store.ts';
import { parseVerifiedFile, sha256, VERIFIED_FILE, type VerifiedEntry } from './verified.ts';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
/** Files larger than this are not PEM the engine wrote; they are skipped (the stamps still cover them). */
const MAX_FILE = 4 * 1024 * 1024;
/** Bound on the files looked at, so a damaged state folder cannot keep this busy. */
const MAX_FILES = 200_000;

/**
 * Every moment the clock-driven decisions of the PKI engine turn on, for the certificates and CRLs
 * found anywhere in `dir`'s PKI folder (`dir` is a stack's state folder; copies are read once; the
 * engine reads nothing outside `pki/`, and the secrets and WireGuard keys beside it, thousands of
 * files in a large mesh, have no schedule; a file in `contents`, by absolute path, is taken to hold
 * what it says, not read: the contents a record has just checked against the disk; `files`, when
 * given, are the files below `pki/` (relative to `dir`) as stamps checked against the disk list
 * them, looked at instead of listing a thousand service folders again):
 * - each certificate's notBefore (`now < notBefore` renews), the moment 70% of its lifetime has
 *   passed (leaves and OCSP responders renew; an external CA's leaf warns) and its notAfter (expired:
 *   renew, a CA or an external leaf becomes an error);
 * - each CRL's half-way point (re-signed) and its nextUpdate.
 * These are all the comparisons with the clock in src/state/** (engine/leaves.ts decide,
 * engine/ocsp.ts judge, engine/cas.ts loadCa, engine/crls.ts decideCrl, external.ts checkSigned);
 * WireGuard keys and secrets have no schedule.
 */
export function clockBoundaries(dir: string, contents?: ReadonlyMap<string, string | Uint8Array>, files?: readonly string[]): number[] | 'unreadable' {
  /** A file's bytes: as `contents` holds them, else read. */
  const read = (abs: string): Buffer => {
    const k = contents?.get(abs);
    return k === undefined ? readFileSync(abs) : typeof k === 'string' ? Buffer.from(k, 'utf8') : Buffer.from(k.buffer, k.byteOffset, k.byteLength);
  };
  /**
   * A file's text, each byte a character (latin1). A text in `contents` that is ASCII (what the
   * engine writes: PEM) is that already, so it is taken as it is instead of through its bytes.
   */
  const latin1 = (abs: string): string | undefined => {
    const k = contents?.get(abs);
    if (typeof k === 'string' && Buffer.byteLength(k, 'utf8') === k.length) return k.length > MAX_FILE ? undefined : k;
    const buf = read(abs);
    return buf.length > MAX_FILE ? undefined : buf.toString('latin1');
  };
  // The facts the engine established of each certificate file (keyed by the file's hash): a file
  // it vouches for needs no parse of its leaf (2,000 parses were half of a first synth's record).
  // Likewise a CRL block whose facts it cached (keyed by the block's hash) is not parsed again.
  let text: string | undefined;
  try {
    text = read(join(dir, VERIFIED_FILE)).toString('utf8');
  } catch {
    text = undefined;
  }
  const cache = parseVerifiedFile(text);
  const vouched = new Map<string, VerifiedEntry>();
  for (const e of cache.entries.values()) vouched.set(e.cert, e);
  const seen = new Set<string>();
  const out: number[] = [];
  let count = 0;
  /** Takes the boundaries of one file; false when it cannot be read. */
  const visit = (abs: string): boolean => {
    if (++count > MAX_FILES) return false;
    let text: string | undefined;
    try {
      text = latin1(abs);
    } catch {
      return false;
    }
    if (text === undefined || !text.includes('-----BEGIN ')) return true;
    const blocks = text.match(CERT_BLOCK) ?? [];
    const known = blocks.length > 0 ? vouched.get(sha256(text)) : undefined;
    if (known) {
      // The file's own certificate comes first; what follows (the client CA) is read as usual.
      seen.add(blocks[0]!);
      out.push(known.notBefore, renewAt({ notBefore: new Date(known.notBefore), notAfter: new Date(known.notAfter) }).getTime(), known.notAfter);
    }
    for (const block of blocks) {
      if (seen.has(block)) continue;
      seen.add(block);
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(block);
      } catch {
        return false;
      }
      const notBefore = new Date(cert.validFrom);
      const notAfter = new Date(cert.validTo);
      if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) return false;
      out.push(notBefore.getTime(), renewAt({ notBefore, notAfter }).getTime(), notAfter.getTime());
    }
    for (const block of splitCrlPem(text)) {
      if (seen.has(block)) continue;
      seen.add(block);
      const known = cache.crls.get(sha256(block));
      if (known) {
        if (known.nextUpdate !== null) out.push(known.thisUpdate + (known.nextUpdate - known.thisUpdate) / 2, known.nextUpdate);
        continue;
      }
      try {
        const crl = parseCrl(block);
        const t = crl.thisUpdate.getTime();
        if (crl.nextUpdate) out.push(t + (crl.nextUpdate.getTime() - t) / 2, crl.nextUpdate.getTime());
      } catch {
        return false;
      }
    }
    return true;
  };
  const walk = (d: string): boolean => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
    for (const e of entries) {
      const abs = join(d, e.name);
      if (e.isDirectory() ? !walk(abs) : e.isFile() && !visit(abs)) return false;
    }
    return true;
  };
  if (files === undefined) return walk(join(dir, PKI_PATHS.dir)) ? out : 'unreadable';
  const base = resolve(dir);
  for (const rel of files) if (!visit(`${base}/${rel}`)) return 'unreadable';
  return out;
}

/**
 * The horizon of a state folder at `now` (ms): the earliest boundary after `now`, Infinity when
 * there is none, or `now` itself (no horizon ahead: never skip) when a certificate or CRL cannot
 * be read. Decisions made at `now` hold for every clock in [now, horizon).
 */
export function clockHorizon(dir: string, now: number, contents?: ReadonlyMap<string, string | Uint8Array>, files?: readonly string[]): number {
  const b = clockBoundaries(dir, contents, files);
  if (b === 'unreadable') return now;
  let h = Infinity;
  for (const t of b) if (t > now && t < h) h = t;
  return h;
}
