// `podmesh wireguard rotate` as a user runs it: exactly the named host's key changes, with every peer
// entry naming it, the lock follows, and the old key is kept beside the new one.
import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyOf } from '../../src/state/wireguard/index.ts';
import { tempDir } from '../helpers/stacks.ts';
import { repoRoot } from '../helpers/tools.ts';
import { treeState } from '../helpers/tree.ts';

const bin = join(repoRoot, 'bin/podmesh.mjs');

const STACK = `import { meshStack } from '${repoRoot}/test/wireguard/stacks.ts';
export default (app) => { meshStack('mesh', app, { presharedKeys: true }); };
`;

describe('podmesh wireguard rotate', () => {
  const dir = tempDir('podmesh-wg-cli-');
  const cwd = dir.path;
  const state = join(cwd, 'state');
  const run = (...args: string[]) => execa('node', [bin, ...args, '--state', state], { cwd, reject: false, timeout: 60_000 });
  const stateKey = (h: string) => readFileSync(join(state, 'mesh/wireguard', `${h}.key`), 'utf8').trim();
  const psk = (pair: string) => readFileSync(join(state, 'mesh/wireguard/psk', `${pair}.key`), 'utf8');
  const conf = (h: string) => readFileSync(join(cwd, 'out/mesh/hosts', h, 'wireguard/wg0.conf'), 'utf8');
  const lockKeys = () =>
    Object.fromEntries(
      Object.entries((JSON.parse(readFileSync(join(cwd, 'out/mesh/podmesh.lock.json'), 'utf8')) as { wireguard: { hosts: Record<string, { publicKey: string }> } }).wireguard.hosts).map(
        ([h, v]) => [h, v.publicKey],
      ),
    );

  beforeAll(async () => {
    mkdirSync(join(cwd, 'stacks'));
    writeFileSync(join(cwd, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(cwd, 'stacks/mesh.ts'), STACK);
    const r = await run('synth');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('mesh: WireGuard keys: created for a, b, c; preshared keys created for a--b, a--c, b--c\n');
  });
  afterAll(() => dir.cleanup());

  it('needs --host or --all, and refuses a host the tunnel does not have (exit 2, nothing written)', async () => {
    const before = treeState(cwd);
    const none = await run('wireguard', 'rotate');
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('wireguard rotate needs --host H (repeatable) or --all');
    const unknown = await run('wireguard', 'rotate', '--host', 'x');
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('stack mesh has no tunnel host "x". Its hosts: a, b, c.');
    const sub = await run('wireguard', 'spin');
    expect(sub.exitCode).toBe(2);
    expect(treeState(cwd)).toEqual(before);
  });

  it('--host a replaces exactly a\'s key and its preshared keys, and every peer entry naming a', async () => {
    // GIVEN
    const old = { a: stateKey('a'), b: stateKey('b'), c: stateKey('c') };
    const oldLock = lockKeys();
    const oldConf = { a: conf('a'), b: conf('b'), c: conf('c') };
    const oldPsk = { ab: psk('a--b'), ac: psk('a--c'), bc: psk('b--c') };
    // WHEN
    const r = await run('wireguard', 'rotate', '--host', 'a');
    // THEN: the state
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('mesh: WireGuard keys: rotated for a; preshared keys rotated for a--b, a--c\n');
    expect(stateKey('a')).not.toBe(old.a);
    expect(readFileSync(join(state, 'mesh/wireguard/a.key.old'), 'utf8').trim()).toBe(old.a);
    expect([stateKey('b'), stateKey('c')]).toEqual([old.b, old.c]);
    expect([psk('a--b') === oldPsk.ab, psk('a--c') === oldPsk.ac, psk('b--c') === oldPsk.bc]).toEqual([false, false, true]);
    // the lock
    const pub = publicKeyOf(stateKey('a'));
    expect(lockKeys()).toEqual({ ...oldLock, a: pub });
    // the configs: a's own does not name itself, so it stays; b's and c's name the new key instead of the old
    expect(r.stdout).toMatch(/written: 0 added, 4 modified, 0 removed/);
    expect(r.stdout).toContain('~ out/mesh/hosts/b/wireguard/wg0.conf');
    expect(r.stdout).toContain('~ out/mesh/hosts/c/wireguard/wg0.conf');
    expect(conf('a')).toBe(oldConf.a);
    for (const h of ['b', 'c'] as const) {
      expect(conf(h)).toBe(oldConf[h].replaceAll(oldLock.a!, pub));
      expect(conf(h)).toContain(`[Peer]\n# a\nPublicKey = ${pub}\n`);
      expect(conf(h)).not.toContain(oldLock.a!);
    }
    expect(r.stdout).toContain('mesh: deploy now: the new private key to a');
    // AND the result is a normal synth: --check agrees, a second synth changes nothing
    expect((await run('synth', '--check')).exitCode).toBe(0);
    expect((await run('synth')).stdout).toMatch(/^mesh: up to date \(\d+ files in out\/mesh\)$/);
  });

  it('a lost private key stops synth with the fix; rotate --host is that fix', async () => {
    // GIVEN b's key is gone
    rmSync(join(state, 'mesh/wireguard/b.key'));
    const before = treeState(cwd);
    // WHEN
    const r = await run('synth');
    // THEN
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('podmesh: 1 problem; nothing was written.\n[mesh/b] WireGuard public key');
    expect(r.stderr).toContain('run `podmesh wireguard rotate --host b --stack mesh`');
    expect(treeState(cwd)).toEqual(before);
    // WHEN the fix is applied
    const fix = await run('wireguard', 'rotate', '--host', 'b');
    expect(fix.exitCode, fix.stderr).toBe(0);
    expect(lockKeys().b).toBe(publicKeyOf(stateKey('b')));
    expect((await run('synth')).exitCode).toBe(0);
  });

  it('--all rotates every host', async () => {
    const before = lockKeys();
    const r = await run('wireguard', 'rotate', '--all');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('rotated for a, b, c; preshared keys rotated for a--b, a--c, b--c');
    const after = lockKeys();
    for (const h of ['a', 'b', 'c']) expect(after[h]).not.toBe(before[h]);
  });
});
