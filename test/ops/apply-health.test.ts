// The health gate of podmesh apply: parsing what systemctl and podman say, waiting with a fake
// clock, and the command on a temporary root with a recording fake systemctl/podman/journalctl
// (no systemd manager runs here: see README, "Health gate"), including rollbacks.
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/command.ts';
import { applyCommand, execaQuery } from '../../src/cli/commands/ops.ts';
import { runCli } from '../../src/cli/run.ts';
import { containerVerdict, gateApply, healthSpec, parseSystemctlShow, POLL_MS, takeSnapshot, unitVerdict, waitForHealth, type Clock, type CommandQuery, type HealthSpec } from '../../src/ops/apply-health.ts';
import { executeApply, planApply } from '../../src/ops/apply.ts';
import { resolveStacks, selectStacks, synth } from '../../src/synth.ts';
import { miniStack, svc, tempDir } from '../helpers/stacks.ts';
import { repoRoot } from '../helpers/tools.ts';

/** A clock that moves only when slept on. */
function fakeClock(): Clock & { slept: number[] } {
  let now = 0;
  const slept: number[] = [];
  return { slept, now: () => now, sleep: async (ms) => void (slept.push(ms), (now += ms)) };
}

/**
 * What `systemctl show --property=LoadState,ActiveState,SubState,Result,Type` prints: one
 * `Name=value` per line, the service's own properties (Type, Result) before the unit's, a property
 * with an empty value left out (a target has neither Type nor Result).
 */
const show = (p: { active: string; sub: string; result?: string; type?: string; load?: string }) =>
  [p.type !== undefined ? `Type=${p.type}` : '', p.result !== undefined ? `Result=${p.result}` : '', `LoadState=${p.load ?? 'loaded'}`, `ActiveState=${p.active}`, `SubState=${p.sub}`].filter((l) => l !== '').join('\n') + '\n';

