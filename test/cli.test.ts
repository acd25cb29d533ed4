// The podmesh command as a user runs it: exit codes, messages, and nothing written on error.
import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { podmeshProject, tempDir } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';
import { repoRoot } from './helpers/tools.ts';
import { HELP, type Io } from '../src/cli/command.ts';
import { COMMANDS, GROUPS } from '../src/cli/commands/index.ts';
import { runCli, select } from '../src/cli/run.ts';

const bin = join(repoRoot, 'bin/podmesh.mjs');
const run = (args: string[], cwd: string) => execa('node', [bin, ...args], { cwd, reject: false, timeout: 60_000 });

const GOOD = `import { Host, Network, Service, Stack } from 'podmesh';
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
    podmeshProject(cwd);
    writeFileSync(join(cwd, 'stacks/demo.ts'), GOOD);
  });
  afterAll(() => dir.cleanup());

  it('synth writes out/<stack> and says what it wrote; a second run is up to date', async () => {
    const first = await run(['synth'], cwd);
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toContain('+ out/demo/hosts/local/compose.yaml');
    const second = await run(['synth'], cwd);
    // 16 files (the service's own Hyperf files, the host's shared ones and its openssl.cnf among them), plus the cert-expiry script, service and timer.
    expect(second.stdout).toBe('demo: up to date (19 files in out/demo)');
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
    expect((await run(['synth', '--now', 'yesterday'], cwd)).stderr).toContain('--now "yesterday" is not an ISO-8601 date or time with a zone');
  });

  it('--help lists the commands and options', async () => {
    const r = await run(['--help'], cwd);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('--check');
    expect(r.stdout).toContain('--state DIR');
    expect((await run(['synth', '--help'], cwd)).exitCode).toBe(0);
  });
});

describe('the command table', () => {
  const table = { commands: COMMANDS, groups: GROUPS };
  const byName = (name: string) => COMMANDS.find((c) => c.name === name)!;
  /** An Io that records what a run printed. */
  const recorder = () => {
    const printed = { out: '', err: '' };
    const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: {}, cwd: '/nonexistent', tty: false };
    return { io, printed };
  };

  it.each([
    [[], { usage: 2 }],
    [['--help'], { usage: 0 }],
    [['help'], { usage: 0 }],
    [['certs'], { usage: 2 }],
    [['certs', '-h'], { usage: 0 }],
    [['wireguard', '--help'], { usage: 0 }],
    [['synth', '--check'], 'synth'],
    [['certs', 'revoke', 'auth'], 'certs revoke'],
    [['wireguard', 'rotate', '--all'], 'wireguard rotate'],
    [['--version'], '--version'],
    [['init', '--force'], 'init'],
    [['state', 'export', '--stack', 's'], 'state export'],
    [['state', 'import'], 'state import'],
    [['state'], { usage: 2 }],
  ] as const)('argv %j selects %j', (argv, want) => {
    const picked = select(argv, table);
    expect('usage' in picked ? picked : picked.command.name).toEqual(want);
  });

  it.each([
    [['frobnicate'], 'unknown command "frobnicate". Commands: synth, certs, verify, audit, wireguard, secrets, diff, apply, state, import, init. See podmesh --help.'],
    [['certs', 'renew'], 'unknown certs command "renew". Use status, issue, rotate, revoke, csr, import or bundle.'],
    [['wireguard', 'spin'], 'unknown wireguard command "spin". Use rotate.'],
    [['state', 'dump'], 'unknown state command "dump". Use export or import.'],
  ])('argv %j is a usage error', (argv, message) => {
    expect(() => select(argv, table)).toThrow(message);
  });

  it.each([
    ['synth', ['--check', '--stack', 'a', '--stack', 'b', '--now', '2027-01-31T12:00:00Z'], { stacksDir: 'stacks', stacks: ['a', 'b'], out: 'out', state: undefined, check: true, now: new Date('2027-01-31T12:00:00Z'), noCache: false }],
    ['verify', ['--json', '--timeout', '900', '--out', 'o'], expect.objectContaining({ format: 'json', timeoutMs: 900, warnDays: 30, out: 'o', resolveFromLock: false })],
    ['certs revoke', ['auth', '--kind', 'client', '--reason', 'keyCompromise'], { base: expect.objectContaining({ now: undefined }), data: { service: 'auth', kind: 'client', reason: 'keyCompromise' } }],
    ['certs status', ['--format', 'prom', '--warn-days', '7'], { base: expect.anything(), data: { format: 'prom', warnDays: 7, output: undefined } }],
    ['wireguard rotate', ['--host', 'a', '--host', 'a', '--host', 'b'], expect.objectContaining({ hosts: ['a', 'b'] })],
    ['apply', ['--stack', 's', '--host', 'h', '--dry-run', '--no-systemctl'], expect.objectContaining({ stack: 's', host: 'h', root: '/', dryRun: true, systemctl: false })],
    ['apply', ['--stack', 's', '--host', 'h', '--state-bundle', 'h.age', '--identity', 'h.key'], expect.objectContaining({ stateBundle: { file: 'h.age', identity: 'h.key' } })],
    ['state export', ['--stack', 's', '--host', 'h', '--recipient', 'age1x', '--recipients-file', 'r.txt', '--output', 'h.age'], expect.objectContaining({ stack: 's', host: 'h', recipients: ['age1x'], recipientsFiles: ['r.txt'], output: 'h.age' })],
    ['state export', ['--stack', 's', '--recipient', 'age1x', '-o', 'all.age'], expect.objectContaining({ host: undefined, output: 'all.age' })],
    ['state import', ['--input', 'all.age', '--identity', 'k', '--force'], { stack: undefined, state: undefined, input: 'all.age', identity: 'k', force: true }],
    ['apply', ['--stack', 's', '--host', 'h', '--remove', '--purge-volumes'], expect.objectContaining({ remove: true, purgeVolumes: true, check: false })],
    ['diff', [], expect.objectContaining({ stacks: [], now: undefined })],
    ['init', [], { force: false }],
  ] as const)('%s parses %j into data, without I/O', (name, argv, data) => {
    expect(byName(name).parse(argv)).toEqual(data);
  });

  it.each([
    ['synth', ['--now', 'yesterday'], '--now "yesterday" is not an ISO-8601 date or time with a zone, e.g. 2027-01-31 or 2027-01-31T12:00:00Z.'],
    ['synth', ['--bogus'], "Unknown option '--bogus'"],
    ['verify', ['--format', 'xml'], '--format "xml" is not one of table, json, prom.'],
    ['verify', ['--timeout', '5'], '--timeout "5" must be 100-120000 milliseconds.'],
    ['certs status', ['--warn-days', '1.5'], '--warn-days "1.5" is not a whole number of days.'],
    ['certs revoke', [], 'certs revoke takes one SERVICE'],
    ['certs revoke', ['auth', '--reason', 'bored'], '--reason "bored" is not one of unspecified, keyCompromise'],
    ['certs import', ['a', 'b'], 'certs import takes one DIR'],
    ['wireguard rotate', ['--all', '--host', 'a'], 'wireguard rotate needs --host H (repeatable) or --all'],
    ['apply', ['--stack', 's'], 'apply needs one --stack and one --host'],
    ['apply', ['--stack', 's', '--host', 'h', '--state-bundle', 'h.age'], 'apply --state-bundle FILE needs --identity KEYFILE'],
    ['apply', ['--stack', 's', '--host', 'h', '--identity', 'h.key'], 'apply --state-bundle FILE needs --identity KEYFILE'],
    ['apply', ['--stack', 's', '--host', 'h', '--state-bundle', 'h.age', '--identity', ''], 'apply --state-bundle FILE needs --identity KEYFILE'],
    ['state export', ['--stack', 's', '--recipient', 'age1x'], 'state export needs one --stack, --output FILE and at least one --recipient'],
    ['state export', ['--stack', 's', '--output', 'o.age'], 'state export needs one --stack, --output FILE and at least one --recipient'],
    ['state export', ['--recipient', 'age1x', '--output', 'o.age'], 'state export needs one --stack, --output FILE and at least one --recipient'],
    ['state import', ['--input', 'all.age'], 'state import needs --input FILE and --identity KEYFILE'],
    ['state import', ['--identity', 'k'], 'state import needs --input FILE and --identity KEYFILE'],
    ['apply', ['--stack', 's', '--host', 'h', '--check', '--remove'], 'apply --check and --remove exclude each other'],
    ['apply', ['--stack', 's', '--host', 'h', '--check', '--dry-run'], 'apply --check writes and runs nothing already'],
    ['apply', ['--stack', 's', '--host', 'h', '--purge-volumes'], '--purge-volumes goes with --remove'],
  ] as const)('%s refuses %j: %s', (name, argv, message) => {
    expect(() => byName(name).parse(argv)).toThrow(message);
  });

  it('every row answers --help with HELP and has its usage lines under Commands in --help', async () => {
    const { io, printed } = recorder();
    expect(await runCli(['--help'], io)).toBe(0);
    for (const c of COMMANDS) {
      expect(c.parse(['--help'])).toBe(HELP);
      expect(c.usage).toMatch(new RegExp(`^  ${c.name.replace(/-/g, '\\-')}( |\n)`));
      expect(printed.out).toContain(c.usage);
    }
    expect(printed.out).toContain('synth options:\n  --check        write nothing');
    expect(printed.out).toContain('init options:\n  --force ');
  });

  it('runs in process: --version prints the package version; errors become exit codes and messages', async () => {
    const version = recorder();
    expect(await runCli(['--version'], version.io)).toBe(0);
    expect(version.printed.out).toBe(`${JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version}\n`);
    const usage = recorder();
    expect(await runCli(['synth', '--now', 'x'], usage.io)).toBe(2);
    expect(usage.printed.err).toBe('podmesh: --now "x" is not an ISO-8601 date or time with a zone, e.g. 2027-01-31 or 2027-01-31T12:00:00Z.\n');
    const problem = recorder();
    expect(await runCli(['synth', '--stacks', '/nonexistent/stacks'], problem.io)).toBe(1);
    expect(problem.printed.err).toContain('podmesh: 1 problem; nothing was written.\n[/nonexistent/stacks] no such folder.');
    const readOnly = recorder();
    expect(await runCli(['diff', '--stacks', '/nonexistent/stacks'], readOnly.io)).toBe(1);
    expect(readOnly.printed.err).toMatch(/^podmesh: 1 problem\.\n/);
  });
});
