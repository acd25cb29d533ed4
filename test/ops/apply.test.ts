// podmesh apply into a temporary root: files, modes, pruning, idempotence, the exact systemctl
// commands, the dry run, and a failure midway that a second run completes.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStacks } from '../../src/cli/load.ts';
import { App, Host, Network } from '../../src/index.ts';
import { Stack } from '../../constructs/core/stack.ts';
import { acquireLock } from '../../src/io/lock.ts';
import { executeApply, planApply, planInstall, type CommandRunner, type InstallFile } from '../../src/ops/apply.ts';
import { STAGE, expandHome, hostInstall } from '../../src/layout.ts';
import { installOf, type Manifest } from '../../src/render/manifest.ts';
import type { Install } from '../../src/render/file.ts';
import { resolveStacks, selectStacks, synth } from '../../src/synth.ts';
import { svc, tempDir } from '../helpers/stacks.ts';
import { podmeshError } from '../helpers/errors.ts';
import { repoRoot, tool } from '../helpers/tools.ts';

const dockerCompose = tool('docker-compose');
import { treeState } from '../helpers/tree.ts';

const NOW = new Date('2026-06-01T00:00:00Z');
const mode = (p: string) => statSync(p).mode & 0o777;

/** A runner that records commands instead of running them. */
function recorder(failOn?: string): { runner: CommandRunner; commands: string[] } {
  const commands: string[] = [];
  return {
    commands,
    runner: async (argv) => {
      const line = argv.join(' ');
      if (failOn && line.includes(failOn)) throw new Error(`${line} failed`);
      commands.push(line);
    },
  };
}

/**
 * Plans and executes an apply. `live` simulates a running system under the temporary root (the
 * systemctl commands go to the runner); without it the root is what it is, not the running system.
 */
async function applyOnce(app: App, stackName: string, o: { outDir: string; stateDir: string; root: string; host: string; home?: string; live?: boolean }, runner?: CommandRunner) {
  const [stack] = await resolveStacks(selectStacks(app, [stackName]), o.outDir);
  const plan = planApply({ stack: stack!, host: o.host, outDir: o.outDir, stateDir: o.stateDir, root: o.root, ...(o.home ? { home: o.home } : {}), ...(o.live ? { live: true } : {}) });
  const r = await executeApply(plan, runner ?? recorder().runner);
  return { plan, result: r };
}

