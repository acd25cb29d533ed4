// `podmesh certs status --format html`: one self-contained page (inline CSS, no script, no network)
// with every certificate and its expiry bar, the revocations of the inventory, and the topology.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { parseInventory } from './inventory.ts';
import { EXPIRY_WARNING_DAYS, type StatusRow } from './status.ts';
import { PKI_PATHS } from './store.ts';
import type { InventoryEntry } from './types.ts';
import type { ResolvedStack } from '../../resolve/model.ts';
import { topologyDiagram } from '../../render/topology.ts';

/** One stack on the dashboard. */
export interface DashboardStack {
  /** Stack name. */
  readonly name: string;
  /** Its certificates, as `readPkiStatus` reads them. */
  readonly rows: readonly StatusRow[];
  /** Revoked serials from the inventory. */
  readonly revocations: readonly InventoryEntry[];
  /**
   * The resolved stack, whose topology diagram (Mermaid source) the page shows as text.
   * @default - no topology section
   */
  readonly resolved?: ResolvedStack;
}

/** Text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** The revoked entries of `stateDir/pki/inventory.json` (none when there is no inventory yet). */
export async function readRevocations(stateDir: string): Promise<InventoryEntry[]> {
  const path = join(stateDir, PKI_PATHS.inventory);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw PodmeshError.at(path, `cannot read the certificate inventory (${(e as NodeJS.ErrnoException).code ?? String(e)}). Give the owner read access.`);
  }
  const inv = parseInventory(text);
  if (typeof inv === 'string') throw PodmeshError.at(path, `the certificate inventory is unusable: ${inv}. Restore it from backup.`);
  return inv.certificates.filter((e) => e.status === 'revoked');
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Share of the lifetime left at `now`, 0-100, one decimal. */
function percentLeft(r: StatusRow, now: Date): number {
  const life = r.notAfter.getTime() - r.notBefore.getTime();
  if (life <= 0) return 0;
  const left = (r.notAfter.getTime() - now.getTime()) / life;
  return Math.round(Math.min(1, Math.max(0, left)) * 1000) / 10;
}

/** Bar color class: bad (revoked, expired, not yet valid, under 30 days), due (past 70%), ok. */
function level(r: StatusRow): 'bad' | 'due' | 'ok' {
  if (r.status === 'revoked' || r.status === 'expired' || r.status === 'not-yet-valid' || r.daysToExpiry < EXPIRY_WARNING_DAYS) return 'bad';
  return r.status === 'renew-due' ? 'due' : 'ok';
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2430;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#5b6472;margin:0 0 16px}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:12px}
th,td{border:1px solid #d9dde3;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#eceff3;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,monospace}
.bar{width:180px;height:12px;background:#e3e6ea;border-radius:3px;overflow:hidden}
.bar>span{display:block;height:100%}
.ok>span{background:#2e9d4f}.due>span{background:#e0a100}.bad>span{background:#d23b3b}
.status-revoked,.status-expired,.status-expiring,.status-not-yet-valid{color:#b42323;font-weight:600}
.status-renew-due{color:#946b00;font-weight:600}
pre{background:#fff;border:1px solid #d9dde3;padding:8px;overflow:auto;font:12px ui-monospace,monospace}
.none{color:#5b6472}
`.trim();

function certTable(rows: readonly StatusRow[], now: Date): string {
  if (rows.length === 0) return '<p class="none">No certificates in the state folder.</p>';
  const body = rows.map((r) => {
    const pct = percentLeft(r, now);
    const cells = [
      `<td>${escapeHtml(r.service || '-')}</td>`,
      `<td>${escapeHtml(r.kind)}</td>`,
      `<td><code>${escapeHtml(r.commonName)}</code></td>`,
      `<td><code>${escapeHtml(r.serial)}</code></td>`,
      `<td>${escapeHtml(iso(r.notAfter))}</td>`,
      `<td class="num">${r.daysToExpiry}</td>`,
      `<td><div class="bar ${level(r)}" title="${pct}% of its lifetime left"><span style="width:${pct}%"></span></div></td>`,
      `<td class="status-${escapeHtml(r.status)}">${escapeHtml(r.status)}</td>`,
    ];
    return `<tr data-service="${escapeHtml(r.service)}" data-kind="${escapeHtml(r.kind)}" data-serial="${escapeHtml(r.serial)}">${cells.join('')}</tr>`;
  });
  return `<table class="certs"><thead><tr><th>Service</th><th>Kind</th><th>Common name</th><th>Serial</th><th>Not after</th><th>Days</th><th>Lifetime left</th><th>Status</th></tr></thead>\n<tbody>\n${body.join('\n')}\n</tbody></table>`;
}

function revocationTable(entries: readonly InventoryEntry[]): string {
  if (entries.length === 0) return '<p class="none">No revoked certificates.</p>';
  const body = entries.map(
    (e) =>
      `<tr><td>${escapeHtml(e.service)}</td><td>${escapeHtml(e.kind)}</td><td><code>${escapeHtml(e.serial)}</code></td><td>${escapeHtml(e.issuer)}</td><td>${escapeHtml(e.revokedAt ?? '?')}</td><td>${escapeHtml(e.reason ?? 'unspecified')}</td></tr>`,
  );
  return `<table class="revocations"><thead><tr><th>Service</th><th>Kind</th><th>Serial</th><th>Issuer</th><th>Revoked at</th><th>Reason</th></tr></thead>\n<tbody>\n${body.join('\n')}\n</tbody></table>`;
}

/**
 * The whole page. Pure: the same stacks and `now` give the same bytes. Every text is escaped;
 * there is no script and no external reference, so it opens offline and under a strict CSP.
 */
export function renderDashboard(stacks: readonly DashboardStack[], now: Date): string {
  const sections = stacks.map((s) => {
    const counts = new Map<string, number>();
    for (const r of s.rows) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    const summary = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${v} ${escapeHtml(k)}`).join(', ') || 'no certificates';
    return [
      `<section class="stack" id="stack-${escapeHtml(s.name)}">`,
      `<h2>${escapeHtml(s.name)}</h2>`,
      `<p class="meta">${s.rows.length} certificates: ${summary}.</p>`,
      '<h3>Certificates</h3>',
      certTable(s.rows, now),
      '<h3>Revocations</h3>',
      revocationTable(s.revocations),
      ...(s.resolved === undefined
        ? []
        : ['<h3>Topology</h3>', '<p class="meta">Mermaid source (paste into any Mermaid viewer, or read TOPOLOGY.md on the forge).</p>', `<pre class="mermaid-source">${escapeHtml(topologyDiagram(s.resolved))}</pre>`]),
      '</section>',
    ].join('\n');
  });
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>podmesh certificates</title>
<style>
${CSS}
</style>
</head>
<body>
<h1>podmesh certificates</h1>
<p class="meta">As of ${escapeHtml(iso(now))}. Bars show the share of each certificate's lifetime left: green, amber once renewal is due (70% of its lifetime), red under ${EXPIRY_WARNING_DAYS} days, expired or revoked.</p>
${sections.join('\n')}
</body>
</html>
`;
}
