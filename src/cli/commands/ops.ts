// `podmesh diff` and `podmesh apply`: what synth would change, and installing one host's files.
// The engine (stacks, rendering, age) loads when a command runs, so --help and usage errors stay light.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { lockBeside, withLock } from '../../io/lock.ts';
import { realClock, type Clock, type CommandQuery } from '../../ops/apply-health.ts';
import type { CommandRunner } from '../../ops/apply-run.ts';
import type { StateBundle } from '../../ops/state-bundle.ts';
import { HELP, type Command, type Io } from '../command.ts';
import { parseNow, parseOptions, stateDir, UsageError, workspaceOf } from '../options.ts';

/** Runs systemctl for real: the only process apply starts. */
export const execaRunner: CommandRunner = async (argv) => {
  const { execa } = await import('execa');
  await execa(argv[0]!, argv.slice(1), { stdio: 'inherit' });
};

/** Asks systemctl, podman or journalctl for their view, bounded in time; the health gate's only way to look. */
export const execaQuery: CommandQuery = async (argv) => {
  const { execa } = await import('execa');
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, stdin: 'ignore', timeout: 30_000 });
  return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
};

/** What the health gate of `podmesh apply` looks with. */
export interface HealthDeps {
  readonly query: CommandQuery;
  readonly clock: Clock;
  /**
   * Treat a --root other than `/` as the running system (tests, with a recording runner and query):
   * restarts go to the runner and the gate runs. Otherwise only `/` is: elsewhere apply runs only
   * `systemctl --root=DIR` and prints the live commands for later.
   * @default false
   */
  readonly anyRoot?: boolean;
}

/** What `podmesh diff` was asked to compare. */
export interface DiffArgs {
  readonly stacksDir: string;
  readonly stacks: readonly string[];
  readonly out: string;
  readonly state: string | undefined;
  readonly now: Date | undefined;
}

const diffOptions = { now: { type: 'string' } } as const;

export const diffCommand: Command<DiffArgs> = {
  name: 'diff',
  usage: `  diff [--now ISO]               what synth would change in out/ (unified diffs) and in the state
                                 folder (certificates, keys); exit 1 when anything would change
`,
  options: diffOptions,
  writes: false,
  parse(argv) {
    const { values: v } = parseOptions(argv, diffOptions);
    if (v.help) return HELP;
    return { stacksDir: v.stacks, stacks: v.stack ?? [], out: v.out, state: v.state, now: parseNow(v.now) };
  },
  async run(a, io) {
    const [{ diffStacks, formatDiff }, { loadStacks }] = await Promise.all([import('../../ops/diff.ts'), import('../load.ts')]);
    const state = stateDir(a.state, io.env);
    const app = await loadStacks(a.stacksDir);
    const result = await diffStacks(app, { outDir: a.out, stateDir: state, stacks: a.stacks, ...(a.now ? { now: a.now } : {}) });
    io.out(formatDiff(result, { outDir: a.out, stateDir: state, color: io.tty }));
    return result.changed ? 1 : 0;
  },
};

/** What `podmesh apply` was asked to install. */
export interface ApplyArgs {
  readonly stacksDir: string;
  readonly stack: string;
  readonly host: string;
  readonly out: string;
  readonly state: string | undefined;
  readonly root: string;
  readonly home: string | undefined;
  readonly dryRun: boolean;
  readonly systemctl: boolean;
  /** `--check`: report drift, write nothing. */
  readonly check: boolean;
  /** `--remove`: take the stack off the host from its applied manifest. */
  readonly remove: boolean;
  readonly purgeVolumes: boolean;
  /** How long to wait for another apply holding the host root (`--lock-timeout`). */
  readonly lockTimeoutSeconds: number;
  /** How long the health gate waits for the restarted units (`--health-timeout`). */
  readonly healthTimeoutSeconds: number;
  /** Roll back when the gate fails (not `--no-rollback`). */
  readonly rollback: boolean;
  /** Install the state files from this age-encrypted host bundle instead of the state folder. */
  readonly stateBundle?: { readonly file: string; readonly identity: string };
}

const applyOptions = {
  host: { type: 'string' },
  root: { type: 'string', default: '/' },
  home: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  'no-systemctl': { type: 'boolean', default: false },
  'health-timeout': { type: 'string', default: '120' },
  'no-rollback': { type: 'boolean', default: false },
  'state-bundle': { type: 'string' },
  identity: { type: 'string' },
  check: { type: 'boolean', default: false },
  remove: { type: 'boolean', default: false },
  'purge-volumes': { type: 'boolean', default: false },
} as const;