describe('apply the real stacks', () => {
  const dir = tempDir();
  const outDir = join(dir.path, 'out');
  const stateDir = join(dir.path, 'state');
  let app: App;
  beforeAll(async () => {
    app = await loadStacks(join(repoRoot, 'stacks'));
    await synth(app, { outDir, stateDir, now: NOW });
  }, 120_000);
  afterAll(() => dir.cleanup());

  it('ashchan-dev (rootless): units, certificates and secrets under the home, first-install commands, then idempotent', async () => {
    // GIVEN an empty root and a home inside it
    const root = join(dir.path, 'dev-root');
    const o = { outDir, stateDir, root, host: 'local', home: '/home/ash' };
    const rec = recorder();
    // WHEN
    const { result } = await applyOnce(app, 'ashchan-dev', o, rec.runner);
    // THEN
    expect(result.failed).toBeUndefined();
    const home = join(root, 'home/ash');
    const unit = join(home, '.config/containers/systemd/ashchan-auth.container');
    expect(readFileSync(unit, 'utf8')).toBe(readFileSync(join(outDir, 'ashchan-dev/hosts/local/quadlet/ashchan-auth.container'), 'utf8'));
    expect(mode(unit)).toBe(0o644);
    expect(mode(join(home, '.config/systemd/user/ashchan-dev.target'))).toBe(0o644);
    const hostRoot = join(home, '.config/podmesh/ashchan-dev');
    expect(mode(join(hostRoot, 'pki/services/auth/server.key'))).toBe(0o600);
    expect(mode(join(hostRoot, 'pki/services/auth/client.key'))).toBe(0o600);
    expect(mode(join(hostRoot, 'pki/services/auth/server.crt'))).toBe(0o644);
    expect(mode(join(hostRoot, 'pki/services/auth'))).toBe(0o700);
    expect(readFileSync(join(hostRoot, 'pki/services/auth/server.crt'), 'utf8')).toBe(readFileSync(join(stateDir, 'ashchan-dev/pki/services/auth/server.crt'), 'utf8'));
    expect(mode(join(hostRoot, 'secrets/postgres.password'))).toBe(0o600);
    expect(mode(join(hostRoot, 'secrets'))).toBe(0o700);
    expect(readFileSync(join(hostRoot, 'secrets/postgres.password'), 'utf8')).toBe(readFileSync(join(stateDir, 'ashchan-dev/secrets/postgres.password'), 'utf8'));
    expect(existsSync(join(hostRoot, 'config/_shared/autoload/server.php'))).toBe(true);
    expect(existsSync(join(hostRoot, 'config/auth/Policy.php'))).toBe(true);
    // The installed compose file points at the certificates and secrets beside it, and docker compose accepts it there.
    const compose = readFileSync(join(hostRoot, 'compose.yaml'), 'utf8');
    expect(compose).not.toContain('state/ashchan-dev');
    expect(compose).toContain('./pki/services/auth:/etc/mtls:ro,Z');
    expect(compose).toContain('file: ./secrets/postgres.password');
    if (dockerCompose) {
      const r = spawnSync(dockerCompose, ['-f', join(hostRoot, 'compose.yaml'), 'config', '-q'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    // A temporary root is not the running system: nothing runs (systemctl refuses --user --root=),
    // the commands are left for the host.
    expect(rec.commands).toEqual([]);
    expect(result.deferred.map((c) => c.argv.join(' '))).toEqual([
      'systemctl --user daemon-reload',
      'systemctl --user enable --now ashchan-dev.target',
      'systemctl --user enable --now podmesh-ashchan-dev-cert-expiry.timer',
      'systemctl --user enable --now podmesh-ashchan-dev-ocsp-client-ca.service',
      'systemctl --user enable --now podmesh-ashchan-dev-ocsp-root.service',
      'systemctl --user enable --now podmesh-ashchan-dev-ocsp-staple.timer',
    ]);
    // The OCSP responder's folder, on the responder host only: delegated keys 0600, no CA key.
    expect(mode(join(hostRoot, 'pki/ocsp'))).toBe(0o700);
    expect(mode(join(hostRoot, 'pki/ocsp/responder-root.key'))).toBe(0o600);
    expect(mode(join(hostRoot, 'pki/ocsp/index.txt'))).toBe(0o644);
    expect(existsSync(join(hostRoot, 'pki/ocsp/ca.key'))).toBe(false);
    // Every file manifest.json says the host installs is where it says, with its mode.
    const manifest = JSON.parse(readFileSync(join(outDir, 'ashchan-dev/manifest.json'), 'utf8')) as Manifest;
    const installs = manifest.files.map(installOf).filter((i): i is Install => i?.host === 'local');
    expect(installs.length).toBeGreaterThan(30);
    for (const i of installs) expect(mode(join(root, expandHome(i.path, '/home/ash'))), i.path).toBe(i.mode);

    // WHEN applied again with nothing changed THEN nothing is written and nothing runs
    const before = treeState(root);
    const again = recorder();
    const second = await applyOnce(app, 'ashchan-dev', o, again.runner);
    expect(second.plan.changed).toBe(false);
    expect(second.result.done).toEqual([]);
    expect(again.commands).toEqual([]);
    expect(treeState(root)).toEqual(before);
  });

  it('ashchan-prod host app (rootful): /etc paths, WireGuard config, private key and preshared keys', async () => {
    const root = join(dir.path, 'prod-root');
    const rec = recorder();
    const { result } = await applyOnce(app, 'ashchan-prod', { outDir, stateDir, root, host: 'app' }, rec.runner);
    expect(result.failed).toBeUndefined();
    expect(mode(join(root, 'etc/containers/systemd/ashchan-auth.container'))).toBe(0o644);
    expect(existsSync(join(root, 'etc/containers/systemd/ashchan-gateway.container'))).toBe(false);
    expect(mode(join(root, 'etc/systemd/system/podmesh-ashchan-prod-wireguard.service'))).toBe(0o644);
    const wg = join(root, 'etc/podmesh/ashchan-prod/wireguard');
    expect(readFileSync(join(wg, 'wg0.conf'), 'utf8')).toBe(readFileSync(join(outDir, 'ashchan-prod/hosts/app/wireguard/wg0.conf'), 'utf8'));
    expect(readFileSync(join(wg, 'private.key'), 'utf8')).toBe(readFileSync(join(stateDir, 'ashchan-prod/wireguard/app.key'), 'utf8'));
    expect(mode(join(wg, 'private.key'))).toBe(0o600);
    expect(mode(wg)).toBe(0o700);
    const psk = readFileSync(join(outDir, 'ashchan-prod/hosts/app/wireguard/wg0.conf'), 'utf8').includes('preshared-key');
    if (psk) expect(readFileSync(join(wg, 'psk/edge.key'), 'utf8')).toBe(readFileSync(join(stateDir, 'ashchan-prod/wireguard/psk/app--edge.key'), 'utf8'));
    expect(mode(join(root, 'etc/podmesh/ashchan-prod/pki/services/auth/server.key'))).toBe(0o600);
    expect(existsSync(join(root, 'etc/podmesh/ashchan-prod/pki/services/gateway'))).toBe(false);
    // Only the --root= enables run (symlinks in the root); the live commands are left for the host.
    expect(rec.commands).toEqual([
      `systemctl --root=${root} enable ashchan-prod.target`,
      `systemctl --root=${root} enable podmesh-ashchan-prod-cert-expiry.timer`,
      `systemctl --root=${root} enable podmesh-ashchan-prod-ocsp-staple.timer`,
    ]);
    expect(result.deferred.map((c) => c.argv.join(' '))).toEqual([
      'systemctl daemon-reload',
      'systemctl enable --now ashchan-prod.target',
      'systemctl enable --now podmesh-ashchan-prod-cert-expiry.timer',
      'systemctl enable --now podmesh-ashchan-prod-ocsp-staple.timer',
    ]);
    // The responders run on edge: app has no responder folder (and so no responder key).
    expect(existsSync(join(root, 'etc/podmesh/ashchan-prod/pki/ocsp'))).toBe(false);
  });

  it('a rotated WireGuard key of host app restarts only the tunnel unit on app', async () => {
    // GIVEN ashchan-prod/app installed (previous test) WHEN app's key is rotated
    const root = join(dir.path, 'prod-root');
    await synth(app, { outDir, stateDir, now: NOW, stacks: ['ashchan-prod'], rotateWireguard: { 'ashchan-prod': ['app'] } });
    const rec = recorder();
    const { plan } = await applyOnce(app, 'ashchan-prod', { outDir, stateDir, root, host: 'app', live: true }, rec.runner);
    // THEN the key files change, and only the tunnel restarts
    expect(plan.writes.map((w) => w.path)).toContain('/etc/podmesh/ashchan-prod/wireguard/private.key');
    expect(rec.commands).toEqual(['systemctl restart podmesh-ashchan-prod-wireguard.service']);
    expect(readFileSync(join(root, 'etc/podmesh/ashchan-prod/wireguard/private.key'), 'utf8')).toBe(readFileSync(join(stateDir, 'ashchan-prod/wireguard/app.key'), 'utf8'));
  });

  it('GIVEN boards\' secrets rotated WHEN hosts app and data are applied THEN each re-creates its Podman secrets, then restarts exactly the services that mount a changed one', async () => {
    // GIVEN both hosts installed (app by the test above) and boards' passwords rotated
    const appRoot = join(dir.path, 'prod-root');
    const dataRoot = join(dir.path, 'prod-data-root');
    await applyOnce(app, 'ashchan-prod', { outDir, stateDir, root: dataRoot, host: 'data' }, recorder().runner);
    const before = readFileSync(join(stateDir, 'ashchan-prod/secrets/boards.postgres-password'), 'utf8');
    await synth(app, { outDir, stateDir, now: NOW, stacks: ['ashchan-prod'], rotateSecrets: { 'ashchan-prod': ['boards'] } });
    expect(readFileSync(join(stateDir, 'ashchan-prod/secrets/boards.postgres-password'), 'utf8')).not.toBe(before);
    // WHEN app is applied THEN boards' two files change, and only boards restarts after the secrets unit
    const onApp = recorder();
    const a = await applyOnce(app, 'ashchan-prod', { outDir, stateDir, root: appRoot, host: 'app', live: true }, onApp.runner);
    expect(a.plan.writes.map((w) => w.path)).toEqual(['/etc/podmesh/ashchan-prod/secrets/boards.postgres-password', '/etc/podmesh/ashchan-prod/secrets/boards.redis-password']);
    expect(onApp.commands).toEqual(['systemctl restart podmesh-ashchan-prod-secrets.service', 'systemctl restart ashchan-boards.service']);
    expect(mode(join(appRoot, 'etc/podmesh/ashchan-prod/secrets/boards.postgres-password'))).toBe(0o600);
    expect(readFileSync(join(appRoot, 'etc/podmesh/ashchan-prod/secrets/boards.postgres-password'), 'utf8')).toBe(readFileSync(join(stateDir, 'ashchan-prod/secrets/boards.postgres-password'), 'utf8'));
    // WHEN data is applied THEN PostgreSQL (it mounts boards' password for its roles script) and
    // Redis (its ACL configuration holds boards' password hash) restart; media does not
    const onData = recorder();
    const d = await applyOnce(app, 'ashchan-prod', { outDir, stateDir, root: dataRoot, host: 'data', live: true }, onData.runner);
    expect(d.plan.writes.map((w) => w.path)).toEqual(['/etc/podmesh/ashchan-prod/secrets/boards.postgres-password', '/etc/podmesh/ashchan-prod/secrets/redis.password.conf']);
    expect(onData.commands).toEqual(['systemctl restart podmesh-ashchan-prod-secrets.service', 'systemctl restart ashchan-postgres.service', 'systemctl restart ashchan-redis.service']);
  });

  it('the command: --dry-run prints the plan and writes nothing; --no-systemctl prints the commands; a stale out/ is refused', async () => {
    const root = join(dir.path, 'cli-root');
    const run = (...args: string[]) =>
      execa('node', [join(repoRoot, 'bin/podmesh.mjs'), 'apply', '--stacks', join(repoRoot, 'stacks'), '--out', outDir, '--state', stateDir, '--stack', 'ashchan-dev', '--host', 'local', '--root', root, '--home', '/home/ash', ...args], { reject: false, timeout: 60_000 });
    const dry = await run('--dry-run');
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain('write 0600 /home/ash/.config/podmesh/ashchan-dev/pki/services/auth/server.key');
    expect(dry.stdout).toContain('later systemctl --user enable --now ashchan-dev.target    # first install of ashchan-dev on local (on the host, once this root is live)');
    expect(existsSync(root)).toBe(false);
    const real = await run('--no-systemctl');
    expect(real.exitCode).toBe(0);
    // The temporary root is not the running system: the live commands are printed for the host (4-space indent, one a line).
    expect(real.stdout).toContain(`${root} is not the running system: run these on the host once this root is live:\n    systemctl --user daemon-reload\n    systemctl --user enable --now ashchan-dev.target`);
    expect(existsSync(join(root, 'home/ash/.config/containers/systemd/ashchan-auth.container'))).toBe(true);
    writeFileSync(join(outDir, 'ashchan-dev/TOPOLOGY.md'), 'edited');
    const stale = await run('--dry-run');
    expect(stale.exitCode).toBe(1);
    expect(stale.stderr).toContain('is stale (');
    await synth(app, { outDir, stateDir, now: NOW, stacks: ['ashchan-dev'] });
  });

  it('GIVEN another apply holding the host root WHEN apply runs THEN it waits, names the holder, gives up after --lock-timeout with exit 1, and writes nothing', async () => {
    // GIVEN a lock beside ashchan-dev's host root under this root, held by a live process (this one)
    const root = join(dir.path, 'locked-root');
    const held = await acquireLock(join(root, 'home/ash/.config/podmesh/.ashchan-dev.podmesh.lock'), { command: 'podmesh apply', dirMode: 0o755 });
    try {
      const before = treeState(root);
      // WHEN
      const r = await execa('node', [join(repoRoot, 'bin/podmesh.mjs'), 'apply', '--stacks', join(repoRoot, 'stacks'), '--out', outDir, '--state', stateDir, '--stack', 'ashchan-dev', '--host', 'local', '--root', root, '--home', '/home/ash', '--lock-timeout', '0.5', '--no-systemctl'], { reject: false, timeout: 60_000 });
      // THEN
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`waiting for .*pid ${process.pid}.*podmesh apply`));
      expect(treeState(root)).toEqual(before);
    } finally {
      await held.release();
    }
  });

  it('an unknown host is an error naming the stack\'s hosts', async () => {
    const [stack] = await resolveStacks(selectStacks(app, ['ashchan-prod']), outDir);
    const e = podmeshError(() => planApply({ stack: stack!, host: 'nope', outDir, stateDir, root: dir.path }));
    expect(e.issues[0]!.message).toContain('has no host "nope". Its hosts: ');
  });
});

describe('apply after changes to a stack', () => {
  const dir = tempDir();
  const outDir = join(dir.path, 'out');
  const stateDir = join(dir.path, 'state');
  const root = join(dir.path, 'root');

  /** A rootful one-host stack with api (with a certificate) and web. */
  function build(variant: { level?: string; web?: boolean } = {}): App {
    const app = new App();
    const stack = new Stack(app, 'mini', { project: 'mini' });
    new Host(stack, 'box', { rootless: false });
    new Network(stack, 'mesh', { subnet: '10.90.0.0/24', gateway: '10.90.0.1', domain: 'mini.local' });
    svc(stack, 'api', { environment: { LOG_LEVEL: variant.level ?? 'info' } });
    if (variant.web ?? true) svc(stack, 'web');
    return app;
  }
  // The temporary root stands for the running system here: the restarts go to the runner.
  const step = async (app: App, runner?: CommandRunner) => {
    await synth(app, { outDir, stateDir, now: NOW });
    return applyOnce(app, 'mini', { outDir, stateDir, root, host: 'box', live: true }, runner);
  };
  beforeAll(async () => {
    await step(build());
  });
  afterAll(() => dir.cleanup());

  it('a change to one service\'s environment restarts only that service; --dry-run writes nothing', async () => {
    // GIVEN the base stack installed, and api's environment changed
    const app = build({ level: 'debug' });
    await synth(app, { outDir, stateDir, now: NOW });
    const [stack] = await resolveStacks(selectStacks(app, ['mini']), outDir);
    // WHEN planned (the dry run) THEN the exact commands, and nothing is touched
    const before = treeState(root);
    const plan = planApply({ stack: stack!, host: 'box', outDir, stateDir, root, live: true });
    expect(plan.writes.map((w) => w.path)).toEqual(['/etc/containers/systemd/mini-api.container', '/etc/podmesh/mini/compose.yaml']);
    expect(plan.after.map((c) => c.argv.join(' '))).toEqual(['systemctl daemon-reload', 'systemctl restart mini-api.service']);
    expect(plan.before).toEqual([]);
    expect(treeState(root)).toEqual(before);
    // WHEN applied THEN those commands run
    const rec = recorder();
    const { result } = await applyOnce(app, 'mini', { outDir, stateDir, root, host: 'box', live: true }, rec.runner);
    expect(result.failed).toBeUndefined();
    expect(rec.commands).toEqual(['systemctl daemon-reload', 'systemctl restart mini-api.service']);
    expect(readFileSync(join(root, 'etc/containers/systemd/mini-api.container'), 'utf8')).toContain('Environment=LOG_LEVEL=debug');
  });

  it('a removed service: its unit, config and certificates are pruned and its unit stopped; other files stay', async () => {
    // GIVEN a file podmesh does not own in the Quadlet folder
    const foreign = join(root, 'etc/containers/systemd/other.container');
    writeFileSync(foreign, '[Container]\nImage=x\n');
    expect(existsSync(join(root, 'etc/podmesh/mini/pki/services/web/server.crt'))).toBe(true);
    // WHEN web leaves the stack
    const rec = recorder();
    const { plan, result } = await step(build({ level: 'debug', web: false }), rec.runner);
    // THEN
    expect(result.failed).toBeUndefined();
    expect(plan.removes).toContain('/etc/containers/systemd/mini-web.container');
    expect(existsSync(join(root, 'etc/containers/systemd/mini-web.container'))).toBe(false);
    expect(existsSync(join(root, 'etc/podmesh/mini/pki/services/web'))).toBe(false);
    expect(existsSync(foreign)).toBe(true);
    expect(existsSync(join(root, 'etc/containers/systemd/mini-api.container'))).toBe(true);
    expect(rec.commands[0]).toBe('systemctl stop mini-web.service');
    expect(rec.commands).toContain('systemctl daemon-reload');
    expect(rec.commands.filter((c) => c.includes('restart'))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(root, 'etc/podmesh/mini/.podmesh-applied.json'), 'utf8'));
    expect(Object.keys(manifest.files).some((p) => p.includes('web'))).toBe(false);
    expect(manifest.pending).toBeUndefined();
  });

  it('a failure midway is reported, and a second run finishes the job (restarts included)', async () => {
    // GIVEN api changes again and restarting it fails
    const app = build({ level: 'trace', web: false });
    const failing = recorder('restart');
    const { result } = await step(app, failing.runner);
    expect(result.failed?.step).toBe('run systemctl restart mini-api.service');
    expect(result.notDone).toEqual(['clear pending commands in /etc/podmesh/mini/.podmesh-applied.json']);
    expect(result.done).toContain('write 0644 /etc/containers/systemd/mini-api.container');
    // WHEN run again (the files are already in place)
    const rec = recorder();
    const second = await applyOnce(app, 'mini', { outDir, stateDir, root, host: 'box', live: true }, rec.runner);
    // THEN the pending commands run, and then the host is up to date
    expect(second.plan.writes).toEqual([]);
    expect(rec.commands).toEqual(['systemctl daemon-reload', 'systemctl restart mini-api.service']);
    const third = await applyOnce(app, 'mini', { outDir, stateDir, root, host: 'box', live: true }, recorder().runner);
    expect(third.plan.changed).toBe(false);
  });
});

