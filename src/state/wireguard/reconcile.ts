// The WireGuard part of the state folder (`.podmesh/<stack>/wireguard/`): one private key per host,
// optional preshared keys per host pair. Planned in memory first (every check, nothing written),
// then applied; a key is never replaced without being asked to (`podmesh wireguard rotate`).
import { dirMode } from '../../io/atomic.ts';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, link, mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import { compare } from '../../io/sort.ts';
import { isWireguardKey, nodeKeySource, publicKeyOf, type WireguardKeySource } from './keys.ts';

/** Modes of the state contract. */
const MODE = { dir: 0o700, key: 0o600 } as const;

/** Folder of the WireGuard keys inside a stack's state folder. */
export const WIREGUARD_DIR = 'wireguard';

/** `wireguard/<host>.key`, relative to the stack's state folder. */
export function hostKeyFile(host: string): string {
  return `${WIREGUARD_DIR}/${host}.key`;
}

/** `wireguard/psk/<a>--<b>.key` with the two host names sorted. */
export function presharedKeyFile(a: string, b: string): string {
  const [x, y] = [a, b].sort(compare);
  return `${WIREGUARD_DIR}/psk/${x}--${y}.key`;
}

/** What happened (or happens) to one key. */
export type KeyAction = 'create' | 'keep' | 'rotate';

/** A host of the tunnel as the key reconcile sees it. */
export interface TunnelHostKey {
  /** Host name (construct id). */
  readonly host: string;
  /** Construct path, for messages. */
  readonly path: string;
  /**
   * Public key recorded in the lock file.
   * @default - none: the host has no key yet
   */
  readonly publicKey?: string;
}

/** Input of {@link planWireguardKeys}. */
export interface WireguardKeysOptions {
  /** The stack's state folder, `.podmesh/<stack>`. */
  readonly stateDir: string;
  /** Construct path of the stack, for messages about the stack as a whole. */
  readonly stackPath: string;
  /** The lock file, as shown in messages (`out/<stack>/podmesh.lock.json`). */
  readonly lockFile: string;
  /** Every host of the tunnel, with its locked public key. */
  readonly hosts: readonly TunnelHostKey[];
  /** Keep a preshared key per host pair. */
  readonly presharedKeys: boolean;
  /**
   * Hosts whose key (and preshared keys) are replaced now; the old key stays as `<host>.key.old`.
   * @default - none
   */
  readonly rotate?: readonly string[];
  /**
   * Where new keys come from.
   * @default - Node's crypto ({@link nodeKeySource})
   */
  readonly keys?: WireguardKeySource;
}

/** What the key reconcile of one stack did. */
export interface WireguardResult {
  /** Public key of every host, sorted by host: what the lock file and every peer's config get. */
  readonly publicKeys: Readonly<Record<string, string>>;
  /** One entry per host, sorted. */
  readonly hosts: readonly { readonly host: string; readonly action: KeyAction }[];
  /** One entry per host pair (`a--b`), sorted; empty without preshared keys. */
  readonly presharedKeys: readonly { readonly pair: string; readonly action: KeyAction }[];
  /** Key files of hosts or pairs the stack no longer has: kept, never deleted by synth. */
  readonly unused: readonly string[];
  /**
   * True when this machine holds no WireGuard state for the stack at all (no `wireguard/`
   * folder) while the lock records every host's public key: nothing is created, `out/` is
   * rendered from the lock, and deploying or rotating needs the keys restored first.
   */
  readonly absent?: boolean;
}

/** A write of a plan: a new key file (`replace`: an existing one moves to `<file>.old` first). */
interface KeyWrite {
  readonly path: string;
  readonly content: string;
  readonly replace: boolean;
}

/** Everything {@link applyWireguardKeys} does, decided and checked in advance. */
export interface WireguardPlan {
  readonly stateDir: string;
  readonly writes: readonly KeyWrite[];
  /** Existing folders and files whose mode is not the contract's. */
  readonly chmods: readonly { readonly path: string; readonly mode: number }[];
  readonly result: WireguardResult;
}

