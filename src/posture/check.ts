// The posture check: every container of a resolved stack judged by every control; a violation
// without a waiver is a problem at the service's construct path, with the fix.
import type { Issue } from '../../constructs/core/errors.ts';
import type { PostureControlId, ResolvedStack } from '../resolve/model.ts';
import { POSTURE_CONTROLS } from './controls.ts';

/** One line of the audit: a control on one container. */
export interface PostureRow {
  readonly control: PostureControlId;
  readonly service: string;
  readonly host: string;
  readonly status: 'pass' | 'waived' | 'fail';
  /** What was found. */
  readonly detail: string;
  /** The waiver's reason, for `waived`. */
  readonly reason?: string;
  /** Who wrote the waiver: the stack, or the preset for its image's needs. */
  readonly waivedBy?: 'stack' | 'preset';
}

/** The audit of one stack. */
export interface PostureReport {
  readonly stack: string;
  /** By service (stack order), then control (table order). */
  readonly rows: readonly PostureRow[];
  readonly counts: { readonly pass: number; readonly waived: number; readonly fail: number };
}

/** Judges every container of the stack. */
export function auditStack(stack: ResolvedStack): PostureReport {
  const rows: PostureRow[] = [];
  // A sidecar is a container of its own, judged under `<service>-sidecar`.
  const containers = stack.services.flatMap((s) => [s, ...(s.sidecar ? [{ ...s, name: sidecarName(s.name), user: '0:0', security: s.sidecar.security }] : [])]);
  for (const s of containers) {
    for (const c of POSTURE_CONTROLS) {
      const finding = c.judge(s);
      const waiver = s.security.waivers[c.id];
      const status = finding.ok ? 'pass' : waiver ? 'waived' : 'fail';
      // A waiver is reported wherever it is written, so one that is no longer needed shows up too.
      rows.push({ control: c.id, service: s.name, host: s.host, status, detail: finding.detail, ...(waiver ? { reason: waiver.reason, waivedBy: waiver.by } : {}) });
    }
  }
  const count = (st: PostureRow['status']) => rows.filter((r) => r.status === st).length;
  return { stack: stack.name, rows, counts: { pass: count('pass'), waived: count('waived'), fail: count('fail') } };
}

/** The name a service's sidecar has in the audit (its compose service's name). */
function sidecarName(service: string): string {
  return `${service}-sidecar`;
}

/**
 * The failures of a stack as problems: ``[ashchan-dev/auth] posture: root filesystem read-only
 * (CIS 5.13) fails: the root filesystem is writable. Fix: … or relax it with
 * security.writableRootFilesystem: { reason: "…" }.``
 */
export function postureProblems(stack: ResolvedStack): Issue[] {
  const report = auditStack(stack);
  const pathOf = new Map(stack.services.flatMap((s) => [[s.name, s.path], ...(s.sidecar ? [[sidecarName(s.name), s.path] as const] : [])]));
  return report.rows
    .filter((r) => r.status === 'fail')
    .map((r) => {
      const c = POSTURE_CONTROLS.find((x) => x.id === r.control)!;
      return {
        path: pathOf.get(r.service)!,
        message: `posture: ${c.title} (${c.refs.join(', ')}) fails: ${r.detail}. Fix: ${c.fix}, or write ${c.waiver}: { reason: "…" } saying why it cannot hold.`,
      };
    });
}