describe('apply from install metadata alone', () => {
  // GIVEN files whose names follow no podmesh convention: only their install data says what they are
  const dir = tempDir();
  const root = join(dir.path, 'root');
  const host = { name: 'box', rootless: false, install: hostInstall('meta', { rootless: false }) };
  const install = (path: string, units: string[], more: Partial<Install> = {}): Install => ({
    host: 'box',
    path,
    mode: 0o644,
    units,
    unitFile: false,
    reloadable: false,
    stage: STAGE.service,
    enable: false,
    ...more,
  });
  const files = (v: { settings?: string; tuning?: string; unit?: string } = {}): InstallFile[] => [
    { source: 'a', content: v.settings ?? 'level=info\n', install: install('/etc/podmesh/meta/odd/settings.toml', ['api-runner.service'], { reloadable: true }) },
    { source: 'b', content: v.tuning ?? 'shared_buffers=1\n', install: install('/etc/podmesh/meta/tuning.txt', ['db-runner.service'], { stage: STAGE.network }) },
    { source: 'c', content: v.unit ?? '[Container]\nImage=x\n', install: install('/etc/containers/systemd/first.container', ['api-runner.service'], { unitFile: true }) },
    { source: 'd', content: '[Service]\nExecStart=/bin/true\n', install: install('/etc/systemd/system/weird-name.unit', ['db-runner.service'], { unitFile: true, stage: STAGE.network }) },
    { source: 'e', content: '[Timer]\nOnCalendar=daily\n', install: install('/etc/systemd/system/clock', ['tick-tock.timer'], { unitFile: true, enable: true }) },
    { source: 'f', content: 'secret\n', install: install('/etc/podmesh/meta/vault/key', ['api-runner.service'], { mode: 0o600 }) },
  ];
  const apply = async (v?: Parameters<typeof files>[0]) => {
    // The temporary root stands for the running system: the commands go to the runner.
    const plan = planInstall({ stack: 'meta', host, files: files(v), root, home: '/root', live: true });
    const rec = recorder();
    const result = await executeApply(plan, rec.runner);
    expect(result.failed).toBeUndefined();
    return { plan, commands: rec.commands };
  };
  beforeAll(async () => {
    const first = await apply();
    // THEN the first install enables the target and the unit marked to enable on its own
    expect(first.commands).toEqual(['systemctl daemon-reload', 'systemctl enable --now meta.target', 'systemctl enable --now tick-tock.timer']);
    expect(mode(join(root, 'etc/podmesh/meta/vault/key'))).toBe(0o600);
    expect(mode(join(root, 'etc/podmesh/meta/vault'))).toBe(0o700);
    expect(mode(join(root, 'etc/podmesh/meta/odd'))).toBe(0o755);
  });
  afterAll(() => dir.cleanup());

  it.each([
    ['a reloadable config changes: its units reload', { settings: 'level=debug\n' }, ['systemctl reload api-runner.service']],
    ['a config whose units cannot reload changes: they restart', { tuning: 'shared_buffers=2\n' }, ['systemctl restart db-runner.service']],
    ['both change: the earlier stage first, whatever the names', { settings: 'level=trace\n', tuning: 'shared_buffers=3\n' }, ['systemctl restart db-runner.service', 'systemctl reload api-runner.service']],
    ['a config and its unit file change: daemon-reload and a restart, not a reload', { settings: 'level=warn\n', unit: '[Container]\nImage=y\n' }, ['systemctl daemon-reload', 'systemctl restart api-runner.service']],
  ] as const)('GIVEN %s', async (_label, change, commands) => {
    // GIVEN the host as first installed
    await apply();
    // WHEN the changed files are applied
    const changed = await apply(change);
    // THEN exactly the units of the changed files, as their metadata says
    expect(changed.commands).toEqual(commands);
    // and applying the same again does nothing
    expect((await apply(change)).plan.changed).toBe(false);
  });
});