type Read = { readonly text: string; readonly mode: number } | { readonly error: string } | undefined;

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** A key file's text and mode; undefined when absent; never follows a symbolic link. */
function readKeyFile(abs: string): Read {
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return undefined;
    return { error: errCode(e) === 'ELOOP' ? 'is a symbolic link' : `cannot be read (${errCode(e)})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { error: 'is not a regular file' };
    return { text: readFileSync(fd, 'utf8'), mode: st.mode & 0o7777 };
  } catch (e) {
    return { error: `cannot be read (${errCode(e)})` };
  } finally {
    closeSync(fd);
  }
}

function listKeys(abs: string): string[] {
  try {
    return readdirSync(abs, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.key') && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort(compare);
  } catch {
    return [];
  }
}

/**
 * Decides, without writing, what the stack's WireGuard state needs: reuses every host's key,
 * creates keys for hosts that have none and no locked public key, replaces the keys of `rotate`.
 * @throws PodmeshError listing every problem: a locked public key whose private key is missing,
 *   a private key that does not match its locked public key, unreadable or malformed key files.
 */
export function planWireguardKeys(options: WireguardKeysOptions): WireguardPlan {
  const { stateDir, lockFile } = options;
  const keys = options.keys ?? nodeKeySource;
  const rotate = new Set(options.rotate ?? []);
  const shown = (rel: string) => join(stateDir, rel);
  const issues: Issue[] = [];
  const known = new Set(options.hosts.map((h) => h.host));
  for (const h of [...rotate].sort(compare)) {
    if (!known.has(h)) issues.push({ path: options.stackPath, message: `cannot rotate the WireGuard key of "${h}": the tunnel's hosts are ${[...known].sort(compare).join(', ')}.` });
  }
  const writes: KeyWrite[] = [];
  const chmods: { path: string; mode: number }[] = [];
  const publicKeys: Record<string, string> = {};
  const hostActions: { host: string; action: KeyAction }[] = [];
  const rotateHint = (h: TunnelHostKey) => `run \`podmesh wireguard rotate --host ${h.host} --stack ${options.stackPath.split('/')[0]}\``;

  // A checkout without this stack's keys (a fresh clone, CI, a developer's laptop): the lock has
  // every public key, so out/ renders as committed, and no key is made (that would be a silent rotation).
  if (rotate.size === 0 && dirMode(join(stateDir, WIREGUARD_DIR)) === undefined && options.hosts.every((h) => h.publicKey !== undefined)) {
    if (issues.length > 0) throw new PodmeshError(issues);
    return {
      stateDir,
      writes: [],
      chmods: [],
      result: {
        publicKeys: Object.fromEntries([...options.hosts].sort((a, b) => compare(a.host, b.host)).map((h) => [h.host, h.publicKey!])),
        hosts: [...options.hosts].sort((a, b) => compare(a.host, b.host)).map((h) => ({ host: h.host, action: 'keep' as const })),
        presharedKeys: [],
        unused: [],
        absent: true,
      },
    };
  }

  for (const h of [...options.hosts].sort((a, b) => compare(a.host, b.host))) {
    const rel = hostKeyFile(h.host);
    const file = readKeyFile(join(stateDir, rel));
    if (rotate.has(h.host)) {
      const fresh = keys.privateKey();
      writes.push({ path: rel, content: `${fresh}\n`, replace: file !== undefined });
      publicKeys[h.host] = publicKeyOf(fresh);
      hostActions.push({ host: h.host, action: 'rotate' });
      continue;
    }
    if (file && 'error' in file) {
      issues.push({ path: h.path, message: `WireGuard private key ${shown(rel)} ${file.error}. Restore the file from your backup, or ${rotateHint(h)} to replace it.` });
      continue;
    }
    if (file) {
      const text = file.text.trim();
      if (!isWireguardKey(text)) {
        issues.push({ path: h.path, message: `${shown(rel)} is not a WireGuard private key (44 base64 characters, as \`wg genkey\` prints). Restore it from your backup, or ${rotateHint(h)} to replace it.` });
        continue;
      }
      const pub = publicKeyOf(text);
      if (h.publicKey !== undefined && pub !== h.publicKey) {
        issues.push({ path: h.path, message: `WireGuard private key ${shown(rel)} belongs to public key ${pub}, but ${lockFile} records ${h.publicKey} for this host. Restore the private key of ${h.publicKey}, or ${rotateHint(h)} to make a new key and redeploy every host's WireGuard config.` });
        continue;
      }
      if (file.mode !== MODE.key) chmods.push({ path: rel, mode: MODE.key });
      publicKeys[h.host] = pub;
      hostActions.push({ host: h.host, action: 'keep' });
      continue;
    }
    if (h.publicKey !== undefined) {
      const old = readKeyFile(join(stateDir, `${rel}.old`));
      const oldMatches = old !== undefined && 'text' in old && isWireguardKey(old.text.trim()) && publicKeyOf(old.text.trim()) === h.publicKey;
      issues.push({
        path: h.path,
        message: `WireGuard public key ${h.publicKey} is recorded in ${lockFile}, but its private key ${shown(rel)} is missing. ${oldMatches ? `${shown(`${rel}.old`)} holds that key: rename it to ${h.host}.key. ` : ''}Restore the key file from your backup, or ${rotateHint(h)} to give ${h.host} a new key and redeploy every host's WireGuard config. Synth never makes a new key silently: the other hosts would stop accepting ${h.host}.`,
      });
      continue;
    }
    const fresh = keys.privateKey();
    writes.push({ path: rel, content: `${fresh}\n`, replace: false });
    publicKeys[h.host] = publicKeyOf(fresh);
    hostActions.push({ host: h.host, action: 'create' });
  }

  const pairs: { pair: string; action: KeyAction }[] = [];
  const wantedPsk = new Set<string>();
  if (options.presharedKeys) {
    const names = [...known].sort(compare);
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const [a, b] = [names[i]!, names[j]!];
        const rel = presharedKeyFile(a, b);
        wantedPsk.add(rel);
        const pair = `${a}--${b}`;
        const file = readKeyFile(join(stateDir, rel));
        if (rotate.has(a) || rotate.has(b)) {
          writes.push({ path: rel, content: `${keys.presharedKey()}\n`, replace: file !== undefined });
          pairs.push({ pair, action: 'rotate' });
        } else if (file === undefined) {
          writes.push({ path: rel, content: `${keys.presharedKey()}\n`, replace: false });
          pairs.push({ pair, action: 'create' });
        } else if ('error' in file || !isWireguardKey(file.text.trim())) {
          issues.push({ path: options.stackPath, message: `WireGuard preshared key ${shown(rel)} ${'error' in file ? file.error : 'is not a key (44 base64 characters, as `wg genpsk` prints)'}. Restore it from your backup, or run \`podmesh wireguard rotate --host ${a}\` (which also replaces the keys of ${a}).` });
        } else {
          if (file.mode !== MODE.key) chmods.push({ path: rel, mode: MODE.key });
          pairs.push({ pair, action: 'keep' });
        }
      }
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);

  const hostFiles = new Set([...known].map(hostKeyFile));
  const unused = [
    ...listKeys(join(stateDir, WIREGUARD_DIR)).map((f) => `${WIREGUARD_DIR}/${f}`).filter((f) => !hostFiles.has(f)),
    ...listKeys(join(stateDir, WIREGUARD_DIR, 'psk')).map((f) => `${WIREGUARD_DIR}/psk/${f}`).filter((f) => !wantedPsk.has(f)),
  ];
  for (const dir of [WIREGUARD_DIR, ...(options.presharedKeys ? [`${WIREGUARD_DIR}/psk`] : [])]) {
    const mode = dirMode(join(stateDir, dir));
    if (mode !== undefined && mode !== MODE.dir) chmods.unshift({ path: dir, mode: MODE.dir });
  }
  return {
    stateDir,
    writes,
    chmods,
    result: { publicKeys, hosts: hostActions, presharedKeys: pairs, unused },
  };
}