describe('what systemctl show and podman inspect say', () => {
  it('parses systemctl show\'s Name=value lines, whatever their order, splitting at the first =', () => {
    const out = 'Type=notify\nResult=success\nLoadState=loaded\nActiveState=active\nSubState=running\nDescription=a=b\n';
    expect(parseSystemctlShow(out)).toEqual({ Type: 'notify', Result: 'success', LoadState: 'loaded', ActiveState: 'active', SubState: 'running', Description: 'a=b' });
    expect(parseSystemctlShow('')).toEqual({});
  });

  it.each([
    ['a running container service', show({ type: 'notify', result: 'success', active: 'active', sub: 'running' }), 'up', 'active (running)'],
    ['a oneshot with RemainAfterExit (the secrets unit)', show({ type: 'oneshot', result: 'success', active: 'active', sub: 'exited' }), 'up', 'active (exited)'],
    ['a oneshot that ran (the expiry check)', show({ type: 'oneshot', result: 'success', active: 'inactive', sub: 'dead' }), 'up', 'ran (oneshot, inactive (dead), Result=success)'],
    ['a oneshot that failed', show({ type: 'oneshot', result: 'exit-code', active: 'failed', sub: 'failed' }), 'failed', 'failed (failed), Result=exit-code'],
    ['a target, which has no Type or Result', show({ active: 'active', sub: 'active' }), 'up', 'active (active)'],
    ['a service starting (Notify=healthy waits for the health check)', show({ type: 'notify', result: 'success', active: 'activating', sub: 'start' }), 'waiting', 'activating (start), Result=success'],
    ['a container that crashed and will be restarted', show({ type: 'notify', result: 'exit-code', active: 'activating', sub: 'auto-restart' }), 'waiting', 'activating (auto-restart), Result=exit-code'],
    ['a service stopped cleanly', show({ type: 'notify', result: 'success', active: 'inactive', sub: 'dead' }), 'waiting', 'inactive (dead), Result=success'],
    ['a service that timed out and stopped', show({ type: 'notify', result: 'timeout', active: 'inactive', sub: 'dead' }), 'failed', 'inactive (dead), Result=timeout'],
    ['a unit Quadlet did not generate', show({ type: 'simple', result: 'success', active: 'inactive', sub: 'dead', load: 'not-found' }), 'failed', 'not loaded (LoadState=not-found)'],
  ] as const)('judges %s', (_label, out, state, detail) => {
    expect(unitVerdict(parseSystemctlShow(out))).toEqual({ state, detail });
  });

  it.each([
    [{ exitCode: 0, stdout: 'healthy\n' }, 'up', 'container c healthy'],
    [{ exitCode: 0, stdout: 'unhealthy\n' }, 'failed', 'container c unhealthy'],
    [{ exitCode: 0, stdout: 'starting\n' }, 'waiting', 'container c starting'],
    [{ exitCode: 0, stdout: '\n' }, 'up', 'container c reports no health check'],
    [{ exitCode: 125, stdout: '', stderr: 'Error: inspecting object: no such container c\n' }, 'waiting', 'container c: Error: inspecting object: no such container c'],
  ] as const)('judges podman inspect {{.State.Health.Status}} printing %j (as Podman 4.3 prints it)', (r, state, detail) => {
    expect(containerVerdict('c', r)).toEqual({ state, detail });
  });

  it('GIVEN a container starting forever WHEN waited for THEN it gives up at the timeout after a bounded number of rounds, and reads the journal', async () => {
    const clock = fakeClock();
    const asked: string[] = [];
    const query: CommandQuery = async (argv) => {
      asked.push(argv.join(' '));
      if (argv[0] === 'podman') return { exitCode: 0, stdout: 'starting\n' };
      if (argv[0] === 'journalctl') return { exitCode: 0, stdout: 'first\nsecond\n' };
      return { exitCode: 0, stdout: show({ type: 'notify', result: 'success', active: 'active', sub: 'running' }) };
    };
    const spec: HealthSpec = { systemctl: ['systemctl', '--user'], journalctl: ['journalctl', '--user'], units: [{ unit: 'x-api.service', container: 'x-api' }] };
    const r = await waitForHealth(spec, query, clock, 5);
    expect(r).toEqual({ ok: false, timedOut: true, seconds: 5, units: [{ unit: 'x-api.service', container: 'x-api', verdict: { state: 'waiting', detail: 'active (running), container x-api starting' }, journal: ['first', 'second'] }] });
    expect(clock.slept).toEqual([POLL_MS, POLL_MS, POLL_MS, POLL_MS, POLL_MS]);
    expect(asked.filter((a) => a.startsWith('systemctl'))).toHaveLength(6);
    expect(asked[0]).toBe('systemctl --user show --property=LoadState,ActiveState,SubState,Result,Type x-api.service');
    expect(asked[1]).toBe('podman inspect --type container --format {{.State.Health.Status}} x-api');
    expect(asked.at(-1)).toBe('journalctl --user -u x-api.service -n 10 --no-pager -o cat');
  });

  it('GIVEN a unit that comes up on the third round WHEN waited for THEN it is not asked again, and a failed unit stops the wait at once', async () => {
    const clock = fakeClock();
    let n = 0;
    const query: CommandQuery = async (argv) => {
      if (argv.includes('a.service')) return { exitCode: 0, stdout: show({ type: 'notify', result: 'success', active: ++n >= 3 ? 'active' : 'activating', sub: 'start' }) };
      return { exitCode: 0, stdout: show({ type: 'notify', result: 'success', active: 'active', sub: 'running' }) };
    };
    const up = await waitForHealth({ systemctl: ['systemctl'], journalctl: ['journalctl'], units: [{ unit: 'a.service' }, { unit: 'b.service' }] }, query, clock, 120);
    expect(up.ok).toBe(true);
    expect(n).toBe(3);
    expect(clock.slept).toHaveLength(2);
    const failing: CommandQuery = async (argv) =>
      argv[0] === 'journalctl' ? { exitCode: 1, stdout: '' } : { exitCode: 0, stdout: show({ type: 'notify', result: 'exit-code', active: 'failed', sub: 'failed' }) };
    const down = await waitForHealth({ systemctl: ['systemctl'], journalctl: ['journalctl'], units: [{ unit: 'a.service' }] }, failing, fakeClock(), 120);
    expect(down).toEqual({ ok: false, timedOut: false, seconds: 0, units: [{ unit: 'a.service', verdict: { state: 'failed', detail: 'failed (failed), Result=exit-code' } }] });
  });
});

