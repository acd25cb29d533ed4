// WireGuard keys in the state folder: created once, reused, 0600 in 0700 folders, public keys in the
// lock file, and every way the state can disagree with the lock stops synth before anything is written.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPlan, PodmeshError, planSynth, synth } from '../../src/index.ts';
import { applyWireguardKeys, isWireguardKey, nodeKeySource, planWireguardKeys, publicKeyOf } from '../../src/state/wireguard/index.ts';
import { svc, tempDir } from '../helpers/stacks.ts';
import { tool } from '../helpers/tools.ts';
import { treeState } from '../helpers/tree.ts';
import { meshStack } from './stacks.ts';

const wg = tool('wg');

const dirs: { cleanup: () => void }[] = [];
function temp(): { out: string; state: string } {
  const d = tempDir('podmesh-wg-');
  dirs.push(d);
  return { out: join(d.path, 'out'), state: join(d.path, 'state') };
}
afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

const key = (state: string, host: string) => join(state, 'mesh/wireguard', `${host}.key`);
const lockOf = (out: string) =>
  JSON.parse(readFileSync(join(out, 'mesh/podmesh.lock.json'), 'utf8')) as { wireguard: { hosts: Record<string, { address: string; publicKey?: string }> } };
const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));

async function synthError(run: Promise<unknown>): Promise<PodmeshError> {
  const e = await run.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(PodmeshError);
  return e as PodmeshError;
}

describe('WireGuard keys in wg form', () => {
  it('GIVEN a key from Node WHEN encoded THEN it is 44 base64 characters of 32 bytes, clamped like wg genkey', () => {
    const k = nodeKeySource.privateKey();
    expect(isWireguardKey(k)).toBe(true);
    const raw = Buffer.from(k, 'base64');
    expect(raw).toHaveLength(32);
    expect(raw[0]! & 7).toBe(0);
    expect(raw[31]! & 0xc0).toBe(0x40);
    expect(isWireguardKey(nodeKeySource.presharedKey())).toBe(true);
  });

  it.each([
    ['too short', 'AAAA'],
    ['33 bytes', Buffer.alloc(33).toString('base64')],
    ['base64url', `${'-'.repeat(43)}=`],
  ])('refuses %s', (_name, text) => {
    expect(isWireguardKey(text)).toBe(false);
  });

  it.skipIf(!wg)('GIVEN 20 keys WHEN their public keys are derived THEN `wg pubkey` agrees with every one', () => {
    for (let i = 0; i < 20; i++) {
      const k = nodeKeySource.privateKey();
      expect(publicKeyOf(k)).toBe(execFileSync(wg!, ['pubkey'], { input: `${k}\n`, encoding: 'utf8' }).trim());
    }
    // and a key wg made itself
    const genkey = execFileSync(wg!, ['genkey'], { encoding: 'utf8' }).trim();
    expect(publicKeyOf(genkey)).toBe(execFileSync(wg!, ['pubkey'], { input: `${genkey}\n`, encoding: 'utf8' }).trim());
  });
});

