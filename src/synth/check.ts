// `synth --check`: a plan compared with `out/` and the state folder; out/ decides the exit code.
import { PodmeshError } from '../../constructs/core/errors.ts';
import { changed, type WriteReport } from '../io/writer.ts';
import type { StackPlan, SynthPlan } from './plan.ts';
import type { PkiResult } from '../state/pki/index.ts';
import type { SecretsResult } from '../state/secrets/reconcile.ts';
import type { WireguardResult } from '../state/wireguard/index.ts';

/** One change synth would make to a stack's state folder, as data. */
export type StateChange =
  | { readonly stack: string; readonly what: 'ca'; readonly ca: 'root' | 'client-ca' }
  | { readonly stack: string; readonly what: 'certificate'; readonly service: string; readonly kind: string; readonly action: 'create' | 'renew' | 'reissue'; readonly reason: string }
  | { readonly stack: string; readonly what: 'crl'; readonly action: 'create' | 'resign'; readonly reason: string }
  | { readonly stack: string; readonly what: 'service-folder'; readonly service: string }
  | { readonly stack: string; readonly what: 'wireguard-key'; readonly host: string; readonly action: 'create' | 'rotate' }
  | { readonly stack: string; readonly what: 'preshared-key'; readonly pair: string; readonly action: 'create' | 'rotate' }
  | { readonly stack: string; readonly what: 'secret-file'; readonly path: string; readonly action: 'write' | 'remove' }
  | { readonly stack: string; readonly what: 'leftover'; readonly path: string };

/** What `--check` finds: `out/` differences (the exit code) and the state changes synth would make. */
export interface CheckResult {
  readonly reports: readonly WriteReport[];
  readonly prunedStacks: readonly string[];
  readonly stateChanges: readonly StateChange[];
  /** True when `out/` differs from what synth produces: `--check` exits 1. */
  readonly stale: boolean;
}

/** Every state change of one stack's plan, in a fixed order (PKI, WireGuard, secrets). */
export function stateChanges(p: StackPlan): StateChange[] {
  const st = p.state;
  if (!st) return [];
  return changesOf(p.stack, { pki: st.pki.result, secrets: st.secrets.result, ...(st.wireguard ? { wireguard: st.wireguard.result } : {}), leftovers: st.leftovers });
}

/** The state changes in the reconcilers' results: a plan's (what synth would do) or an apply's report (what it did). */
export function changesOf(stack: string, r: { readonly pki: PkiResult; readonly wireguard?: WireguardResult; readonly secrets: SecretsResult; readonly leftovers: readonly string[] }): StateChange[] {
  const out: StateChange[] = r.leftovers.map((path) => ({ stack, what: 'leftover', path }));
  for (const ca of r.pki.cas) if (ca.action === 'create') out.push({ stack, what: 'ca', ca: ca.ca });
  for (const c of r.pki.certificates) {
    if (c.action !== 'keep') out.push({ stack, what: 'certificate', service: c.service, kind: c.kind, action: c.action, reason: c.reason });
  }
  if (r.pki.crl.action !== 'keep') out.push({ stack, what: 'crl', action: r.pki.crl.action, reason: r.pki.crl.reason });
  for (const s of r.pki.removedServices) out.push({ stack, what: 'service-folder', service: s });
  for (const h of r.wireguard?.hosts ?? []) if (h.action !== 'keep') out.push({ stack, what: 'wireguard-key', host: h.host, action: h.action });
  for (const k of r.wireguard?.presharedKeys ?? []) if (k.action !== 'keep') out.push({ stack, what: 'preshared-key', pair: k.pair, action: k.action });
  for (const path of r.secrets.written) out.push({ stack, what: 'secret-file', path, action: 'write' });
  for (const path of r.secrets.removed) out.push({ stack, what: 'secret-file', path, action: 'remove' });
  return out;
}

/** The line `podmesh diff` and `synth --check` print for a state change; `state` is the stack's state folder as shown. */
export function describeStateChange(c: StateChange, state: string): string {
  const verb = { create: 'issue', renew: 'renew', reissue: 'reissue' } as const;
  switch (c.what) {
    case 'ca':
      return `${c.stack}: would create the ${c.ca === 'root' ? 'root CA' : 'client CA'} in ${state}/pki`;
    case 'certificate':
      return `${c.stack}: would ${verb[c.action]} certificate ${c.service}/${c.kind} (${c.reason})`;
    case 'crl':
      return `${c.stack}: would ${c.action === 'create' ? 'create' : 're-sign'} the CRL (${c.reason})`;
    case 'service-folder':
      return `${c.stack}: would remove ${state}/pki/services/${c.service} (no service needs it)`;
    case 'wireguard-key':
      return `${c.stack}: would ${c.action} the WireGuard key of host ${c.host}`;
    case 'preshared-key':
      return `${c.stack}: would ${c.action} the WireGuard preshared key ${c.pair}`;
    case 'secret-file':
      return `${c.stack}: would ${c.action} ${state}/${c.path}`;
    case 'leftover':
      return `${c.stack}: would remove ${state}/${c.path}, left by an interrupted run`;
  }
}

/** Compares a plan with `out/` and the state folder. Throws a PodmeshError with every problem of the plan. */
export function checkPlan(plan: SynthPlan): CheckResult {
  if (plan.problems.length > 0) throw new PodmeshError(plan.problems);
  const reports = plan.stacks.map((s) => s.comparison);
  return {
    reports,
    prunedStacks: plan.prunedStacks,
    stateChanges: plan.stacks.flatMap(stateChanges),
    stale: reports.some(changed) || plan.prunedStacks.length > 0,
  };
}