describe('the real query', () => {
  it('returns what a command printed and its exit code, never throwing for a failing or missing command', async () => {
    expect(await execaQuery(['sh', '-c', 'echo ActiveState=active; echo oops >&2; exit 3'])).toEqual({ exitCode: 3, stdout: 'ActiveState=active', stderr: 'oops' });
    const missing = await execaQuery(['podmesh-no-such-command-here']);
    expect(missing.exitCode).not.toBe(0);
  });
});

/** Every file below `dir`: sha256 and mode (not mtime: a restored file is rewritten). */
function contentState(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out[`${relative(dir, p)}/`] = (statSync(p).mode & 0o777).toString(8);
        walk(p);
      } else out[relative(dir, p)] = `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${(statSync(p).mode & 0o777).toString(8)}`;
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/**
 * A recording fake of systemctl, podman and journalctl: every unit is active and every container
 * healthy unless told otherwise; `health` lists what a container reports, one answer per ask, the
 * last repeated.
 */
function fakeHost(o: { units?: Record<string, string>; health?: Record<string, string[]>; failCommand?: string } = {}) {
  const commands: string[] = [];
  const queries: string[] = [];
  const asked = new Map<string, number>();
  const clock = fakeClock();
  const runner = async (argv: readonly string[]) => {
    const line = argv.join(' ');
    commands.push(line);
    if (o.failCommand && line === o.failCommand) throw new Error(`Command failed with exit code 1: ${line}`);
  };
  const query: CommandQuery = async (argv) => {
    queries.push(argv.join(' '));
    const last = argv[argv.length - 1]!;
    if (argv[0] === 'systemctl') return { exitCode: 0, stdout: o.units?.[last] ?? show({ type: last.endsWith('.target') ? undefined : 'notify', result: last.endsWith('.target') ? undefined : 'success', active: 'active', sub: 'running' }) };
    if (argv[0] === 'podman') {
      const answers = o.health?.[last] ?? ['healthy'];
      const i = asked.get(last) ?? 0;
      asked.set(last, i + 1);
      return { exitCode: 0, stdout: `${answers[Math.min(i, answers.length - 1)]}\n` };
    }
    if (argv[0] === 'journalctl') return { exitCode: 0, stdout: `${argv[argv.indexOf('-u') + 1]}: health check failed: connection refused\n` };
    return { exitCode: 127, stdout: '', stderr: `${argv[0]}: not found` };
  };
  return { commands, queries, clock, runner, query };
}

