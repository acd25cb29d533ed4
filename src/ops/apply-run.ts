// Carrying out an apply plan (folders, files, removals, systemctl through an injected runner, the
// record of installed files) and the texts of its dry run and its result.
import { chmod, mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeAtomic } from '../io/atomic.ts';
import { compare } from '../io/sort.ts';
import { MODE } from '../layout.ts';
import { APPLIED_MANIFEST, APPLIED_SHA256, octal, type AppliedManifest, type ApplyPlan, type PlannedCommand } from './apply-types.ts';

/** Runs one command (argv[0] is `systemctl`); injected so tests record instead of running. */
export type CommandRunner = (argv: readonly string[]) => Promise<void>;

/** What an apply did; `failed` set when it stopped. */
export interface ApplyResult {
  readonly done: readonly string[];
  readonly failed?: { readonly step: string; readonly error: string };
  readonly notDone: readonly string[];
  /** Commands not run because no runner was given (`--no-systemctl`): the operator runs them. */
  readonly skipped: readonly PlannedCommand[];
  /** Commands for the running system, not run because the root is not it: run on the host once the root is live. */
  readonly deferred: readonly PlannedCommand[];
}

const serialize = (m: AppliedManifest) => {
  const files = Object.fromEntries(Object.entries(m.files).sort(([a], [b]) => compare(a, b)));
  return `${JSON.stringify({ ...m, files }, null, 2)}\n`;
};

/**
 * Carries out a plan: folders, a manifest recording the union of old and new files and the
 * commands still due, stops, writes, removals, the final manifest, then daemon-reload and
 * restarts; the manifest's pending commands are cleared last. Stops at the first failure; running
 * apply again finishes the job (files are compared again, pending commands are kept).
 * @param runner runs systemctl; undefined skips the commands (they are returned in `skipped`)
 */
export async function executeApply(plan: ApplyPlan, runner: CommandRunner | undefined): Promise<ApplyResult> {
  if (!plan.changed) return { done: [], notDone: [], skipped: [], deferred: [] };
  const at = (p: string) => join(plan.root, p);
  const manifestAbs = at(`${plan.hostRoot}/${APPLIED_MANIFEST}`);
  const pending = plan.pending;
  const list = stepList(plan.live, runner);
  const { steps, run, command } = list;
  for (const d of plan.dirs) {
    steps.push({
      name: `${d.action === 'create' ? 'mkdir' : 'chmod'} ${octal(d.mode)} ${d.path}`,
      run: async () => {
        await mkdir(at(d.path), { recursive: true, mode: d.mode });
        await chmod(at(d.path), d.mode);
      },
    });
  }
  const union: AppliedManifest = { ...plan.manifest, files: { ...(plan.previous?.files ?? {}), ...plan.manifest.files }, pending };
  steps.push({
    name: `record ${plan.hostRoot}/${APPLIED_MANIFEST} (files and pending commands)`,
    run: async () => {
      await mkdir(dirname(manifestAbs), { recursive: true, mode: MODE.dir });
      await writeAtomic(manifestAbs, serialize(union), MODE.secret);
    },
  });
  plan.before.forEach(command);
  for (const w of plan.writes) {
    steps.push({
      name: `${w.action === 'chmod' ? 'chmod' : 'write'} ${octal(w.mode)} ${w.path}`,
      run: async () => (w.action === 'chmod' ? chmod(at(w.path), w.mode) : writeAtomic(at(w.path), plan.contents.get(w.path)!, w.mode)),
    });
  }
  // Empty-folder cleanup stays inside the host root, and keeps the WireGuard folder (rootful hosts have it there).
  const stops = new Set(plan.ownDirs.map(at));
  for (const p of plan.removes) {
    steps.push({
      name: `remove ${p}`,
      run: async () => {
        await rm(at(p), { force: true });
        // Empty folders left behind (a removed service's config or certificates) go too.
        for (let dir = dirname(at(p)); !stops.has(dir) && dir.startsWith(at(plan.hostRoot) + '/'); dir = dirname(dir)) {
          if ((await readdir(dir)).length > 0) break;
          await rmdir(dir);
        }
      },
    });
  }
  steps.push({
    name: `record ${plan.hostRoot}/${APPLIED_MANIFEST} and ${APPLIED_SHA256}`,
    run: async () => {
      await writeAtomic(manifestAbs, serialize({ ...plan.manifest, pending }), MODE.secret);
      await writeAtomic(at(`${plan.hostRoot}/${APPLIED_SHA256}`), plan.sha256List, MODE.secret);
    },
  });
  plan.offline.forEach(run);
  plan.after.forEach(command);
  steps.push({ name: `clear pending commands in ${plan.hostRoot}/${APPLIED_MANIFEST}`, run: () => writeAtomic(manifestAbs, serialize(plan.manifest), MODE.secret) });
  return runSteps(list);
}

/** One named step of an apply or a remove. */
interface Step {
  readonly name: string;
  readonly run: () => Promise<void>;
}

