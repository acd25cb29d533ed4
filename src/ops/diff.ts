// `podmesh diff`: what a synth would change in `out/` and in the state folder, computed without
// writing anything (the PKI engine in dry-run mode, WireGuard keys planned but not applied).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { App } from '../../constructs/core/app.ts';
import { IssueCollector, PodmeshError } from '../../constructs/core/errors.ts';
import { changed, pruneStacks, writeStackOutput, type WriteReport } from '../io/writer.ts';
import { reconcilePki, type PkiResult } from '../state/pki/index.ts';
import { MANIFEST } from '../render/manifest.ts';
import { contents, renderStack } from '../render/stack.ts';
import { LOCK_FILE } from '../resolve/lock.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import { secretEnvFile } from '../state/secrets/paths.ts';
import { resolveStacks, selectStacks, stacksOf } from '../synth.ts';
import { planWireguardKeys, tunnelHosts, withPublicKeys, type WireguardResult } from '../state/wireguard/index.ts';
import { unifiedDiff } from './unified.ts';

/** Options of {@link diffStacks}. */
export interface DiffOptions {
  /** Output folder. @default 'out' */
  readonly outDir?: string;
  /** State folder. @default '.podmesh' */
  readonly stateDir?: string;
  /** Stacks to compare. @default - every stack of the app */
  readonly stacks?: readonly string[];
  /** Clock for certificate decisions. @default - the current time */
  readonly now?: Date;
}

/** One file of `out/<stack>/` that synth would add, change or remove, with both texts. */
export interface FileDiff {
  readonly path: string;
  readonly change: 'added' | 'modified' | 'removed';
  /** The text in `out/` now ('' when added). */
  readonly before: string;
  /** The text synth would write ('' when removed). */
  readonly after: string;
}

/** What synth would do to one stack. */
export interface StackDiff {
  readonly stack: string;
  readonly report: WriteReport;
  readonly files: readonly FileDiff[];
  /** The PKI engine's dry run. */
  readonly pki: PkiResult;
  /** WireGuard keys synth would create (multi-host stacks only). */
  readonly wireguard?: WireguardResult;
  /** Services whose secret env file synth would create. */
  readonly secrets: readonly string[];
}

/** What synth would do, stack by stack. */
export interface DiffResult {
  readonly stacks: readonly StackDiff[];
  /** Stacks whose whole `out/<stack>/` would be removed. */
  readonly prunedStacks: readonly string[];
  /** True when synth would change anything in `out/` or the state folder. */
  readonly changed: boolean;
}

/** Whether the PKI dry run would write anything (a CA, a certificate, the CRL, a removed folder). */
export function pkiChanges(p: PkiResult): boolean {
  return p.cas.some((c) => c.action !== 'keep') || p.certificates.some((c) => c.action !== 'keep') || p.crl.action !== 'keep' || p.removedServices.length > 0;
}

function wireguardChanges(w: WireguardResult | undefined): boolean {
  return !!w && (w.hosts.some((h) => h.action !== 'keep') || w.presharedKeys.some((p) => p.action !== 'keep'));
}

/** Compares what synth would produce with `out/` and the state folder. Writes nothing. */
export async function diffStacks(app: App, options: DiffOptions = {}): Promise<DiffResult> {
  const outDir = options.outDir ?? 'out';
  const stateDir = options.stateDir ?? '.podmesh';
  const now = options.now ?? new Date();
  const resolved = await resolveStacks(selectStacks(app, options.stacks), outDir);
  const issues = new IssueCollector();
  const stacks: StackDiff[] = [];
  for (const s of resolved) {
    try {
      stacks.push(await diffStack(s, { outDir, stateDir, now }));
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.addAll(e.issues);
    }
  }
  issues.throwIfAny();
  const prunedStacks =
    options.stacks && options.stacks.length > 0 ? [] : await pruneStacks(outDir, new Set(stacksOf(app).map((s) => s.node.id)), MANIFEST, { check: true });
  const any = stacks.some((d) => changed(d.report) || pkiChanges(d.pki) || wireguardChanges(d.wireguard) || d.secrets.length > 0);
  return { stacks, prunedStacks, changed: any || prunedStacks.length > 0 };
}

