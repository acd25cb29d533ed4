// The health gate of `podmesh apply`: which units an apply restarted or started, waiting (bounded)
// until systemd says each is up and its container healthy, and otherwise putting the previous files
// back from a snapshot taken before anything was written, then restarting again. Every process it
// asks something of goes through an injected query, and time through an injected clock.
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, rm, rmdir, symlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { writeAtomic } from '../io/atomic.ts';
import { compare } from '../io/sort.ts';
import type { ResolvedHost, ResolvedStack } from '../resolve/model.ts';
import type { ApplyResult, CommandRunner } from './apply-run.ts';
import { APPLIED_MANIFEST, APPLIED_SHA256, octal, type ApplyPlan } from './apply-types.ts';

/** What a query printed and how it exited. */
export interface QueryResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr?: string;
}

/** Runs one read-only command (`systemctl show`, `podman inspect`, `journalctl`) and returns its output; injected so tests answer instead. */
export type CommandQuery = (argv: readonly string[]) => Promise<QueryResult>;

/** Time, injected so tests do not wait. */
export interface Clock {
  /** Milliseconds since some fixed point. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/** The wall clock. */
export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** How often the gate asks again. */
export const POLL_MS = 1000;

/** A unit the gate waits for, and its container when that has a health check. */
export interface WatchedUnit {
  readonly unit: string;
  /** Container name (Quadlet `ContainerName=`), set when the service has a health check. */
  readonly container?: string;
}

/** What the gate checks for one apply. */
export interface HealthSpec {
  /** `systemctl` or `systemctl --user`. */
  readonly systemctl: readonly string[];
  /** `journalctl` or `journalctl --user`. */
  readonly journalctl: readonly string[];
  /** In the order the apply started them. */
  readonly units: readonly WatchedUnit[];
}

/**
 * The units an apply restarted, reloaded or started: the restart set, or on a first install the
 * target and every unit of the installed unit files. Container names come from the resolved stack.
 */
export function healthSpec(plan: ApplyPlan, stack: Pick<ResolvedStack, 'services' | 'hosts'>): HealthSpec {
  const host: ResolvedHost = stack.hosts.find((h) => h.name === plan.host)!;
  const containers = new Map(stack.services.filter((s) => s.host === host.name && s.healthcheck).map((s) => [s.unit.service, s.containerName]));
  const names = plan.pending.enable
    ? [host.install.target, ...[...new Set(Object.values(plan.manifest.files).flatMap((f) => (f.unitFile ? f.units : [])))].sort(compare)]
    : [...plan.pending.restart];
  const units = names.map((unit) => (containers.has(unit) ? { unit, container: containers.get(unit)! } : { unit }));
  return { systemctl: host.install.systemctl, journalctl: host.rootless ? ['journalctl', '--user'] : ['journalctl'], units };
}

/**
 * `systemctl show` output as a map: one `Name=value` line per property (systemd prints a property
 * only when its value is non-empty, unless `--all`), split at the first `=`.
 * @see https://github.com/systemd/systemd/blob/main/src/shared/bus-print-properties.c bus_print_property_value
 */
export function parseSystemctlShow(stdout: string): Record<string, string> {
  const props: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) props[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return props;
}

/** A unit's standing: up, still coming (keep waiting), or failed (stop waiting). */
export interface Verdict {
  readonly state: 'up' | 'waiting' | 'failed';
  readonly detail: string;
}

/** The properties the gate asks systemd for. */
export const SHOW_PROPERTIES = ['LoadState', 'ActiveState', 'SubState', 'Result', 'Type'] as const;

/**
 * Judges a unit from its `systemctl show` properties: active is up; a `Type=oneshot` unit without
 * `RemainAfterExit=` that ran is inactive with `Result=success`, also up; failed, not loaded, or
 * inactive with another result is failed; anything else (activating, auto-restart, reloading) waits.
 */
export function unitVerdict(p: Readonly<Record<string, string>>): Verdict {
  const active = p.ActiveState;
  const sub = p.SubState ? ` (${p.SubState})` : '';
  const result = p.Result ? `, Result=${p.Result}` : '';
  if (p.LoadState !== undefined && p.LoadState !== 'loaded') return { state: 'failed', detail: `not loaded (LoadState=${p.LoadState})` };
  if (active === 'active') return { state: 'up', detail: `active${sub}` };
  if (active === 'failed') return { state: 'failed', detail: `failed${sub}${result}` };
  if (active === 'inactive') {
    if (p.Result !== undefined && p.Result !== 'success') return { state: 'failed', detail: `inactive${sub}${result}` };
    if (p.Type === 'oneshot') return { state: 'up', detail: `ran (oneshot, inactive${sub}${result})` };
    return { state: 'waiting', detail: `inactive${sub}${result}` };
  }
  if (active === undefined) return { state: 'waiting', detail: 'systemctl show printed no ActiveState' };
  return { state: 'waiting', detail: `${active}${sub}${result}` };
}

/** Judges `podman inspect --format {{.State.Health.Status}}` (healthy, unhealthy, starting, or empty without a health check). */
export function containerVerdict(container: string, r: QueryResult): Verdict {
  if (r.exitCode !== 0) return { state: 'waiting', detail: `container ${container}: ${firstLine(r.stderr || r.stdout) || `podman inspect exited ${r.exitCode}`}` };
  const status = r.stdout.trim();
  if (status === 'healthy') return { state: 'up', detail: `container ${container} healthy` };
  if (status === 'unhealthy') return { state: 'failed', detail: `container ${container} unhealthy` };
  if (status === '') return { state: 'up', detail: `container ${container} reports no health check` };
  return { state: 'waiting', detail: `container ${container} ${status}` };
}

const firstLine = (s: string | undefined) => (s ?? '').trim().split('\n')[0] ?? '';

/** One unit's last verdict, with the end of its journal when it did not come up. */
export interface UnitHealth extends WatchedUnit {
  readonly verdict: Verdict;
  readonly journal?: readonly string[];
}

/** What waiting found. */
export interface HealthReport {
  readonly ok: boolean;
  /** Every unit was still waiting (none failed) when the time ran out. */
  readonly timedOut: boolean;
  readonly seconds: number;
  readonly units: readonly UnitHealth[];
}

/** The queries the gate runs for a unit: its systemd state, then its container's health once active. */
async function check(spec: HealthSpec, u: WatchedUnit, query: CommandQuery): Promise<Verdict> {
  const shown = await query([...spec.systemctl, 'show', `--property=${SHOW_PROPERTIES.join(',')}`, u.unit]);
  if (shown.exitCode !== 0) return { state: 'waiting', detail: `systemctl show exited ${shown.exitCode}: ${firstLine(shown.stderr)}` };
  const unit = unitVerdict(parseSystemctlShow(shown.stdout));
  if (unit.state !== 'up' || !u.container) return unit;
  const health = containerVerdict(u.container, await query(['podman', 'inspect', '--type', 'container', '--format', '{{.State.Health.Status}}', u.container]));
  return { state: health.state, detail: `${unit.detail}, ${health.detail}` };
}

/** Lines of a unit's journal shown in a failure report. */
const JOURNAL_LINES = 10;

/**
 * Waits until every watched unit is up, one has failed, or `timeoutSeconds` have passed, asking
 * every {@link POLL_MS} (so at most timeout/poll + 1 rounds). A unit once up is not asked again.
 * With a timeout of 0 it asks once. Units that did not come up get the end of their journal.
 */
export async function waitForHealth(spec: HealthSpec, query: CommandQuery, clock: Clock, timeoutSeconds: number): Promise<HealthReport> {
  const start = clock.now();
  const deadline = start + timeoutSeconds * 1000;
  const verdicts = new Map<string, Verdict>();
  const rounds = Math.ceil((timeoutSeconds * 1000) / POLL_MS) + 1;
  let failed = false;
  for (let round = 0; round < rounds; round++) {
    for (const u of spec.units) {
      if (verdicts.get(u.unit)?.state === 'up') continue;
      const v = await check(spec, u, query);
      verdicts.set(u.unit, v);
      if (v.state === 'failed') failed = true;
    }
    if (failed || spec.units.every((u) => verdicts.get(u.unit)!.state === 'up')) break;
    const left = deadline - clock.now();
    if (left <= 0) break;
    await clock.sleep(Math.min(POLL_MS, left));
  }
  const ok = spec.units.every((u) => verdicts.get(u.unit)?.state === 'up');
  const units: UnitHealth[] = [];
  for (const u of spec.units) {
    const verdict = verdicts.get(u.unit) ?? { state: 'waiting' as const, detail: 'not asked' };
    if (verdict.state === 'up') {
      units.push({ ...u, verdict });
      continue;
    }
    const j = await query([...spec.journalctl, '-u', u.unit, '-n', String(JOURNAL_LINES), '--no-pager', '-o', 'cat']);
    const journal = j.exitCode === 0 ? j.stdout.split('\n').filter((l) => l.trim() !== '').slice(-JOURNAL_LINES) : [];
    units.push({ ...u, verdict, ...(journal.length > 0 ? { journal } : {}) });
  }
  return { ok, timedOut: !ok && !failed, seconds: Math.round((clock.now() - start) / 1000), units };
}

/** A path as it was before the apply. */
type Before = { readonly kind: 'file'; readonly content: Buffer; readonly mode: number } | { readonly kind: 'symlink'; readonly target: string } | { readonly kind: 'absent' };

/**
 * The previous bytes and modes of every file an apply writes or removes (the applied manifest
 * and its checksum list included), and the folders above them: whether each existed, and its mode. Held in memory only:
 * it holds private keys and secrets, which must not gain another copy on disk.
 */
export interface Snapshot {
  readonly files: ReadonlyMap<string, Before>;
  /** Host path → mode, or undefined when the folder did not exist. */
  readonly dirs: ReadonlyMap<string, number | undefined>;
}

/** Reads, under the plan's root, everything the plan will change; writes nothing. */
export function takeSnapshot(plan: ApplyPlan): Snapshot {
  const at = (p: string) => join(plan.root, p);
  const records = [`${plan.hostRoot}/${APPLIED_MANIFEST}`, `${plan.hostRoot}/${APPLIED_SHA256}`];
  const paths = [...new Set([...plan.writes.map((w) => w.path), ...plan.removes, ...records])].sort(compare);
  const files = new Map<string, Before>();
  for (const p of paths) {
    const st = lstatOrUndefined(at(p));
    if (st?.isFile()) files.set(p, { kind: 'file', content: readFileSync(at(p)), mode: st.mode & 0o7777 });
    else if (st?.isSymbolicLink()) files.set(p, { kind: 'symlink', target: readlinkSync(at(p)) });
    else files.set(p, { kind: 'absent' });
  }
  const dirs = new Map<string, number | undefined>();
  const note = (dir: string) => {
    for (let d = dir; d !== '/' && !dirs.has(d); d = posix.dirname(d)) {
      const st = lstatOrUndefined(at(d));
      dirs.set(d, st?.isDirectory() ? st.mode & 0o7777 : undefined);
    }
  };
  for (const p of paths) note(posix.dirname(p));
  for (const d of plan.dirs) note(d.path);
  return { files, dirs };
}

function lstatOrUndefined(abs: string) {
  try {
    return lstatSync(abs);
  } catch {
    return undefined;
  }
}

/** What a rollback did, step by step, and the steps that failed. */
export interface Rollback {
  readonly done: readonly string[];
  readonly errors: readonly string[];
}

const depth = (p: string) => p.split('/').length;

/**
 * Puts the snapshot back: folders that went (pruned) come back with their modes, files get their
 * previous bytes and modes, files the apply created are removed, folders it created are removed
 * when empty, changed folder modes are restored. Goes on past a failing step and reports it.
 */
export async function restoreSnapshot(plan: ApplyPlan, snap: Snapshot): Promise<Rollback> {
  const at = (p: string) => join(plan.root, p);
  const done: string[] = [];
  const errors: string[] = [];
  const step = async (name: string, run: () => Promise<boolean>) => {
    try {
      if (await run()) done.push(name);
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  };
  const dirs = [...snap.dirs].sort(([a], [b]) => depth(a) - depth(b) || compare(a, b));
  for (const [d, mode] of dirs.filter(([, m]) => m !== undefined)) {
    await step(`mkdir ${octal(mode!)} ${d}`, async () => {
      if (lstatOrUndefined(at(d))?.isDirectory()) return false;
      await mkdir(at(d), { mode: mode! });
      await chmod(at(d), mode!);
      return true;
    });
  }
  for (const [p, before] of snap.files) {
    const now = lstatOrUndefined(at(p));
    if (before.kind === 'absent') {
      if (now) await step(`remove ${p} (created by this apply)`, async () => (await rm(at(p), { force: true }), true));
    } else if (before.kind === 'symlink') {
      if (!now?.isSymbolicLink() || readlinkSync(at(p)) !== before.target) {
        await step(`restore symlink ${p} -> ${before.target}`, async () => (await rm(at(p), { force: true }), await symlink(before.target, at(p)), true));
      }
    } else if (!now?.isFile() || (now.mode & 0o7777) !== before.mode || !readFileSync(at(p)).equals(before.content)) {
      await step(`restore ${octal(before.mode)} ${p}`, async () => (await writeAtomic(at(p), before.content, before.mode), true));
    }
  }
  for (const [d, mode] of dirs.reverse()) {
    const now = lstatOrUndefined(at(d));
    if (!now?.isDirectory()) continue;
    if (mode === undefined) {
      if (readdirSync(at(d)).length === 0) await step(`remove folder ${d} (created by this apply)`, async () => (await rmdir(at(d)), true));
    } else if ((now.mode & 0o7777) !== mode) {
      await step(`chmod ${octal(mode)} ${d}`, async () => (await chmod(at(d), mode), true));
    }
  }
  return { done, errors };
}

/** The last argument of a planned command: its unit. */
const unitOf = (argv: readonly string[]) => argv[argv.length - 1]!;

/**
 * Commands around restoring the files. A first install is undone: what it enabled is disabled and
 * stopped, the other units it started are stopped, then (files gone) systemd reloads. Otherwise
 * units new with the apply are stopped, systemd reloads the restored unit files, units the apply
 * stopped start again, and the units it restarted restart again on the previous files.
 */
export function rollbackCommands(plan: ApplyPlan, spec: HealthSpec): { readonly before: readonly (readonly string[])[]; readonly after: readonly (readonly string[])[] } {
  const systemctl = (...args: string[]) => [...spec.systemctl, ...args];
  const reload = plan.pending.daemonReload ? [systemctl('daemon-reload')] : [];
  if (plan.pending.enable) {
    const enabled = plan.after.filter((c) => c.argv.includes('enable')).map((c) => unitOf(c.argv));
    const started = spec.units.map((u) => u.unit).filter((u) => !enabled.includes(u)).reverse();
    return { before: [...enabled.map((u) => systemctl('disable', '--now', u)), ...started.map((u) => systemctl('stop', u))], after: reload };
  }
  // Units new with this apply lose their files: stopped first. The others run the previous files again.
  const previous = new Set(Object.values(plan.previous?.files ?? {}).flatMap((f) => (f.unitFile ? f.units : [])));
  const fresh = plan.pending.restart.filter((u) => !previous.has(u)).reverse();
  const again = plan.pending.restart.filter((u) => previous.has(u));
  return {
    before: fresh.map((u) => systemctl('stop', u)),
    after: [...reload, ...plan.before.map((c) => systemctl('start', unitOf(c.argv))), ...again.map((u) => systemctl('restart', u))],
  };
}

/** Runs commands one by one, going on past failures (a rollback does all it can). */
async function runAll(commands: readonly (readonly string[])[], runner: CommandRunner, into: { done: string[]; errors: string[] }) {
  for (const argv of commands) {
    const name = `run ${argv.join(' ')}`;
    try {
      await runner(argv);
      into.done.push(name);
    } catch (e) {
      into.errors.push(`${name}: ${(e as { shortMessage?: string }).shortMessage ?? (e as Error).message}`);
    }
  }
}

/** The gate's options (`--health-timeout`, `--no-rollback`). */
export interface GateOptions {
  readonly timeoutSeconds: number;
  readonly rollback: boolean;
}

/** The processes and time the gate uses. */
export interface GateDeps {
  readonly runner: CommandRunner;
  readonly query: CommandQuery;
  readonly clock: Clock;
}

/** What the gate found and did. */
export interface GateOutcome {
  readonly ok: boolean;
  /** A systemctl command of the apply that failed (a restart whose unit did not start). */
  readonly commandFailed?: ApplyResult['failed'];
  readonly health: HealthReport;
  /** Set when the gate rolled back. */
  readonly rollback?: Rollback;
}

/** Whether a failed apply stopped at one of its systemctl commands after the files were written: the gate takes it from there. */
export function failedAfterWrites(plan: ApplyPlan, r: ApplyResult): boolean {
  return r.failed !== undefined && plan.after.some((c) => r.failed!.step === `run ${c.argv.join(' ')}`);
}

/**
 * Waits for the units of `spec` (after a failed command, asks once instead), and unless they all
 * came up rolls back to `snapshot` (or with `rollback: false` leaves the new files).
 */
export async function gateApply(plan: ApplyPlan, spec: HealthSpec, snapshot: Snapshot, result: ApplyResult, deps: GateDeps, options: GateOptions): Promise<GateOutcome> {
  const commandFailed = failedAfterWrites(plan, result) ? result.failed : undefined;
  const health = await waitForHealth(spec, deps.query, deps.clock, commandFailed ? 0 : options.timeoutSeconds);
  const base = { health, ...(commandFailed ? { commandFailed } : {}) };
  if (health.ok && !commandFailed) return { ok: true, ...base };
  if (!options.rollback) return { ok: false, ...base };
  const commands = rollbackCommands(plan, spec);
  const into = { done: [] as string[], errors: [] as string[] };
  await runAll(commands.before, deps.runner, into);
  const restored = await restoreSnapshot(plan, snapshot);
  into.done.push(...restored.done);
  into.errors.push(...restored.errors);
  await runAll(commands.after, deps.runner, into);
  return { ok: false, ...base, rollback: into };
}

const awaited = (u: WatchedUnit) => (u.container ? `${u.unit} (container ${u.container} healthy)` : u.unit);

/** The dry run's line about the gate. */
export function formatHealthPlan(spec: HealthSpec, options: GateOptions): string {
  if (spec.units.length === 0) return '';
  const then = options.rollback ? 'else roll back to the previous files and restart them' : 'else leave the new files (--no-rollback)';
  return `  then wait up to ${options.timeoutSeconds} s (--health-timeout) until up: ${spec.units.map(awaited).join(', ')}; ${then}\n`;
}

/** The gate's report: a line when all came up, else each unit's state, its journal, and the rollback. */
export function formatGate(plan: ApplyPlan, o: GateOutcome, options: GateOptions): string {
  const who = `${plan.stack}/${plan.host}`;
  if (o.ok) return `${who}: healthy after ${o.health.seconds} s: ${o.health.units.map((u) => `${u.unit} ${u.verdict.detail}`).join('; ')}\n`;
  const why = o.commandFailed
    ? `${o.commandFailed.step} failed: ${o.commandFailed.error}`
    : o.health.timedOut
      ? `not up within ${options.timeoutSeconds} s (--health-timeout)`
      : `${o.health.units.filter((u) => u.verdict.state === 'failed').map((u) => u.unit).join(', ')} failed`;
  const lines = [`${who}: health check FAILED: ${why}`];
  for (const u of o.health.units) {
    lines.push(`  ${u.verdict.state === 'up' ? '✓' : '✗'} ${u.unit}: ${u.verdict.detail}`);
    if (u.journal) lines.push(`      its last ${u.journal.length} journal lines:`, ...u.journal.map((l) => `        ${l}`));
  }
  if (!o.rollback) {
    lines.push(`  not rolled back (--no-rollback): the new files stay in place for debugging. Fix the cause and apply again, or apply the previous commit to go back.`);
    return `${lines.join('\n')}\n`;
  }
  lines.push('  rolled back to the files before this apply:', ...o.rollback.done.map((s) => `    ✓ ${s}`));
  if (o.rollback.errors.length > 0) {
    lines.push('  rollback steps that FAILED (the host is between the two versions; fix these by hand):', ...o.rollback.errors.map((s) => `    ✗ ${s}`));
  }
  lines.push(`  Fix the cause and apply again (--no-rollback keeps the new files to debug).`);
  return `${lines.join('\n')}\n`;
}
