// Errors from the environment are the user's to fix: exit 1 with the path and the fix, never 70
// ("report it") and never a stack trace; an async stack function that throws reads like a sync one.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Io } from '../src/cli/command.ts';
import { runCli } from '../src/cli/run.ts';
import { tempDir } from './helpers/stacks.ts';

const index = JSON.stringify(join(import.meta.dirname, '../src/index.ts'));

function recorder(cwd: string) {
  const printed = { out: '', err: '' };
  const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: {}, cwd, tty: false };
  return { io, printed };
}

describe('errors from the environment', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const stacks = join(tmp.path, 'stacks');
  mkdirSync(stacks);
  writeFileSync(join(stacks, 'ok.ts'), [
    `import { type App, Host, Network, Service, Stack } from ${index};`,
    'export default (app: App): void => {',
    "  const stack = new Stack(app, 'ok', { project: 'ok' });",
    "  new Host(stack, 'local');",
    "  new Network(stack, 'mesh', { subnet: '10.93.0.0/24', domain: 'ok.local' });",
    "  new Service(stack, 'api', { image: 'localhost/api:1' });",
    '};',
  ].join('\n'));

  it('--out naming a file exits 1 with the path and the fix', async () => {
    const outFile = join(tmp.path, 'out-is-a-file');
    writeFileSync(outFile, 'not a folder');
    const { io, printed } = recorder(tmp.path);
    const code = await runCli(['synth', '--stacks', stacks, '--out', outFile, '--state', join(tmp.path, 'state')], io);
    expect(code).toBe(1);
    expect(printed.err).toMatch(new RegExp(`^podmesh: 1 problem\\.\\n\\[${outFile}[^\\]]*\\] is a file where a folder is needed`));
    expect(printed.err).not.toMatch(/report it|    at /);
  });

  it('an async stack function that throws is reported with its file, like a synchronous one', async () => {
    const bad = join(tmp.path, 'bad-stacks');
    mkdirSync(bad);
    writeFileSync(join(bad, 'later.ts'), "export default async (): Promise<void> => { await Promise.resolve(); throw new Error('the inventory service is down'); };\n");
    const { io, printed } = recorder(tmp.path);
    const code = await runCli(['synth', '--stacks', bad, '--out', join(tmp.path, 'o2'), '--state', join(tmp.path, 's2')], io);
    expect(code).toBe(1);
    expect(printed.err).toContain(`[${join(bad, 'later.ts')}:1:`);
    expect(printed.err).toContain('] threw the inventory service is down. Fix the stack file (or the code it calls) and run again.');
    expect(printed.err).not.toMatch(/    at /);
  });
});
