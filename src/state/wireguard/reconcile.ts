// The WireGuard part of the state folder (`.podmesh/<stack>/wireguard/`): one private key per host,
// optional preshared keys per host pair. Planned in memory first (every check, nothing written),
// then applied; a key is never replaced without being asked to (`podmesh wireguard rotate`).
import { closeSync, constants, fstatSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import { atomicWriter, dirMode, FileExistsError, type StateWriter } from '../../io/atomic.ts';
import { compare } from '../../io/sort.ts';
import { noteRead, type Reconciler, type StateContext } from '../reconciler.ts';
import { isWireguardKey, nodeKeySource, publicKeyOf, wireguardKeySource, type WireguardKeySource } from './keys.ts';

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
  /** Receives the text of each key file read, by absolute path (StateContext.reads). */
  readonly reads?: Map<string, string>;
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
export interface KeyWrite {
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

/** A key file's text and mode (noted in `reads`); undefined when absent; never follows a symbolic link. */
function readKeyFile(abs: string, reads: Map<string, string> | undefined): Read {
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
    const text = readFileSync(fd, 'utf8');
    if (reads) noteRead({ reads }, abs, text);
    return { text, mode: st.mode & 0o7777 };
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

/** What planning one stack's keys collects as it goes. */
interface Planning {
  readonly options: WireguardKeysOptions;
  readonly keys: WireguardKeySource;
  readonly rotate: ReadonlySet<string>;
  readonly issues: Issue[];
  readonly writes: KeyWrite[];
  readonly chmods: { path: string; mode: number }[];
  readonly publicKeys: Record<string, string>;
  readonly hostActions: { host: string; action: KeyAction }[];
}

const byHost = (hosts: readonly TunnelHostKey[]): TunnelHostKey[] => [...hosts].sort((a, b) => compare(a.host, b.host));

/**
 * Decides, without writing, what the stack's WireGuard state needs: reuses every host's key,
 * creates keys for hosts that have none and no locked public key, replaces the keys of `rotate`.
 * @throws PodmeshError listing every problem: a locked public key whose private key is missing,
 *   a private key that does not match its locked public key, unreadable or malformed key files.
 */
export function planWireguardKeys(options: WireguardKeysOptions): WireguardPlan {
  const { stateDir } = options;
  const rotate = new Set(options.rotate ?? []);
  const known = new Set(options.hosts.map((h) => h.host));
  const issues: Issue[] = [];
  for (const h of [...rotate].sort(compare)) {
    if (!known.has(h)) issues.push({ path: options.stackPath, message: `cannot rotate the WireGuard key of "${h}": the tunnel's hosts are ${[...known].sort(compare).join(', ')}.` });
  }
  // A checkout without this stack's keys (a fresh clone, CI, a developer's laptop): the lock has
  // every public key, so out/ renders as committed, and no key is made (that would be a silent rotation).
  if (rotate.size === 0 && dirMode(join(stateDir, WIREGUARD_DIR)) === undefined && options.hosts.every((h) => h.publicKey !== undefined)) {
    if (issues.length > 0) throw new PodmeshError(issues);
    return absentPlan(options);
  }
  const p: Planning = { options, keys: options.keys ?? nodeKeySource, rotate, issues, writes: [], chmods: [], publicKeys: {}, hostActions: [] };
  for (const h of byHost(options.hosts)) planHostKey(p, h);
  const pairs = options.presharedKeys ? planPresharedKeys(p, [...known].sort(compare)) : { pairs: [], wanted: new Set<string>() };
  if (issues.length > 0) throw new PodmeshError(issues);
  for (const dir of [WIREGUARD_DIR, ...(options.presharedKeys ? [`${WIREGUARD_DIR}/psk`] : [])]) {
    const mode = dirMode(join(stateDir, dir));
    if (mode !== undefined && mode !== MODE.dir) p.chmods.unshift({ path: dir, mode: MODE.dir });
  }
  return {
    stateDir,
    writes: p.writes,
    chmods: p.chmods,
    result: { publicKeys: p.publicKeys, hosts: p.hostActions, presharedKeys: pairs.pairs, unused: unusedKeys(stateDir, known, pairs.wanted) },
  };
}

/** The plan of a state folder without WireGuard keys whose lock has them all: keep, render from the lock. */
function absentPlan(options: WireguardKeysOptions): WireguardPlan {
  const hosts = byHost(options.hosts);
  return {
    stateDir: options.stateDir,
    writes: [],
    chmods: [],
    result: {
      publicKeys: Object.fromEntries(hosts.map((h) => [h.host, h.publicKey!])),
      hosts: hosts.map((h) => ({ host: h.host, action: 'keep' as const })),
      presharedKeys: [],
      unused: [],
      absent: true,
    },
  };
}

/** One host's private key: rotate, keep (checked against the lock), create, or a problem. */
function planHostKey(p: Planning, h: TunnelHostKey): void {
  const { stateDir, lockFile, stackPath } = p.options;
  const shown = (rel: string) => join(stateDir, rel);
  const rotateHint = `run \`podmesh wireguard rotate --host ${h.host} --stack ${stackPath.split('/')[0]}\``;
  const rel = hostKeyFile(h.host);
  const file = readKeyFile(join(stateDir, rel), p.options.reads);
  const fresh = (action: KeyAction, replace: boolean): void => {
    const key = p.keys.privateKey();
    p.writes.push({ path: rel, content: `${key}\n`, replace });
    p.publicKeys[h.host] = publicKeyOf(key);
    p.hostActions.push({ host: h.host, action });
  };
  if (p.rotate.has(h.host)) return fresh('rotate', file !== undefined);
  if (file && 'error' in file) {
    p.issues.push({ path: h.path, message: `WireGuard private key ${shown(rel)} ${file.error}. Restore the file from your backup, or ${rotateHint} to replace it.` });
    return;
  }
  if (file) {
    const text = file.text.trim();
    if (!isWireguardKey(text)) {
      p.issues.push({ path: h.path, message: `${shown(rel)} is not a WireGuard private key (44 base64 characters, as \`wg genkey\` prints). Restore it from your backup, or ${rotateHint} to replace it.` });
      return;
    }
    const pub = publicKeyOf(text);
    if (h.publicKey !== undefined && pub !== h.publicKey) {
      p.issues.push({ path: h.path, message: `WireGuard private key ${shown(rel)} belongs to public key ${pub}, but ${lockFile} records ${h.publicKey} for this host. Restore the private key of ${h.publicKey}, or ${rotateHint} to make a new key and redeploy every host's WireGuard config.` });
      return;
    }
    if (file.mode !== MODE.key) p.chmods.push({ path: rel, mode: MODE.key });
    p.publicKeys[h.host] = pub;
    p.hostActions.push({ host: h.host, action: 'keep' });
    return;
  }
  if (h.publicKey === undefined) return fresh('create', false);
  const old = readKeyFile(join(stateDir, `${rel}.old`), p.options.reads);
  const oldMatches = old !== undefined && 'text' in old && isWireguardKey(old.text.trim()) && publicKeyOf(old.text.trim()) === h.publicKey;
  p.issues.push({
    path: h.path,
    message: `WireGuard public key ${h.publicKey} is recorded in ${lockFile}, but its private key ${shown(rel)} is missing. ${oldMatches ? `${shown(`${rel}.old`)} holds that key: rename it to ${h.host}.key. ` : ''}Restore the key file from your backup, or ${rotateHint} to give ${h.host} a new key and redeploy every host's WireGuard config. Synth never makes a new key silently: the other hosts would stop accepting ${h.host}.`,
  });
}

/** A preshared key per host pair: rotate with either host, create when missing, else keep. */
function planPresharedKeys(p: Planning, names: readonly string[]): { pairs: { pair: string; action: KeyAction }[]; wanted: Set<string> } {
  const { stateDir, stackPath } = p.options;
  const pairs: { pair: string; action: KeyAction }[] = [];
  const wanted = new Set<string>();
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const [a, b] = [names[i]!, names[j]!];
      const rel = presharedKeyFile(a, b);
      wanted.add(rel);
      const pair = `${a}--${b}`;
      const file = readKeyFile(join(stateDir, rel), p.options.reads);
      if (p.rotate.has(a) || p.rotate.has(b)) {
        p.writes.push({ path: rel, content: `${p.keys.presharedKey()}\n`, replace: file !== undefined });
        pairs.push({ pair, action: 'rotate' });
      } else if (file === undefined) {
        p.writes.push({ path: rel, content: `${p.keys.presharedKey()}\n`, replace: false });
        pairs.push({ pair, action: 'create' });
      } else if ('error' in file || !isWireguardKey(file.text.trim())) {
        p.issues.push({ path: stackPath, message: `WireGuard preshared key ${join(stateDir, rel)} ${'error' in file ? file.error : 'is not a key (44 base64 characters, as `wg genpsk` prints)'}. Restore it from your backup, or run \`podmesh wireguard rotate --host ${a}\` (which also replaces the keys of ${a}).` });
      } else {
        if (file.mode !== MODE.key) p.chmods.push({ path: rel, mode: MODE.key });
        pairs.push({ pair, action: 'keep' });
      }
    }
  }
  return { pairs, wanted };
}

/** Key files of hosts and pairs the stack no longer has (kept, never deleted). */
function unusedKeys(stateDir: string, known: ReadonlySet<string>, wantedPsk: ReadonlySet<string>): string[] {
  const hostFiles = new Set([...known].map(hostKeyFile));
  return [
    ...listKeys(join(stateDir, WIREGUARD_DIR)).map((f) => `${WIREGUARD_DIR}/${f}`).filter((f) => !hostFiles.has(f)),
    ...listKeys(join(stateDir, WIREGUARD_DIR, 'psk')).map((f) => `${WIREGUARD_DIR}/psk/${f}`).filter((f) => !wantedPsk.has(f)),
  ];
}

/**
 * Carries out a plan through the state writer: folders 0700, then every new key created
 * atomically (0600, linked into place) in one durable batch, so an existing key is never
 * overwritten by accident (a key that appeared meanwhile makes the create fail). A rotated key
 * first moves to `<file>.old`, replacing an earlier `.old`.
 */
export async function applyWireguardKeys(plan: WireguardPlan, writer: StateWriter = atomicWriter): Promise<WireguardResult> {
  const abs = (rel: string) => join(plan.stateDir, rel);
  for (const c of plan.chmods) await writer.chmod(abs(c.path), c.mode);
  const dirs = new Set(plan.writes.map((w) => w.path.slice(0, w.path.lastIndexOf('/'))));
  for (const dir of [...dirs].sort(compare)) await writer.mkdir(abs(dir), MODE.dir);
  try {
    await writer.createBatch(plan.writes.map((w) => ({ abs: abs(w.path), content: w.content, mode: MODE.key, ...(w.replace ? { moveAside: `${abs(w.path)}.old` } : {}) })));
  } catch (e) {
    if (e instanceof FileExistsError) {
      throw PodmeshError.at(e.path, 'appeared while synth was creating it (another synth running?). Nothing was overwritten; run synth again.');
    }
    throw e;
  }
  return plan.result;
}

/** Input of the WireGuard reconciler: the options without a key source (it comes from the context). */
export type WireguardInput = Omit<WireguardKeysOptions, 'keys'>;

/** The WireGuard key reconciler: new keys from the context's random bytes. */
export const wireguardReconciler: Reconciler<WireguardInput, WireguardPlan, WireguardResult> = {
  plan: async (input: WireguardInput, ctx: StateContext) => planWireguardKeys({ ...input, keys: wireguardKeySource(ctx.random), ...(ctx.reads ? { reads: ctx.reads } : {}) }),
  apply: applyWireguardKeys,
};
