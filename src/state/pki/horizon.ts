// The clock horizon of a stack's state folder: the first moment after `now` at which a PKI decision
// could change with the clock alone (used by synth's no-change fast path, src/synth/fastpath.ts).
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
 * what it says, not read: the contents a record has just checked against the disk):
 * - each certificate's notBefore (`now < notBefore` renews), the moment 70% of its lifetime has
 *   passed (leaves and OCSP responders renew; an external CA's leaf warns) and its notAfter (expired:
 *   renew, a CA or an external leaf becomes an error);
 * - each CRL's half-way point (re-signed) and its nextUpdate.
 * These are all the comparisons with the clock in src/state/** (engine/leaves.ts decide,
 * engine/ocsp.ts judge, engine/cas.ts loadCa, engine/crls.ts decideCrl, external.ts checkSigned);
 * WireGuard keys and secrets have no schedule.
 */
export function clockBoundaries(dir: string, contents?: ReadonlyMap<string, string | Uint8Array>): number[] | 'unreadable' {
  /** A file's bytes: as `contents` holds them, else read. */
  const read = (abs: string): Buffer => {
    const k = contents?.get(abs);
    return k === undefined ? readFileSync(abs) : typeof k === 'string' ? Buffer.from(k, 'utf8') : Buffer.from(k.buffer, k.byteOffset, k.byteLength);
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
  let files = 0;
  const walk = (d: string): boolean => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
    for (const e of entries) {
      const abs = join(d, e.name);
      if (e.isDirectory()) {
        if (!walk(abs)) return false;
        continue;
      }
      if (!e.isFile()) continue;
      if (++files > MAX_FILES) return false;
      let text: string;
      try {
        const buf = read(abs);
        if (buf.length > MAX_FILE) continue;
        text = buf.toString('latin1');
      } catch {
        return false;
      }
      if (!text.includes('-----BEGIN ')) continue;
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
    }
    return true;
  };
  return walk(join(dir, PKI_PATHS.dir)) ? out : 'unreadable';
}

/**
 * The horizon of a state folder at `now` (ms): the earliest boundary after `now`, Infinity when
 * there is none, or `now` itself (no horizon ahead: never skip) when a certificate or CRL cannot
 * be read. Decisions made at `now` hold for every clock in [now, horizon).
 */
export function clockHorizon(dir: string, now: number, contents?: ReadonlyMap<string, string | Uint8Array>): number {
  const b = clockBoundaries(dir, contents);
  if (b === 'unreadable') return now;
  let h = Infinity;
  for (const t of b) if (t > now && t < h) h = t;
  return h;
}
