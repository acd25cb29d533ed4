// podmesh diff and synth --check on a changed, an added and a removed service: exit codes, the
// files listed, the changed line in the unified diff, and nothing written to out/ or the state.
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/index.ts';
import { diffStacks, formatDiff } from '../../src/ops/diff.ts';
import { unifiedDiff } from '../../src/ops/unified.ts';
import { synth } from '../../src/synth.ts';
import { miniStack, podmeshProject, svc, tempDir } from '../helpers/stacks.ts';
import { repoRoot } from '../helpers/tools.ts';
import { treeState } from '../helpers/tree.ts';

const NOW = new Date('2026-06-01T00:00:00Z');

/** mini with api and web; `variant` changes one thing. */
function build(variant: 'base' | 'changed' | 'added' | 'removed' = 'base'): App {
  const { app, stack } = miniStack('mini');
  svc(stack, 'api', { environment: { LOG_LEVEL: variant === 'changed' ? 'debug' : 'info' } });
  if (variant !== 'removed') svc(stack, 'web');
  if (variant === 'added') svc(stack, 'worker');
  return app;
}

describe('unifiedDiff', () => {
  it('prints diff -u hunks with context, /dev/null sides, and colors only on request', () => {
    // GIVEN two versions differing in one line of ten
    const a = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    const b = a.replace('line 5\n', 'line five\n');
    // WHEN / THEN
    expect(unifiedDiff(a, b, 'a/f', 'b/f')).toBe(
      '--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n',
    );
    expect(unifiedDiff('', 'x\ny\n', '/dev/null', 'b/f')).toBe('--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+x\n+y\n');
    expect(unifiedDiff('x\n', '', 'a/f', '/dev/null')).toBe('--- a/f\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-x\n');
    expect(unifiedDiff(a, a, 'a', 'b')).toBe('');
    expect(unifiedDiff(a, b, 'a/f', 'b/f', { color: true })).toContain('\x1b[31m-line 5\x1b[0m');
  });
});

describe('podmesh diff and synth --check', () => {
  const dir = tempDir();
  const outDir = join(dir.path, 'out');
  const stateDir = join(dir.path, 'state');
  const both = () => ({ out: treeState(outDir), state: treeState(stateDir) });
  beforeAll(async () => {
    await synth(build(), { outDir, stateDir, now: NOW });
  });
  afterAll(() => dir.cleanup());

  it('finds nothing to change right after a synth', async () => {
    const r = await diffStacks(build(), { outDir, stateDir, now: NOW });
    expect(r.changed).toBe(false);
    expect(formatDiff(r, { outDir: 'out', stateDir: 'state', color: false })).toBe('mini: out/mini up to date (15 files)\n'.replace('15', String(r.stacks[0]!.report.unchanged)));
    expect((await synth(build(), { outDir, stateDir, check: true, now: NOW })).changed).toBe(false);
  });

  it('a changed service: the unit and compose file, with the changed line; nothing written', async () => {
    // GIVEN out/ and state of the base stack
    const before = both();
    // WHEN api's environment changes
    const r = await diffStacks(build('changed'), { outDir, stateDir, now: NOW });
    const check = await synth(build('changed'), { outDir, stateDir, check: true, now: NOW });
    // THEN
    expect(r.changed).toBe(true);
    expect(r.stacks[0]!.report.modified).toEqual(expect.arrayContaining(['hosts/local/compose.yaml', 'hosts/local/quadlet/mini-api.container']));
    expect(r.stacks[0]!.report.added).toEqual([]);
    expect(check.changed).toBe(true);
    expect(check.reports[0]!.modified).toEqual(r.stacks[0]!.report.modified);
    const text = formatDiff(r, { outDir: 'out', stateDir: 'state', color: false });
    expect(text).toContain('--- a/out/mini/hosts/local/quadlet/mini-api.container\n+++ b/out/mini/hosts/local/quadlet/mini-api.container\n');
    expect(text).toContain('-Environment=LOG_LEVEL=info\n+Environment=LOG_LEVEL=debug\n');
    expect(text).not.toContain('\x1b[');
    expect(text).not.toContain('would issue');
    expect(both()).toEqual(before);
  });

  it('an added service: new files and the certificates synth would issue; nothing written', async () => {
    const before = both();
    const r = await diffStacks(build('added'), { outDir, stateDir, now: NOW });
    const check = await synth(build('added'), { outDir, stateDir, check: true, now: NOW });
    expect(r.changed).toBe(true);
    expect(r.stacks[0]!.report.added).toContain('hosts/local/quadlet/mini-worker.container');
    expect(check.reports[0]!.added).toEqual(r.stacks[0]!.report.added);
    const text = formatDiff(r, { outDir: 'out', stateDir: 'state', color: false });
    expect(text).toContain('--- /dev/null\n+++ b/out/mini/hosts/local/quadlet/mini-worker.container\n');
    expect(text).toMatch(/mini: would issue certificate worker\/server \(/);
    expect(both()).toEqual(before);
  });

  it('a removed service: removed files and the certificate folder synth would delete; nothing written', async () => {
    const before = both();
    const r = await diffStacks(build('removed'), { outDir, stateDir, now: NOW });
    const check = await synth(build('removed'), { outDir, stateDir, check: true, now: NOW });
    expect(r.stacks[0]!.report.removed).toContain('hosts/local/quadlet/mini-web.container');
    expect(check.reports[0]!.removed).toEqual(r.stacks[0]!.report.removed);
    const text = formatDiff(r, { outDir: 'out', stateDir: 'state', color: false });
    expect(text).toContain('--- a/out/mini/hosts/local/quadlet/mini-web.container\n+++ /dev/null\n');
    expect(text).toContain('mini: would remove state/mini/pki/services/web (no service needs it)');
    expect(both()).toEqual(before);
  });

  it('the command exits 0 when up to date and 1 with a plain diff when not (stdout is not a TTY)', async () => {
    // GIVEN a project folder with the base stack synthesized
    const cwd = join(dir.path, 'cli');
    mkdirSync(join(cwd, 'stacks'), { recursive: true });
    podmeshProject(cwd);
    const stackFile = (level: string) => `import { Host, Network, Service, Stack } from 'podmesh';
export default (app) => {
  const stack = new Stack(app, 'demo');
  new Host(stack, 'local');
  new Network(stack, 'mesh', { subnet: '10.70.0.0/24', domain: 'demo.local' });
  new Service(stack, 'api', { image: 'localhost/demo/api:1', environment: { LOG_LEVEL: '${level}' } });
};
`;
    writeFileSync(join(cwd, 'stacks/demo.ts'), stackFile('info'));
    const run = (...args: string[]) => execa('node', [join(repoRoot, 'bin/podmesh.mjs'), ...args, '--state', join(cwd, 'state')], { cwd, reject: false, timeout: 60_000 });
    expect((await run('synth')).exitCode).toBe(0);
    expect((await run('diff')).exitCode).toBe(0);
    // WHEN the stack changes
    writeFileSync(join(cwd, 'stacks/demo.ts'), stackFile('debug'));
    const before = treeState(cwd);
    const r = await run('diff', '--stack', 'demo');
    // THEN
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('+Environment=LOG_LEVEL=debug');
    expect(r.stdout).not.toContain('\x1b[');
    expect(treeState(cwd)).toEqual(before);
  });
});
