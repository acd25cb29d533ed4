// `podmesh diff` and `podmesh apply`: what synth would change, and installing one host's files.
import { execa } from 'execa';
import { userInfo } from 'node:os';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { lockBeside, withLock } from '../../io/lock.ts';
import { applyTarget, executeApply, formatPlan, formatResult, installTarget, planApply, type CommandRunner } from '../../ops/apply.ts';
import { checkDrift, formatDrift } from '../../ops/apply-check.ts';
import { ensureLinger, needsLinger, type CommandQuery } from '../../ops/apply-linger.ts';
import { executeRemove, formatRemovePlan, formatRemoveResult, planRemove, removeTarget } from '../../ops/apply-remove.ts';
import { diffStacks, formatDiff } from '../../ops/diff.ts';
import { checkPlan, planSynth, resolveStacks, selectStacks } from '../../synth.ts';
import { HELP, type Command } from '../command.ts';
import { loadStacks } from '../load.ts';
import { parseNow, parseOptions, stateDir, UsageError, workspaceOf } from '../options.ts';

/** Runs systemctl for real: the only process apply starts. */
export const execaRunner: CommandRunner = async (argv) => {
  await execa(argv[0]!, argv.slice(1), { stdio: 'inherit' });
};

/** Runs a command for its answer (loginctl show-user): the only process apply starts to read from. */
export const execaQuery: CommandQuery = async (argv) => {
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, stdin: 'ignore' });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
};

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
}

const applyOptions = {
  host: { type: 'string' },
  root: { type: 'string', default: '/' },
  home: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  'no-systemctl': { type: 'boolean', default: false },
  check: { type: 'boolean', default: false },
  remove: { type: 'boolean', default: false },
  'purge-volumes': { type: 'boolean', default: false },
} as const;

/** `podmesh apply`, with the runner that restarts units and the query (loginctl) injected (tests pass their own). */
export function applyCommand(runner: CommandRunner = execaRunner, query: CommandQuery = execaQuery): Command<ApplyArgs> {
  return {
    name: 'apply',
    usage: `  apply --stack S --host H [--root DIR] [--home DIR] [--dry-run] [--no-systemctl]
                                 install host H's units, configs, certificates, secrets and
                                 WireGuard keys under --root (default /), prune what left the
                                 stack, restart only what changed; --dry-run prints the plan.
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
      if (v.check && v.remove) throw new UsageError('apply --check and --remove exclude each other: --check only reads, --remove takes the stack off the host.');
      if (v.check && (v['dry-run'] || v['no-systemctl'])) throw new UsageError('apply --check writes and runs nothing already: drop --dry-run and --no-systemctl.');
      if (v['purge-volumes'] && !v.remove) throw new UsageError('--purge-volumes goes with --remove: podmesh apply --remove --purge-volumes --stack S --host H.');
      return {
        stacksDir: v.stacks, stack: v.stack[0]!, host: v.host, out: v.out, state: v.state,
        root: v.root, home: v.home, dryRun: v['dry-run'], systemctl: !v['no-systemctl'],
        check: v.check, remove: v.remove, purgeVolumes: v['purge-volumes'],
        lockTimeoutSeconds: workspaceOf(argv, {}).lockTimeoutSeconds,
      };
    },
    async run(a, io) {
      const lock = { command: 'podmesh apply', timeoutSeconds: a.lockTimeoutSeconds, onWait: (m: string) => io.err(`podmesh: ${m}\n`), dirMode: 0o755 };
      if (a.remove) {
        // From the applied manifest alone: the stack may be gone from the stack files. The same lock as apply.
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
      const state = stateDir(a.state, io.env);
      const app = await loadStacks(a.stacksDir);
      // Install only what synth would write now: a stale out/ would deploy yesterday's stack.
      const check = checkPlan(await planSynth(app, { outDir: a.out, stateDir: state, stacks: [a.stack] }));
      if (check.stale) {
        const files = check.reports.flatMap((r) => [...r.added, ...r.modified, ...r.removed].map((p) => `${a.out}/${r.stack}/${p}`));
        throw PodmeshError.at(`${a.out}/${a.stack}`, `is stale (${files.slice(0, 5).join(', ')}${files.length > 5 ? ', …' : ''}): run \`podmesh synth --stack ${a.stack}\` and commit the result before applying.`);
      }
      const [stack] = await resolveStacks(selectStacks(app, [a.stack]), a.out);
      const options = { stack: stack!, host: a.host, outDir: a.out, stateDir: state, root: a.root, ...(a.home !== undefined ? { home: a.home } : {}) };
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
        if (a.dryRun || !plan.changed) return 0;
        const result = await executeApply(plan, a.systemctl ? runner : undefined);
        (result.failed ? io.err : io.out)(formatResult(plan, result));
        if (result.failed) return 1;
        if (a.systemctl && needsLinger(plan)) {
          const linger = await ensureLinger(userInfo().username, query, runner);
          if (linger.message) (linger.state === 'failed' ? io.err : io.out)(linger.message);
        }
        return 0;
      });
    },
  };
}
