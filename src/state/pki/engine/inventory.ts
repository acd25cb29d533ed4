// Engine phases 2 and 4: the inventory of serials: read it, mark revocations before deciding, and
// record the outcome (new serials active, replaced ones superseded, revoked ones stay revoked).
import { join } from 'node:path';
import type { Issue } from '../../../../constructs/core/errors.ts';
import type { IssuedCert } from '../issue.ts';
import { EMPTY_INVENTORY, issuerOf, parseInventory } from '../inventory.ts';
import { PKI_PATHS, type PkiSnapshot } from '../store.ts';
import type { CertKind, Inventory, InventoryEntry, RevocationReason } from '../types.ts';
import type { VerifiedEntry } from '../verified.ts';
import { iso } from './cas.ts';
import { keyOf, readExisting, type Decided } from './leaves.ts';

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

/** The inventory on disk; an unusable one is an issue, a missing one (with services in place) a warning. */
export function readInventory(snapshot: PkiSnapshot, issues: Issue[], warnings: string[]): Inventory {
  const invFile = snapshot.files.get(PKI_PATHS.inventory);
  if (!invFile) {
    if (snapshot.services.length > 0) {
      warnings.push(`${PKI_PATHS.inventory} was missing: rebuilt from the certificates in place; earlier revocations are no longer known.`);
    }
    return EMPTY_INVENTORY;
  }
  const parsed = invFile.text === undefined ? `cannot be read (${invFile.error ?? 'unreadable'})` : parseInventory(invFile.text);
  if (typeof parsed !== 'string') return parsed;
  issues.push({
    path: join(snapshot.stateDir, PKI_PATHS.inventory),
    message: `the certificate inventory is unusable: ${parsed}. Restore it from backup; deleting it rebuilds it from the certificates in place but forgets every revocation.`,
  });
  return EMPTY_INVENTORY;
}

/** An inventory entry for a certificate. */
export function entryOf(service: string, kind: CertKind, cert: IssuedCert['cert'], status: InventoryEntry['status']): InventoryEntry {
  return { service, kind, serial: cert.serial, issuer: issuerOf(kind), notBefore: iso(cert.notBefore), notAfter: iso(cert.notAfter), status };
}

/** The inventory's entries by serial with `revocations` marked revoked at `now`. */
export function revokeSerials(
  inventory: Inventory,
  revocations: readonly Revocation[],
  snapshot: PkiSnapshot,
  verified: ReadonlyMap<string, VerifiedEntry>,
  now: Date,
): Map<string, InventoryEntry> {
  const entries = new Map<string, InventoryEntry>(inventory.certificates.map((e) => [e.serial, e]));
  for (const r of revocations) {
    // A serial the inventory lost (rebuilt inventory) is recorded from the certificate in place.
    const cert = readExisting(snapshot, r.service, r.kind, verified).cert;
    const e = entries.get(r.serial) ?? (cert && cert.serial === r.serial ? entryOf(r.service, r.kind, cert, 'active') : undefined);
    if (e) entries.set(r.serial, { ...e, status: 'revoked', revokedAt: iso(now), reason: r.reason });
  }
  return entries;
}

/**
 * Records the decisions in `entries` (changed in place): kept and new serials active, replaced
 * ones superseded; active serials out of scope are superseded when `prune` (reconcile).
 */
export function recordOutcome(entries: Map<string, InventoryEntry>, decided: readonly Decided[], issued: readonly (IssuedCert | undefined)[], prune: boolean, dryRun: boolean): void {
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
  const inScope = new Set(decided.map((d) => keyOf(d.req.service, d.req.kind)));
  for (const [serial, e] of entries) {
    if (e.status !== 'active') continue;
    const k = keyOf(e.service, e.kind);
    const stale = inScope.has(k) ? current.get(k) !== serial && !(dryRun && !current.has(k)) : prune;
    if (stale) entries.set(serial, { ...e, status: 'superseded' });
  }
}
