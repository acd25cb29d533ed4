// Certificate status for `podmesh certs status`: rows read from the state folder, and pure table/JSON/Prometheus formatters.
import { join } from 'node:path';
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import { parseCertificate, type ParsedCertificate } from './certificate.ts';
import { renewAt } from './engine.ts';
import { DAY } from './issue.ts';
import { parseInventory } from './inventory.ts';
import { KIND_FILES, PKI_PATHS, readPkiSnapshot, servicePath } from './store.ts';
import type { CertKind } from './types.ts';

/** The seed's alert threshold: "Monitoring alerts at 30 days before expiration". */
export const EXPIRY_WARNING_DAYS = 30;

/** Health of one certificate at a given time, worst first: revoked, expired, not-yet-valid, expiring, renew-due, valid. */
export type CertStatus = 'revoked' | 'expired' | 'not-yet-valid' | 'expiring' | 'renew-due' | 'valid';

/** One certificate in the status report. */
export interface StatusRow {
  /** The service, or '' for the two CAs. */
  readonly service: string;
  /** The leaf kind, or which CA. */
  readonly kind: CertKind | 'root-ca' | 'client-ca';
  /** Subject CN. */
  readonly commonName: string;
  /** Lower-case hex. */
  readonly serial: string;
  /** Start of validity. */
  readonly notBefore: Date;
  /** End of validity. */
  readonly notAfter: Date;
  /** Whole days until notAfter, rounded down; negative once expired. */
  readonly daysToExpiry: number;
  /** Health at the time asked for. */
  readonly status: CertStatus;
}

const KIND_ORDER: readonly StatusRow['kind'][] = ['root-ca', 'client-ca', 'server', 'client', 'public'];

function rowOf(
  service: string,
  kind: StatusRow['kind'],
  cert: ParsedCertificate,
  now: Date,
  revoked: boolean,
): StatusRow {
  const t = now.getTime();
  const days = Math.floor((cert.notAfter.getTime() - t) / DAY);
  const status: CertStatus = revoked
    ? 'revoked'
    : t >= cert.notAfter.getTime()
      ? 'expired'
      : t < cert.notBefore.getTime()
        ? 'not-yet-valid'
        : days < EXPIRY_WARNING_DAYS
          ? 'expiring'
          : service !== '' && t >= renewAt(cert).getTime()
            ? 'renew-due'
            : 'valid';
  return {
    service,
    kind,
    commonName: cert.commonName,
    serial: cert.serial,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    daysToExpiry: days,
    status,
  };
}

/**
 * Every certificate in `stateDir/pki` (the two CAs first, then services by name and kind) as seen at `now`.
 * A leaf whose serial the inventory lists as revoked shows `revoked`.
 * @throws PodmeshError when there is no PKI yet or a certificate cannot be read.
 */
export async function readPkiStatus(stateDir: string, now: Date): Promise<StatusRow[]> {
  const snapshot = await readPkiSnapshot(stateDir);
  const issues: Issue[] = [];
  const read = (rel: string): ParsedCertificate | undefined => {
    const f = snapshot.files.get(rel);
    if (!f) return undefined;
    try {
      if (f.text === undefined) throw new Error('unreadable');
      return parseCertificate(f.text);
    } catch {
      issues.push({ path: join(stateDir, rel), message: `cannot ${f.text === undefined ? 'read' : 'parse'} this certificate. Run podmesh synth to repair the PKI state.` });
      return undefined;
    }
  };
  if (!snapshot.files.has(PKI_PATHS.rootCert)) {
    throw PodmeshError.at(join(stateDir, PKI_PATHS.rootCert), 'there is no CA yet. Run podmesh synth first to create the PKI.');
  }
  const invText = snapshot.files.get(PKI_PATHS.inventory)?.text;
  const inventory = invText === undefined ? undefined : parseInventory(invText);
  const revoked = new Set(
    inventory && typeof inventory !== 'string'
      ? inventory.certificates.filter((e) => e.status === 'revoked').map((e) => e.serial)
      : [],
  );
  const rows: StatusRow[] = [];
  const root = read(PKI_PATHS.rootCert);
  if (root) rows.push(rowOf('', 'root-ca', root, now, false));
  const clientCa = read(PKI_PATHS.clientCaCert);
  if (clientCa) rows.push(rowOf('', 'client-ca', clientCa, now, false));
  for (const service of snapshot.services) {
    for (const kind of Object.keys(KIND_FILES) as CertKind[]) {
      const cert = read(servicePath(service, KIND_FILES[kind].cert));
      if (cert) rows.push(rowOf(service, kind, cert, now, revoked.has(cert.serial)));
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  return sortRows(rows);
}

function sortRows(rows: readonly StatusRow[]): StatusRow[] {
  return [...rows].sort(
    (a, b) =>
      (a.service < b.service ? -1 : a.service > b.service ? 1 : 0) || KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind),
  );
}

const isoSeconds = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A fixed-width text table, one row per certificate, for people. */
export function formatStatusTable(rows: readonly StatusRow[]): string {
  const header = ['SERVICE', 'KIND', 'COMMON NAME', 'SERIAL', 'NOT AFTER', 'DAYS', 'STATUS'];
  const body = sortRows(rows).map((r) => [
    r.service || '-',
    r.kind,
    r.commonName,
    r.serial,
    isoSeconds(r.notAfter),
    String(r.daysToExpiry),
    r.status,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 5 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return `${[header, ...body].map(line).join('\n')}\n`;
}

/** JSON array of rows (dates as ISO-8601), two-space indent, final newline. */
export function formatStatusJson(rows: readonly StatusRow[]): string {
  const out = sortRows(rows).map((r) => ({
    service: r.service,
    kind: r.kind,
    commonName: r.commonName,
    serial: r.serial,
    notBefore: isoSeconds(r.notBefore),
    notAfter: isoSeconds(r.notAfter),
    daysToExpiry: r.daysToExpiry,
    status: r.status,
  }));
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** Prometheus label value escaping (backslash, double quote, newline). */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Prometheus text exposition of `mtls_cert_expiry_days` (the seed's metric, alert below 30),
 * one sample per certificate, sorted; no timestamps, so the same state gives the same text.
 */
export function formatStatusProm(rows: readonly StatusRow[], stack: string): string {
  const lines = [
    '# HELP mtls_cert_expiry_days Days until the certificate expires (negative once expired).',
    '# TYPE mtls_cert_expiry_days gauge',
    ...sortRows(rows).map(
      (r) => `mtls_cert_expiry_days{stack="${label(stack)}",service="${label(r.service)}",kind="${label(r.kind)}"} ${r.daysToExpiry}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
