// Synth as a whole: deterministic bytes, no writes when nothing changed, stale files removed,
// --check, and a killed synth that leaves the previous out/ intact.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { App, applySynth, planSynth, synth } from '../src/index.ts';
import { changed, writeStackOutput } from '../src/io/writer.ts';
import { atomicWriter, flushTogether, sharedFlushWriter, type StateWriter } from '../src/io/atomic.ts';
import { applySynth as applyPlan } from '../src/synth/apply.ts';
import { svc, tempDir, threeTier, testState } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';

const dirs: { cleanup: () => void }[] = [];
const temp = () => {
  const d = tempDir();
  dirs.push(d);
  return d.path;
};
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

describe('synth', () => {
  it('is byte-identical across runs and apps, and a second run touches no file', async () => {
    // GIVEN two independent synths of the same stack
    const a = temp();
    const b = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: a });
    await synth(threeTier().app, { stateDir: testState, outDir: b });
    const first = treeState(a);
    // THEN same bytes
    const hashes = (t: Record<string, string>) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.split(' ')[0]]));
    expect(hashes(treeState(b))).toEqual(hashes(first));
    // WHEN synth runs again with nothing changed
    await new Promise((r) => setTimeout(r, 20));
    const result = await synth(threeTier().app, { stateDir: testState, outDir: a });
    // THEN nothing was written: same content, modes and mtimes
    expect(result.changed).toBe(false);
    expect(treeState(a)).toEqual(first);
  });

  it('writes the manifest with every file and its sha256, sorted', async () => {
    const out = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: out });
    const manifest = JSON.parse(readFileSync(join(out, 'three/manifest.json'), 'utf8'));
    expect(manifest.files.map((f: { path: string }) => f.path)).toEqual([
      'TOPOLOGY.md',
      'hosts/local/bin/podmesh-cert-expiry.sh',
      'hosts/local/compose.yaml',
      // What the host's services share: the Hyperf classes and config files, the mTLS server's middleware list, the OpenSSL settings.
      'hosts/local/config/_shared/app/Podmesh/Crl.php',
      'hosts/local/config/_shared/app/Podmesh/MtlsClientFactory.php',
      'hosts/local/config/_shared/app/Podmesh/MtlsMiddleware.php',
      'hosts/local/config/_shared/autoload/middlewares.http.php',
      'hosts/local/config/_shared/autoload/mtls_client.php',
      'hosts/local/config/_shared/autoload/mtls_policy.php',
      'hosts/local/config/_shared/autoload/server.php',
      'hosts/local/config/_shared/openssl.cnf',
      // Each Hyperf service's own: its identity, listeners and call policy.
      'hosts/local/config/api/Policy.php',
      // db's roles script: api, its client, connects as a role of its own
      'hosts/local/config/db/podmesh-roles.sh',
      'hosts/local/config/web/Policy.php',
      'hosts/local/quadlet/mesh.network',
      'hosts/local/quadlet/mini-api.container',
      'hosts/local/quadlet/mini-db-data.volume',
      'hosts/local/quadlet/mini-db.container',
      'hosts/local/quadlet/mini-web.container',
      'hosts/local/systemd/podmesh-three-cert-expiry.service',
      'hosts/local/systemd/podmesh-three-cert-expiry.timer',
      'hosts/local/systemd/podmesh-three-secrets.service',
      'hosts/local/systemd/three.target',
      'podmesh.lock.json',
    ]);
    expect(manifest.files[1].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(manifest)).not.toMatch(/20\d\d-\d\d-\d\dT/);
  });

  it('rewrites only what changed and keeps the mtimes of the rest', async () => {
    const out = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: out });
    const before = treeState(out);
    const changedApp = threeTier();
    svc(changedApp.stack, 'extra');
    await new Promise((r) => setTimeout(r, 20));
    const result = await synth(changedApp.app, { stateDir: testState, outDir: out });
    expect(result.reports[0]!.modified).toEqual(['TOPOLOGY.md', 'hosts/local/compose.yaml', 'hosts/local/systemd/three.target', 'manifest.json', 'podmesh.lock.json']);
    // The new service's own Hyperf file and unit; the host's shared files now name it among the units they restart (their text is the same).
    expect(result.reports[0]!.added).toEqual(['hosts/local/config/extra/Policy.php', 'hosts/local/quadlet/mini-extra.container']);
    const after = treeState(out);
    for (const f of Object.keys(before)) {
      if (!result.reports[0]!.modified.includes(f.replace(/^three\//, ''))) expect(after[f]).toEqual(before[f]);
    }
  });

  it('removes stale files of a stack and stacks that no longer exist', async () => {
    const out = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: out });
    writeFileSync(join(out, 'three/hosts/local/leftover.yaml'), 'x');
    await synth(threeTier('other').app, { stateDir: testState, outDir: out, stacks: ['other'] });
    expect(existsSync(join(out, 'other/manifest.json'))).toBe(true);
    // WHEN the app holds only "three"
    const result = await synth(threeTier().app, { stateDir: testState, outDir: out });
    // THEN the leftover file and the vanished stack are gone
    expect(result.reports[0]!.removed).toEqual(['hosts/local/leftover.yaml']);
    expect(result.prunedStacks).toEqual(['other']);
    expect(existsSync(join(out, 'three/hosts/local/leftover.yaml'))).toBe(false);
    expect(existsSync(join(out, 'other'))).toBe(false);
  });

  it('apply compares again what changed in out/ after the plan compared it', async () => {
    // GIVEN an up-to-date out/ and a plan that found nothing to do
    const out = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: out });
    const before = treeState(out);
    const cases: [string, () => void][] = [
      ['a file edited', () => writeFileSync(join(out, 'three/hosts/local/compose.yaml'), 'edited\n')],
      ['a byte changed, same size', () => {
        const f = join(out, 'three/hosts/local/quadlet/mini-api.container');
        const text = readFileSync(f, 'utf8');
        writeFileSync(f, text.replace('[Container]', '[Containe_]'));
      }],
      ['a file added', () => writeFileSync(join(out, 'three/hosts/local/quadlet/stray.container'), '[Container]\n')],
      ['a file removed', () => rmSync(join(out, 'three/hosts/local/quadlet/mini-web.container'))],
      ['a folder replaced', () => rmSync(join(out, 'three/hosts/local/config/web'), { recursive: true })],
    ];
    for (const [what, change] of cases) {
      const plan = await planSynth(threeTier().app, { stateDir: testState, outDir: out });
      expect(plan.stacks[0]!.comparison.unchanged, what).toBeGreaterThan(0);
      expect(changed(plan.stacks[0]!.comparison), what).toBe(false);
      // WHEN out/ changes between plan and apply
      change();
      const result = await applySynth(plan);
      // THEN apply notices and makes out/ right again
      expect(result.changed, what).toBe(true);
      const after = treeState(out);
      expect(Object.keys(after).sort(), what).toEqual(Object.keys(before).sort());
      for (const [f, v] of Object.entries(after)) expect(v.split(' ')[0], `${what}: ${f}`).toEqual(before[f]!.split(' ')[0]);
    }
  });

  it('writes secrets/values.json before the CA: a run killed between them leaves no CA without its passwords', async () => {
    // GIVEN a fresh state folder, and a writer that notes what exists when values.json is written
    const out = temp();
    const state = temp();
    const plan = await planSynth(threeTier().app, { stateDir: state, outDir: out });
    const seen: { values: number; caBefore: boolean }[] = [];
    const caPath = join(state, 'three', 'pki', 'ca.crt');
    const noting: StateWriter = {
      ...atomicWriter,
      write: async (abs, content, mode) => {
        if (abs.endsWith('/secrets/values.json')) seen.push({ values: content.length, caBefore: existsSync(caPath) });
        await atomicWriter.write(abs, content, mode);
      },
    };
    // WHEN the plan is applied
    await applyPlan(plan, noting);
    // THEN values.json was written once, while there was no CA yet, and the CA exists now
    expect(seen).toHaveLength(1);
    expect(seen[0]!.caBefore).toBe(false);
    expect(existsSync(caPath)).toBe(true);
  });

  it('a synth\'s state batches share their flushes, all of them done before out/ is written', async () => {
    // GIVEN a fresh state folder, and a shared writer whose flushes note whether out/ exists yet
    const out = temp();
    const state = temp();
    const plan = await planSynth(threeTier().app, { stateDir: state, outDir: out });
    const seen: { data: number; entries: number; out: boolean }[] = [];
    const writer = sharedFlushWriter({
      flush: async (data, entries) => {
        seen.push({ data: data.length, entries: entries.length, out: existsSync(join(out, 'three')) });
        await flushTogether(data, entries);
      },
    });
    // WHEN the plan is applied
    await applyPlan(plan, writer);
    // THEN two flushes made the secrets (data, then names with the PKI's) and the new PKI folder
    // durable (four, one batch at a time), before out/ was written
    expect(seen.map((s) => s.out)).toEqual([false, false]);
    expect(seen[0]!.entries).toBe(0);
    expect(seen[1]!.entries).toBeGreaterThan(seen[1]!.data);
    expect(existsSync(join(state, 'three', 'pki', 'ca.crt'))).toBe(true);
    expect(existsSync(join(out, 'three'))).toBe(true);
  });

  it('tells a file with one byte changed from an unchanged one, at the same size', async () => {
    const out = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: out });
    const f = join(out, 'three/hosts/local/quadlet/mini-api.container');
    writeFileSync(f, readFileSync(f, 'utf8').replace('[Container]', '[Containe_]'));
    const plan = await planSynth(threeTier().app, { stateDir: testState, outDir: out });
    expect(plan.stacks[0]!.comparison.modified).toEqual(['hosts/local/quadlet/mini-api.container']);
  });

  it('--check writes nothing and names the differing files', async () => {
    const out = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: out });
    const app = threeTier();
    svc(app.stack, 'extra');
    const before = treeState(out);
    const result = await synth(app.app, { stateDir: testState, outDir: out, check: true });
    expect(result.changed).toBe(true);
    expect(result.reports[0]!.modified).toContain('hosts/local/compose.yaml');
    expect(treeState(out)).toEqual(before);
    expect((await synth(threeTier().app, { stateDir: testState, outDir: out, check: true })).changed).toBe(false);
  });

  it('a synth killed between the two renames is undone by the next run', async () => {
    // GIVEN a complete previous output, and a killed synth that moved it aside
    const out = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: out });
    const before = treeState(out);
    renameSync(join(out, 'three'), join(out, '.three.podmesh-previous'));
    mkdirSync(join(out, '.three.podmesh-staging/hosts'), { recursive: true });
    // WHEN synth runs again
    const result = await synth(threeTier().app, { stateDir: testState, outDir: out });
    // THEN the previous tree is back, untouched, and no temporary folder is left
    expect(result.changed).toBe(false);
    expect(treeState(out)).toEqual(before);
  });

  it('a synth killed while staging leaves the previous output as it was', async () => {
    // GIVEN a writer that dies after staging part of the new tree
    const out = temp();
    await synth(threeTier().app, { stateDir: testState, outDir: out });
    const before = treeState(join(out, 'three'));
    const files = new Map([['TOPOLOGY.md', 'new'], ['x/y.txt', 'new']]);
    // The staging folder is beside, never inside, out/<stack>: write it and stop.
    mkdirSync(join(out, '.three.podmesh-staging'), { recursive: true });
    writeFileSync(join(out, '.three.podmesh-staging/TOPOLOGY.md'), 'half');
    // THEN out/three is intact, and the next writer cleans the staging folder up
    expect(treeState(join(out, 'three'))).toEqual(before);
    await writeStackOutput(out, 'three', files);
    expect(existsSync(join(out, '.three.podmesh-staging'))).toBe(false);
    expect(readFileSync(join(out, 'three/x/y.txt'), 'utf8')).toBe('new');
  });

  it('reads the allocation lock from the previous output', async () => {
    const out = temp();
    const first = new App();
    threeTier('lk', first);
    await synth(first, { stateDir: testState, outDir: out });
    const lock = JSON.parse(readFileSync(join(out, 'lk/podmesh.lock.json'), 'utf8'));
    expect(lock.networks.mesh.addresses).toEqual({ api: '10.90.0.3', db: '10.90.0.2', web: '10.90.0.4' });
    // A service added before the others does not move them.
    const second = new App();
    const s = threeTier('lk', second);
    svc(s.stack, 'aaa');
    await synth(second, { stateDir: testState, outDir: out });
    const lock2 = JSON.parse(readFileSync(join(out, 'lk/podmesh.lock.json'), 'utf8'));
    expect(lock2.networks.mesh.addresses).toEqual({ aaa: '10.90.0.5', api: '10.90.0.3', db: '10.90.0.2', web: '10.90.0.4' });
  });
});
