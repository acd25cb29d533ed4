// `pki/inventory.json`: every serial ever issued, its status, and the CRL numbers; parsed strictly, written deterministically.
import { z } from 'zod';
import { REVOCATION_REASONS, type CertKind, type Inventory, type InventoryEntry } from './types.ts';

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 date');

const entrySchema = z.strictObject({
  service: z.string().min(1),
  kind: z.enum(['server', 'client', 'public']),
  serial: z.string().regex(/^[0-9a-f]+$/),
  issuer: z.enum(['root', 'client-ca']),
  notBefore: isoDate,
  notAfter: isoDate,
  status: z.enum(['active', 'superseded', 'revoked']),
  revokedAt: isoDate.optional(),
  reason: z.enum(REVOCATION_REASONS as [string, ...string[]]).optional(),
});

const inventorySchema = z.strictObject({
  version: z.literal(1),
  crlNumbers: z.strictObject({ root: z.number().int().nonnegative(), 'client-ca': z.number().int().nonnegative() }),
  certificates: z.array(entrySchema),
});

/** An inventory with nothing issued yet. */
export const EMPTY_INVENTORY: Inventory = { version: 1, crlNumbers: { root: 0, 'client-ca': 0 }, certificates: [] };

/**
 * Parses `inventory.json`.
 * @returns the inventory, or a one-line description of the first problem.
 */
export function parseInventory(text: string): Inventory | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return `not JSON (${(e as Error).message})`;
  }
  const r = inventorySchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return i ? `${i.path.join('.') || 'top level'}: ${i.message}` : 'invalid';
  }
  return r.data as Inventory;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Inventory order: service, kind, notBefore, serial. */
export function compareEntries(a: InventoryEntry, b: InventoryEntry): number {
  return cmp(a.service, b.service) || cmp(a.kind, b.kind) || cmp(a.notBefore, b.notBefore) || cmp(a.serial, b.serial);
}

/** The file's exact text: sorted entries, fixed key order, two-space indent, final newline. */
export function serializeInventory(inv: Inventory): string {
  const certificates = [...inv.certificates].sort(compareEntries).map((e) => ({
    service: e.service,
    kind: e.kind,
    serial: e.serial,
    issuer: e.issuer,
    notBefore: e.notBefore,
    notAfter: e.notAfter,
    status: e.status,
    ...(e.revokedAt === undefined ? {} : { revokedAt: e.revokedAt }),
    ...(e.reason === undefined ? {} : { reason: e.reason }),
  }));
  const doc = {
    version: 1,
    crlNumbers: { root: inv.crlNumbers.root, 'client-ca': inv.crlNumbers['client-ca'] },
    certificates,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Which CA issues certificates of `kind`: client certificates come from the client CA, the rest from the root. */
export function issuerOf(kind: CertKind): 'root' | 'client-ca' {
  return kind === 'client' ? 'client-ca' : 'root';
}
