// The edges of a host's life (issue 16 items 5 and 6), through the real command line in process:
// --root other than / runs only `systemctl --root=` (real systemctl, when installed, accepts them);
// the checksum list apply writes; the daily script's drift metric (sh and busybox); apply --check;
// apply --remove (files, folders, volumes kept or purged); lingering on rootless first installs.
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/command.ts';
import { COMMANDS, GROUPS } from '../../src/cli/commands/index.ts';
import { applyCommand } from '../../src/cli/commands/ops.ts';
import { loadStacks } from '../../src/cli/load.ts';
import { runCli } from '../../src/cli/run.ts';
import { planApply, type CommandRunner } from '../../src/ops/apply.ts';
import { ensureLinger, needsLinger, type CommandQuery } from '../../src/ops/apply-linger.ts';
import { realClock } from '../../src/ops/apply-health.ts';
import { executeRemove, planRemove } from '../../src/ops/apply-remove.ts';
import { resolveStacks, selectStacks } from '../../src/synth.ts';
import { tempDir } from '../helpers/stacks.ts';
import { repoRoot, tool } from '../helpers/tools.ts';

const systemctl = tool('systemctl');
const busybox = tool('busybox');
const openssl = tool('openssl');

const stackFile = (level: string) => `import { Host, Network, Service, Stack, Volume } from '${repoRoot}/constructs/index.ts';
export default (app) => {
  const mini = new Stack(app, 'mini', { project: 'mini' });
  new Host(mini, 'box', { rootless: false });
  new Network(mini, 'mesh', { subnet: '10.91.0.0/24', domain: 'mini.local' });
  const uploads = new Volume(mini, 'uploads');
  new Service(mini, 'api', { image: 'localhost/test/api:1', environment: { LOG_LEVEL: '${level}' }, mounts: [{ volume: uploads, target: '/uploads' }, { hostPath: 'files', target: '/files' }] });
  new Service(mini, 'web', { image: 'localhost/test/web:1' });
  const solo = new Stack(app, 'solo', { project: 'solo' });
  new Host(solo, 'me', { rootless: true });
  new Network(solo, 'mesh', { subnet: '10.92.0.0/24', domain: 'solo.local' });
  new Service(solo, 'api', { image: 'localhost/test/api:1' });
};
`;

/** Records every command; runs the `systemctl --root=` ones for real when systemctl is installed (they touch only the root). */
function recorder(): { runner: CommandRunner; commands: string[] } {
  const commands: string[] = [];
  return {
    commands,
    runner: async (argv) => {
      commands.push(argv.join(' '));
      if (systemctl && argv[0] === 'systemctl' && argv[1]?.startsWith('--root=')) await execa(systemctl, argv.slice(1), { timeout: 30_000 });
    },
  };
}

/** `relative path → sha256 mode mtime` (or `-> target` for a symlink: systemctl --root= links to host paths) below `dir`. */
function treeState(dir: string): Record<string, string> {
  const state: Record<string, string> = {};
  for (const f of filesBelow(dir)) {
    const st = lstatSync(join(dir, f));
    state[f] = st.isSymbolicLink() ? `-> ${readlinkSync(join(dir, f))}` : `${createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')} ${(st.mode & 0o777).toString(8)} ${st.mtimeMs}`;
  }
  return state;
}

/** Every regular file and symlink below `dir`, relative. */
function filesBelow(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  if (existsSync(dir)) walk('');
  return out.sort();
}

