// Engine phase 5: the CRLs, one per issuer (root first): kept, or re-signed when missing, changed
// or half-way to nextUpdate; CRL numbers only grow.
import { buildCrl, isCrlSignedBy, parseCrl, splitCrlPem, type ParsedCrl } from '../crl.ts';
import { floorToSecond } from '../issue.ts';
import type { Inventory, InventoryEntry } from '../types.ts';
import { iso, type CaOutcome } from './cas.ts';

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export interface CrlOutcome {
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

/** The CRL file after this run. */
export interface CrlsOutcome {
  /** Both CRLs' PEM, root's first; null when a dry run would sign one. */
  readonly pem: string | null;
  /** Why each re-signed CRL is re-signed. */
  readonly reasons: readonly string[];
  /** CRL numbers after this run. */
  readonly crlNumbers: Inventory['crlNumbers'];
}

/** Keeps or re-signs both CRLs; `existingText` is `pki/crl.pem` as read. */
export async function settleCrls(
  cas: { readonly root: CaOutcome; readonly clientCa: CaOutcome },
  entries: ReadonlyMap<string, InventoryEntry>,
  existingText: string | undefined,
  inventory: Inventory,
  now: Date,
): Promise<CrlsOutcome> {
  const existingCrls = parseCrls(existingText);
  const crlNumbers = { ...inventory.crlNumbers };
  const one = async (ca: CaOutcome, index: number): Promise<CrlOutcome> => {
    const role = ca.plan.ca;
    const revokedHere = [...entries.values()].filter((e) => e.status === 'revoked' && e.issuer === role);
    const serials = revokedHere.map((e) => e.serial).sort((a, b) => cmp(a.padStart(64, '0'), b.padStart(64, '0')));
    const existing = existingCrls[index];
    const reason = await decideCrl(existing, ca, serials, now);
    if (!reason) return { pem: (existing as ParsedCrl).pem, reason };
    const number = Math.max(crlNumbers[role], existing?.number ?? 0) + 1;
    crlNumbers[role] = number;
    if (!ca.ca) return { pem: null, reason };
    const entriesOut = revokedHere.map((e) => ({ serial: e.serial, revokedAt: new Date(e.revokedAt ?? iso(now)), reason: e.reason ?? 'unspecified' }));
    return { pem: await buildCrl({ entries: entriesOut, number, thisUpdate: floorToSecond(now) }, ca.ca), reason };
  };
  // In order: the client CA's CRL number must not be taken before the root's.
  const crls = [await one(cas.root, 0), await one(cas.clientCa, 1)];
  return {
    pem: crls.some((c) => c.pem === null) ? null : crls.map((c) => c.pem).join(''),
    reasons: crls.map((c) => c.reason).filter((r): r is string => r !== undefined),
    crlNumbers,
  };
}
