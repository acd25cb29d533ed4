// Engine phase 5: the CRLs, one per issuer (root first): kept, or re-signed when missing, changed
// or half-way to nextUpdate; CRL numbers only grow.
import { buildCrl, isCrlSignedBy, parseCrl, splitCrlPem, type ParsedCrl } from '../crl.ts';
import { floorToSecond, type SigningCa } from '../issue.ts';
import type { Inventory, InventoryEntry } from '../types.ts';
import { sha256, type VerifiedCrl } from '../verified.ts';
import { iso, type CaOutcome } from './cas.ts';
import { caHash } from './leaves.ts';

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export interface CrlOutcome {
  /** The CRL to keep or the new one; null when a dry run would sign it. */
  readonly pem: string | null;
  /** Why it is (re)signed; undefined when kept. */
  readonly reason: string | undefined;
}

/**
 * A CRL of `crl.pem` as read: its facts from the cache ({@link VerifiedCrl}: established against
 * the CA its `issuer` hash names) or from parsing it now; `signedBy` answers whether a CA signed
 * it, checking the signature only when the cache cannot say.
 */
interface ExistingCrl {
  /** The block as it is kept. */
  readonly pem: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly serials: readonly string[];
  readonly number: number | undefined;
  readonly signedBy: (ca: SigningCa) => Promise<boolean>;
  /** The facts to cache once it is kept, signed by `ca` (keyed by the hash of {@link pem}). */
  readonly facts: (ca: SigningCa) => VerifiedCrl;
}

async function decideCrl(
  existing: ExistingCrl | undefined,
  ca: CaOutcome,
  revokedSerials: readonly string[],
  now: Date,
): Promise<string | undefined> {
  const name = ca.plan.ca === 'root' ? 'root CRL' : 'client CA CRL';
  if (ca.plan.action === 'create') return `${name}: new CA`;
  if (!existing) return `${name}: missing`;
  if (!ca.ca || !(await existing.signedBy(ca.ca))) return `${name}: not signed by the current ${ca.plan.ca === 'root' ? 'root CA' : 'client CA'}`;
  if (existing.serials.join(',') !== revokedSerials.join(',')) return `${name}: revoked set changed`;
  if (!existing.nextUpdate) return `${name}: has no nextUpdate`;
  const half = existing.thisUpdate.getTime() + (existing.nextUpdate.getTime() - existing.thisUpdate.getTime()) / 2;
  if (now.getTime() >= half) return `${name}: past half its validity (signed ${iso(existing.thisUpdate)})`;
  return undefined;
}

/** The facts to cache of a parsed CRL whose signature by `ca` is established (by the hash of its PEM as the engine writes it, which a kept CRL puts back). */
function factsOf(parsed: ParsedCrl, ca: SigningCa): VerifiedCrl {
  return { issuer: caHash(ca), thisUpdate: parsed.thisUpdate.getTime(), nextUpdate: parsed.nextUpdate?.getTime() ?? null, serials: parsed.serials, number: parsed.number ?? null };
}

/** A parsed CRL as {@link ExistingCrl}. */
function fromParsed(parsed: ParsedCrl): ExistingCrl {
  return { ...parsed, signedBy: (ca) => isCrlSignedBy(parsed, ca), facts: (ca) => factsOf(parsed, ca) };
}

function readCrls(text: string | undefined, cache: ReadonlyMap<string, VerifiedCrl>): (ExistingCrl | undefined)[] {
  if (text === undefined) return [];
  return splitCrlPem(text).map((block) => {
    const known = cache.get(sha256(block));
    if (known) {
      // The cache vouches for this very text; a CA other than the one it was checked against is asked the long way.
      let parsed: ExistingCrl | undefined;
      const read = (): ExistingCrl => (parsed ??= fromParsed(parseCrl(block)));
      return {
        pem: block,
        thisUpdate: new Date(known.thisUpdate),
        nextUpdate: known.nextUpdate === null ? undefined : new Date(known.nextUpdate),
        serials: known.serials,
        number: known.number ?? undefined,
        signedBy: async (ca) => caHash(ca) === known.issuer || (await read().signedBy(ca)),
        facts: (ca) => (caHash(ca) === known.issuer ? known : read().facts(ca)),
      };
    }
    try {
      return fromParsed(parseCrl(block));
    } catch {
      return undefined;
    }
  });
}

/** The CRL file after this run. */
export interface CrlsOutcome {
  /** Both CRLs' PEM, root's first; null when a dry run would sign one. */
  readonly pem: string | null;
  /** Why each re-signed CRL is re-signed. */
  readonly reasons: readonly string[];
  /** CRL numbers after this run. */
  readonly crlNumbers: Inventory['crlNumbers'];
  /** The facts to cache of the CRLs after this run, by block hash ({@link VerifiedCrl}). */
  readonly verified: ReadonlyMap<string, VerifiedCrl>;
}

/** Keeps or re-signs both CRLs; `existingText` is `pki/crl.pem` as read. */
export async function settleCrls(
  cas: { readonly root: CaOutcome; readonly clientCa: CaOutcome },
  entries: ReadonlyMap<string, InventoryEntry>,
  existingText: string | undefined,
  inventory: Inventory,
  now: Date,
  cache: ReadonlyMap<string, VerifiedCrl> = new Map(),
): Promise<CrlsOutcome> {
  const existingCrls = readCrls(existingText, cache);
  const verified = new Map<string, VerifiedCrl>();
  const crlNumbers = { ...inventory.crlNumbers };
  const one = async (ca: CaOutcome, index: number): Promise<CrlOutcome> => {
    const role = ca.plan.ca;
    const revokedHere = [...entries.values()].filter((e) => e.status === 'revoked' && e.issuer === role);
    const serials = revokedHere.map((e) => e.serial).sort((a, b) => cmp(a.padStart(64, '0'), b.padStart(64, '0')));
    const existing = existingCrls[index];
    const reason = await decideCrl(existing, ca, serials, now);
    if (!reason) {
      const kept = existing as ExistingCrl;
      // Kept only when signed by this CA (decideCrl asked).
      verified.set(sha256(kept.pem), kept.facts(ca.ca as SigningCa));
      return { pem: kept.pem, reason };
    }
    const number = Math.max(crlNumbers[role], existing?.number ?? 0) + 1;
    crlNumbers[role] = number;
    if (!ca.ca) return { pem: null, reason };
    const entriesOut = revokedHere.map((e) => ({ serial: e.serial, revokedAt: new Date(e.revokedAt ?? iso(now)), reason: e.reason ?? 'unspecified' }));
    const pem = await buildCrl({ entries: entriesOut, number, thisUpdate: floorToSecond(now) }, ca.ca);
    // Just signed by this CA: its facts are read from it once, here.
    verified.set(sha256(pem), factsOf(parseCrl(pem), ca.ca));
    return { pem, reason };
  };
  // In order: the client CA's CRL number must not be taken before the root's.
  const crls = [await one(cas.root, 0), await one(cas.clientCa, 1)];
  return {
    pem: crls.some((c) => c.pem === null) ? null : crls.map((c) => c.pem).join(''),
    reasons: crls.map((c) => c.reason).filter((r): r is string => r !== undefined),
    crlNumbers,
    verified,
  };
}
