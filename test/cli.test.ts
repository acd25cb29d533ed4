// The podmesh command as a user runs it: exit codes, messages, and nothing written on error.
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';
import { repoRoot } from './helpers/tools.ts';

const bin = join(repoRoot, 'bin/podmesh.mjs');
const run = (args: string[], cwd: string) => execa('node', [bin, ...args], { cwd, reject: false, timeout: 60_000 });

const GOOD = `import { Host, Network, Service, Stack } from '${repoRoot}/constructs/index.ts';
export default (app) => {
  const stack = new Stack(app, 'demo');
  new Host(stack, 'local');
  new Network(stack, 'mesh', { subnet: '10.70.0.0/24', domain: 'demo.local' });
  new Service(stack, 'api', { image: 'localhost/demo/api:1' });
};
`;

describe('podmesh CLI', () => {
  const dir = tempDir();
  const cwd = dir.path;
  beforeAll(() => {
    mkdirSync(join(cwd, 'stacks'));
    // Stack files are ES modules, as in a podmesh project.
    writeFileSync(join(cwd, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(cwd, 'stacks/demo.ts'), GOOD);
  });
  afterAll(() => dir.cleanup());

  it('synth writes out/<stack> and says what it wrote; a second run is up to date', async () => {
    const first = await run(['synth'], cwd);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toContain('+ out/demo/hosts/local/compose.yaml');
    const second = await run(['synth'], cwd);
    // 11 files (one the service's openssl.cnf), plus the cert-expiry script, service and timer.
    expect(second.stdout).toBe('demo: up to date (14 files in out/demo)');
  });

  it('--check exits 0 when up to date and 1 with the stale files listed', async () => {
    expect((await run(['synth', '--check'], cwd)).exitCode).toBe(0);
    writeFileSync(join(cwd, 'out/demo/TOPOLOGY.md'), 'edited by hand');
    const r = await run(['synth', '--check'], cwd);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('~ out/demo/TOPOLOGY.md');
    expect(r.stderr).toContain('out/ is stale: run `npm run synth` and commit the result.');
    await run(['synth'], cwd);
  });

  it('an unknown --stack is an error that lists the known stacks and writes nothing', async () => {
    const before = treeState(join(cwd, 'out'));
    const r = await run(['synth', '--stack', 'nope'], cwd);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('unknown stack "nope". Known stacks: demo.');
    expect(treeState(join(cwd, 'out'))).toEqual(before);
  });

  it('a bad stack file reports every problem with its construct path, without a stack trace', async () => {
    writeFileSync(join(cwd, 'stacks/broken.ts'), GOOD.replace("'demo'", "'broken'").replace("'localhost/demo/api:1'", "'bad image'").replace("'10.70.0.0/24'", "'10.71.0.0/24', gateway: '10.71.0.0'"));
    const before = treeState(join(cwd, 'out'));
    const r = await run(['synth'], cwd);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('nothing was written');
    expect(r.stderr).toContain('[broken/api] image: "bad image" contains whitespace');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(treeState(join(cwd, 'out'))).toEqual(before);
    writeFileSync(join(cwd, 'stacks/broken.ts'), 'export const nothing = 1;\n');
    const r2 = await run(['synth'], cwd);
    expect(r2.stderr).toContain('[stacks/broken.ts] has no default export');
    writeFileSync(join(cwd, 'stacks/broken.ts'), GOOD.replace("'demo'", "'broken'").replace("'10.70.0.0/24'", "'10.71.0.0/24'"));
  });

  it('usage errors exit 2 and point to --help', async () => {
    const r = await run(['synth', '--bogus'], cwd);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("Unknown option '--bogus'");
    expect((await run(['frobnicate'], cwd)).stderr).toContain('unknown command "frobnicate"');
    expect((await run(['synth', '--now', 'yesterday'], cwd)).stderr).toContain('--now "yesterday" is not an ISO-8601 time');
  });

  it('--help lists the commands and options', async () => {
    const r = await run(['--help'], cwd);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('--check');
    expect(r.stdout).toContain('--state DIR');
    expect((await run(['synth', '--help'], cwd)).exitCode).toBe(0);
  });
});
