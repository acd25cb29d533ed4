// out/ does not depend on where the state folder is: compose files name it by PODMESH_STATE_DIR,
// with `.podmesh` beside out/ as the default, and docker compose and podman-compose resolve every
// certificate mount and secret file through it.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { synth } from '../src/index.ts';
import { loadStacks } from '../src/cli/load.ts';
import { runCli } from '../src/cli/run.ts';
import { tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';

const dockerCompose = tool('docker-compose');
const podmanCompose = tool('podman-compose');
const inCI = process.env.CI === 'true';

/** Every file below `dir` with its bytes, by relative path. */
function tree(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) files[relative(dir, join(e.parentPath, e.name))] = readFileSync(join(e.parentPath, e.name), 'utf8');
  }
  return files;
}

describe('out/ and the state folder', () => {
  const dir = tempDir();
  // One state folder (its CA, keys and passwords), copied to three places, as a pipeline restores it.
  const original = join(dir.path, 'project/.podmesh');
  const states = [original, join(dir.path, 'runner-temp/state'), join(dir.path, 'elsewhere/deep/podmesh-state')];
  const outs = ['project', 'b', 'c'].map((p) => join(dir.path, p, 'out'));

  beforeAll(async () => {
    const app = await loadStacks(join(repoRoot, 'stacks'));
    await synth(app, { outDir: outs[0]!, stateDir: original });
    for (const s of states.slice(1)) {
      mkdirSync(join(s, '..'), { recursive: true });
      cpSync(original, s, { recursive: true });
    }
    for (let i = 1; i < states.length; i++) await synth(await loadStacks(join(repoRoot, 'stacks')), { outDir: outs[i]!, stateDir: states[i]! });
  }, 180_000);
  afterAll(() => dir.cleanup());

  it('GIVEN one state folder in three places WHEN synthesized with each THEN out/ is byte-identical, and the same as the committed out/', () => {
    const first = tree(outs[0]!);
    expect(Object.keys(first).length).toBeGreaterThan(50);
    for (const o of outs.slice(1)) expect(tree(o)).toEqual(first);
    // The repository's out/ sits beside its .podmesh exactly like this project's.
    expect(first['ashchan-dev/hosts/local/compose.yaml']).toBe(readFileSync(join(repoRoot, 'out/ashchan-dev/hosts/local/compose.yaml'), 'utf8'));
    expect(first['ashchan-dev/hosts/local/compose.yaml']).toContain('${PODMESH_STATE_DIR:-../../../../.podmesh}/ashchan-dev/secrets/auth.postgres-password');
  });

  it('GIVEN the state elsewhere WHEN synth --check runs with --state or PODMESH_STATE_DIR THEN out/ is current', async () => {
    for (const [i, state] of states.entries()) {
      const printed = { out: '', err: '' };
      const io = (env: Record<string, string>) => ({ out: (t: string) => (printed.out += t), err: (t: string) => (printed.err += t), env, cwd: dir.path, tty: false });
      // Another place's out/ with this state: the same files.
      const withFlag = await runCli(['synth', '--check', '--stacks', join(repoRoot, 'stacks'), '--out', outs[(i + 1) % outs.length]!, '--state', state], io({}));
      expect(withFlag, printed.out + printed.err).toBe(0);
      const withEnv = await runCli(['synth', '--check', '--stacks', join(repoRoot, 'stacks'), '--out', outs[i]!], io({ PODMESH_STATE_DIR: state }));
      expect(withEnv, printed.out + printed.err).toBe(0);
    }
  });

  it.skipIf(!dockerCompose && !inCI)('GIVEN PODMESH_STATE_DIR, or nothing with the state beside out/ WHEN docker compose reads every host\'s file THEN every certificate mount and secret file is a file of that state folder', () => {
    if (!dockerCompose) throw new Error('docker compose v2 is required under CI: run scripts/install-validators.sh');
    const cases: [string, string, Record<string, string>][] = [
      [outs[0]!, original, {}],
      [outs[1]!, states[1]!, { PODMESH_STATE_DIR: states[1]! }],
      // A relative value resolves against the compose file's folder, as compose resolves paths
      // (every host folder is at the same depth, so one relative value serves them all).
      [outs[2]!, states[2]!, { PODMESH_STATE_DIR: relative(join(outs[2]!, 'ashchan-prod/hosts/data'), states[2]!) }],
    ];
    for (const [out, state, env] of cases) {
      for (const stack of ['ashchan-dev', 'ashchan-prod']) {
        for (const host of readdirSync(join(out, stack, 'hosts'))) {
          const file = join(out, stack, 'hosts', host, 'compose.yaml');
          if (!existsSync(file)) continue;
          const r = spawnSync(dockerCompose, ['-f', file, 'config', '--format', 'json'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, PODMESH_STATE_DIR: '', ...env } });
          expect(r.status, r.stderr).toBe(0);
          const model = JSON.parse(r.stdout) as { services: Record<string, { volumes?: { type: string; source: string }[] }>; secrets?: Record<string, { file: string }> };
          const sources = [
            ...Object.values(model.services).flatMap((s) => (s.volumes ?? []).filter((v) => v.type === 'bind' && v.source.includes('/pki/')).map((v) => v.source)),
            ...Object.values(model.secrets ?? {}).map((s) => s.file),
          ];
          expect(sources.length, file).toBeGreaterThan(0);
          for (const src of sources) {
            expect(src.startsWith(`${state}/${stack}/`), `${src} in ${state}`).toBe(true);
            expect(existsSync(src), src).toBe(true);
          }
          for (const s of Object.values(model.secrets ?? {})) expect(statSync(s.file).mode & 0o777).toBe(0o444);
        }
      }
    }
  });

  it.skipIf(!podmanCompose && !inCI)('GIVEN PODMESH_STATE_DIR WHEN podman-compose reads the file THEN it substitutes the state folder too', () => {
    if (!podmanCompose) throw new Error('podman-compose is required under CI: run scripts/install-validators.sh');
    const text = execFileSync(podmanCompose, ['-f', join(outs[1]!, 'ashchan-dev/hosts/local/compose.yaml'), 'config'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PODMESH_STATE_DIR: states[1]! },
    });
    const model = parse(text) as { services: Record<string, { volumes?: string[] }>; secrets: Record<string, { file: string }> };
    expect(model.secrets['auth.postgres-password']!.file).toBe(`${states[1]}/ashchan-dev/secrets/auth.postgres-password`);
    expect(model.services.auth!.volumes).toContainEqual(`${states[1]}/ashchan-dev/pki/services/auth:/etc/mtls:ro,Z`);
  });
});