describe('apply and the host folders services mount', () => {
  const dir = tempDir();
  const outDir = join(dir.path, 'out');
  const stateDir = join(dir.path, 'state');
  const root = join(dir.path, 'root');

  /** A rootful one-host stack whose api mounts a relative folder, a nested one, and an absolute one. */
  function build(mounts = [{ hostPath: 'uploads', target: '/data/uploads' }, { hostPath: './cache/thumbs/', target: '/data/thumbs', readOnly: true }, { hostPath: '/srv/mini/logs', target: '/logs' }]): App {
    const app = new App();
    const stack = new Stack(app, 'mini', { project: 'mini' });
    new Host(stack, 'box', { rootless: false });
    new Network(stack, 'mesh', { subnet: '10.90.0.0/24', gateway: '10.90.0.1', domain: 'mini.local' });
    svc(stack, 'api', { mounts });
    return app;
  }
  beforeAll(async () => {
    await synth(build(), { outDir, stateDir, now: NOW });
  });
  afterAll(() => dir.cleanup());

  it('GIVEN a relative hostPath WHEN synthesized THEN Quadlet mounts it below the host root\'s data/ folder, the compose file in out/ below the state folder, and TOPOLOGY.md says both', () => {
    const unit = readFileSync(join(outDir, 'mini/hosts/box/quadlet/mini-api.container'), 'utf8');
    // A rootful host runs the container in its own user namespace: host folders are chowned to its root (U).
    expect(unit).toContain('Volume=/etc/podmesh/mini/data/uploads:/data/uploads:Z,U\n');
    expect(unit).toContain('Volume=/etc/podmesh/mini/data/cache/thumbs:/data/thumbs:ro,Z,U\n');
    expect(unit).toContain('Volume=/srv/mini/logs:/logs:Z,U\n');
    const topology = readFileSync(join(outDir, 'mini/TOPOLOGY.md'), 'utf8');
    expect(topology).toContain('| api | /data/uploads | `/etc/podmesh/mini/data/uploads` | `<state>/mini/data/box/uploads` | creates it when missing |');
    expect(topology).toContain('| api | /logs | `/srv/mini/logs` | the same | refuses to install while it is missing |');
  });

  it.skipIf(!dockerCompose)('GIVEN the compose file in out/ WHEN docker compose reads it THEN the relative folders are in the state folder, never in out/', async () => {
    // out/ names the state folder by PODMESH_STATE_DIR (its default, .podmesh beside out/, is not this test's).
    const r = await execa(dockerCompose!, ['-f', join(outDir, 'mini/hosts/box/compose.yaml'), 'config', '--format', 'json'], { reject: false, env: { PODMESH_STATE_DIR: stateDir } });
    expect(r.exitCode, r.stderr).toBe(0);
    const volumes = JSON.parse(r.stdout).services.api.volumes.map((v: { source: string; target: string }) => `${v.source}:${v.target}`);
    expect(volumes).toContain(`${join(stateDir, 'mini/data/box/uploads')}:/data/uploads`);
    expect(volumes).toContain(`${join(stateDir, 'mini/data/box/cache/thumbs')}:/data/thumbs`);
    expect(volumes).toContain('/srv/mini/logs:/logs');
  });

  it('GIVEN an absolute host folder that does not exist WHEN applied THEN refused, naming it, its service and the fix, and nothing is written', async () => {
    const [stack] = await resolveStacks(selectStacks(build(), ['mini']), outDir);
    const before = treeState(dir.path);
    const e = podmeshError(() => planApply({ stack: stack!, host: 'box', outDir, stateDir, root }));
    expect(e.issues).toEqual([
      {
        path: 'mini/api',
        message: `mounts host folder /srv/mini/logs at /logs, but ${join(root, 'srv/mini/logs')} does not exist: Podman would refuse to start the container. Create it on the host (mkdir -p /srv/mini/logs, owned by the container's user), or give a relative hostPath, which apply creates below the host root.`,
      },
    ]);
    expect(treeState(dir.path)).toEqual(before);
  });

  it('GIVEN the absolute folder created WHEN applied THEN the relative ones are created (0755) below the host root, and kept when the stack stops mounting them', async () => {
    // GIVEN
    mkdirSync(join(root, 'srv/mini/logs'), { recursive: true });
    // WHEN
    const { plan, result } = await applyOnce(build(), 'mini', { outDir, stateDir, root, host: 'box' });
    // THEN
    expect(result.failed).toBeUndefined();
    expect(plan.dirs.filter((d) => d.path.includes('/data/'))).toEqual([
      { path: '/etc/podmesh/mini/data/cache/thumbs', mode: 0o755, action: 'create' },
      { path: '/etc/podmesh/mini/data/uploads', mode: 0o755, action: 'create' },
    ]);
    expect(mode(join(root, 'etc/podmesh/mini/data/uploads'))).toBe(0o755);
    // ... with data in one, a second apply changes nothing
    writeFileSync(join(root, 'etc/podmesh/mini/data/uploads/photo.jpg'), 'data');
    const again = await applyOnce(build(), 'mini', { outDir, stateDir, root, host: 'box' });
    expect(again.plan.changed).toBe(false);
    // WHEN the stack no longer mounts it THEN the data stays
    const fewer = build([{ hostPath: '/srv/mini/logs', target: '/logs' }]);
    await synth(fewer, { outDir, stateDir, now: NOW });
    const { result: after } = await applyOnce(fewer, 'mini', { outDir, stateDir, root, host: 'box' });
    expect(after.failed).toBeUndefined();
    expect(readFileSync(join(root, 'etc/podmesh/mini/data/uploads/photo.jpg'), 'utf8')).toBe('data');
  });

  it('GIVEN a file where a host folder should be WHEN applied THEN refused', async () => {
    writeFileSync(join(root, 'etc/podmesh/mini/data/cache/thumbs-file'), 'x');
    const app = build([{ hostPath: 'cache/thumbs-file', target: '/t' }]);
    await synth(app, { outDir, stateDir, now: NOW });
    const [stack] = await resolveStacks(selectStacks(app, ['mini']), outDir);
    const e = podmeshError(() => planApply({ stack: stack!, host: 'box', outDir, stateDir, root }));
    expect(e.issues[0]!.message).toContain(`mounts /etc/podmesh/mini/data/cache/thumbs-file at /t, but ${join(root, 'etc/podmesh/mini/data/cache/thumbs-file')} is not a folder. Move the file away, or mount another path.`);
  });
});