/** `podmesh apply`, with the runner that restarts units and what the health gate and the linger check look with injected (tests pass their own). */
export function applyCommand(runner: CommandRunner = execaRunner, health: HealthDeps = { query: execaQuery, clock: realClock }): Command<ApplyArgs> {
  return {
    name: 'apply',
    usage: `  apply --stack S --host H [--root DIR] [--home DIR] [--dry-run] [--no-systemctl]
        [--health-timeout SECONDS] [--no-rollback] [--state-bundle FILE --identity KEYFILE]
        | --check | --remove [--purge-volumes]
                                 install host H's units, configs, certificates, secrets and
                                 WireGuard keys under --root (default /), prune what left the
                                 stack, restart only what changed, wait until those units are
                                 up and healthy (default 120 s) or roll back; --dry-run prints
                                 the plan; --state-bundle takes the state files from H's
                                 encrypted bundle (state export --host H), no state folder needed.
                                 --check: exit 1 listing files changed, removed or added by hand
                                 (writes nothing); --remove [--purge-volumes]: stop, disable and
                                 remove what the last apply installed (volumes kept unless asked)
`,
    options: applyOptions,
    writes: false,
    guarded: true,
    parse(argv) {
      const { values: v } = parseOptions(argv, applyOptions);
      if (v.help) return HELP;
      if (!v.stack || v.stack.length !== 1 || !v.host) {
        throw new UsageError('apply needs one --stack and one --host, e.g. podmesh apply --stack ashchan-prod --host app [--root DIR] [--dry-run].');
      }
      const timeout = Number(v['health-timeout']);
      if (v['health-timeout'].trim() === '' || !Number.isFinite(timeout) || timeout < 0) {
        throw new UsageError(`--health-timeout "${v['health-timeout']}" is not a number of seconds, e.g. --health-timeout 300.`);
      }
      if ((v['state-bundle'] === undefined) !== (v.identity === undefined) || v['state-bundle'] === '' || v.identity === '') {
        throw new UsageError('apply --state-bundle FILE needs --identity KEYFILE (the host\'s age identity file), and --identity only goes with --state-bundle.');
      }
      if (v.check && v.remove) throw new UsageError('apply --check and --remove exclude each other: --check only reads, --remove takes the stack off the host.');
      if (v.check && (v['dry-run'] || v['no-systemctl'])) throw new UsageError('apply --check writes and runs nothing already: drop --dry-run and --no-systemctl.');
      if (v['purge-volumes'] && !v.remove) throw new UsageError('--purge-volumes goes with --remove: podmesh apply --remove --purge-volumes --stack S --host H.');
      return {
        stacksDir: v.stacks, stack: v.stack[0]!, host: v.host, out: v.out, state: v.state,
        root: v.root, home: v.home, dryRun: v['dry-run'], systemctl: !v['no-systemctl'],
        check: v.check, remove: v.remove, purgeVolumes: v['purge-volumes'],
        lockTimeoutSeconds: workspaceOf(argv, {}).lockTimeoutSeconds,
        healthTimeoutSeconds: timeout, rollback: !v['no-rollback'],
        ...(v['state-bundle'] !== undefined ? { stateBundle: { file: v['state-bundle'], identity: v.identity! } } : {}),
      };
    },
    async run(a, io) {
      const lock = { command: 'podmesh apply', timeoutSeconds: a.lockTimeoutSeconds, onWait: (m: string) => io.err(`podmesh: ${m}\n`), dirMode: 0o755 };
      // The running system: `/`, or (tests) a root they declare live with their own runner and query.
      const live = a.root === '/' || health.anyRoot === true;
      if (a.remove) return removeStack(a, io, lock, runner);
      const [{ applyTarget, executeApply, formatPlan, formatResult, installTarget, planApply }, gateModule, { checkDrift, formatDrift }, { ensureLinger, needsLinger }, { bundleSource }, { checkPlan, planSynth, resolveStacks, selectStacks }, { loadStacks }] = await Promise.all([
        import('../../ops/apply.ts'),
        import('../../ops/apply-health.ts'),
        import('../../ops/apply-check.ts'),
        import('../../ops/apply-linger.ts'),
        import('../../ops/state-bundle.ts'),
        import('../../synth.ts'),
        import('../load.ts'),
      ]);
      const { failedAfterWrites, formatGate, formatHealthPlan, gateApply, healthSpec, takeSnapshot } = gateModule;
      const state = stateDir(a.state, io.env);
      // A bundle is decrypted and checked first, entirely in memory: it is written nowhere but the install targets.
      const bundle = a.stateBundle ? await hostBundleFor(a.stateBundle, a.stack, a.host) : undefined;
      const app = await loadStacks(a.stacksDir);
      // Install only what synth would write now: a stale out/ would deploy yesterday's stack. With a
      // bundle there is no state folder to plan with: out/ is compared as `synth --check` does on
      // a checkout without state (WireGuard public keys from out/'s lock file).
      const check = checkPlan(await planSynth(app, { outDir: a.out, stateDir: bundle ? absentStateDir() : state, stacks: [a.stack] }));
      if (check.stale) {
        const files = check.reports.flatMap((r) => [...r.added, ...r.modified, ...r.removed].map((p) => `${a.out}/${r.stack}/${p}`));
        throw PodmeshError.at(`${a.out}/${a.stack}`, `is stale (${files.slice(0, 5).join(', ')}${files.length > 5 ? ', …' : ''}): run \`podmesh synth --stack ${a.stack}\` and commit the result before applying.`);
      }
      const [stack] = await resolveStacks(selectStacks(app, [a.stack]), a.out);
      const options = {
        stack: stack!, host: a.host, outDir: a.out, stateDir: state, root: a.root, live,
        ...(a.home !== undefined ? { home: a.home } : {}),
        ...(bundle ? { state: bundleSource(bundle, a.stateBundle!.file) } : {}),
      };
      if (a.check) {
        // Reads only, so it takes no lock: an apply running meanwhile can show as drift; check again after it.
        const report = checkDrift(installTarget(options));
        io.out(formatDrift(report));
        return report.byHand.length > 0 ? 1 : 0;
      }
      // One apply per host root at a time: two would interleave their writes and restarts. Held
      // from the plan (which reads the target) to the last command; beside the host root, so a
      // refused run changes nothing in it.
      return withLock(lockBeside(applyTarget(options)), lock, async () => {
        const plan = planApply(options);
        io.out(formatPlan(plan));
        // The gate asks the running system about the units apply restarted: only when it ran them there.
        const spec = healthSpec(plan, stack!);
        const gate = { timeoutSeconds: a.healthTimeoutSeconds, rollback: a.rollback };
        const gated = a.systemctl && plan.changed && spec.units.length > 0 && plan.live;
        if (a.dryRun) {
          if (gated) io.out(formatHealthPlan(spec, gate));
          else if (a.systemctl && plan.changed && spec.units.length > 0) io.out(`  no health gate: --root is ${a.root}, not /, so the units are not this system's to ask about\n`);
          return 0;
        }
        if (!plan.changed) return 0;
        const snapshot = gated ? takeSnapshot(plan) : undefined;
        const result = await executeApply(plan, a.systemctl ? runner : undefined);
        if (!snapshot || (result.failed && !failedAfterWrites(plan, result))) {
          (result.failed ? io.err : io.out)(formatResult(plan, result));
          if (result.failed) return 1;
        } else {
          if (!result.failed) io.out(formatResult(plan, result));
          const outcome = await gateApply(plan, spec, snapshot, result, { runner, ...health }, gate);
          (outcome.ok ? io.out : io.err)(formatGate(plan, outcome, gate));
          if (!outcome.ok) return 1;
        }
        if (a.systemctl && needsLinger(plan)) {
          const linger = await ensureLinger(userInfo().username, health.query, runner);
          if (linger.message) (linger.state === 'failed' ? io.err : io.out)(linger.message);
        }
        return 0;
      });
    },
  };
}

