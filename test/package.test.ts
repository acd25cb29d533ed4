// podmesh as a package: npm pack, install the tarball into an empty project (offline), init,
// synth, typecheck; and init's plan (merge, refuse, --force) as plain data.
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INIT_PATHS, planInit, type InitInput } from '../src/cli/init.ts';
import { tempDir } from './helpers/stacks.ts';
import { repoRoot } from './helpers/tools.ts';
import { treeState } from './helpers/tree.ts';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/**
 * npm offline, and any request that still tried the network would go to a dead proxy: a package
 * missing from the cache fails the test instead of being downloaded.
 */
const NPM_ENV = {
  npm_config_proxy: 'http://127.0.0.1:9',
  npm_config_https_proxy: 'http://127.0.0.1:9',
  npm_config_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};

interface LockEntry {
  version?: string;
  integrity?: string;
  dev?: boolean;
  devOptional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * A lock file for a project that depends on the tarball (and on typescript and @types/node, as a
 * TypeScript project does), with every package at the version this repository's lock pins. npm
 * then needs no registry metadata (the cache holds tarballs, not the full packuments npm 11
 * asks for when it resolves a range) and takes each tarball from the cache by its integrity.
 */
function projectLock(name: string, tarball: string): object {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const devDependencies = { typescript: pkg.devDependencies.typescript!, '@types/node': pkg.devDependencies['@types/node']! };
  const packages: Record<string, LockEntry> = { '': { name, dependencies: { podmesh: `file:${tarball}` }, devDependencies } };
  const todo = [...Object.keys(pkg.dependencies), ...Object.keys(devDependencies)];
  const seen = new Set<string>();
  while (todo.length > 0) {
    const key = `node_modules/${todo.pop()!}`;
    const entry = lock.packages[key];
    if (seen.has(key) || !entry) continue;
    seen.add(key);
    todo.push(...Object.keys({ ...entry.dependencies, ...entry.optionalDependencies }));
  }
  for (const key of [...seen].sort()) {
    const { dev: _dev, devOptional: _devOptional, ...entry } = lock.packages[key]!;
    packages[key] = entry;
  }
  packages['node_modules/podmesh'] = { version: pkg.version, resolved: `file:${tarball}`, dependencies: pkg.dependencies, bin: { podmesh: 'bin/podmesh.mjs' } };
  return { name, lockfileVersion: 3, requires: true, packages };
}

describe('podmesh as a package', () => {
  const dir = tempDir('podmesh-pkg-');
  const project = join(dir.path, 'demo-mesh');
  let tarball = '';
  let packed: string[] = [];
  const npx = (...args: string[]) => execa('npx', args, { cwd: project, env: NPM_ENV, reject: false, timeout: 120_000 });
  /** The installed bin without npx's start-up (npx resolves to the same file, as the first calls prove). */
  const bin = (name: string, ...args: string[]) => execa(join(project, 'node_modules/.bin', name), args, { cwd: project, reject: false, timeout: 120_000 });
  /** Every file init writes, and what is below stacks/, out/ and .podmesh/ (not node_modules). */
  const projectState = () => ({
    ...Object.fromEntries(INIT_PATHS.map((p) => [p, existsSync(join(project, p)) ? `${readFileSync(join(project, p), 'utf8')} ${statSync(join(project, p)).mtimeMs}` : 'absent'])),
    stacks: treeState(join(project, 'stacks')),
    out: treeState(join(project, 'out')),
    state: treeState(join(project, '.podmesh')),
  });

  beforeAll(async () => {
    const pack = await execa('npm', ['pack', '--json', '--pack-destination', dir.path], { cwd: repoRoot, env: NPM_ENV, timeout: 120_000 });
    const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    tarball = info!.filename;
    packed = info!.files.map((f) => f.path);
    mkdirSync(project);
    // An empty project, as npm init makes it, that already uses TypeScript (see projectLock).
    const devDependencies = { typescript: pkg.devDependencies.typescript, '@types/node': pkg.devDependencies['@types/node'] };
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'demo-mesh', version: '1.0.0', private: true, devDependencies }, null, 2)}\n`);
    writeFileSync(join(project, 'package-lock.json'), JSON.stringify(projectLock('demo-mesh', `../${tarball}`), null, 2));
    const install = await execa('npm', ['i', '--offline', `../${tarball}`], { cwd: project, env: NPM_ENV, reject: false, timeout: 180_000 });
    expect(install.exitCode, install.stderr).toBe(0);
  }, 300_000);
  afterAll(() => dir.cleanup());

  it('the tarball holds the engine (sources and build), the constructs, the templates and the bin, and nothing of the repository around them', () => {
    expect(tarball).toBe(`podmesh-${pkg.version}.tgz`);
    for (const f of ['bin/podmesh.mjs', 'dist/cli.mjs', 'dist/index.mjs', 'src/index.ts', 'src/cli/main.ts', 'constructs/index.ts', 'templates/hyperf/server.php.hbs', 'templates/init/stacks/example.ts', 'templates/init/gitignore', 'README.md', 'package.json']) {
      expect(packed).toContain(f);
    }
    expect(packed.filter((f) => /^(test|out|stacks|scripts|bench|examples|node_modules|\.cache|\.podmesh)\//.test(f))).toEqual([]);
  });

  it('installs as a dependency with its bin', () => {
    const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(manifest.dependencies.podmesh).toBe(`file:../${tarball}`);
    expect(existsSync(join(project, 'node_modules/.bin/podmesh'))).toBe(true);
    // A real copy, not a link back into this repository.
    expect(statSync(join(project, 'node_modules/podmesh')).isSymbolicLink()).toBe(false);
  });

  it('npx podmesh --version prints the version of the installed package', async () => {
    const r = await npx('podmesh', '--version');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(pkg.version);
  });

  it('init writes the project, synth renders it from the installed podmesh, a second synth writes nothing, and tsc checks the stack', async () => {
    // WHEN
    const init = await npx('podmesh', 'init');
    // THEN
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toContain('  updated package.json\n');
    expect(init.stdout).toContain('  wrote .gitignore\n');
    expect(init.stdout).toContain('wrote stacks/example.ts');
    // podmesh, typescript and @types/node were there already: nothing to install
    expect(init.stdout).toContain('Next: npm run synth, and read out/example/TOPOLOGY.md.\n');
    const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as Record<string, Record<string, string> | string>;
    expect(manifest.type).toBe('module');
    expect(manifest.scripts).toMatchObject({ synth: 'podmesh synth', check: 'podmesh synth --check', typecheck: 'tsc --noEmit' });
    expect(manifest.dependencies).toEqual({ podmesh: `file:../${tarball}` });
    expect(manifest.name).toBe('demo-mesh');
    expect(readFileSync(join(project, '.gitignore'), 'utf8')).toMatch(/^\.podmesh\/$/m);
    // git itself ignores the state folder and the locks a killed run would leave beside .podmesh/ and out/
    await execa('git', ['init', '-q'], { cwd: project });
    const ignored = await execa('git', ['check-ignore', '.podmesh/example/pki/ca.key', '.podmesh.lock', '.out.podmesh.lock'], { cwd: project, reject: false });
    expect(ignored.stdout.split('\n')).toEqual(['.podmesh/example/pki/ca.key', '.podmesh.lock', '.out.podmesh.lock']);

    // WHEN: synth, as `npm run synth` runs it (stacks import 'podmesh' from node_modules)
    const synth = await npx('podmesh', 'synth');
    // THEN: the CLI recognised the stack the user's file built (same module instances)
    expect(synth.exitCode, synth.stderr).toBe(0);
    expect(synth.stdout).toContain('example: written:');
    for (const f of ['compose.yaml', 'quadlet/example-api.container', 'quadlet/example-web.container', 'quadlet/example-postgres.container', 'quadlet/mesh.network']) {
      expect(existsSync(join(project, 'out/example/hosts/local', f)), f).toBe(true);
    }
    expect(statSync(join(project, '.podmesh/example/pki/services/api/server.key')).mode & 0o777).toBe(0o600);
    // Templates come from the installed package (api is a Hyperf application).
    expect(readFileSync(join(project, 'out/example/hosts/local/config/api/Policy.php'), 'utf8')).toContain("'web.example.local'");
    expect(readFileSync(join(project, 'out/example/hosts/local/config/_shared/autoload/mtls_policy.php'), 'utf8')).toContain('Policy::ALLOWED_CLIENTS');
    const compose = readFileSync(join(project, 'out/example/hosts/local/compose.yaml'), 'utf8');
    expect(compose).toContain('API_SERVICE_URL: https://api.example.local:8443');

    // AND a second synth writes nothing
    const before = projectState();
    const again = await bin('podmesh', 'synth', '--check');
    expect(again.exitCode, again.stdout).toBe(0);
    const second = await bin('podmesh', 'synth');
    expect(second.stdout).toMatch(/^example: up to date \(\d+ files in out\/example\)$/);
    expect(projectState()).toEqual(before);

    // AND the example stack typechecks against podmesh's sources, and a type error is caught
    const tsc = await bin('tsc', '--noEmit');
    expect(tsc.exitCode, tsc.stdout).toBe(0);
    writeFileSync(join(project, 'stacks/typo.ts'), "import { Service } from 'podmesh';\nexport const x: Service = 'api';\n");
    const bad = await bin('tsc', '--noEmit');
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stdout).toContain("stacks/typo.ts(2,14): error TS2322: Type 'string' is not assignable to type 'Service'.");
    expect(bad.stdout.split('\n').filter((l) => l.includes('error'))).toHaveLength(1);
    rmSync(join(project, 'stacks/typo.ts'));
  }, 300_000);

  it('init refuses to overwrite a changed file, naming it, and writes nothing; --force replaces it', async () => {
    // GIVEN the user edited the example stack and their README
    writeFileSync(join(project, 'README.md'), '# Our mesh\n');
    writeFileSync(join(project, 'stacks/example.ts'), readFileSync(join(project, 'stacks/example.ts'), 'utf8').replace("'example'", "'ours'"));
    const before = projectState();
    // WHEN
    const r = await bin('podmesh', 'init');
    // THEN
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('podmesh: 2 problems; nothing was written.\n');
    expect(r.stderr).toContain('[stacks/example.ts] exists. init never overwrites a file: move it away, or run podmesh init --force to replace it.');
    expect(r.stderr).toContain('[README.md] exists.');
    expect(projectState()).toEqual(before);
    // WHEN forced
    const forced = await bin('podmesh', 'init', '--force');
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('  replaced stacks/example.ts\n');
    expect(forced.stdout).toContain('  kept package.json\n');
    expect(readFileSync(join(project, 'stacks/example.ts'), 'utf8')).toBe(readFileSync(join(repoRoot, 'templates/init/stacks/example.ts'), 'utf8'));
  }, 120_000);
});

describe('podmesh init plan', () => {
  const templates = {
    'tsconfig.json': '{}\n',
    'stacks/example.ts': 'export default () => {};\n',
    'README.md': '# mesh\n',
    gitignore: '# state\n.podmesh/\nnode_modules/\n',
  };
  const input = (existing: InitInput['existing'], force = false): InitInput => ({
    existing,
    templates,
    podmesh: { name: 'podmesh', version: '1.2.3', devDependencies: { typescript: '^5.9.3', '@types/node': '^20.19.43', vitest: '^4' } },
    projectName: 'shop',
    force,
  });
  const file = (plan: ReturnType<typeof planInit>, path: string) => plan.files.find((f) => f.path === path)!;

  it('in an empty folder creates every file, a package.json with podmesh and TypeScript', () => {
    const plan = planInit(input({}));
    expect(plan.conflicts).toEqual([]);
    expect(plan.added).toEqual(['podmesh', 'typescript', '@types/node']);
    expect(plan.files.map((f) => [f.path, f.action])).toEqual([
      ['package.json', 'create'], ['tsconfig.json', 'create'], ['.gitignore', 'create'], ['stacks/example.ts', 'create'], ['README.md', 'create'],
    ]);
    expect(JSON.parse(file(plan, 'package.json').content)).toEqual({
      name: 'shop',
      private: true,
      type: 'module',
      scripts: { synth: 'podmesh synth', check: 'podmesh synth --check', diff: 'podmesh diff', typecheck: 'tsc --noEmit' },
      dependencies: { podmesh: '^1.2.3' },
      devDependencies: { typescript: '^5.9.3', '@types/node': '^20.19.43' },
      allowScripts: { esbuild: true },
    });
  });

  it('merges into an existing package.json: keeps every entry, adds only what is missing', () => {
    const existing = { name: 'shop', scripts: { test: 'vitest', synth: 'podmesh synth' }, dependencies: { podmesh: 'file:podmesh-1.2.3.tgz' }, devDependencies: { typescript: '5.4.0' }, allowScripts: { esbuild: false } };
    const plan = planInit(input({ 'package.json': JSON.stringify(existing) }));
    expect(plan.conflicts).toEqual([]);
    const merged = JSON.parse(file(plan, 'package.json').content) as Record<string, unknown>;
    expect(merged).toEqual({
      ...existing,
      scripts: { test: 'vitest', synth: 'podmesh synth', check: 'podmesh synth --check', diff: 'podmesh diff', typecheck: 'tsc --noEmit' },
      devDependencies: { typescript: '5.4.0', '@types/node': '^20.19.43' },
      type: 'module',
    });
    expect(file(plan, 'package.json').action).toBe('update');
    expect(plan.added).toEqual(['@types/node']);
  });

  it.each([
    ['a script with another command', { scripts: { synth: 'make synth' } }, 'scripts.synth is "make synth", init would set "podmesh synth".'],
    ['a CommonJS package', { type: 'commonjs' }, 'type is "commonjs", init would set "module".'],
  ])('refuses %s unless --force', (_name, existing, message) => {
    const refused = planInit(input({ 'package.json': JSON.stringify(existing) }));
    expect(refused.conflicts).toEqual([{ path: 'package.json', message: `${message} Change it yourself, or run podmesh init --force to replace it.` }]);
    expect(planInit(input({ 'package.json': JSON.stringify(existing) }, true)).conflicts).toEqual([]);
  });

  it('the tsconfig.json init writes checks with the compiler options podmesh\'s own sources are checked with', () => {
    // GIVEN stack files typecheck podmesh's .ts sources too: a stricter option would fail them, a looser one miss errors.
    const ours = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.json'), 'utf8')) as { compilerOptions: object };
    const init = JSON.parse(readFileSync(join(repoRoot, 'templates/init/tsconfig.json'), 'utf8')) as { compilerOptions: object; include: string[] };
    expect(init.compilerOptions).toEqual(ours.compilerOptions);
    expect(init.include).toEqual(['stacks']);
  });

  it('refuses a package.json that is not JSON, even with --force', () => {
    const plan = planInit(input({ 'package.json': '{ nope' }, true));
    expect(plan.conflicts).toHaveLength(1);
    expect(plan.conflicts[0]!.message).toMatch(/^is not valid JSON \(.+\)\. Fix it, then run podmesh init again\.$/);
  });

  it('appends only the missing lines to an existing .gitignore', () => {
    expect(file(planInit(input({ '.gitignore': 'dist\n.podmesh\n' })), '.gitignore')).toEqual({ path: '.gitignore', content: 'dist\n.podmesh\nnode_modules/\n', action: 'update' });
    expect(file(planInit(input({ '.gitignore': 'node_modules/\n.podmesh/' })), '.gitignore').action).toBe('keep');
    expect(file(planInit(input({ '.gitignore': 'dist' })), '.gitignore').content).toBe('dist\n.podmesh/\nnode_modules/\n');
  });

  it('keeps a file that already has the template content; refuses one that differs, naming it', () => {
    const plan = planInit(input({ 'README.md': '# mesh\n', 'tsconfig.json': '{ "strict": true }\n' }));
    expect(file(plan, 'README.md').action).toBe('keep');
    expect(plan.conflicts).toEqual([{ path: 'tsconfig.json', message: 'exists. init never overwrites a file: move it away, or run podmesh init --force to replace it.' }]);
    expect(file(planInit(input({ 'tsconfig.json': '{ "strict": true }\n' }, true)), 'tsconfig.json').action).toBe('overwrite');
  });
});