async function diffStack(s: ResolvedStack, where: { outDir: string; stateDir: string; now: Date }): Promise<StackDiff> {
  const state = join(where.stateDir, s.name);
  const wireguard = s.wireguard
    ? planWireguardKeys({
        stateDir: state,
        stackPath: s.name,
        lockFile: join(where.outDir, s.name, LOCK_FILE),
        hosts: tunnelHosts(s),
        presharedKeys: s.wireguard.presharedKeys,
      }).result
    : undefined;
  const pki = await reconcilePki({ stateDir: state, authority: s.pki.authority, bindings: s.pki.bindings, now: where.now, dryRun: true });
  const secrets = s.services.filter((v) => v.secretEnvironment.length > 0 && !existsSync(join(state, secretEnvFile(v.name)))).map((v) => v.name);
  const rendered = renderStack(withPublicKeys(s, wireguard?.publicKeys ?? {}), where);
  if (rendered.issues.length > 0) throw new PodmeshError(rendered.issues);
  const files = contents(rendered.files);
  const report = await writeStackOutput(where.outDir, s.name, files, { check: true });
  const read = (p: string) => readFile(join(where.outDir, s.name, p), 'utf8');
  const diffs: FileDiff[] = [];
  for (const path of report.added) diffs.push({ path, change: 'added', before: '', after: files.get(path)! });
  for (const path of report.modified) diffs.push({ path, change: 'modified', before: await read(path), after: files.get(path)! });
  for (const path of report.removed) diffs.push({ path, change: 'removed', before: await read(path), after: '' });
  diffs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { stack: s.name, report, files: diffs, pki, ...(wireguard ? { wireguard } : {}), secrets };
}

/** The text `podmesh diff` prints: per stack a summary, unified diffs, then state changes. */
export function formatDiff(result: DiffResult, options: { readonly outDir: string; readonly stateDir: string; readonly color: boolean }): string {
  const out: string[] = [];
  for (const d of result.stacks) {
    const r = d.report;
    out.push(
      changed(r)
        ? `${d.stack}: ${r.added.length} added, ${r.modified.length} modified, ${r.removed.length} removed, ${r.unchanged} unchanged in ${options.outDir}/${d.stack}`
        : `${d.stack}: ${options.outDir}/${d.stack} up to date (${r.unchanged} files)`,
    );
    for (const f of d.files) {
      const name = `${options.outDir}/${d.stack}/${f.path}`;
      out.push(
        unifiedDiff(f.before, f.after, f.change === 'added' ? '/dev/null' : `a${name.startsWith('/') ? '' : '/'}${name}`, f.change === 'removed' ? '/dev/null' : `b${name.startsWith('/') ? '' : '/'}${name}`, { color: options.color }).trimEnd(),
      );
    }
    out.push(...describeState(d, `${options.stateDir}/${d.stack}`));
  }
  for (const s of result.prunedStacks) out.push(`${s}: stack no longer exists; synth would remove ${options.outDir}/${s}`);
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

const VERB = { create: 'issue', renew: 'renew', reissue: 'reissue' } as const;

function describeState(d: StackDiff, state: string): string[] {
  const lines: string[] = [];
  for (const ca of d.pki.cas) if (ca.action === 'create') lines.push(`${d.stack}: would create the ${ca.ca === 'root' ? 'root CA' : 'client CA'} in ${state}/pki`);
  for (const c of d.pki.certificates) {
    if (c.action !== 'keep') lines.push(`${d.stack}: would ${VERB[c.action]} certificate ${c.service}/${c.kind} (${c.reason})`);
  }
  if (d.pki.crl.action !== 'keep') lines.push(`${d.stack}: would ${d.pki.crl.action === 'create' ? 'create' : 're-sign'} the CRL (${d.pki.crl.reason})`);
  for (const s of d.pki.removedServices) lines.push(`${d.stack}: would remove ${state}/pki/services/${s} (no service needs it)`);
  for (const h of d.wireguard?.hosts ?? []) if (h.action !== 'keep') lines.push(`${d.stack}: would ${h.action} the WireGuard key of host ${h.host}`);
  for (const p of d.wireguard?.presharedKeys ?? []) if (p.action !== 'keep') lines.push(`${d.stack}: would ${p.action} the WireGuard preshared key ${p.pair}`);
  for (const s of d.secrets) lines.push(`${d.stack}: would write ${state}/${secretEnvFile(s)}`);
  for (const w of d.pki.warnings) lines.push(`${d.stack}: warning: ${w}`);
  return lines;
}