/** `apply --remove`: from the applied manifest alone (the stack may be gone from the stack files), under the same lock as apply. */
async function removeStack(a: ApplyArgs, io: Io, lock: Parameters<typeof withLock>[1], runner: CommandRunner): Promise<number> {
  const { executeRemove, formatRemovePlan, formatRemoveResult, planRemove, removeTarget } = await import('../../ops/apply-remove.ts');
  const where = { stack: a.stack, host: a.host, root: a.root, ...(a.home !== undefined ? { home: a.home } : {}), purgeVolumes: a.purgeVolumes };
  // Planned once before locking too: nothing to remove is an error that creates no lock folder.
  planRemove(where);
  return withLock(lockBeside(removeTarget(where)), lock, async () => {
    const plan = planRemove(where);
    io.out(formatRemovePlan(plan));
    if (a.dryRun) return 0;
    const result = await executeRemove(plan, a.systemctl ? runner : undefined);
    (result.failed ? io.err : io.out)(formatRemoveResult(plan, result));
    return result.failed ? 1 : 0;
  });
}

/** The host bundle `file`, decrypted and checked to be host `host` of stack `stack`. */
async function hostBundleFor(b: { readonly file: string; readonly identity: string }, stack: string, host: string): Promise<StateBundle> {
  const { readBundleFile } = await import('../../ops/state-bundle.ts');
  const bundle = await readBundleFile(b.file, b.identity);
  if (bundle.host === undefined) {
    throw PodmeshError.at(b.file, `is a full backup of stack ${bundle.stack}, not a host bundle. Export host ${host}'s bundle with \`podmesh state export --stack ${stack} --host ${host}\` (a host runner should never hold the CA keys).`);
  }
  if (bundle.stack !== stack || bundle.host !== host) {
    throw PodmeshError.at(b.file, `is the bundle of host ${bundle.host} of stack ${bundle.stack}, not of host ${host} of stack ${stack}. Pass host ${host}'s bundle, or --stack ${bundle.stack} --host ${bundle.host}.`);
  }
  return bundle;
}

/** A state folder path that does not exist (planning reads it and writes nothing). */
function absentStateDir(): string {
  for (let i = 0; i < 8; i++) {
    const p = join(tmpdir(), `podmesh-no-state-${randomBytes(8).toString('hex')}`);
    if (!existsSync(p)) return p;
  }
  throw new Error(`no free temporary name in ${tmpdir()}`);
}
