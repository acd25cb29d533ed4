// Per-host state bundles: `state export` writes exactly what a host installs from the state folder,
// age-encrypted (read by the `age` CLI, and podmesh reads what the CLI encrypts); `apply
// --state-bundle` installs the same files as an apply from the state folder, without one; bad
// bundles are refused with nothing written; a full backup restores a byte-identical state folder.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../src/cli/command.ts';
import { loadStacks } from '../src/cli/load.ts';
import { acquireLock, lockBeside } from '../src/io/lock.ts';
import { runCli } from '../src/cli/run.ts';
import { fullBundle, importBundle, parseBundle, readBundleFile, renderBundle } from '../src/ops/state-bundle.ts';
import type { ResolvedStack } from '../src/resolve/model.ts';
import { resolveStacks, selectStacks, synth } from '../src/synth.ts';
import { tempDir } from './helpers/stacks.ts';
import { repoRoot, tool } from './helpers/tools.ts';
import { treeState } from './helpers/tree.ts';

// Under CI a missing age CLI fails this file (tool() throws), naming the package to install.
const age = tool('age');
const ageKeygen = tool('age-keygen');

/** Every file and folder below `dir`: folders by mode, files by mode and sha256 (no mtimes). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const abs = join(e.parentPath, e.name);
    const mode = (statSync(abs).mode & 0o777).toString(8);
    out[relative(dir, abs)] = e.isDirectory() ? `dir ${mode}` : `${mode} ${createHash('sha256').update(readFileSync(abs)).digest('hex')}`;
  }
  return out;
}

/** Every file's text below `dir`, by relative path. */
function texts(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) if (e.isFile()) out.set(relative(dir, join(e.parentPath, e.name)), readFileSync(join(e.parentPath, e.name), 'utf8'));
  return out;
}

