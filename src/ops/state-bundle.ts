// Encrypted state bundles (`podmesh state export|import`, `apply --state-bundle`): a stack's state
// files as one JSON document, encrypted with age (X25519 recipients, the binary age format, so the
// `age` CLI reads and writes them too). A host bundle holds exactly what apply installs on that
// host from the state folder; a full backup holds the whole stack's state folder.
import { armor, Decrypter, Encrypter } from 'age-encryption';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as z from 'zod';
import { PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { ensureDir, writeAtomic } from '../io/atomic.ts';
import { compare } from '../io/sort.ts';
import { MODE, stackDir } from '../layout.ts';
import type { ResolvedHost, ResolvedStack } from '../resolve/model.ts';
import { findLeftovers } from '../state/leftovers.ts';
import { folderSource, hostStateFiles, type StateSource } from './apply.ts';

/** The `format` field of every bundle. */
export const BUNDLE_FORMAT = 'podmesh-state-bundle';

/** One file of a bundle: its mode in the state folder (`"0600"`) and its content (UTF-8 text, or base64 bytes). */
export interface BundleFile {
  readonly mode: string;
  readonly encoding?: 'base64';
  readonly content: string;
}

/** A decrypted bundle. `host` is absent for a full backup of the stack's state folder. */
export interface StateBundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly version: 1;
  readonly stack: string;
  readonly host?: string;
  /** By path relative to the stack's state folder (`pki/services/auth/server.key`). */
  readonly files: Readonly<Record<string, BundleFile>>;
}

/** File modes synth writes in the state folder: keys and values 0600, certificates 0644, secret files 0444. */
const STATE_FILE_MODES: ReadonlySet<number> = new Set([0o600, 0o644, 0o444]);
const PRIVATE_KEY = /\.key(\.old)?$/;
/** How every age file starts: binary, or ASCII-armored (`age -a`). */
const AGE_MAGIC = 'age-encryption.org/v1\n';
const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';

const schema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  version: z.literal(1),
  stack: z.string().min(1),
  host: z.string().min(1).optional(),
  files: z.record(z.string(), z.strictObject({ mode: z.string().regex(/^0[0-7]{3}$/), encoding: z.literal('base64').optional(), content: z.string() })),
});

