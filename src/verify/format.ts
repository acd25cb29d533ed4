// The three faces of a verify report: a table for people, JSON lines in the seed's log format, and
// the seed's Prometheus counters.
import type { CheckResult, VerifyReport } from './verify.ts';

const HANDSHAKE_CHECKS = new Set(['allowed', 'no-client-cert', 'not-allowed', 'revoked']);

/** Whether the TLS session was established and used (a refusal by alert, reset or close counts as a failed handshake). */
function handshakeFailed(r: CheckResult): boolean {
  const p = r.probe;
  return !p || !p.handshake || p.verdict !== 'response' || p.httpStatus === 401 || p.httpStatus === 403;
}

/** A fixed-width table with a summary line. */
export function formatVerifyTable(report: VerifyReport): string {
  const head = ['SERVICE', 'CHECK', 'CLIENT', 'EXPECT', 'RESULT', 'DETAIL'];
  const rows = report.results.map((r) => [r.service || '(ca)', r.check, r.client || '-', r.expected, r.status.toUpperCase(), r.detail]);
  const widths = head.slice(0, -1).map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd();
  const passed = report.results.filter((r) => r.status === 'pass').length;
  const skipped = report.results.filter((r) => r.status === 'skip').length;
  const summary = `${report.stack}: ${report.results.length} checks: ${passed} as expected, ${report.failures} unexpected, ${report.warnings} warnings${skipped ? `, ${skipped} skipped` : ''}`;
  return `${[line(head), ...rows.map(line)].join('\n')}\n${summary}\n`;
}

/** One JSON object per check, in the seed's logging format plus what verify expected and saw. */
export function formatVerifyJson(report: VerifyReport, now: Date = new Date()): string {
  const timestamp = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return report.results
    .map((r) => {
      const p = r.probe;
      const event = HANDSHAKE_CHECKS.has(r.check)
        ? handshakeFailed(r)
          ? 'mtls_handshake_failed'
          : 'mtls_handshake_complete'
        : r.check === 'dns'
          ? 'dns_resolution'
          : r.check === 'public-tls'
            ? r.status === 'pass'
              ? 'tls_handshake_complete'
              : 'tls_handshake_failed'
            : r.check === 'ocsp'
              ? 'ocsp_status'
              : 'mtls_cert_expiry';
      const line = {
        timestamp,
        level: r.status === 'fail' ? 'error' : r.status === 'warn' ? 'warn' : 'info',
        service: r.serviceName,
        event,
        client_cn: r.clientCn,
        server_cn: r.serverCn,
        tls_version: p?.tlsVersion ?? null,
        cipher_suite: p?.cipherSuite ?? null,
        stack: report.stack,
        target: r.service,
        check: r.check,
        client: r.client,
        expected: r.expected,
        result: r.status,
        http_status: p?.httpStatus ?? null,
        error: p?.error ?? null,
        detail: r.detail,
      };
      return `${JSON.stringify(line)}\n`;
    })
    .join('');
}

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * The seed's `mtls_handshake_total` and `mtls_handshake_failures` counters (one sample per server,
 * client and check), `mtls_revoked_connections` (revoked certificates a server accepted: must be 0),
 * and `podmesh_verify_unexpected` (checks not as expected).
 */
export function formatVerifyProm(report: VerifyReport): string {
  const s = label(report.stack);
  const lines = [
    '# HELP mtls_handshake_total mTLS handshakes attempted by podmesh verify.',
    '# TYPE mtls_handshake_total counter',
  ];
  const probes = report.results.filter((r) => HANDSHAKE_CHECKS.has(r.check) && r.probe);
  const key = (r: CheckResult) => `stack="${s}",service="${label(r.service)}",client="${label(r.client || 'none')}",check="${r.check}"`;
  for (const r of probes) lines.push(`mtls_handshake_total{${key(r)}} 1`);
  lines.push('# HELP mtls_handshake_failures mTLS handshakes refused or failed (expected for no-client-cert, not-allowed and revoked).', '# TYPE mtls_handshake_failures counter');
  for (const r of probes) lines.push(`mtls_handshake_failures{${key(r)}} ${handshakeFailed(r) ? 1 : 0}`);
  lines.push('# HELP mtls_revoked_connections Connections a server accepted with a revoked client certificate.', '# TYPE mtls_revoked_connections gauge');
  const services = [...new Set(report.results.filter((r) => r.check !== 'expiry').map((r) => r.service))];
  for (const svc of services) {
    const accepted = probes.filter((r) => r.service === svc && r.check === 'revoked' && !handshakeFailed(r)).length;
    lines.push(`mtls_revoked_connections{stack="${s}",service="${label(svc)}"} ${accepted}`);
  }
  lines.push('# HELP podmesh_verify_unexpected Checks of podmesh verify whose result was not the expected one.', '# TYPE podmesh_verify_unexpected gauge');
  lines.push(`podmesh_verify_unexpected{stack="${s}"} ${report.failures}`);
  return `${lines.join('\n')}\n`;
}