describe('synth of a three-host stack', () => {
  it('GIVEN no state WHEN synth THEN one 0600 key per host in a 0700 folder, and the lock holds each public key', async () => {
    // GIVEN
    const { out, state } = temp();
    // WHEN
    const r = await synth(meshStack().app, { outDir: out, stateDir: state });
    // THEN
    expect(r.state[0]!.wireguard?.hosts).toEqual([
      { host: 'a', action: 'create' },
      { host: 'b', action: 'create' },
      { host: 'c', action: 'create' },
    ]);
    expect(statSync(join(state, 'mesh/wireguard')).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(state, 'mesh/wireguard')).sort()).toEqual(['a.key', 'b.key', 'c.key']);
    const lock = lockOf(out);
    for (const h of ['a', 'b', 'c']) {
      expect(statSync(key(state, h)).mode & 0o777).toBe(0o600);
      const text = readFileSync(key(state, h), 'utf8');
      expect(text).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
      expect(lock.wireguard.hosts[h]?.publicKey).toBe(publicKeyOf(text.trim()));
    }
    expect(lock.wireguard.hosts.a).toEqual({ address: '10.255.0.1', publicKey: expect.any(String) });
  });

  it.skipIf(!wg)('GIVEN a synth WHEN wg pubkey reads each state key THEN it prints the public key in the lock', async () => {
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    for (const h of ['a', 'b', 'c']) {
      const pub = execFileSync(wg!, ['pubkey'], { input: readFileSync(key(state, h)), encoding: 'utf8' }).trim();
      expect(pub).toBe(lockOf(out).wireguard.hosts[h]?.publicKey);
    }
  });

  it('GIVEN a synth WHEN synth runs again (another app, same state) THEN every key is reused and nothing is written', async () => {
    // GIVEN
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    const before = { out: treeState(out), state: treeState(state) };
    await new Promise((r) => setTimeout(r, 20));
    // WHEN
    const r = await synth(meshStack().app, { outDir: out, stateDir: state });
    // THEN
    expect(r.changed).toBe(false);
    expect(r.state[0]!.wireguard?.hosts.map((h) => h.action)).toEqual(['keep', 'keep', 'keep']);
    expect(treeState(out)).toEqual(before.out);
    expect(treeState(state)).toEqual(before.state);
  });

  it('GIVEN a lost out/ WHEN synth runs again THEN the keys are taken from the state and the files are byte-identical', async () => {
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    const files = Object.fromEntries(walk(out).map((f) => [f, readFileSync(f, 'utf8')]));
    rmSync(out, { recursive: true });
    await synth(meshStack().app, { outDir: out, stateDir: state });
    expect(Object.fromEntries(walk(out).map((f) => [f, readFileSync(f, 'utf8')]))).toEqual(files);
  });

  it('GIVEN a key file with a loose mode WHEN synth THEN it is set back to 0600, with the same key', async () => {
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    const text = readFileSync(key(state, 'b'), 'utf8');
    chmodSync(key(state, 'b'), 0o644);
    chmodSync(join(state, 'mesh/wireguard'), 0o755);
    await synth(meshStack().app, { outDir: out, stateDir: state });
    expect(statSync(key(state, 'b')).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'mesh/wireguard')).mode & 0o777).toBe(0o700);
    expect(readFileSync(key(state, 'b'), 'utf8')).toBe(text);
  });

  it('GIVEN a locked public key whose private key is missing WHEN synth THEN an error names the host and the fixes, and nothing is written', async () => {
    // GIVEN
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    const locked = lockOf(out).wireguard.hosts.b?.publicKey;
    rmSync(key(state, 'b'));
    const before = { out: treeState(out), state: treeState(state) };
    // WHEN: also a new service, so out/ would change if synth went on
    const app = meshStack();
    svc(app.stack, 'extra', { host: app.hosts[2] });
    const e = await synthError(synth(app.app, { outDir: out, stateDir: state }));
    // THEN
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]!.path).toBe('mesh/b');
    expect(e.issues[0]!.message).toContain(`WireGuard public key ${locked} is recorded in ${join(out, 'mesh/podmesh.lock.json')}, but its private key ${key(state, 'b')} is missing.`);
    expect(e.issues[0]!.message).toContain('Restore the key file from your backup, or run `podmesh wireguard rotate --host b --stack mesh`');
    expect(treeState(out)).toEqual(before.out);
    expect(treeState(state)).toEqual(before.state);
    expect(existsSync(key(state, 'b'))).toBe(false);
  });

  it('GIVEN the missing key kept as b.key.old WHEN synth THEN the error says to rename it back', async () => {
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    renameSync(key(state, 'b'), `${key(state, 'b')}.old`);
    const e = await synthError(synth(meshStack().app, { outDir: out, stateDir: state }));
    expect(e.issues[0]!.message).toContain(`${key(state, 'b')}.old holds that key: rename it to b.key.`);
  });

  it('GIVEN a private key that is not the locked one WHEN synth THEN an error names both public keys, and nothing is written', async () => {
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    const locked = lockOf(out).wireguard.hosts.c?.publicKey;
    const other = nodeKeySource.privateKey();
    writeFileSync(key(state, 'c'), `${other}\n`, { mode: 0o600 });
    const before = { out: treeState(out), state: treeState(state) };
    const e = await synthError(synth(meshStack().app, { outDir: out, stateDir: state }));
    expect(e.issues).toEqual([
      {
        path: 'mesh/c',
        message: expect.stringContaining(`WireGuard private key ${key(state, 'c')} belongs to public key ${publicKeyOf(other)}, but ${join(out, 'mesh/podmesh.lock.json')} records ${locked} for this host.`),
      },
    ]);
    expect(treeState(out)).toEqual(before.out);
    expect(treeState(state)).toEqual(before.state);
  });

  it('GIVEN a malformed key and a missing one WHEN synth THEN both problems are reported together', async () => {
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    writeFileSync(key(state, 'a'), 'not a key\n');
    rmSync(key(state, 'c'));
    const e = await synthError(synth(meshStack().app, { outDir: out, stateDir: state }));
    expect(e.issues.map((i) => i.path)).toEqual(['mesh/a', 'mesh/c']);
    expect(e.issues[0]!.message).toContain('is not a WireGuard private key (44 base64 characters');
  });

  it('GIVEN --check without any state folder WHEN the lock holds the public keys THEN out/ is up to date', async () => {
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    // compose.yaml mounts certificates by a path relative to the state folder, so keep its location
    renameSync(state, `${state}-moved`);
    const r = await synth(meshStack().app, { outDir: out, stateDir: state, check: true });
    expect(r.changed).toBe(false);
    expect(existsSync(state)).toBe(false);
  });

  it('GIVEN --check before the first synth THEN the plan holds a new key per host, out/ is stale, and nothing is written', async () => {
    // GIVEN no out/ and no state
    const { out, state } = temp();
    // WHEN planned and checked
    const plan = await planSynth(meshStack().app, { outDir: out, stateDir: state });
    const check = checkPlan(plan);
    // THEN every host gets a key in the plan, rendered into the configs, and --check fails on out/
    const wg = plan.stacks[0]!.state!.wireguard!.result;
    expect(wg.hosts).toEqual(['a', 'b', 'c'].map((host) => ({ host, action: 'create' })));
    expect(check.stale).toBe(true);
    expect(check.stateChanges.filter((c) => c.what === 'wireguard-key').map((c) => (c.what === 'wireguard-key' ? c.host : ''))).toEqual(['a', 'b', 'c']);
    const conf = plan.stacks[0]!.files.get('hosts/a/wireguard/wg0.conf')!.content;
    expect(conf).toContain(`PublicKey = ${wg.publicKeys.b}`);
    expect((await synth(meshStack().app, { outDir: out, stateDir: state, check: true })).changed).toBe(true);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(state)).toBe(false);
  });

  it('GIVEN presharedKeys WHEN synth THEN one 0600 key per sorted host pair, reused on the next synth', async () => {
    const { out, state } = temp();
    const r = await synth(meshStack('mesh', undefined, { presharedKeys: true }).app, { outDir: out, stateDir: state });
    expect(r.state[0]!.wireguard?.presharedKeys).toEqual([
      { pair: 'a--b', action: 'create' },
      { pair: 'a--c', action: 'create' },
      { pair: 'b--c', action: 'create' },
    ]);
    const psk = join(state, 'mesh/wireguard/psk');
    expect(statSync(psk).mode & 0o777).toBe(0o700);
    expect(readdirSync(psk).sort()).toEqual(['a--b.key', 'a--c.key', 'b--c.key']);
    for (const f of readdirSync(psk)) {
      expect(statSync(join(psk, f)).mode & 0o777).toBe(0o600);
      expect(isWireguardKey(readFileSync(join(psk, f), 'utf8').trim())).toBe(true);
    }
    const before = treeState(state);
    const again = await synth(meshStack('mesh', undefined, { presharedKeys: true }).app, { outDir: out, stateDir: state });
    expect(again.state[0]!.wireguard?.presharedKeys.map((p) => p.action)).toEqual(['keep', 'keep', 'keep']);
    expect(treeState(state)).toEqual(before);
  });

  it('GIVEN a host removed from the stack WHEN synth THEN its key file is kept and reported as unused', async () => {
    const { out, state } = temp();
    await synth(meshStack().app, { outDir: out, stateDir: state });
    const text = readFileSync(key(state, 'c'), 'utf8');
    // WHEN c runs nothing any more (it drops out of the tunnel)
    const r = await synth(meshStack('mesh', undefined, {}, ['a', 'b']).app, { outDir: out, stateDir: state });
    expect(r.state[0]!.wireguard?.unused).toEqual(['wireguard/c.key']);
    expect(readFileSync(key(state, 'c'), 'utf8')).toBe(text);
    expect(Object.keys(lockOf(out).wireguard.hosts)).toEqual(['a', 'b']);
  });

  it('GIVEN a single-host stack WHEN synth THEN there is no wireguard folder and no WireGuard output', async () => {
    const { out, state } = temp();
    await synth(meshStack('mesh', undefined, {}, ['a']).app, { outDir: out, stateDir: state });
    expect(existsSync(join(state, 'mesh/wireguard'))).toBe(false);
    expect(walk(out).filter((f) => f.includes('wireguard'))).toEqual([]);
  });

  it('GIVEN a synth with preshared keys WHEN every out/ file is scanned THEN none holds a private or preshared key', async () => {
    const { out, state } = temp();
    await synth(meshStack('mesh', undefined, { presharedKeys: true }).app, { outDir: out, stateDir: state });
    const secrets = walk(join(state, 'mesh/wireguard')).map((f) => readFileSync(f, 'utf8').trim());
    expect(secrets).toHaveLength(6);
    const files = walk(out);
    expect(files.filter((f) => f.endsWith('wg0.conf'))).toHaveLength(3);
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const s of secrets) expect(text.includes(s), `${f} holds a secret key`).toBe(false);
      expect(text).not.toMatch(/PrivateKey|PresharedKey\s*=/);
    }
  });
});

