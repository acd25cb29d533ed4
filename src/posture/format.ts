// `podmesh audit` output: a table a person reads, or JSON for tools.
import type { PostureReport } from './check.ts';

/** One table per stack: control, service, status, and the waiver's reason or what was found. */
export function formatAuditTable(reports: readonly PostureReport[]): string {
  const parts: string[] = [];
  for (const r of reports) {
    const head = ['CONTROL', 'SERVICE', 'STATUS', 'WAIVER REASON / FINDING'];
    const body = r.rows.map((row) => [
      row.control,
      row.service,
      row.status,
      row.status === 'waived' || row.reason ? `${row.waivedBy === 'preset' ? '(preset) ' : ''}${row.reason}` : row.detail,
    ]);
    const widths = head.slice(0, 3).map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (cells: readonly string[]) => `${cells.slice(0, 3).map((c, i) => c.padEnd(widths[i]!)).join('  ')}  ${cells[3]}`.trimEnd();
    parts.push(
      `${r.stack}: ${r.counts.pass} pass, ${r.counts.waived} waived, ${r.counts.fail} fail\n${[head, ...body].map(line).join('\n')}\n`,
    );
  }
  return parts.join('\n');
}

/** `{ "stacks": [ { stack, counts, rows } ] }`, keys in a fixed order. */
export function formatAuditJson(reports: readonly PostureReport[]): string {
  return `${JSON.stringify({ stacks: reports }, null, 2)}\n`;
}