describe('apply: --root, drift, --remove, linger', () => {
  const dir = tempDir();
  // One stack folder per variant: a stack file is an ES module, imported once per path.
  let stacks = join(dir.path, 'stacks-info');
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const root = join(dir.path, 'root');
  const soloRoot = join(dir.path, 'solo-root');
  const metrics = join(dir.path, 'metrics');
  const queries: string[] = [];
  let linger = 'Linger=yes\n';
  // loginctl's answer is the test's; the health gate, on the live installs, finds every unit up and healthy.
  const query: CommandQuery = async (argv) => {
    queries.push(argv.join(' '));
    if (argv[0] === 'loginctl') return { exitCode: 0, stdout: linger, stderr: '' };
    if (argv.includes('show')) return { exitCode: 0, stdout: 'LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nType=notify\n', stderr: '' };
    if (argv[0] === 'podman') return { exitCode: 0, stdout: 'healthy\n', stderr: '' };
    return { exitCode: 1, stdout: '', stderr: `unexpected query ${argv.join(' ')}` };
  };
  /** Runs podmesh in process with apply's runner and query injected; returns the exit code and what it printed. */
  const cli = async (runner: CommandRunner, ...argv: string[]) => {
    const printed = { out: '', err: '' };
    const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: {}, cwd: dir.path, tty: false };
    const commands = COMMANDS.map((c) => (c.name === 'apply' ? applyCommand(runner, { query, clock: realClock }) : c));
    const code = await runCli(argv, io, { commands, groups: GROUPS });
    return { code, ...printed };
  };
  const where: string[] = [];
  const synth = async (level: string) => {
    stacks = join(dir.path, `stacks-${level}`);
    mkdirSync(stacks, { recursive: true });
    if (!existsSync(join(stacks, 'mini.ts'))) writeFileSync(join(stacks, 'mini.ts'), stackFile(level));
    where.splice(0, where.length, '--stacks', stacks, '--out', out, '--state', state);
    const r = await cli(recorder().runner, 'synth', ...where, '--now', '2026-06-01T00:00:00Z');
    expect(r.code, r.err).toBe(0);
  };
  /** The installed daily script of mini/box run with `shell` against the root; returns its status, stderr and drift metric. */
  const script = (env: Record<string, string> = {}, shell = 'sh') => {
    const r = spawnSync(shell, [join(root, 'etc/podmesh/mini/bin/podmesh-cert-expiry.sh')], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, PODMESH_ROOT: root, PODMESH_TEXTFILE_DIR: metrics, PODMESH_NOW: '2026-06-02T00:00:00Z', ...env },
      timeout: 30_000,
    });
    const prom = join(metrics, 'podmesh_mini_drift.prom');
    return { status: r.status, stderr: r.stderr, metric: existsSync(prom) ? readFileSync(prom, 'utf8') : '' };
  };

  beforeAll(async () => {
    await synth('info');
  }, 120_000);
  afterAll(() => dir.cleanup());

  it('GIVEN --root other than / WHEN mini is first applied THEN the runner sees only systemctl --root= commands (which systemctl accepts), and the live ones are printed for the host', async () => {
    const rec = recorder();
    const r = await cli(rec.runner, 'apply', ...where, '--stack', 'mini', '--host', 'box', '--root', root);
    expect(r.code, r.err).toBe(0);
    expect(rec.commands).toEqual([`systemctl --root=${root} enable mini.target`, `systemctl --root=${root} enable podmesh-mini-cert-expiry.timer`]);
    expect(queries).toEqual([]);
    expect(r.out).toContain(`${root} is not the running system: run these on the host once this root is live:\n    systemctl daemon-reload\n    systemctl enable --now mini.target\n    systemctl enable --now podmesh-mini-cert-expiry.timer\n`);
    if (systemctl) {
      expect(lstatSync(join(root, 'etc/systemd/system/multi-user.target.wants/mini.target')).isSymbolicLink()).toBe(true);
      expect(lstatSync(join(root, 'etc/systemd/system/timers.target.wants/podmesh-mini-cert-expiry.timer')).isSymbolicLink()).toBe(true);
    }
  });

  it('GIVEN mini applied THEN the checksum list beside the manifest holds every installed file as `<sha256>  <host path>`, not under the root, and sha256sum agrees with it', () => {
    const hostRoot = join(root, 'etc/podmesh/mini');
    const list = readFileSync(join(hostRoot, '.podmesh-applied.sha256'), 'utf8');
    const manifest = JSON.parse(readFileSync(join(hostRoot, '.podmesh-applied.json'), 'utf8'));
    const lines = list.trimEnd().split('\n');
    expect(lines.map((l) => l.slice(66))).toEqual(Object.keys(manifest.files));
    for (const l of lines) expect(l).toMatch(/^[0-9a-f]{64} {2}\/etc\//);
    expect(list).not.toContain(root);
    expect(lstatSync(join(hostRoot, '.podmesh-applied.sha256')).mode & 0o777).toBe(0o600);
    const check = spawnSync('sha256sum', ['-c', '-'], { input: lines.map((l) => `${l.slice(0, 66)}${root}${l.slice(66)}\n`).join(''), encoding: 'utf8' });
    expect(check.status, check.stdout).toBe(0);
    expect(manifest.volumes).toEqual(['mini-uploads']);
    expect(manifest.enabled).toEqual(['mini.target', 'podmesh-mini-cert-expiry.timer']);
  });

  it.skipIf(!openssl)('GIVEN a clean host WHEN the daily script runs THEN podmesh_drift_files is 0; GIVEN a hand edit and a deleted file THEN 2, each named in a warning; apply --check lists both and exits 1, writing nothing', async () => {
    // GIVEN data in a host folder (not drift) WHEN checked on a clean host
    mkdirSync(join(root, 'etc/podmesh/mini/data/files'), { recursive: true });
    writeFileSync(join(root, 'etc/podmesh/mini/data/files/upload.bin'), 'data');
    // ... and in a folder the stack no longer mounts (apply keeps it)
    mkdirSync(join(root, 'etc/podmesh/mini/data/old'), { recursive: true });
    writeFileSync(join(root, 'etc/podmesh/mini/data/old/kept.bin'), 'data');
    const clean = script();
    expect(clean.status, clean.stderr).toBe(0);
    expect(clean.metric).toBe('# HELP podmesh_drift_files Files podmesh apply installed that were changed or removed since.\n# TYPE podmesh_drift_files gauge\npodmesh_drift_files{stack="mini",host="box"} 0\n');
    expect(readdirSync(metrics).sort()).toEqual(['podmesh_mini.prom', 'podmesh_mini_drift.prom']);
    const cleanCheck = await cli(recorder().runner, 'apply', ...where, '--stack', 'mini', '--host', 'box', '--root', root, '--check');
    expect(cleanCheck.code, cleanCheck.out + cleanCheck.err).toBe(0);
    expect(cleanCheck.out).toContain('mini/box: host root /etc/podmesh/mini under');
    expect(cleanCheck.out).toContain('no drift');
    // WHEN the compose file is edited, a certificate deleted, a file added and a mode changed by hand
    writeFileSync(join(root, 'etc/podmesh/mini/compose.yaml'), 'services: {}\n');
    unlinkSync(join(root, 'etc/podmesh/mini/pki/services/web/server.crt'));
    writeFileSync(join(root, 'etc/podmesh/mini/notes.txt'), 'mine');
    chmodSync(join(root, 'etc/containers/systemd/mini-web.container'), 0o666);
    // THEN the script counts the edit and the deletion (content and presence, as recorded)
    const drifted = script();
    expect(drifted.status, drifted.stderr).toBe(0);
    expect(drifted.metric).toContain('podmesh_drift_files{stack="mini",host="box"} 2\n');
    expect(drifted.stderr).toContain('warning: mini: /etc/podmesh/mini/compose.yaml'.replace('/etc', `${root}/etc`));
    expect(drifted.stderr).toContain(`${root}/etc/podmesh/mini/pki/services/web/server.crt was changed or removed by hand since podmesh apply: podmesh apply --check --stack mini --host box lists it`);
    // ... and apply --check lists all four, exit 1, and writes nothing
    const before = treeState(dir.path);
    const check = await cli(recorder().runner, 'apply', ...where, '--stack', 'mini', '--host', 'box', '--root', root, '--check');
    expect(check.code).toBe(1);
    expect(check.out).toContain('4 changes by hand since the last apply:\n');
    expect(check.out).toContain('  changed  /etc/podmesh/mini/compose.yaml    # content differs from what apply installed\n');
    expect(check.out).toContain('  removed  /etc/podmesh/mini/pki/services/web/server.crt    # apply installed it; it is missing\n');
    expect(check.out).toContain('  added    /etc/podmesh/mini/notes.txt    # in podmesh\'s folder, not installed by apply\n');
    expect(check.out).toContain('  mode     /etc/containers/systemd/mini-web.container    # 0666, apply installed it 0644\n');
    expect(check.out).not.toContain('upload.bin');
    expect(check.out).not.toContain('kept.bin');
    expect(check.out).not.toContain('For information');
    expect(treeState(dir.path)).toEqual(before);
  });

  it.skipIf(!openssl || !busybox)('GIVEN the same drift WHEN the script runs under busybox sh with only busybox tools (sha256sum without --quiet) THEN the same count', () => {
    const bin = join(dir.path, 'busybox-bin');
    mkdirSync(bin, { recursive: true });
    for (const applet of ['sh', 'awk', 'sed', 'grep', 'wc', 'tr', 'mkdir', 'chmod', 'mv', 'rm', 'date', 'basename', 'sha256sum', 'cat']) {
      if (!existsSync(join(bin, applet))) symlinkSync(busybox!, join(bin, applet));
    }
    if (!existsSync(join(bin, 'openssl'))) symlinkSync(openssl!, join(bin, 'openssl'));
    const r = script({ PATH: bin }, join(bin, 'sh'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.metric).toContain('podmesh_drift_files{stack="mini",host="box"} 2\n');
  });

  it('GIVEN the drift WHEN applied again THEN restored: the check and the script see none; a stack change since is information only (exit 0)', async () => {
    rmSync(join(root, 'etc/podmesh/mini/notes.txt'));
    const again = await cli(recorder().runner, 'apply', ...where, '--stack', 'mini', '--host', 'box', '--root', root);
    expect(again.code, again.err).toBe(0);
    if (openssl) expect(script().metric).toContain('podmesh_drift_files{stack="mini",host="box"} 0\n');
    await synth('debug');
    const check = await cli(recorder().runner, 'apply', ...where, '--stack', 'mini', '--host', 'box', '--root', root, '--check');
    expect(check.code, check.out + check.err).toBe(0);
    expect(check.out).toContain('no drift');
    expect(check.out).toContain('For information, the next apply changes (the stack or state changed since the last apply):\n    update   /etc/containers/systemd/mini-api.container\n    update   /etc/podmesh/mini/compose.yaml\n');
  });

  it('GIVEN a host where nothing was applied WHEN --check THEN an error saying so', async () => {
    const r = await cli(recorder().runner, 'apply', ...where, '--stack', 'mini', '--host', 'box', '--root', join(dir.path, 'empty-root'), '--check');
    expect(r.code).toBe(1);
    expect(r.err).toContain('.podmesh-applied.json] does not exist under');
    expect(r.err).toContain('mini was never applied to host box here');
  });

  it('GIVEN mini applied and its stack file gone WHEN apply --remove (dry run, then for real) THEN no podmesh file is left, volumes are kept, and only --root= commands ran', async () => {
    await synth('debug');
    expect((await cli(recorder().runner, 'apply', ...where, '--stack', 'mini', '--host', 'box', '--root', root)).code).toBe(0);
    // The stack file gone: --remove works from the applied manifest alone.
    const empty = join(dir.path, 'stacks-none');
    mkdirSync(empty, { recursive: true });
    const gone = ['--stacks', empty, '--out', out, '--state', state];
    // WHEN dry run THEN the plan, nothing touched
    const before = treeState(root);
    const dry = await cli(recorder().runner, 'apply', ...gone, '--stack', 'mini', '--host', 'box', '--root', root, '--remove', '--dry-run');
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toContain('mini/box: remove, rootful, host root /etc/podmesh/mini under');
    expect(dry.out).toContain('  remove     /etc/containers/systemd/mini-api.container\n');
    expect(dry.out).toContain('  keep volumes mini-uploads');
    expect(treeState(root)).toEqual(before);
    // WHEN for real
    const rec = recorder();
    const r = await cli(rec.runner, 'apply', ...gone, '--stack', 'mini', '--host', 'box', '--root', root, '--remove');
    expect(r.code, r.err).toBe(0);
    expect(rec.commands).toEqual([`systemctl --root=${root} disable mini.target podmesh-mini-cert-expiry.timer`]);
    expect(r.out).toContain(`${root} is not the running system: run these on the host once this root is live:\n    systemctl stop mini.target podmesh-mini-cert-expiry.timer `);
    expect(r.out).toContain('\n    systemctl disable mini.target podmesh-mini-cert-expiry.timer\n    systemctl daemon-reload\n');
    expect(r.out).not.toContain('podman volume rm');
    // THEN only the data of the host folder is left (and no enable symlinks when systemctl ran)
    expect(filesBelow(root)).toEqual(['etc/podmesh/mini/data/files/upload.bin', 'etc/podmesh/mini/data/old/kept.bin']);
    expect(existsSync(join(root, 'etc/podmesh/mini/pki'))).toBe(false);
    expect(existsSync(join(root, 'etc/containers/systemd'))).toBe(true);
    // WHEN removed again THEN an error: nothing recorded
    const twice = await cli(recorder().runner, 'apply', ...gone, '--stack', 'mini', '--host', 'box', '--root', root, '--remove');
    expect(twice.code).toBe(1);
    expect(twice.err).toContain('has no applied manifest on this host');
    // ... and creates nothing, not even the lock's folder
    const nowhere = join(dir.path, 'never-root');
    expect((await cli(recorder().runner, 'apply', ...gone, '--stack', 'mini', '--host', 'box', '--root', nowhere, '--remove')).code).toBe(1);
    expect(existsSync(nowhere)).toBe(false);
  });

  it('GIVEN a live host (simulated) WHEN removed with and without --purge-volumes THEN stop, disable, daemon-reload, and podman volume rm only when asked', async () => {
    const liveRoot = join(dir.path, 'live-root');
    const app = await loadStacks(stacks);
    const [stack] = await resolveStacks(selectStacks(app, ['mini']), out);
    const { executeApply } = await import('../../src/ops/apply.ts');
    const install = async () => expect((await executeApply(planApply({ stack: stack!, host: 'box', outDir: out, stateDir: state, root: liveRoot, live: true }), recorder().runner)).failed).toBeUndefined();
    for (const purge of [false, true]) {
      await install();
      const rec = recorder();
      const result = await executeRemove(planRemove({ stack: 'mini', host: 'box', root: liveRoot, live: true, purgeVolumes: purge }), rec.runner);
      expect(result.failed).toBeUndefined();
      expect(rec.commands[0]).toMatch(/^systemctl stop mini\.target podmesh-mini-cert-expiry\.timer .*mini-api\.service/);
      expect(rec.commands.slice(1)).toEqual(['systemctl disable mini.target podmesh-mini-cert-expiry.timer', 'systemctl daemon-reload', ...(purge ? ['podman volume rm mini-uploads'] : [])]);
      expect(filesBelow(liveRoot)).toEqual([]);
    }
  });

  it('GIVEN a rootless host WHEN applied under --root THEN the checksum list has %h expanded to --home, the script (HOME set) sees no drift, and nothing ran (systemctl has no --user --root=)', async () => {
    const rec = recorder();
    const r = await cli(rec.runner, 'apply', ...where, '--stack', 'solo', '--host', 'me', '--root', soloRoot, '--home', '/home/me');
    expect(r.code, r.err).toBe(0);
    expect(rec.commands).toEqual([]);
    expect(r.out).toContain('\n    systemctl --user enable --now solo.target\n');
    const list = readFileSync(join(soloRoot, 'home/me/.config/podmesh/solo/.podmesh-applied.sha256'), 'utf8');
    expect(list).toMatch(/^[0-9a-f]{64} {2}\/home\/me\/\.config\/containers\/systemd\/solo-api\.container$/m);
    if (openssl) {
      const s = spawnSync('sh', [join(soloRoot, 'home/me/.config/podmesh/solo/bin/podmesh-cert-expiry.sh')], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: '/home/me', PODMESH_ROOT: soloRoot, PODMESH_TEXTFILE_DIR: metrics, PODMESH_NOW: '2026-06-02T00:00:00Z' },
      });
      expect(s.status, s.stderr).toBe(0);
      expect(readFileSync(join(metrics, 'podmesh_solo_drift.prom'), 'utf8')).toContain('podmesh_drift_files{stack="solo",host="me"} 0\n');
    }
  });

  it('GIVEN a rootless stack whose every path is under the home WHEN applied with --root / (the running system) and the home in a temporary folder THEN the live commands go to the runner, then lingering is checked and enabled', async () => {
    const home = join(dir.path, 'live-home/me');
    const args = ['apply', ...where, '--stack', 'solo', '--host', 'me', '--root', '/', '--home', home];
    // GIVEN the plan touches nothing outside the temporary home (checked before anything is written)
    const dry = await cli(recorder().runner, ...args, '--dry-run');
    expect(dry.code, dry.err).toBe(0);
    const paths = [...dry.out.matchAll(/^ {2}(?:mkdir|write|chmod) 0\d+ (\S+)/gm)].map((m) => m[1]!);
    expect(paths.length).toBeGreaterThan(5);
    for (const p of paths) expect(p.startsWith(`${home}/`), p).toBe(true);
    // WHEN
    linger = 'Linger=no\n';
    queries.length = 0;
    const rec = recorder();
    const r = await cli(rec.runner, ...args);
    // THEN
    expect(r.code, r.err).toBe(0);
    const user = userInfo().username;
    expect(rec.commands).toEqual(['systemctl --user daemon-reload', 'systemctl --user enable --now solo.target', 'systemctl --user enable --now podmesh-solo-cert-expiry.timer', `loginctl enable-linger ${user}`]);
    expect(queries.filter((q) => q.startsWith('loginctl'))).toEqual([`loginctl show-user ${user} --property=Linger`]);
    // (the health gate asked about the target it started, before the linger check)
    expect(queries.findIndex((q) => q.startsWith('systemctl --user show') && q.endsWith(' solo.target'))).toBeLessThan(queries.findIndex((q) => q.startsWith('loginctl')));
    expect(r.out).toContain(`enabled lingering for user ${user} (loginctl enable-linger ${user}): without lingering`);
    expect(existsSync(join(home, '.config/containers/systemd/solo-api.container'))).toBe(true);
    // WHEN applied again THEN not a first install: no linger check
    queries.length = 0;
    expect((await cli(recorder().runner, ...args)).code).toBe(0);
    expect(queries.filter((q) => q.startsWith('loginctl'))).toEqual([]);
    linger = 'Linger=yes\n';
  });

  it('lingering: a rootless first install on the running system needs it; loginctl answers decide what runs', async () => {
    const app = await loadStacks(stacks);
    const [solo] = await resolveStacks(selectStacks(app, ['solo']), out);
    const plan = (live: boolean, root: string) => planApply({ stack: solo!, host: 'me', outDir: out, stateDir: state, root, home: '/home/me', live });
    expect(needsLinger(plan(true, join(dir.path, 'linger-root')))).toBe(true);
    expect(needsLinger(plan(false, join(dir.path, 'linger-root')))).toBe(false);
    expect(needsLinger(plan(true, soloRoot))).toBe(false); // installed before: not a first install
    const answer = (stdout: string, exitCode = 0): CommandQuery => async () => ({ exitCode, stdout, stderr: '' });
    const on = recorder();
    expect(await ensureLinger('me', answer('Linger=yes\n'), on.runner)).toEqual({ state: 'on', ran: ['loginctl show-user me --property=Linger'] });
    expect(on.commands).toEqual([]);
    const off = recorder();
    const enabled = await ensureLinger('me', answer('Linger=no\n'), off.runner);
    expect(off.commands).toEqual(['loginctl enable-linger me']);
    expect(enabled.state).toBe('enabled');
    // No session yet: loginctl show-user fails; enabling is still tried.
    const refused: CommandRunner = async (argv) => {
      throw new Error(`${argv.join(' ')}: Access denied`);
    };
    const failed = await ensureLinger('me', answer('', 1), refused);
    expect(failed.state).toBe('failed');
    expect(failed.message).toBe(
      'lingering is off for user me and `loginctl enable-linger me` failed (loginctl enable-linger me: Access denied): without lingering the user\'s systemd manager, and with it the stack\'s units, stops at logout and does not start at boot. Run as root: loginctl enable-linger me\n',
    );
  });
});