/**
 * Carries out a plan: folders 0700, each new key written to a temp file (0600, fsynced) and
 * linked into place, so an existing key is never overwritten by accident (a key that appeared
 * meanwhile makes the link fail). A rotated key first moves to `<file>.old`, replacing an
 * earlier `.old`.
 */
export async function applyWireguardKeys(plan: WireguardPlan): Promise<WireguardResult> {
  const abs = (rel: string) => join(plan.stateDir, rel);
  for (const c of plan.chmods) await chmod(abs(c.path), c.mode);
  const dirs = new Set(plan.writes.map((w) => w.path.slice(0, w.path.lastIndexOf('/'))));
  for (const dir of [...dirs].sort(compare)) {
    const parts = dir.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = abs(parts.slice(0, i).join('/'));
      if ((await mkdir(d, { recursive: true, mode: MODE.dir })) !== undefined) await chmod(d, MODE.dir);
    }
  }
  for (const w of plan.writes) {
    const target = abs(w.path);
    const tmp = join(target, '..', `.${w.path.split('/').pop() ?? 'key'}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', MODE.key);
    try {
      await fh.writeFile(w.content, 'utf8');
      await fh.chmod(MODE.key);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      if (w.replace) await rename(target, `${target}.old`);
      await link(tmp, target);
    } catch (e) {
      await rm(tmp, { force: true });
      if (errCode(e) === 'EEXIST') {
        throw PodmeshError.at(target, 'appeared while synth was creating it (another synth running?). Nothing was overwritten; run synth again.');
      }
      throw e;
    }
    await unlink(tmp);
  }
  return plan.result;
}
