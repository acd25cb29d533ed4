// `podmesh diff`: a synth plan formatted for a person: unified diffs of `out/` and the state
// changes (certificates, keys, secrets) synth would make. Planning writes nothing.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { App } from '../../constructs/core/app.ts';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { changed, type WriteReport } from '../io/writer.ts';
import { compare } from '../io/sort.ts';
import { contents } from '../render/stack.ts';
import { describeStateChange, stateChanges, type StateChange } from '../synth/check.ts';
import { planSynth, type StackPlan, type SynthPlan } from '../synth/plan.ts';
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
  /** Changes to the stack's state folder. */
  readonly state: readonly StateChange[];
  /** Warnings of the plan (e.g. a kept CA the stack describes differently). */
  readonly warnings: readonly string[];
}

/** What synth would do, stack by stack. */
export interface DiffResult {
  readonly stacks: readonly StackDiff[];
  /** Stacks whose whole `out/<stack>/` would be removed. */
  readonly prunedStacks: readonly string[];
  /** True when synth would change anything in `out/` or the state folder. */
  readonly changed: boolean;
}

/** Compares what synth would produce with `out/` and the state folder. Writes nothing. */
export async function diffStacks(app: App, options: DiffOptions = {}): Promise<DiffResult> {
  return diffPlan(await planSynth(app, options));
}

/** The differences a plan holds, with the texts of the files it changes. Throws a PodmeshError with every problem of the plan. */
export async function diffPlan(plan: SynthPlan): Promise<DiffResult> {
  if (plan.problems.length > 0) throw new PodmeshError(plan.problems);
  const stacks: StackDiff[] = [];
  for (const p of plan.stacks) stacks.push(await stackDiff(p, plan.outDir));
  const any = stacks.some((d) => changed(d.report) || d.state.length > 0);
  return { stacks, prunedStacks: plan.prunedStacks, changed: any || plan.prunedStacks.length > 0 };
}

async function stackDiff(p: StackPlan, outDir: string): Promise<StackDiff> {
  const report = p.comparison;
  const files = contents(p.files);
  const read = (path: string) => readFile(join(outDir, p.stack, path), 'utf8');
  const diffs: FileDiff[] = [];
  for (const path of report.added) diffs.push({ path, change: 'added', before: '', after: files.get(path)! });
  for (const path of report.modified) diffs.push({ path, change: 'modified', before: await read(path), after: files.get(path)! });
  for (const path of report.removed) diffs.push({ path, change: 'removed', before: await read(path), after: '' });
  diffs.sort((a, b) => compare(a.path, b.path));
  return { stack: p.stack, report, files: diffs, state: stateChanges(p), warnings: p.warnings };
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
      const slash = name.startsWith('/') ? '' : '/';
      out.push(unifiedDiff(f.before, f.after, f.change === 'added' ? '/dev/null' : `a${slash}${name}`, f.change === 'removed' ? '/dev/null' : `b${slash}${name}`, { color: options.color }).trimEnd());
    }
    const state = `${options.stateDir}/${d.stack}`;
    out.push(...d.state.map((c) => describeStateChange(c, state)), ...d.warnings.map((w) => `${d.stack}: warning: ${w}`));
  }
  for (const s of result.prunedStacks) out.push(`${s}: stack no longer exists; synth would remove ${options.outDir}/${s}`);
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
