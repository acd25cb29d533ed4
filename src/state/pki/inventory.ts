// `pki/inventory.json`: every serial ever issued, its status, and the CRL numbers; parsed strictly, written deterministically.
import * as z from 'zod';
import { REVOCATION_REASONS, type CertKind, type Inventory, type InventoryEntry } from './types.ts';

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'not an ISO-8601 date');

/** A serial as the inventory holds it: lower-case hex. */
const SERIAL = /^[0-9a-f]+$/;

const entrySchema = z.strictObject({
  service: z.string().min(1),
  kind: z.enum(['server', 'client', 'public']),
  serial: z.string().regex(SERIAL),
  issuer: z.enum(['root', 'client-ca']),
  notBefore: isoDate,
  notAfter: isoDate,
  status: z.enum(['active', 'superseded', 'revoked']),
  revokedAt: isoDate.optional(),
  reason: z.enum(REVOCATION_REASONS as [string, ...string[]]).optional(),
});

/** The inventory file's schema: the reference {@link wellFormedInventory} is checked against. */
export const inventorySchema = z.strictObject({
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
  const usual = wellFormedInventory(json);
  if (usual) return usual;
  const r = inventorySchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return i ? `${i.path.join('.') || 'top level'}: ${i.message}` : 'invalid';
  }
  return r.data as Inventory;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Whether `o` has no own key but `allowed` (zod's strictObject refuses any other). */
const onlyKeys = (o: Json, allowed: ReadonlySet<string>): boolean => Object.keys(o).every((k) => allowed.has(k));
const ENTRY_KEYS = new Set(Object.keys(entrySchema.shape));
const INVENTORY_KEYS = new Set(Object.keys(inventorySchema.shape));
const CRL_KEYS = new Set(Object.keys(inventorySchema.shape.crlNumbers.shape));
const KINDS = new Set<unknown>(entrySchema.shape.kind.options);
const ISSUERS = new Set<unknown>(entrySchema.shape.issuer.options);
const STATUSES = new Set<unknown>(entrySchema.shape.status.options);
const REASONS = new Set<unknown>(REVOCATION_REASONS);
const isDate = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * The inventory `inventorySchema` gives for parsed JSON that it accepts, checked field by field
 * without zod's generic walk (about 25 ms for 2,000 entries the first time in a process, when zod
 * compiles its checker: a no-change reconcile's largest single cost); undefined for anything it
 * does not accept as it is, which zod then parses and, when it is wrong, words.
 * test/pki/inventory.test.ts checks by property that it never accepts what zod refuses and gives
 * what zod gives.
 */
export function wellFormedInventory(data: unknown): Inventory | undefined {
  if (!isObject(data) || !onlyKeys(data, INVENTORY_KEYS) || data.version !== 1) return undefined;
  const crl = data.crlNumbers;
  if (!isObject(crl) || !onlyKeys(crl, CRL_KEYS) || !isCount(crl.root) || !isCount(crl['client-ca'])) return undefined;
  if (!Array.isArray(data.certificates)) return undefined;
  const certificates: InventoryEntry[] = [];
  for (const e of data.certificates as unknown[]) {
    if (!isObject(e) || !onlyKeys(e, ENTRY_KEYS)) return undefined;
    const { service, kind, serial, issuer, notBefore, notAfter, status, revokedAt, reason } = e;
    if (typeof service !== 'string' || service.length === 0 || !KINDS.has(kind) || typeof serial !== 'string' || !SERIAL.test(serial)) return undefined;
    if (!ISSUERS.has(issuer) || !isDate(notBefore) || !isDate(notAfter) || !STATUSES.has(status)) return undefined;
    if ((revokedAt !== undefined && !isDate(revokedAt)) || (reason !== undefined && !REASONS.has(reason))) return undefined;
    certificates.push({
      service,
      kind: kind as InventoryEntry['kind'],
      serial,
      issuer: issuer as InventoryEntry['issuer'],
      notBefore,
      notAfter,
      status: status as InventoryEntry['status'],
      ...(revokedAt !== undefined ? { revokedAt } : {}),
      ...(reason !== undefined ? { reason: reason as NonNullable<InventoryEntry['reason']> } : {}),
    });
  }
  return { version: 1, crlNumbers: { root: crl.root, 'client-ca': crl['client-ca'] }, certificates };
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