/** A file's bytes as a bundle entry: text when they are valid UTF-8, base64 otherwise. */
function entryOf(bytes: Buffer, mode: number): BundleFile {
  const m = `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
  try {
    return { mode: m, content: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes) };
  } catch {
    return { mode: m, encoding: 'base64', content: bytes.toString('base64') };
  }
}

/** An entry's bytes. */
export function entryBytes(f: BundleFile): Buffer {
  return f.encoding === 'base64' ? Buffer.from(f.content, 'base64') : Buffer.from(f.content, 'utf8');
}

/** An entry's mode as a number. */
export function entryMode(f: BundleFile): number {
  return parseInt(f.mode, 8);
}

/** The bundle as JSON with a fixed key order (files sorted by path), ending in a newline. */
export function renderBundle(b: StateBundle): string {
  const files = Object.fromEntries(
    Object.keys(b.files)
      .sort(compare)
      .map((p) => {
        const f = b.files[p]!;
        return [p, { mode: f.mode, ...(f.encoding ? { encoding: f.encoding } : {}), content: f.content }];
      }),
  );
  return `${JSON.stringify({ format: b.format, version: b.version, stack: b.stack, ...(b.host !== undefined ? { host: b.host } : {}), files }, null, 2)}\n`;
}

/** Why a path inside a bundle is unsafe to write below a state folder, or undefined when it is fine. */
function unsafePath(p: string): string | undefined {
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return 'is not a relative path';
  if (p.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) return 'has an empty, "." or ".." segment';
  return undefined;
}

/**
 * Parses and checks a decrypted bundle: its shape, every path relative and inside the stack's
 * state folder, every mode one synth writes (private keys 0600), no file also used as a folder.
 * @throws PodmeshError naming `file` and every problem
 */
export function parseBundle(text: string, file: string): StateBundle {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw PodmeshError.at(file, `decrypts, but is not a podmesh state bundle: not JSON (${(e as Error).message}). Export it again with \`podmesh state export\`.`);
  }
  const r = schema.safeParse(data);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw PodmeshError.at(file, `decrypts, but is not a podmesh state bundle (at "${i.path.join('.')}": ${i.message}). Export it again with \`podmesh state export\`.`);
  }
  const issues: Issue[] = [];
  const paths = Object.keys(r.data.files);
  const set = new Set(paths);
  for (const p of paths.sort(compare)) {
    const f = r.data.files[p]!;
    const bad = unsafePath(p);
    if (bad) issues.push({ path: file, message: `holds file "${p}", which ${bad}. Export the bundle again with \`podmesh state export\`.` });
    const mode = entryMode(f);
    if (!STATE_FILE_MODES.has(mode)) issues.push({ path: file, message: `holds file "${p}" with mode ${f.mode}; state files are 0600, 0644 or 0444. Export the bundle again with \`podmesh state export\`.` });
    else if (PRIVATE_KEY.test(p) && mode !== 0o600) issues.push({ path: file, message: `holds private key "${p}" with mode ${f.mode}; private keys are 0600. Export the bundle again with \`podmesh state export\`.` });
    for (let d = dirname(p); d !== '.' && d !== '/'; d = dirname(d)) {
      if (set.has(d)) issues.push({ path: file, message: `holds "${d}" both as a file and as the folder of "${p}". Export the bundle again with \`podmesh state export\`.` });
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  return r.data as StateBundle;
}

/**
 * The recipients in age's `-R` format: one per line, `#` comments and blank lines ignored.
 * Only X25519 recipients (`age1…`) are taken.
 */
export function parseRecipients(text: string, file: string): string[] {
  const out: string[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    out.push(checkRecipient(line, `${file}:${i + 1}`));
  }
  if (out.length === 0) throw PodmeshError.at(file, 'holds no recipient. Put one age public key (age1…, from `age-keygen -y KEYFILE`) per line.');
  return out;
}

/** An X25519 recipient (`age1…`), or a PodmeshError naming where it came from. */
export function checkRecipient(r: string, where: string): string {
  const issue = `"${r.length > 80 ? `${r.slice(0, 80)}…` : r}" is not an age X25519 public key (age1… as \`age-keygen\` prints it)`;
  if (!/^age1[02-9ac-hj-np-z]{58}$/.test(r)) throw PodmeshError.at(where, `${issue}. Pass the recipient's public key, e.g. from \`age-keygen -y KEYFILE\`.`);
  try {
    new Encrypter().addRecipient(r);
  } catch (e) {
    throw PodmeshError.at(where, `${issue}: ${(e as Error).message}. Pass the recipient's public key, e.g. from \`age-keygen -y KEYFILE\`.`);
  }
  return r;
}

/**
 * The identities of an age identity file (`age-keygen`'s format): `AGE-SECRET-KEY-1…` lines, `#`
 * comments and blank lines ignored, anything else an error.
 */
export function parseIdentities(text: string, file: string): string[] {
  const out: string[] = [];
  const issues: Issue[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    // The line itself is never shown: it may be a secret key with a typo.
    if (!/^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/.test(line)) issues.push({ path: `${file}:${i + 1}`, message: 'is not an age identity (AGE-SECRET-KEY-1… as `age-keygen` writes it). Pass the file `age-keygen -o FILE` wrote.' });
    else out.push(line);
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  if (out.length === 0) throw PodmeshError.at(file, 'holds no age identity (AGE-SECRET-KEY-1…). Pass the file `age-keygen -o FILE` wrote.');
  return out;
}

/** Encrypts a bundle to every recipient (binary age format). */
export async function encryptBundle(b: StateBundle, recipients: readonly string[]): Promise<Uint8Array> {
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return e.encrypt(renderBundle(b));
}

/**
 * Decrypts and checks bundle `file` (its bytes) with the identities of `identityFile`. A wrong
 * identity, a damaged or truncated file, or one that is not age is a PodmeshError naming the file.
 */
export async function decryptBundle(bytes: Uint8Array, identities: readonly string[], file: string, identityFile: string): Promise<StateBundle> {
  const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1');
  const armored = head.trimStart().startsWith(ARMOR_BEGIN);
  if (!armored && !head.startsWith(AGE_MAGIC)) {
    throw PodmeshError.at(file, 'is not an age-encrypted file (it does not start with "age-encryption.org/v1"). Pass the file `podmesh state export` (or `age -r …`) wrote.');
  }
  const d = new Decrypter();
  for (const id of identities) d.addIdentity(id);
  let text: string;
  try {
    text = await d.decrypt(armored ? armor.decode(Buffer.from(bytes).toString('latin1')) : bytes, 'text');
  } catch (e) {
    const why = (e as Error).message.slice(0, 120);
    throw PodmeshError.at(
      file,
      /no identity matched/.test(why)
        ? `is not encrypted to the identity in ${identityFile} (${why}). Pass the identity of a recipient the bundle was exported for, or export it again with --recipient for this identity's public key (\`age-keygen -y ${identityFile}\`).`
        : `cannot be decrypted: it is damaged or truncated (${why}). Export it again with \`podmesh state export\`.`,
    );
  }
  return parseBundle(text, file);
}

/** Reads the bundle at `file` and decrypts it with the identity file `identityFile`. */
export async function readBundleFile(file: string, identityFile: string): Promise<StateBundle> {
  const identities = parseIdentities(readFileSync(identityFile, 'utf8'), identityFile);
  return decryptBundle(readFileSync(file), identities, file, identityFile);
}

/** A decrypted host bundle as the state apply installs from. */
export function bundleSource(b: StateBundle, where: string): StateSource {
  const paths = Object.keys(b.files).sort(compare);
  return {
    where,
    kind: (rel) => (b.files[rel] ? 'file' : paths.some((p) => p.startsWith(`${rel}/`)) ? 'folder' : undefined),
    read: (rel) => entryBytes(b.files[rel]!).toString('utf8'),
    list: (rel) => paths.filter((p) => p.startsWith(`${rel}/`)).map((p) => p.slice(rel.length + 1)),
    missing: (_rel, stack, host) => `is not in the bundle, but host ${host} needs it. Export the bundle again with \`podmesh state export --stack ${stack} --host ${host}\` from a state folder synth has brought up to date.`,
  };
}

/** A file of the state folder as a bundle entry (no symbolic links: a link could point at anything). */
function readEntry(abs: string): BundleFile {
  const st = lstatSync(abs);
  if (!st.isFile()) throw PodmeshError.at(abs, 'is not a regular file (a symbolic link or special file) in the state folder. Replace it with the file itself.');
  return entryOf(readFileSync(abs), st.mode);
}

/** What host `host` needs from the stack's state folder `stackStateDir`, as a bundle. */
export function hostBundle(stack: ResolvedStack, host: ResolvedHost, stackStateDir: string): StateBundle {
  const files = hostStateFiles(stack, host, folderSource(stackStateDir));
  return { format: BUNDLE_FORMAT, version: 1, stack: stack.name, host: host.name, files: Object.fromEntries(files.map((f) => [f.state, readEntry(join(stackStateDir, f.state))])) };
}

/**
 * Every file of the stack's state folder `stackStateDir` (CA keys included), as a full backup.
 * @throws PodmeshError when the folder is missing or holds an interrupted run's temporaries
 */
export function fullBundle(stack: string, stackStateDir: string): StateBundle {
  if (!existsSync(stackStateDir)) throw PodmeshError.at(stackStateDir, `does not exist: stack ${stack} has no state here. Pass the state folder with --state, or run \`podmesh synth --stack ${stack}\` first.`);
  const leftovers = findLeftovers(stackStateDir);
  if (leftovers.length > 0) throw PodmeshError.at(stackStateDir, `holds temporaries an interrupted run left (${leftovers.join(', ')}). Run \`podmesh synth --stack ${stack}\` to clean them up, then export.`);
  const files: Record<string, BundleFile> = {};
  const walk = (rel: string, depth: number) => {
    for (const e of readdirSync(join(stackStateDir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory() && depth < 16) walk(r, depth + 1);
      else files[r] = readEntry(join(stackStateDir, r));
    }
  };
  walk('', 0);
  return { format: BUNDLE_FORMAT, version: 1, stack, files };
}

/** What {@link importBundle} did. */
export type ImportOutcome = 'created' | 'unchanged' | 'replaced';

/**
 * Restores a full backup into `<stateDir>/<stack>`: staged complete in a temporary folder beside
 * it (folders 0700, files with their recorded modes), then renamed into place in one step. An
 * existing, different folder is replaced only with `force`.
 * @throws PodmeshError for a host bundle, or an existing different folder without `force`
 */
export async function importBundle(b: StateBundle, stateDir: string, file: string, force: boolean): Promise<ImportOutcome> {
  if (b.host !== undefined) {
    throw PodmeshError.at(file, `is a bundle for host ${b.host} of stack ${b.stack}, not a full backup: it holds only what that host installs. Install it with \`podmesh apply --stack ${b.stack} --host ${b.host} --state-bundle ${file} --identity KEYFILE\`; restore the state folder from a full backup (\`podmesh state export --stack ${b.stack}\` without --host).`);
  }
  const target = join(stateDir, stackDir(b.stack));
  const exists = existsSync(target);
  if (exists) {
    const current = fullBundle(b.stack, target);
    const differ = [...new Set([...Object.keys(current.files), ...Object.keys(b.files)])]
      .sort(compare)
      .filter((p) => current.files[p]?.mode !== b.files[p]?.mode || current.files[p]?.content !== b.files[p]?.content || current.files[p]?.encoding !== b.files[p]?.encoding);
    if (differ.length === 0) return 'unchanged';
    if (!force) {
      throw PodmeshError.at(target, `already exists and differs from the backup ${file} (${differ.length} file${differ.length === 1 ? '' : 's'}: ${differ.slice(0, 5).join(', ')}${differ.length > 5 ? ', …' : ''}). Pass --force to replace it (the folder's current keys and certificates are lost), or import into another --state.`);
    }
  }
  await ensureDir(stateDir, MODE.privateDir);
  const tag = randomBytes(6).toString('hex');
  const staging = join(stateDir, `.${stackDir(b.stack)}.${tag}.tmp`);
  try {
    await mkdir(staging, { mode: MODE.privateDir });
    await chmod(staging, MODE.privateDir);
    for (const p of Object.keys(b.files).sort(compare)) {
      const abs = join(staging, p);
      await ensureDir(dirname(abs), MODE.privateDir);
      await writeAtomic(abs, entryBytes(b.files[p]!), entryMode(b.files[p]!));
    }
    if (!exists) {
      await rename(staging, target);
      return 'created';
    }
    const old = join(stateDir, `.${stackDir(b.stack)}.${tag}.removed`);
    await rename(target, old);
    try {
      await rename(staging, target);
    } catch (e) {
      await rename(old, target); // the folder as it was
      throw e;
    }
    await rm(old, { recursive: true, force: true });
    return 'replaced';
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