/** The steps of a run, and where its commands go. */
export interface StepList {
  readonly steps: Step[];
  /** Not run: no runner (`--no-systemctl`). */
  readonly skipped: PlannedCommand[];
  /** Not run: the root is not the running system. */
  readonly deferred: PlannedCommand[];
  /** A command that runs wherever apply runs (`systemctl --root=DIR`): a step, or skipped without a runner. */
  readonly run: (c: PlannedCommand) => void;
  /** A command for the running system: as {@link run} when the root is live, else deferred. */
  readonly command: (c: PlannedCommand) => void;
}

/** An empty step list whose commands go to `runner`, when there is one and (for the running system's commands) the root is `live`. */
export function stepList(live: boolean, runner: CommandRunner | undefined): StepList {
  const steps: Step[] = [];
  const skipped: PlannedCommand[] = [];
  const deferred: PlannedCommand[] = [];
  const run = (c: PlannedCommand) => {
    if (!runner) skipped.push(c);
    else steps.push({ name: `run ${c.argv.join(' ')}`, run: () => runner(c.argv) });
  };
  // Under a root that is not the running system nothing touches the running system.
  const command = (c: PlannedCommand) => (live ? run(c) : void deferred.push(c));
  return { steps, skipped, deferred, run, command };
}

/** Runs the steps in order; stops at the first failure, reporting what was and was not done. */
export async function runSteps(list: StepList): Promise<ApplyResult> {
  const { steps, skipped, deferred } = list;
  const done: string[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    try {
      await step.run();
      done.push(step.name);
    } catch (e) {
      const error = (e as { shortMessage?: string }).shortMessage ?? (e as Error).message;
      return { done, failed: { step: step.name, error }, notDone: steps.slice(i + 1).map((s) => s.name), skipped, deferred };
    }
  }
  return { done, notDone: [], skipped, deferred };
}

/** The dry-run text: folders, files with modes, removals and commands, in the order they happen. */
export function formatPlan(plan: ApplyPlan): string {
  const where = plan.root === '/' ? '' : ` under ${plan.root}`;
  const head = `${plan.stack}/${plan.host}: ${plan.rootless ? 'rootless' : 'rootful'}, host root ${plan.hostRoot}${where}${plan.firstInstall ? ' (first install)' : ''}`;
  if (!plan.changed) return `${head}: up to date, nothing to do\n`;
  // Under a root that is not the running system the live commands are for later, on the host.
  const live = (c: PlannedCommand) => `  ${plan.live ? 'run  ' : 'later'} ${c.argv.join(' ')}    # ${c.why}${plan.live ? '' : ' (on the host, once this root is live)'}`;
  const lines = [
    `${head}:`,
    ...plan.dirs.map((d) => `  ${d.action === 'create' ? 'mkdir' : 'chmod'} ${octal(d.mode)} ${d.path}`),
    ...plan.before.map(live),
    ...plan.writes.map((w) => `  ${w.action === 'chmod' ? 'chmod' : 'write'} ${octal(w.mode)} ${w.path}${w.action === 'chmod' ? '' : `    # ${w.action === 'create' ? 'new' : 'changed'}, from ${w.source}`}`),
    ...plan.removes.map((p) => `  remove     ${p}    # no longer generated`),
    ...(plan.sha256ListStale ? [`  write 0600 ${plan.hostRoot}/${APPLIED_SHA256}    # checksums of the installed files, for the daily drift check`] : []),
    ...plan.offline.map((c) => `  run   ${c.argv.join(' ')}    # ${c.why}`),
    ...plan.after.map(live),
  ];
  return `${lines.join('\n')}\n`;
}

/** The report of a run: what was done, and on failure what was not, and how to finish. */
export function formatResult(plan: ApplyPlan, r: ApplyResult): string {
  const lines: string[] = [];
  if (!plan.changed) return '';
  if (r.failed) {
    lines.push(`${plan.stack}/${plan.host}: apply FAILED at: ${r.failed.step}: ${r.failed.error}`);
    lines.push('  applied:', ...r.done.map((s) => `    ✓ ${s}`));
    lines.push('  not applied:', `    ✗ ${r.failed.step}`, ...r.notDone.map((s) => `    ✗ ${s}`));
    lines.push(`  Fix the cause and run the same podmesh apply again: it compares every file again and keeps the pending restarts in ${plan.hostRoot}/${APPLIED_MANIFEST}.`);
  } else {
    lines.push(`${plan.stack}/${plan.host}: applied: ${plan.writes.length} files written, ${plan.removes.length} removed, ${r.done.filter((s) => s.startsWith('run ')).length} commands run`);
  }
  if (r.skipped.length > 0) lines.push('  --no-systemctl: run these yourself:', ...r.skipped.map((c) => `    ${c.argv.join(' ')}`));
  if (r.deferred.length > 0) lines.push(`  ${plan.root} is not the running system: run these on the host once this root is live:`, ...r.deferred.map((c) => `    ${c.argv.join(' ')}`));
  return `${lines.join('\n')}\n`;
}
