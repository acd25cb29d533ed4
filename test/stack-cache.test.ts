// Stack files are transpiled once and then served from tsx's cache, keyed by content: any change
// to a stack file or to a file it imports (even one of the same size, within the same second)
// must reach the next synth, and changing it back must bring the old output back.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { podmeshProject, tempDir } from './helpers/stacks.ts';
import { repoRoot } from './helpers/tools.ts';

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
});