describe.skipIf(!age || !ageKeygen)('per-host state bundles (age)', () => {
  // Made in beforeAll, so that a skipped or filtered-out describe leaves nothing behind.
  const dir = { path: join(tmpdir(), `podmesh-bundle-${randomBytes(6).toString('hex')}`), cleanup: () => rmSync(dir.path, { recursive: true, force: true }) };
  const outDir = join(dir.path, 'out');
  const stateDir = join(dir.path, 'state');
  /** A state folder that never exists: the host runner's. */
  const noState = join(dir.path, 'no-state');
  const hostKey = join(dir.path, 'host.key');
  const otherKey = join(dir.path, 'other.key');
  let recipient = '';
  const stacks = new Map<string, ResolvedStack>();
  const HOSTS = [['ashchan-prod', 'edge'], ['ashchan-prod', 'app'], ['ashchan-prod', 'data'], ['ashchan-dev', 'local']] as const;
  const bundleOf = (stack: string, host: string) => join(dir.path, 'bundles', `${stack}-${host}.age`);

  async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const printed = { out: '', err: '' };
    const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: {}, cwd: dir.path, tty: false };
    const code = await runCli([...argv, '--stacks', join(repoRoot, 'stacks')], io);
    return { code, ...printed };
  }
  const apply = (host: string, root: string, more: string[]) => cli(['apply', '--stack', 'ashchan-prod', '--host', host, '--out', outDir, '--root', root, '--no-systemctl', ...more]);
  const withBundle = (file: string, key = hostKey) => ['--state', noState, '--state-bundle', file, '--identity', key];

  beforeAll(async () => {
    mkdirSync(dir.path, { mode: 0o700 });
    const app = await loadStacks(join(repoRoot, 'stacks'));
    await synth(app, { outDir, stateDir });
    for (const s of await resolveStacks(selectStacks(app, ['ashchan-dev', 'ashchan-prod']), outDir)) stacks.set(s.name, s);
    execFileSync(ageKeygen!, ['-o', hostKey], { stdio: 'ignore' });
    execFileSync(ageKeygen!, ['-o', otherKey], { stdio: 'ignore' });
    recipient = execFileSync(ageKeygen!, ['-y', hostKey], { encoding: 'utf8' }).trim();
    mkdirSync(join(dir.path, 'bundles'));
    for (const [stack, host] of HOSTS) {
      const r = await cli(['state', 'export', '--stack', stack, '--host', host, '--recipient', recipient, '--output', bundleOf(stack, host), '--out', outDir, '--state', stateDir]);
      if (r.code !== 0) throw new Error(r.err);
    }
  }, 120_000);
  afterAll(() => dir.cleanup());

  it.each(HOSTS)('GIVEN %s host %s WHEN exported THEN the age CLI and podmesh decrypt the same document, holding every file the host needs, no CA key and nothing of another host', async (stackName, host) => {
    const file = bundleOf(stackName, host);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    const byCli = execFileSync(age!, ['-d', '-i', hostKey, file], { encoding: 'utf8' });
    const bundle = await readBundleFile(file, hostKey);
    expect(renderBundle(bundle)).toBe(byCli);
    expect(JSON.parse(byCli)).toEqual({ format: 'podmesh-state-bundle', version: 1, stack: stackName, host, files: bundle.files });

    const stack = stacks.get(stackName)!;
    const stackState = join(stateDir, stackName);
    const state = texts(stackState);
    const mine = stack.services.filter((s) => s.host === host);
    const myNames = new Set(mine.map((s) => s.name));
    const mySecrets = new Set(mine.flatMap((s) => s.secrets.map((x) => x.file)));
    const caKeys = ['pki/ca.key', 'pki/client-ca.key'].map((p) => state.get(p)!);
    expect(caKeys.every((k) => k.includes('PRIVATE KEY'))).toBe(true);
    const contents = Object.values(bundle.files).map((f) => f.content);
    // Nothing outside the host's share: no CA material, only its services' keys, secrets and tunnel keys.
    for (const [p, f] of Object.entries(bundle.files)) {
      expect(p, p).not.toMatch(/^pki\/[^/]+$/);
      expect(caKeys).not.toContain(f.content);
      expect(f.content, p).toBe(state.get(p));
      expect(f.mode, p).toBe(`0${(statSync(join(stackState, p)).mode & 0o777).toString(8)}`);
      const service = /^pki\/services\/([^/]+)\/[^/]+\.key$/.exec(p);
      if (service) expect(myNames, p).toContain(service[1]);
      else if (p.startsWith('secrets/')) expect(mySecrets, p).toContain(p.slice('secrets/'.length));
      else if (p.startsWith('wireguard/')) expect(p === `wireguard/${host}.key` || new RegExp(`^wireguard/psk/(${host}--[^/]+|[^/]+--${host})\\.key$`).test(p), p).toBe(true);
      // The OCSP responder's folder (its delegated keys), on the responder host only.
      else if (p.startsWith('pki/ocsp/')) expect(stack.pki.ocsp?.host, p).toBe(host);
      else expect(p, p).toMatch(/^pki\/services\/[^/]+\/[^/]+\.(crt|pem)$/);
    }
    // Everything the host needs: its services' certificate folders, the secrets they mount, its tunnel key.
    for (const s of mine.filter((x) => x.certificates.length > 0)) {
      for (const [p, text] of state) if (p.startsWith(`pki/services/${s.name}/`)) expect(bundle.files[p]?.content, p).toBe(text);
    }
    for (const f of mySecrets) expect(bundle.files[`secrets/${f}`]?.content, f).toBe(state.get(`secrets/${f}`));
    if (stack.pki.ocsp?.host === host) {
      for (const [p, text] of state) if (p.startsWith('pki/ocsp/')) expect(bundle.files[p]?.content, p).toBe(text);
      expect(bundle.files['pki/ocsp/responder-root.key']?.mode).toBe('0600');
    }
    if (stack.wireguard) expect(bundle.files[`wireguard/${host}.key`]?.content).toBe(state.get(`wireguard/${host}.key`));
    expect(Object.keys(bundle.files).filter((p) => p.endsWith('.key')).length).toBeGreaterThan(0);
    // No other host's private material, under any name.
    for (const other of stack.hosts.filter((h) => h.name !== host)) {
      const theirs = [...state].filter(([p]) => p === `wireguard/${other.name}.key` || stack.services.some((s) => s.host === other.name && !myNames.has(s.name) && p.startsWith(`pki/services/${s.name}/`) && p.endsWith('.key')));
      if (stack.wireguard) expect(theirs.length, other.name).toBeGreaterThan(0);
      for (const [p, text] of theirs) {
        expect(bundle.files[p], p).toBeUndefined();
        expect(contents, p).not.toContain(text);
      }
    }
  });

  it.each(['edge', 'app', 'data'])('GIVEN ashchan-prod host %s WHEN applied from its bundle with no state folder THEN exactly the files, bytes and modes of an apply from the state folder, and no CA key', async (host) => {
    const fromState = join(dir.path, 'roots', `${host}-state`);
    const fromBundle = join(dir.path, 'roots', `${host}-bundle`);
    const a = await apply(host, fromState, ['--state', stateDir]);
    expect(a.code, a.err).toBe(0);
    const b = await apply(host, fromBundle, withBundle(bundleOf('ashchan-prod', host)));
    expect(b.code, b.err).toBe(0);
    expect(existsSync(noState)).toBe(false);
    const want = snapshot(fromState);
    expect(Object.keys(want).length).toBeGreaterThan(20);
    expect(snapshot(fromBundle)).toEqual(want);
    const caKeys = ['ca.key', 'client-ca.key'].map((f) => readFileSync(join(stateDir, 'ashchan-prod/pki', f), 'utf8'));
    for (const text of texts(fromBundle).values()) expect(caKeys).not.toContain(text);
  });

  it('GIVEN a bundle the age CLI encrypted from podmesh\'s JSON (binary or armored) WHEN applied THEN podmesh installs it', async () => {
    const plain = join(dir.path, 'app.json');
    writeFileSync(plain, execFileSync(age!, ['-d', '-i', hostKey, bundleOf('ashchan-prod', 'app')]));
    const byCli = join(dir.path, 'app-by-cli.age');
    execFileSync(age!, ['-r', recipient, '-o', byCli, plain]);
    const root = join(dir.path, 'roots', 'app-cli');
    const r = await apply('app', root, withBundle(byCli));
    expect(r.code, r.err).toBe(0);
    expect(snapshot(root)).toEqual(snapshot(join(dir.path, 'roots', 'app-state')));
    // ASCII-armored (`age -a`) too.
    const armored = join(dir.path, 'app-armored.age');
    execFileSync(age!, ['-a', '-r', recipient, '-o', armored, plain]);
    expect(renderBundle(await readBundleFile(armored, hostKey))).toBe(readFileSync(plain, 'utf8'));
  });

  it('GIVEN out/ stale WHEN applying with a bundle THEN refused, nothing installed', async () => {
    const stale = join(dir.path, 'stale-out');
    cpSync(outDir, stale, { recursive: true });
    const compose = join(stale, 'ashchan-prod/hosts/app/compose.yaml');
    writeFileSync(compose, `${readFileSync(compose, 'utf8')}# edited\n`);
    const root = join(dir.path, 'roots', 'stale');
    const r = await cli(['apply', '--stack', 'ashchan-prod', '--host', 'app', '--out', stale, '--root', root, '--no-systemctl', ...withBundle(bundleOf('ashchan-prod', 'app'))]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('is stale');
    expect(existsSync(root)).toBe(false);
  });

  it('GIVEN a wrong identity, a tampered, truncated or non-age file, another host\'s bundle or a full backup WHEN applied THEN refused naming the file, the host root and the state folder unchanged', async () => {
    const root = join(dir.path, 'roots', 'app-bundle');
    const good = bundleOf('ashchan-prod', 'app');
    const bytes = readFileSync(good);
    const tampered = join(dir.path, 'tampered.age');
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 100] = flipped[flipped.length - 100]! ^ 0x01;
    writeFileSync(tampered, flipped);
    const truncated = join(dir.path, 'truncated.age');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 40));
    const notAge = join(dir.path, 'plain.age');
    writeFileSync(notAge, '{"format":"podmesh-state-bundle"}\n');
    const full = join(dir.path, 'full-prod.age');
    expect((await cli(['state', 'export', '--stack', 'ashchan-prod', '--recipient', recipient, '--output', full, '--out', outDir, '--state', stateDir])).code).toBe(0);
    const badKey = join(dir.path, 'bad.key');
    writeFileSync(badKey, '# created: today\nAGE-SECRET-KEY-1NOTAKEY\n');
    const before = { root: treeState(root), state: treeState(stateDir) };
    expect(Object.keys(before.root).length).toBeGreaterThan(20);
    const cases: [string[], string, string][] = [
      [withBundle(good, otherKey), good, `is not encrypted to the identity in ${otherKey}`],
      [withBundle(tampered), tampered, 'cannot be decrypted: it is damaged or truncated'],
      [withBundle(truncated), truncated, 'cannot be decrypted: it is damaged or truncated'],
      [withBundle(notAge), notAge, 'is not an age-encrypted file'],
      [withBundle(bundleOf('ashchan-prod', 'edge')), bundleOf('ashchan-prod', 'edge'), 'is the bundle of host edge of stack ashchan-prod, not of host app'],
      [withBundle(full), full, 'is a full backup of stack ashchan-prod, not a host bundle'],
      [withBundle(good, badKey), `${badKey}:2`, 'is not an age identity'],
    ];
    for (const [args, file, message] of cases) {
      const r = await apply('app', root, args);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toContain(`[${file}] ${message}`);
      expect(r.err).not.toContain('AGE-SECRET-KEY-1NOTAKEY');
    }
    expect(treeState(root)).toEqual(before.root);
    expect(treeState(stateDir)).toEqual(before.state);
    expect(existsSync(noState)).toBe(false);
  });

  it('GIVEN a full backup WHEN imported into an empty state folder THEN byte-identical (paths, content, modes) and a synth changes nothing; a different folder needs --force; a host bundle is refused', async () => {
    const full = join(dir.path, 'full-prod.age');
    if (!existsSync(full)) expect((await cli(['state', 'export', '--stack', 'ashchan-prod', '--recipient', recipient, '--output', full, '--out', outDir, '--state', stateDir])).code).toBe(0);
    const bundle = await readBundleFile(full, hostKey);
    expect(bundle.host).toBeUndefined();
    expect(Object.keys(bundle.files)).toEqual(expect.arrayContaining(['pki/ca.key', 'pki/client-ca.key']));
    const restored = join(dir.path, 'restored');
    const r = await cli(['state', 'import', '--input', full, '--identity', hostKey, '--state', restored, '--out', outDir]);
    expect(r.code, r.err).toBe(0);
    expect(snapshot(join(restored, 'ashchan-prod'))).toEqual(snapshot(join(stateDir, 'ashchan-prod')));
    expect(statSync(join(restored, 'ashchan-prod')).mode & 0o777).toBe(0o700);
    expect(readdirSync(restored)).toEqual(['ashchan-prod']);

    const out2 = join(dir.path, 'out-restored');
    cpSync(outDir, out2, { recursive: true });
    const before = { state: treeState(restored), out: treeState(out2) };
    const s = await cli(['synth', '--stack', 'ashchan-prod', '--out', out2, '--state', restored]);
    expect(s.code, s.err).toBe(0);
    expect(treeState(restored)).toEqual(before.state);
    expect(treeState(out2)).toEqual(before.out);

    // The state folder's lock, as synth and rotate take it: a held lock is waited for, then refused.
    const held = await acquireLock(lockBeside(restored), { command: 'test' });
    try {
      const locked = await cli(['state', 'import', '--input', full, '--identity', hostKey, '--state', restored, '--out', outDir, '--force', '--lock-timeout', '0']);
      expect(locked.code).toBe(1);
      expect(locked.err).toContain('another podmesh run holds the lock');
    } finally {
      await held.release();
    }
    const again = await cli(['state', 'import', '--input', full, '--identity', hostKey, '--state', restored, '--out', outDir]);
    expect(again.code).toBe(0);
    expect(again.out).toContain('already holds exactly this backup; nothing written');
    writeFileSync(join(restored, 'ashchan-prod/pki/crl.pem'), 'changed\n');
    const changed = treeState(restored);
    const refused = await cli(['state', 'import', '--input', full, '--identity', hostKey, '--state', restored, '--out', outDir]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`[${join(restored, 'ashchan-prod')}] already exists and differs from the backup ${full} (1 file: pki/crl.pem). Pass --force`);
    expect(treeState(restored)).toEqual(changed);
    const forced = await cli(['state', 'import', '--input', full, '--identity', hostKey, '--state', restored, '--out', outDir, '--force']);
    expect(forced.code, forced.err).toBe(0);
    expect(snapshot(join(restored, 'ashchan-prod'))).toEqual(snapshot(join(stateDir, 'ashchan-prod')));
    expect(readdirSync(restored)).toEqual(['ashchan-prod']);

    const empty = join(dir.path, 'never');
    const host = await cli(['state', 'import', '--input', bundleOf('ashchan-prod', 'app'), '--identity', hostKey, '--state', empty, '--out', outDir]);
    expect(host.code).toBe(1);
    expect(host.err).toContain('is a bundle for host app of stack ashchan-prod, not a full backup');
    const wrong = await cli(['state', 'import', '--input', full, '--identity', otherKey, '--state', empty, '--out', outDir]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain(`[${full}] is not encrypted to the identity in ${otherKey}`);
    expect(existsSync(empty)).toBe(false);
  });

  it('GIVEN --recipients-file with comments and two keys WHEN exported THEN either identity decrypts; a bad recipient or an --output in the state folder is refused', async () => {
    const list = join(dir.path, 'recipients.txt');
    const second = execFileSync(ageKeygen!, ['-y', otherKey], { encoding: 'utf8' }).trim();
    writeFileSync(list, `# app runner\n${recipient}\n\n# operator\n${second}\n`);
    const file = join(dir.path, 'two.age');
    const r = await cli(['state', 'export', '--stack', 'ashchan-prod', '--host', 'app', '--recipients-file', list, '--output', file, '--out', outDir, '--state', stateDir]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('encrypted to 2 recipients');
    expect(execFileSync(age!, ['-d', '-i', otherKey, file], { encoding: 'utf8' })).toBe(execFileSync(age!, ['-d', '-i', hostKey, file], { encoding: 'utf8' }));

    const bad = await cli(['state', 'export', '--stack', 'ashchan-prod', '--host', 'app', '--recipient', 'age1nope', '--output', join(dir.path, 'bad.age'), '--out', outDir, '--state', stateDir]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('[--recipient] "age1nope" is not an age X25519 public key');
    expect(existsSync(join(dir.path, 'bad.age'))).toBe(false);
    const before = treeState(stateDir);
    for (const output of [stateDir, join(stateDir, 'ashchan-prod/app.age')]) {
      const inside = await cli(['state', 'export', '--stack', 'ashchan-prod', '--host', 'app', '--recipient', recipient, '--output', output, '--out', outDir, '--state', stateDir]);
      expect(inside.code).toBe(1);
      expect(inside.err).toContain(`[${output}] is inside the state folder ${stateDir}`);
    }
    expect(treeState(stateDir)).toEqual(before);
  });
});

describe('bundle documents', () => {
  it('GIVEN a state file that is not UTF-8 WHEN backed up and restored THEN it travels as base64, byte-identical; unsafe paths and modes are refused', async () => {
    const dir = tempDir('podmesh-bundle-doc-');
    try {
      const src = join(dir.path, 'state/demo');
      mkdirSync(join(src, 'pki'), { recursive: true, mode: 0o700 });
      writeFileSync(join(src, 'pki/ca.crt'), '-----BEGIN CERTIFICATE-----\n', { mode: 0o644 });
      writeFileSync(join(src, 'blob.bin'), Buffer.from([0xff, 0x00, 0xfe, 0x80]), { mode: 0o600 });
      const bundle = fullBundle('demo', src);
      expect(bundle.files['blob.bin']).toEqual({ mode: '0600', encoding: 'base64', content: Buffer.from([0xff, 0x00, 0xfe, 0x80]).toString('base64') });
      expect(bundle.files['pki/ca.crt']).toEqual({ mode: '0644', content: '-----BEGIN CERTIFICATE-----\n' });
      const text = renderBundle(bundle);
      expect(renderBundle(parseBundle(text, 'b.age'))).toBe(text);
      expect(await importBundle(parseBundle(text, 'b.age'), join(dir.path, 'restored'), 'b.age', false)).toBe('created');
      expect(snapshot(join(dir.path, 'restored/demo'))).toEqual(snapshot(src));
      const doc = JSON.parse(text);
      for (const [path, entry, message] of [
        ['../escape', { mode: '0600', content: 'x' }, 'holds file "../escape", which has an empty, "." or ".." segment'],
        ['/etc/passwd', { mode: '0644', content: 'x' }, 'holds file "/etc/passwd", which is not a relative path'],
        ['pki/services/a/server.key', { mode: '0644', content: 'x' }, 'holds private key "pki/services/a/server.key" with mode 0644; private keys are 0600'],
        ['secrets/x', { mode: '0777', content: 'x' }, 'holds file "secrets/x" with mode 0777'],
        ['pki/ca.crt/inner', { mode: '0644', content: 'x' }, 'holds "pki/ca.crt" both as a file and as the folder of "pki/ca.crt/inner"'],
      ] as const) {
        expect(() => parseBundle(JSON.stringify({ ...doc, files: { ...doc.files, [path]: entry } }), 'b.age')).toThrow(`[b.age] ${message}`);
      }
      expect(() => parseBundle(JSON.stringify({ ...doc, format: 'other' }), 'b.age')).toThrow('[b.age] decrypts, but is not a podmesh state bundle (at "format"');
    } finally {
      dir.cleanup();
    }
  });
});