describe('planWireguardKeys and applyWireguardKeys', () => {
  /** Key number n: 32 bytes of n, clamped. */
  const keyN = (n: number) => {
    const raw = Buffer.alloc(32, n);
    raw[0]! &= 248;
    raw[31] = (raw[31]! & 127) | 64;
    return raw.toString('base64');
  };
  /** Keys from a counter, so a test knows exactly which key went where. */
  const counterKeys = () => {
    let n = 0;
    const next = () => keyN(++n);
    return { privateKey: next, presharedKey: next };
  };
  const hosts = [
    { host: 'b', path: 's/b' },
    { host: 'a', path: 's/a' },
  ];

  it('GIVEN an injected key source WHEN planned THEN hosts are handled sorted and nothing is written before apply', async () => {
    const { state } = temp();
    const keys = counterKeys();
    const plan = planWireguardKeys({ stateDir: join(state, 's'), stackPath: 's', lockFile: 'out/s/podmesh.lock.json', hosts, presharedKeys: true, keys });
    expect(existsSync(state)).toBe(false);
    expect(plan.result.hosts).toEqual([{ host: 'a', action: 'create' }, { host: 'b', action: 'create' }]);
    expect(plan.result.publicKeys).toEqual({ a: publicKeyOf(keyN(1)), b: publicKeyOf(keyN(2)) });
    await applyWireguardKeys(plan);
    expect(readFileSync(join(state, 's/wireguard/psk/a--b.key'), 'utf8')).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(statSync(join(state, 's')).mode & 0o777).toBe(0o700);
  });

  it('GIVEN a key file that appears between plan and apply WHEN applied THEN it is not overwritten and the error says so', async () => {
    const { state } = temp();
    const plan = planWireguardKeys({ stateDir: join(state, 's'), stackPath: 's', lockFile: 'lock', hosts, presharedKeys: false, keys: counterKeys() });
    mkdirSync(join(state, 's/wireguard'), { recursive: true, mode: 0o700 });
    writeFileSync(join(state, 's/wireguard/a.key'), 'someone else\n', { mode: 0o600 });
    const e = await synthError(applyWireguardKeys(plan));
    expect(e.message).toContain('appeared while synth was creating it');
    expect(readFileSync(join(state, 's/wireguard/a.key'), 'utf8')).toBe('someone else\n');
    expect(readdirSync(join(state, 's/wireguard')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('GIVEN a rotate of an unknown host WHEN planned THEN an error lists the tunnel hosts', () => {
    const { state } = temp();
    expect(() => planWireguardKeys({ stateDir: state, stackPath: 's', lockFile: 'lock', hosts, presharedKeys: false, rotate: ['z'] })).toThrow(
      '[s] cannot rotate the WireGuard key of "z": the tunnel\'s hosts are a, b.',
    );
  });
});
