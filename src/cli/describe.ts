// What the CLI prints about a synth: pure text from the reports of the writer and the state reconcilers.
import { join } from 'node:path';
import { changed, type WriteReport } from '../io/writer.ts';
import type { PkiResult } from '../state/pki/index.ts';
import type { WireguardResult } from '../state/wireguard/index.ts';
import type { StateReport, SynthResult } from '../synth.ts';

/** One line on what reconcile did to certificates, or '' when it kept everything. */
export function describePki(r: PkiResult): string {
  const count = (a: string) => r.certificates.filter((c) => c.action === a).length;
  const parts = [
    ...r.cas.filter((c) => c.action === 'create').map((c) => `${c.ca === 'root' ? 'root CA' : 'client CA'} created`),
    ...(['create', 'renew', 'reissue'] as const).filter((a) => count(a) > 0).map((a) => `${count(a)} ${a === 'create' ? 'issued' : a === 'renew' ? 'renewed' : 'reissued'}`),
    ...(r.removedServices.length > 0 ? [`${r.removedServices.length} service folders removed`] : []),
    ...(r.crl.action !== 'keep' ? [`CRL ${r.crl.action === 'create' ? 'created' : 're-signed'}`] : []),
  ];
  if (parts.length === 0) return '';
  const details = r.certificates.filter((c) => c.action === 'renew' || c.action === 'reissue').map((c) => `\n  ${c.service}/${c.kind}: ${c.reason}`);
  const kept = count('keep') > 0 ? ` (${count('keep')} kept)` : '';
  return `certificates: ${parts.join(', ')}${kept}${details.join('')}`;
}

/** One line on what reconcile did to WireGuard keys, or '' when it kept them all. */
export function describeWireguard(r: WireguardResult): string {
  const parts: string[] = [];
  for (const action of ['create', 'rotate'] as const) {
    const hosts = r.hosts.filter((h) => h.action === action).map((h) => h.host);
    if (hosts.length > 0) parts.push(`${action === 'create' ? 'created' : 'rotated'} for ${hosts.join(', ')}`);
    const pairs = r.presharedKeys.filter((p) => p.action === action).map((p) => p.pair);
    if (pairs.length > 0) parts.push(`preshared keys ${action === 'create' ? 'created' : 'rotated'} for ${pairs.join(', ')}`);
  }
  if (r.absent) parts.push('none in this state folder: configs rendered from the public keys in the lock; restore the keys (or rotate) before deploying');
  return parts.length === 0 ? '' : `WireGuard keys: ${parts.join('; ')}`;
}

/** What the writer did to (or, with `check`, found in) one stack's `out/` folder. */
export function describeWrite(r: WriteReport, out: string, check: boolean): string {
  if (!changed(r)) return `${r.stack}: up to date (${r.unchanged} files in ${out}/${r.stack})\n`;
  const verb = check ? 'differs' : 'written';
  const lines = [
    ...r.added.map((p) => `  + ${out}/${r.stack}/${p}`),
    ...r.modified.map((p) => `  ~ ${out}/${r.stack}/${p}`),
    ...r.removed.map((p) => `  - ${out}/${r.stack}/${p}`),
  ];
  const summary = `${r.added.length} added, ${r.modified.length} modified, ${r.removed.length} removed, ${r.unchanged} unchanged`;
  return `${r.stack}: ${verb}: ${summary}\n${lines.join('\n')}\n`;
}

/** What reconcile did to each stack's WireGuard keys, and key files it kept although unused. */
export function describeWireguardReports(reports: readonly StateReport[], state: string): string {
  let text = '';
  for (const r of reports) {
    if (!r.wireguard) continue;
    const wg = describeWireguard(r.wireguard);
    if (wg) text += `${r.stack}: ${wg}\n`;
    if (r.wireguard.unused.length > 0) {
      text += `${r.stack}: warning: WireGuard key files of hosts no longer in the stack were kept: ${r.wireguard.unused.map((f) => join(state, r.stack, f)).join(', ')}. Delete them once those hosts are retired.\n`;
    }
  }
  return text;
}

/** The whole report of `podmesh synth`: state changes, warnings, then what was written per stack. */
export function describeSynth(result: SynthResult, o: { readonly out: string; readonly state: string; readonly check: boolean }): string {
  let text = '';
  for (const r of result.state) {
    if (r.leftovers.length > 0) text += `${r.stack}: removed what an interrupted run left in ${o.state}/${r.stack}/: ${r.leftovers.join(', ')}\n`;
    const line = describePki(r.pki);
    if (line) text += `${r.stack}: ${line}\n`;
    for (const w of r.pki.warnings) text += `${r.stack}: warning: ${w}\n`;
    if (r.secrets.created.length > 0) text += `${r.stack}: secrets: generated ${r.secrets.created.join(', ')} (in ${o.state}/${r.stack}/secrets/)\n`;
    if (r.secrets.rotated.length > 0) text += `${r.stack}: secrets: replaced ${r.secrets.rotated.join(', ')} (in ${o.state}/${r.stack}/secrets/)\n`;
  }
  text += describeWireguardReports(result.state, o.state);
  for (const r of result.reports) text += describeWrite(r, o.out, o.check);
  for (const s of result.prunedStacks) {
    text += `${s}: stack no longer exists, ${o.check ? 'out/' + s + ' would be removed' : `removed ${o.out}/${s}`}\n`;
  }
  return text;
}