describe('podmesh apply with the health gate, on a temporary root with a recording fake systemctl/podman', () => {
  const dir = tempDir();
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  /**
   * v1: api (health check) and web (none). v2: api's environment changes, web leaves the stack, cache
   * joins it. Each version in its own folder (a stack file is imported once per path).
   */
  const stacks = (v: 'v1' | 'v2') => join(dir.path, `stacks-${v}`);
  const lib = join(dir.path, 'gate-lib.ts');
  const printed = { out: '', err: '' };
  const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: {}, cwd: dir.path, tty: false };
  const cli = async (argv: string[], host?: ReturnType<typeof fakeHost>) => {
    printed.out = '';
    printed.err = '';
    const table = host ? { commands: [applyCommand(host.runner, { query: host.query, clock: host.clock, anyRoot: true })], groups: [] } : undefined;
    const code = await runCli([...argv, '--out', out, '--state', state], io, table);
    return { code, ...printed };
  };
  const apply = (v: 'v1' | 'v2', root: string, host: ReturnType<typeof fakeHost>, ...more: string[]) =>
    cli(['apply', '--stacks', stacks(v), '--stack', 'gate', '--host', 'box', '--root', root, ...more], host);
  const roots = ['unhealthy', 'timeout', 'keep', 'healthy', 'restart-fails'].map((n) => join(dir.path, `root-${n}`));
  const [unhealthyRoot, timeoutRoot, keepRoot, healthyRoot, failRoot] = roots as [string, string, string, string, string];
  let installed: Record<string, string>;

  beforeAll(async () => {
    writeFileSync(lib, [
      `import { App, Host, Network, Stack } from ${JSON.stringify(join(repoRoot, 'src/index.ts'))};`,
      `import { svc } from ${JSON.stringify(join(repoRoot, 'test/helpers/stacks.ts'))};`,
      "export function build(app: App, v: 'v1' | 'v2'): void {",
      "  const stack = new Stack(app, 'gate', { project: 'gate' });",
      "  new Host(stack, 'box', { rootless: false });",
      "  new Network(stack, 'mesh', { subnet: '10.90.0.0/24', gateway: '10.90.0.1', domain: 'gate.local' });",
      "  svc(stack, 'api', { environment: { LEVEL: v }, healthcheck: { command: ['/bin/check'] } });",
      "  if (v === 'v1') svc(stack, 'web', { healthcheck: false });",
      "  else svc(stack, 'cache', { healthcheck: { command: ['/bin/check'] } });",
      '}',
    ].join('\n'));
    for (const v of ['v1', 'v2'] as const) {
      mkdirSync(stacks(v));
      writeFileSync(join(stacks(v), 'gate.ts'), `import type { App } from ${JSON.stringify(join(repoRoot, 'src/index.ts'))};\nimport { build } from '../gate-lib.ts';\nexport default (app: App): void => build(app, '${v}');\n`);
    }
    const synth = await cli(['synth', '--stacks', stacks('v1')]);
    expect(synth.code, synth.err).toBe(0);
    for (const root of roots) {
      const host = fakeHost();
      const r = await apply('v1', root, host);
      expect(r.code, r.err).toBe(0);
    }
    installed = contentState(unhealthyRoot);
    const v2 = await cli(['synth', '--stacks', stacks('v2')]);
    expect(v2.code, v2.err).toBe(0);
  }, 120_000);
  afterAll(() => dir.cleanup());

  it('GIVEN a first install WHEN every unit comes up THEN exit 0, after asking systemd about the target and every unit, and podman about the containers with a health check', async () => {
    // GIVEN an empty root
    const root = join(dir.path, 'root-first');
    const host = fakeHost({ health: { 'gate-cache-1': ['starting', 'starting', 'healthy'] } });
    // WHEN
    const r = await apply('v2', root, host);
    // THEN
    expect(r.code, r.err).toBe(0);
    expect(host.commands).toEqual(['systemctl daemon-reload', 'systemctl enable --now gate.target', 'systemctl enable --now podmesh-gate-cert-expiry.timer']);
    const shown = host.queries.filter((q) => q.startsWith('systemctl show')).map((q) => q.split(' ').at(-1));
    expect([...new Set(shown)]).toEqual([
      'gate.target',
      'gate-api.service',
      'gate-cache.service',
      'mesh-network.service',
      'podmesh-gate-cert-expiry.service',
      'podmesh-gate-cert-expiry.timer',
      'podmesh-gate-firewall.service',
    ]);
    expect(host.queries).toContain('podman inspect --type container --format {{.State.Health.Status}} gate-api-1');
    expect(host.queries.filter((q) => q.endsWith(' gate-cache-1'))).toHaveLength(3);
    expect(host.clock.slept).toEqual([POLL_MS, POLL_MS]);
    expect(r.out).toContain('gate/box: healthy after 2 s: gate.target active (running); gate-api.service active (running), container gate-api-1 healthy;');
  });

  it('GIVEN a first install WHEN a container is unhealthy THEN everything is undone: what it enabled is disabled, the files it created are gone, exit 1', async () => {
    const root = join(dir.path, 'root-first-fails');
    const host = fakeHost({ health: { 'gate-api-1': ['unhealthy'] } });
    const r = await apply('v2', root, host);
    expect(r.code).toBe(1);
    expect(r.err).toContain('gate/box: health check FAILED: gate-api.service failed');
    expect(host.commands).toEqual([
      'systemctl daemon-reload',
      'systemctl enable --now gate.target',
      'systemctl enable --now podmesh-gate-cert-expiry.timer',
      'systemctl disable --now gate.target',
      'systemctl disable --now podmesh-gate-cert-expiry.timer',
      'systemctl stop podmesh-gate-firewall.service',
      'systemctl stop podmesh-gate-cert-expiry.service',
      'systemctl stop mesh-network.service',
      'systemctl stop gate-cache.service',
      'systemctl stop gate-api.service',
      'systemctl daemon-reload',
    ]);
    expect(r.err).toContain('    ✓ remove /etc/containers/systemd/gate-api.container (created by this apply)\n');
    expect(r.err).toContain('    ✓ remove /etc/podmesh/gate/pki/services/api/server.key (created by this apply)\n');
    // Nothing is left (the folders of apply's lock go with the lock).
    expect(contentState(root)).toEqual({});
  });

  it('GIVEN v1 installed WHEN v2\'s api container is unhealthy THEN the previous files, secrets, keys, modes and manifest are back byte for byte, v2\'s new files are gone, the units restart on them, exit 1 naming the unit', async () => {
    // GIVEN v1 installed (beforeAll), touched by hand since (a mode, a note in a file apply rewrites),
    // and api failing its health check after the restart
    expect(contentState(unhealthyRoot)).toEqual(installed);
    chmodSync(join(unhealthyRoot, 'etc/podmesh/gate/config/_shared/openssl.cnf'), 0o600);
    appendFileSync(join(unhealthyRoot, 'etc/podmesh/gate/compose.yaml'), '# a note by hand\n');
    const before = contentState(unhealthyRoot);
    const host = fakeHost({ health: { 'gate-api-1': ['starting', 'unhealthy'] } });
    // WHEN
    const r = await apply('v2', unhealthyRoot, host);
    // THEN
    expect(r.code).toBe(1);
    expect(r.err).toContain('gate/box: health check FAILED: gate-api.service failed\n');
    expect(r.err).toContain('  ✗ gate-api.service: active (running), container gate-api-1 unhealthy\n');
    expect(r.err).toContain('      its last 1 journal lines:\n        gate-api.service: health check failed: connection refused\n');
    expect(r.err).toContain('    ✓ remove /etc/containers/systemd/gate-cache.container (created by this apply)\n');
    expect(r.err).toContain('    ✓ restore 0644 /etc/containers/systemd/gate-web.container\n');
    expect(r.err).toContain('    ✓ restore 0600 /etc/podmesh/gate/pki/services/web/server.key\n');
    expect(r.err).toContain('    ✓ restore 0600 /etc/podmesh/gate/.podmesh-applied.json\n');
    expect(r.err).toContain('    ✓ restore 0600 /etc/podmesh/gate/config/_shared/openssl.cnf\n');
    expect(contentState(unhealthyRoot)).toEqual(before);
    expect(readFileSync(join(unhealthyRoot, 'etc/podmesh/gate/compose.yaml'), 'utf8')).toMatch(/# a note by hand\n$/);
    // The apply's commands, then the rollback's: cache (new) stops before its files go, web (pruned) starts again.
    expect(host.commands).toEqual([
      'systemctl stop gate-web.service',
      'systemctl daemon-reload',
      'systemctl restart gate-api.service',
      'systemctl restart gate-cache.service',
      'systemctl stop gate-cache.service',
      'systemctl daemon-reload',
      'systemctl start gate-web.service',
      'systemctl restart gate-api.service',
    ]);
    expect(r.err).toContain('  ✓ gate-cache.service: active (running), container gate-cache-1 healthy\n');
    expect(host.queries.filter((q) => q.startsWith('journalctl'))).toEqual(['journalctl -u gate-api.service -n 10 --no-pager -o cat']);
  });

  it('GIVEN v1 installed WHEN api stays starting past --health-timeout THEN rolled back after that many seconds (fake clock)', async () => {
    const host = fakeHost({ health: { 'gate-api-1': ['starting'] } });
    const r = await apply('v2', timeoutRoot, host, '--health-timeout', '7');
    expect(r.code).toBe(1);
    expect(r.err).toContain('gate/box: health check FAILED: not up within 7 s (--health-timeout)\n');
    expect(r.err).toContain('  ✗ gate-api.service: active (running), container gate-api-1 starting\n');
    expect(host.clock.slept.reduce((a, b) => a + b, 0)).toBe(7000);
    expect(contentState(timeoutRoot)).toEqual(installed);
  });

  it('GIVEN --no-rollback WHEN api is unhealthy THEN the new files stay, nothing is restarted again, exit 1 with the same report', async () => {
    const host = fakeHost({ health: { 'gate-api-1': ['unhealthy'] } });
    const r = await apply('v2', keepRoot, host, '--no-rollback');
    expect(r.code).toBe(1);
    expect(r.err).toContain('  ✗ gate-api.service: active (running), container gate-api-1 unhealthy\n');
    expect(r.err).toContain('not rolled back (--no-rollback): the new files stay in place for debugging.');
    expect(existsSync(join(keepRoot, 'etc/containers/systemd/gate-cache.container'))).toBe(true);
    expect(existsSync(join(keepRoot, 'etc/containers/systemd/gate-web.container'))).toBe(false);
    expect(readFileSync(join(keepRoot, 'etc/containers/systemd/gate-api.container'), 'utf8')).toContain('Environment=LEVEL=v2');
    expect(host.commands).toEqual(['systemctl stop gate-web.service', 'systemctl daemon-reload', 'systemctl restart gate-api.service', 'systemctl restart gate-cache.service']);
  });

  it('GIVEN v1 installed WHEN v2 comes up healthy THEN exit 0, having asked about exactly the restarted unit; --dry-run says what it would wait for', async () => {
    const elsewhere = await cli(['apply', '--stacks', stacks('v2'), '--stack', 'gate', '--host', 'box', '--root', healthyRoot, '--dry-run']);
    expect(elsewhere.out).toContain(`  no health gate: --root is ${healthyRoot}, not /, so the units are not this system's to ask about\n`);
    const dry = await apply('v2', healthyRoot, fakeHost(), '--dry-run', '--health-timeout', '300');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('  then wait up to 300 s (--health-timeout) until up: gate-api.service (container gate-api-1 healthy), gate-cache.service (container gate-cache-1 healthy); else roll back to the previous files and restart them\n');
    const host = fakeHost();
    const r = await apply('v2', healthyRoot, host);
    expect(r.code, r.err).toBe(0);
    expect(host.queries).toEqual([
      'systemctl show --property=LoadState,ActiveState,SubState,Result,Type gate-api.service',
      'podman inspect --type container --format {{.State.Health.Status}} gate-api-1',
      'systemctl show --property=LoadState,ActiveState,SubState,Result,Type gate-cache.service',
      'podman inspect --type container --format {{.State.Health.Status}} gate-cache-1',
    ]);
    expect(r.out).toContain('gate/box: healthy after 0 s: gate-api.service active (running), container gate-api-1 healthy; gate-cache.service active (running), container gate-cache-1 healthy\n');
    expect(readFileSync(join(healthyRoot, 'etc/containers/systemd/gate-api.container'), 'utf8')).toContain('Environment=LEVEL=v2');
  });

  it('GIVEN v1 installed WHEN restarting api fails (systemctl restart waits for the start and exits 1) THEN the gate reports its state and rolls back', async () => {
    const host = fakeHost({ failCommand: 'systemctl restart gate-api.service', units: { 'gate-api.service': show({ type: 'notify', result: 'exit-code', active: 'failed', sub: 'failed' }) } });
    const r = await apply('v2', failRoot, host);
    expect(r.code).toBe(1);
    expect(r.err).toContain('gate/box: health check FAILED: run systemctl restart gate-api.service failed: Command failed with exit code 1: systemctl restart gate-api.service\n');
    expect(r.err).toContain('  ✗ gate-api.service: failed (failed), Result=exit-code\n');
    expect(host.clock.slept).toEqual([]);
    expect(contentState(failRoot)).toEqual(installed);
    // The restart of api failed, so cache's never ran; the rollback stops cache, and api's restart (still failing here) is reported.
    expect(host.commands).toEqual([
      'systemctl stop gate-web.service',
      'systemctl daemon-reload',
      'systemctl restart gate-api.service',
      'systemctl stop gate-cache.service',
      'systemctl daemon-reload',
      'systemctl start gate-web.service',
      'systemctl restart gate-api.service',
    ]);
    expect(r.err).toContain('  rollback steps that FAILED (the host is between the two versions; fix these by hand):\n    ✗ run systemctl restart gate-api.service: Command failed with exit code 1: systemctl restart gate-api.service\n');
  });

  it('a --health-timeout that is not a number of seconds is a usage error', async () => {
    const r = await apply('v2', join(dir.path, 'never'), fakeHost(), '--health-timeout', 'soon');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--health-timeout "soon" is not a number of seconds, e.g. --health-timeout 300.');
  });
});

