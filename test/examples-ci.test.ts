// The GitHub Actions examples work as written: action-validator accepts them, and their `run:`
// steps, executed in order in a temporary clone of this repository, succeed and install a host
// from its encrypted state bundle. Only the substitutions in SUBSTITUTIONS are made.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Io } from '../src/cli/command.ts';
import { runCli } from '../src/cli/run.ts';
import { tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';

const ageKeygen = tool('age-keygen');
const validator = join(repoRoot, 'node_modules/.bin/action-validator');
const WORKFLOWS = ['examples/ci/synth-check.yml', 'examples/ci/apply-host.yml'];

/** Everything that differs from a real runner, and nothing else. */
const SUBSTITUTIONS = [
  '`uses: actions/checkout` is the temporary clone of this repository (git clone of HEAD)',
  '`uses: actions/setup-node` is the Node running this test',
  '`npm ci` is node_modules symlinked from this checkout (no network)',
  '`${{ … }}` expressions get test values: the apply job\'s matrix entry for host app, and its bundle secret (the bundle exported here, base64)',
  '$RUNNER_TEMP is a temporary folder; $PODMESH_AGE_IDENTITY (the runner\'s .env) is an identity made here with age-keygen',
  '`sudo` / `sudo -E` run the command directly, as this user',
  '`systemctl` is a fake first on PATH that appends its argv to a file and answers is-active/show as a healthy system would',
  'the host root is redirected: `podmesh apply` gets `--root DIR` (apply\'s documented option)',
] as const;

/** The recording fake: every call appended to $SYSTEMCTL_LOG; queries answered as active and healthy. */
const FAKE_SYSTEMCTL = `#!/bin/sh
printf '%s\\n' "$*" >> "$SYSTEMCTL_LOG"
query=
props=
value=
while [ $# -gt 0 ]; do
  case "$1" in
    is-active|is-enabled|is-failed|show) query=$1 ;;
    -p|--property) props="$props $(printf '%s' "$2" | tr ',' ' ')"; shift ;;
    --property=*) props="$props $(printf '%s' "\${1#--property=}" | tr ',' ' ')" ;;
    --value) value=1 ;;
  esac
  shift
done
case "$query" in
  is-active) echo active ;;
  is-enabled) echo enabled ;;
  is-failed) echo active; exit 1 ;;
  show)
    for p in \${props:-LoadState ActiveState SubState Result}; do
      case "$p" in
        LoadState) v=loaded ;; ActiveState) v=active ;; SubState) v=running ;; Result) v=success ;;
        UnitFileState) v=enabled ;; NRestarts|ExecMainStatus|ExecMainCode) v=0 ;; *) v= ;;
      esac
      if [ -n "$value" ]; then echo "$v"; else echo "$p=$v"; fi
    done ;;
esac
exit 0
`;

interface Step {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly env?: Record<string, string>;
  readonly if?: string;
}
interface Job {
  readonly steps: readonly Step[];
  readonly needs?: string | readonly string[];
  readonly strategy?: { readonly matrix?: { readonly include?: readonly Record<string, string>[] } };
}

describe('examples/ci', () => {
  it.each(WORKFLOWS)('%s passes action-validator (which rejects a broken copy)', (file) => {
    const ok = spawnSync(validator, [join(repoRoot, file)], { encoding: 'utf8', timeout: 60_000 });
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const dir = tempDir('podmesh-validate-');
    try {
      const broken = join(dir.path, 'broken.yml');
      writeFileSync(broken, readFileSync(join(repoRoot, file), 'utf8').replace(/^(\s+)steps:/m, '$1stepz:'));
      expect(spawnSync(validator, [broken], { encoding: 'utf8', timeout: 60_000 }).status).toBe(1);
    } finally {
      dir.cleanup();
    }
  });
});

describe.skipIf(!ageKeygen)('examples/ci run: steps in a clone', () => {
  // Made in beforeAll, so that a skipped or filtered-out describe leaves nothing behind.
  const dir = { path: join(tmpdir(), `podmesh-examples-${randomBytes(6).toString('hex')}`), cleanup: () => rmSync(dir.path, { recursive: true, force: true }) };
  const clone = join(dir.path, 'repo');
  const runnerTemp = join(dir.path, 'runner-temp');
  const operatorState = join(dir.path, 'operator-state');
  const root = join(dir.path, 'host-root');
  const fakeBin = join(dir.path, 'bin');
  const systemctlLog = join(dir.path, 'systemctl.log');
  const identity = join(dir.path, 'runner-age.key');
  const bundleFile = join(dir.path, 'app.age');
  /** The apply job's matrix entry the run uses; the values of `${{ … }}` expressions. */
  let entry: Record<string, string> = {};
  let expressions: Record<string, string> = {};
  const applied = new Set<string>();

  beforeAll(async () => {
    mkdirSync(dir.path, { mode: 0o700 });
    // checkout: a clone of HEAD; setup-node: this Node; npm ci: this checkout's node_modules.
    const head = execFileSync('git', ['-C', repoRoot, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    execFileSync('git', ['clone', '-q', '--depth', '1', `file://${repoRoot}`, clone]);
    expect(execFileSync('git', ['-C', clone, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim()).toBe(head);
    symlinkSync(join(repoRoot, 'node_modules'), join(clone, 'node_modules'));
    mkdirSync(runnerTemp);
    mkdirSync(fakeBin);
    writeFileSync(join(fakeBin, 'systemctl'), FAKE_SYSTEMCTL);
    chmodSync(join(fakeBin, 'systemctl'), 0o755);
    // The host runner's own identity, and the operator's side: the real state folder lives with
    // the operator (a synth with it, committed), who exports host app's bundle to that identity.
    execFileSync(ageKeygen!, ['-o', identity], { stdio: 'ignore' });
    const recipient = execFileSync(ageKeygen!, ['-y', identity], { encoding: 'utf8' }).trim();
    const jobs = (parse(readFileSync(join(repoRoot, 'examples/ci/apply-host.yml'), 'utf8')) as { jobs: Record<string, Job> }).jobs;
    entry = jobs.apply!.strategy!.matrix!.include!.find((e) => e.host === 'app')!;
    const printed = { out: '', err: '' };
    const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: {}, cwd: dir.path, tty: false };
    // This checkout's stacks (the clone's are the same commit): stack files must be loaded by the
    // podmesh copy that walks them.
    const common = ['--stacks', join(repoRoot, 'stacks'), '--out', join(clone, 'out'), '--state', operatorState];
    // This machine has no WireGuard private keys of the committed out/'s public keys: the operator
    // makes the stack's state (CAs, certificates, secrets) and new tunnel keys, and commits out/.
    expect(await runCli(['wireguard', 'rotate', '--all', '--stack', entry.stack!, ...common], io), printed.err).toBe(0);
    execFileSync('git', ['-C', clone, '-c', 'user.name=operator', '-c', 'user.email=operator@example.org', 'commit', '-qam', 'synth with the operator\'s state'], { stdio: 'ignore' });
    expect(await runCli(['state', 'export', '--stack', entry.stack!, '--host', entry.host!, '--recipient', recipient, '--output', bundleFile, ...common], io), printed.err).toBe(0);
    expressions = {
      'matrix.stack': entry.stack!,
      'matrix.host': entry.host!,
      'matrix.bundle': entry.bundle!,
      'secrets[matrix.bundle]': readFileSync(bundleFile).toString('base64'),
    };
  }, 120_000);
  afterAll(() => dir.cleanup());

  /** A run: script with the listed substitutions made. */
  function substitute(script: string): string {
    return script
      .replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr: string) => {
        const v = expressions[expr];
        if (v === undefined) throw new Error(`expression \${{ ${expr} }} has no test value: list it in SUBSTITUTIONS and give it one`);
        return v;
      })
      .replace(/(^|[\s;&|(])sudo(?:\s+-E)?\s+/g, '$1')
      .replace(/(npm run podmesh -- apply )/g, `$1--root "${root}" `);
  }

  /** Runs a job's steps in order; returns the systemctl calls each step made. */
  function runJob(file: string, job: Job): { step: string; calls: string[] }[] {
    const out: { step: string; calls: string[] }[] = [];
    for (const step of job.steps) {
      if (step.uses !== undefined) {
        expect(step.uses, `${file}: only checkout and setup-node are substituted`).toMatch(/^actions\/(checkout|setup-node)@v\d+$/);
        continue;
      }
      if (step.run!.trim() === 'npm ci') continue;
      const before = existsSync(systemctlLog) ? readFileSync(systemctlLog, 'utf8') : '';
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(PODMESH_|VITEST|npm_)/.test(k)) env[k] = v;
      Object.assign(env, { PATH: `${fakeBin}:${process.env.PATH}`, RUNNER_TEMP: runnerTemp, PODMESH_AGE_IDENTITY: identity, SYSTEMCTL_LOG: systemctlLog, CI: 'true' });
      for (const [k, v] of Object.entries(step.env ?? {})) env[k] = substitute(String(v));
      const script = substitute(step.run!);
      // GitHub's `bash` shell for run: steps.
      const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], { cwd: clone, env, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, `${file}: ${step.name ?? step.run}\n${r.stdout}\n${r.stderr}`).toBe(0);
      if (/podmesh -- apply/.test(script)) applied.add(script);
      const after = existsSync(systemctlLog) ? readFileSync(systemctlLog, 'utf8') : '';
      out.push({ step: script, calls: after.slice(before.length).split('\n').filter(Boolean) });
    }
    return out;
  }

  it('GIVEN the substitutions listed WHEN synth-check.yml\'s run: steps run in order THEN each exits 0', () => {
    const wf = parse(readFileSync(join(repoRoot, 'examples/ci/synth-check.yml'), 'utf8')) as { jobs: Record<string, Job> };
    for (const job of Object.values(wf.jobs)) runJob('synth-check.yml', job);
    expect(existsSync(join(clone, '.podmesh'))).toBe(false);
  }, 120_000);

  it('GIVEN host app\'s runner with only its identity WHEN apply-host.yml\'s jobs run in order THEN each step exits 0, apply installs the host\'s files under the redirected root and systemctl gets the expected calls', () => {
    const wf = parse(readFileSync(join(repoRoot, 'examples/ci/apply-host.yml'), 'utf8')) as { jobs: Record<string, Job> };
    expect(wf.jobs.apply!.needs).toBe('drift');
    runJob('apply-host.yml', wf.jobs.drift!);
    const steps = runJob('apply-host.yml', wf.jobs.apply!);
    // No state folder anywhere on the runner: only the bundle, and it is gone afterwards.
    expect(existsSync(join(clone, '.podmesh'))).toBe(false);
    expect(readdirSync(runnerTemp)).toEqual([]);
    expect([...applied].every((s) => s.includes(`--root "${root}"`) && s.includes('--state-bundle'))).toBe(true);
    expect(applied.size).toBe(2);

    // The host's files, from out/ and from the bundle, under the redirected root; no CA key.
    const out = join(clone, 'out', entry.stack!, 'hosts', entry.host!);
    const quadlet = readdirSync(join(out, 'quadlet'));
    expect(quadlet.length).toBeGreaterThan(3);
    for (const f of quadlet) expect(readFileSync(join(root, 'etc/containers/systemd', f), 'utf8')).toBe(readFileSync(join(out, 'quadlet', f), 'utf8'));
    const hostRoot = join(root, 'etc/podmesh', entry.stack!);
    // The installed compose file finds the state files beside it, in the host root.
    expect(readFileSync(join(hostRoot, 'compose.yaml'), 'utf8')).toContain('file: ./secrets/auth.postgres-password');
    const state = join(operatorState, entry.stack!);
    expect(readFileSync(join(hostRoot, 'wireguard/private.key'), 'utf8')).toBe(readFileSync(join(state, `wireguard/${entry.host}.key`), 'utf8'));
    expect(readFileSync(join(hostRoot, 'pki/services/auth/server.key'), 'utf8')).toBe(readFileSync(join(state, 'pki/services/auth/server.key'), 'utf8'));
    expect(readFileSync(join(hostRoot, 'secrets/auth.postgres-password'), 'utf8')).toBe(readFileSync(join(state, 'secrets/auth.postgres-password'), 'utf8'));
    const caKeys = ['ca.key', 'client-ca.key'].map((f) => readFileSync(join(state, 'pki', f), 'utf8'));
    for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) expect(caKeys).not.toContain(readFileSync(join(e.parentPath, e.name), 'utf8'));
    }

    // systemctl: nothing on the dry run; the first install enables the stack's target; the last
    // step enables the expiry timer.
    const dry = steps.find((s) => s.step.includes('--dry-run'))!;
    expect(dry.calls).toEqual([]);
    const install = steps.find((s) => /podmesh -- apply/.test(s.step) && !s.step.includes('--dry-run'))!;
    expect(install.calls.some((c) => /\benable\b/.test(c) && c.includes(`${entry.stack}.target`)), install.calls.join('\n')).toBe(true);
    const timer = steps.find((s) => s.step.startsWith('systemctl '))!;
    expect(timer.calls).toEqual([`enable --now podmesh-${entry.stack}-cert-expiry.timer`]);
  }, 300_000);
});
