// Stack files are built once and then served from podmesh's stack cache, keyed by content: any change
// to a stack file or to a file it imports (even one of the same size, within the same second)
// must reach the next synth, and changing it back must bring the old output back.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { podmeshProject, tempDir } from './helpers/stacks.ts';
import { repoRoot } from './helpers/tools.ts';

const rmStacks = (dir: string, files: readonly string[]) => files.forEach((f) => rmSync(join(dir, f)));

const dirs: { cleanup: () => void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

const STACK = [
  "import { type App, Host, Network, Service, Stack } from 'podmesh';",
  "import { IMAGE } from './lib/images.ts';",
  'export default (app: App): void => {',
  "  const stack = new Stack(app, 'cached', { project: 'cached' });",
  "  new Host(stack, 'h');",
  "  new Network(stack, 'mesh', { subnet: '10.93.4.0/24', domain: 'cached.local' });",
  "  new Service(stack, 'api', { image: IMAGE });",
  '};',
  '',
].join('\n');

describe('stack files through the transpile cache', () => {
  it('a changed stack file or imported file reaches the next synth, and changing it back restores the output', () => {
    const dir = tempDir();
    dirs.push(dir);
    const project = dir.path;
    podmeshProject(project);
    mkdirSync(join(project, 'stacks/lib'), { recursive: true });
    writeFileSync(join(project, 'stacks/cached.ts'), STACK);
    const lib = join(project, 'stacks/lib/images.ts');
    const compose = join(project, 'out/cached/hosts/h/compose.yaml');
    const synth = () => execFileSync(process.execPath, [join(repoRoot, 'bin/podmesh.mjs'), 'synth'], { cwd: project, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    const image = () => /^ {4}image: (\S+)$/m.exec(readFileSync(compose, 'utf8'))?.[1];

    writeFileSync(lib, "export const IMAGE = 'localhost/api:1';\n");
    synth();
    expect(image()).toBe('localhost/api:1');
    // WHEN the imported file changes, same size, same second
    writeFileSync(lib, "export const IMAGE = 'localhost/api:2';\n");
    synth();
    // THEN the new value is used (a cache keyed by size or mtime would serve the old one)
    expect(image()).toBe('localhost/api:2');
    // WHEN it changes back, the first output returns
    writeFileSync(lib, "export const IMAGE = 'localhost/api:1';\n");
    expect(synth()).toMatch(/compose\.yaml/);
    expect(image()).toBe('localhost/api:1');
    // WHEN the stack file itself changes (another service name)
    writeFileSync(join(project, 'stacks/cached.ts'), STACK.replace("'api', { image", "'web', { image"));
    synth();
    expect(readFileSync(compose, 'utf8')).toMatch(/^ {2}web:$/m);
    expect(readFileSync(compose, 'utf8')).not.toMatch(/^ {2}api:$/m);
  });

  it('reports stack files that do not build, by file and line, loads the others, and leaves no build behind', () => {
    const dir = tempDir();
    dirs.push(dir);
    const project = dir.path;
    podmeshProject(project);
    const stacks = join(project, 'stacks');
    const cache = join(project, 'cache');
    mkdirSync(join(stacks, 'lib'), { recursive: true });
    writeFileSync(join(stacks, 'a-good.ts'), STACK.replace("import { IMAGE } from './lib/images.ts';", "const IMAGE = 'localhost/api:1';"));
    writeFileSync(join(stacks, 'b-syntax.ts'), 'export default (app => {\n');
    writeFileSync(join(stacks, 'c-missing.ts'), "import { thing } from 'not-installed-anywhere';\nexport default (): void => { thing(); };\n");
    writeFileSync(join(stacks, 'd-throws.ts'), "import { type App } from 'podmesh';\nconst where: string = import.meta.dirname;\n\nexport default (app: App): void => {\n  throw new Error(`thrown in ${where}`);\n};\n");
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/podmesh.mjs'), 'synth'], { cwd: project, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', PODMESH_CACHE_DIR: cache } });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(`[${join('stacks', 'b-syntax.ts')}:2:1] does not compile: Unexpected end of file. Fix the stack file and run again.`);
    expect(r.stderr).toContain(`[${join('stacks', 'c-missing.ts')}] imports not-installed-anywhere, which cannot be found. Install it (npm install) or fix the import path.`);
    // The throwing file's own line (source maps) and its own folder for import.meta.dirname.
    expect(r.stderr).toContain(`[${join('stacks', 'd-throws.ts')}:5:9] threw thrown in ${stacks}.`);
    expect(existsSync(join(project, 'out'))).toBe(false);
    // One-off builds of the failed run are gone; the cache holds only private folders.
    const entries = readdirSync(cache, { recursive: true, withFileTypes: true });
    expect(entries.filter((e) => e.name.startsWith('.build-'))).toEqual([]);
    expect(statSync(cache).mode & 0o777).toBe(0o700);

    // WHEN the broken files are fixed, all four load together and are cached
    writeFileSync(join(stacks, 'b-syntax.ts'), STACK.replace("'cached'", "'b'").replace("'cached'", "'b'").replace("import { IMAGE } from './lib/images.ts';", "const IMAGE = 'localhost/b:1';").replace('10.93.4.0', '10.93.5.0'));
    rmStacks(stacks, ['c-missing.ts', 'd-throws.ts']);
    // Builds of other stacks folders: one not built for eight days (removed by the next build), one recent (kept).
    for (const [name, days] of [['0000000000000old', 8], ['000000000000new', 1]] as const) {
      mkdirSync(join(cache, name), { recursive: true });
      writeFileSync(join(cache, name, 'index.json'), '{}');
      const when = new Date(Date.now() - days * 86_400_000);
      utimesSync(join(cache, name, 'index.json'), when, when);
    }
    const ok = spawnSync(process.execPath, [join(repoRoot, 'bin/podmesh.mjs'), 'synth'], { cwd: project, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', PODMESH_CACHE_DIR: cache } });
    expect(ok.status, ok.stderr).toBe(0);
    expect(existsSync(join(project, 'out/b/manifest.json'))).toBe(true);
    expect(existsSync(join(project, 'out/cached/manifest.json'))).toBe(true);
    expect(existsSync(join(cache, '0000000000000old'))).toBe(false);
    expect(existsSync(join(cache, '000000000000new'))).toBe(true);
  });

  it('commands building the same stacks at once all load them', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const project = dir.path;
    podmeshProject(project);
    mkdirSync(join(project, 'stacks/lib'), { recursive: true });
    writeFileSync(join(project, 'stacks/cached.ts'), STACK);
    writeFileSync(join(project, 'stacks/lib/images.ts'), "export const IMAGE = 'localhost/api:1';\n");
    const cache = join(project, 'cache');
    const env = { ...process.env, NO_COLOR: '1', PODMESH_CACHE_DIR: cache };
    execFileSync(process.execPath, [join(repoRoot, 'bin/podmesh.mjs'), 'synth'], { cwd: project, env });
    // WHEN the cache is gone and three commands start together, each building the stacks
    rmSync(cache, { recursive: true, force: true });
    const run = () =>
      new Promise<number | null>((done) => {
        const child = spawn(process.execPath, [join(repoRoot, 'bin/podmesh.mjs'), 'synth', '--check'], { cwd: project, env, stdio: 'ignore' });
        child.on('exit', (code) => done(code));
      });
    // THEN every one loads them and finds out/ up to date; one build is left, no staging folder
    expect(await Promise.all([run(), run(), run()])).toEqual([0, 0, 0]);
    const left = readdirSync(cache, { recursive: true, withFileTypes: true }).map((e) => e.name);
    expect(left.filter((n) => n.startsWith('.build-') || n.startsWith('.index-'))).toEqual([]);
  });
});