describe('the gate on a rootless host', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());

  it('GIVEN a rootless first install WHEN its container is unhealthy THEN systemctl, journalctl (--user) and podman run as the user, and the rollback undoes the install under the home', async () => {
    // GIVEN a rootless one-host stack, synthesized
    const { app, stack } = miniStack('solo');
    svc(stack, 'api');
    const out = join(dir.path, 'out');
    const root = join(dir.path, 'root');
    await synth(app, { outDir: out, stateDir: join(dir.path, 'state') });
    const [resolved] = await resolveStacks(selectStacks(app, ['solo']), out);
    // A temporary root standing in for the running system (live): the commands go to the fake.
    const plan = planApply({ stack: resolved!, host: 'local', outDir: out, stateDir: join(dir.path, 'state'), root, home: '/home/ash', live: true });
    const spec = healthSpec(plan, resolved!);
    expect(spec.systemctl).toEqual(['systemctl', '--user']);
    expect(spec.journalctl).toEqual(['journalctl', '--user']);
    expect(spec.units[0]).toEqual({ unit: 'solo.target' });
    expect(spec.units).toContainEqual({ unit: 'mini-api.service', container: 'mini-api-1' });
    // WHEN applied and api's container is unhealthy
    const host = fakeHost({ health: { 'mini-api-1': ['unhealthy'] } });
    const snapshot = takeSnapshot(plan);
    const result = await executeApply(plan, host.runner);
    expect(existsSync(join(root, 'home/ash/.config/containers/systemd/mini-api.container'))).toBe(true);
    const outcome = await gateApply(plan, spec, snapshot, result, host, { timeoutSeconds: 120, rollback: true });
    // THEN
    expect(outcome.ok).toBe(false);
    expect(host.queries).toContain('systemctl --user show --property=LoadState,ActiveState,SubState,Result,Type mini-api.service');
    expect(host.queries).toContain('podman inspect --type container --format {{.State.Health.Status}} mini-api-1');
    expect(host.queries).toContain('journalctl --user -u mini-api.service -n 10 --no-pager -o cat');
    expect(host.commands.slice(0, 5)).toEqual([
      'systemctl --user daemon-reload',
      'systemctl --user enable --now solo.target',
      'systemctl --user enable --now podmesh-solo-cert-expiry.timer',
      'systemctl --user disable --now solo.target',
      'systemctl --user disable --now podmesh-solo-cert-expiry.timer',
    ]);
    expect(host.commands.at(-1)).toBe('systemctl --user daemon-reload');
    expect(outcome.rollback?.errors).toEqual([]);
    expect(contentState(root)).toEqual({});
  });
});
