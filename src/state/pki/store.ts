// The PKI part of the state folder: its layout, reading it in one pass, and writing changes atomically.
//
// Reconcile reads a snapshot, decides everything in memory, then hands this module the complete
// desired state; nothing is written before every check has passed. Each file is replaced
// atomically, all of a run's files as one batch (io/atomic.ts writeBatch: temp files, one syncfs
// for their data, renames, one syncfs for the renames). A first run builds `pki/` in a temp folder
// renamed into place, so it is created whole or not at all. Later runs rename keys before their
// certificates and the inventory before the service files: after a crash every file is either old
// or new, and the next reconcile repairs any key/certificate pair that no longer matches by
// reissuing it.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { atomicWriter, dirMode, type BatchFile, type StateWriter } from '../../io/atomic.ts';
import { OCSP_DIR, OCSP_FILE_NAMES } from './ocsp-files.ts';
import type { CertKind, FileChange } from './types.ts';
import { VERIFIED_FILE } from './verified.ts';

/** Folder and file modes of the state contract (applied with chmod, whatever the umask). */
export const MODE = { dir: 0o700, key: 0o600, file: 0o644 } as const;

/** Paths of the PKI state, relative to the state folder (`.podmesh/<stack>`). */
export const PKI_PATHS = {
  dir: 'pki',
  rootCert: 'pki/ca.crt',
  rootKey: 'pki/ca.key',
  clientCaCert: 'pki/client-ca.crt',
  clientCaKey: 'pki/client-ca.key',
  crl: 'pki/crl.pem',
  inventory: 'pki/inventory.json',
  /** The external CA bundle `podmesh certs import` installed; while present, reconcile keeps the certificates it signed. */
  externalCa: 'pki/external-ca.crt',
  services: 'pki/services',
  /** The OCSP responder's certificates, keys and index (engine/ocsp.ts). */
  ocsp: OCSP_DIR,
} as const;


/** Certificate and key file names of each kind inside `pki/services/<service>/`. */
export const KIND_FILES: Readonly<Record<CertKind, { readonly cert: string; readonly key: string }>> = {
  server: { cert: 'server.crt', key: 'server.key' },
  client: { cert: 'client.crt', key: 'client.key' },
  public: { cert: 'public.crt', key: 'public.key' },
};

/** The root certificate's copy in every service folder (`/etc/mtls/ca.crt`). */
export const SERVICE_CA_FILE = 'ca.crt';

/** The stack's CRLs (root's, then the client CA's) in every service folder (`/etc/mtls/crl.pem`). */
export const SERVICE_CRL_FILE = 'crl.pem';

const SERVICE_FILE_NAMES = [SERVICE_CA_FILE, SERVICE_CRL_FILE, ...Object.values(KIND_FILES).flatMap((f) => [f.cert, f.key])];

/** The kind whose certificate or key a service file name holds (the CA and CRL copies have none). */
const KIND_OF_FILE: ReadonlyMap<string, CertKind> = new Map(Object.entries(KIND_FILES).flatMap(([kind, f]) => [[f.cert, kind as CertKind] as const, [f.key, kind as CertKind] as const]));

/** `pki/services/<service>` or a file in it. */
export function servicePath(service: string, file?: string): string {
  return file === undefined ? `${PKI_PATHS.services}/${service}` : `${PKI_PATHS.services}/${service}/${file}`;
}

/** One existing file: its text, or why it could not be read. */
export interface FileSnapshot {
  /** UTF-8 content; undefined when unreadable. */
  readonly text: string | undefined;
  /** Permission bits. */
  readonly mode: number;
  /** Error code when unreadable (EACCES, EISDIR, ...). */
  readonly error: string | undefined;
}

/** What the PKI state holds right now. Files that do not exist are absent from `files`. */
export interface PkiSnapshot {
  /** The state folder the snapshot was read from. */
  readonly stateDir: string;
  /** Whether `pki/` exists. */
  readonly exists: boolean;
  /** Managed files that exist, by relative path. */
  readonly files: ReadonlyMap<string, FileSnapshot>;
  /** Modes of `pki`, `pki/services` and each service folder that exist, by relative path. */
  readonly dirs: ReadonlyMap<string, number>;
  /** Folder names under `pki/services/`, sorted. */
  readonly services: readonly string[];
  /** The cache of established certificate facts ({@link VERIFIED_FILE}), when present. */
  readonly verified?: FileSnapshot;
}

const errCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e);

/** One read buffer for every file of a snapshot (reads are synchronous): no allocation per file. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * The whole content of an open regular file as UTF-8, usually in one read: a short read of a
 * regular file is its end, so a file that is not growing needs no second read to find it.
 */
function readAll(fd: number): string {
  let len = 0;
  for (;;) {
    if (len === scratch.length) scratch = Buffer.concat([scratch, Buffer.allocUnsafe(scratch.length)]);
    const want = scratch.length - len;
    const n = readSync(fd, scratch, len, want, null);
    len += n;
    if (n < want) return scratch.toString('utf8', 0, len);
  }
}

// Synchronous on purpose: thousands of small files read far faster without a thread-pool round trip each.
function readOne(abs: string): FileSnapshot | undefined {
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return undefined;
    return { text: undefined, mode: 0, error: errCode(e) === 'ELOOP' ? 'a symbolic link' : errCode(e) };
  }
  try {
    const st = fstatSync(fd);
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) return { text: undefined, mode, error: 'EISDIR' };
    if (!st.isFile()) return { text: undefined, mode, error: 'not a regular file' };
    try {
      return { text: readAll(fd), mode, error: undefined };
    } catch (e) {
      return { text: undefined, mode, error: errCode(e) };
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Names in a service folder that may be managed files: only those are opened (a no-change run
 * would otherwise fail to open every absent kind's pair, 2 of 8 names per service at least).
 */
function presentNames(abs: string): ReadonlySet<string> | undefined {
  try {
    return new Set(readdirSync(abs));
  } catch {
    return undefined; // unreadable: every name is tried, and reading says why
  }
}

/** What a reader of the PKI state knows beforehand, and wants to learn besides the snapshot. */
export interface SnapshotOptions {
  /** Receives the text of each file read, by absolute path (StateContext.reads). */
  readonly reads?: Map<string, string>;
  /**
   * The certificate kinds each service's bindings ask for. A listed service's folder is not listed:
   * the files of its kinds (and its CA and CRL copies) are opened, and the other managed names are
   * only looked up (one lstat each, which, unlike a failed open, costs no exception). A folder not
   * listed here is listed, and only the managed names it holds are opened.
   */
  readonly kinds?: ReadonlyMap<string, ReadonlySet<CertKind>>;
}

/**
 * The managed names of one service folder that may exist, to open: those the folder lists, or,
 * given the kinds its bindings ask for, those and any other managed name found by lstat.
 */
function candidateNames(abs: string, kinds: ReadonlySet<CertKind> | undefined): readonly string[] {
  if (kinds === undefined) {
    const present = presentNames(abs);
    return present === undefined ? SERVICE_FILE_NAMES : SERVICE_FILE_NAMES.filter((f) => present.has(f));
  }
  return SERVICE_FILE_NAMES.filter((f) => {
    const kind = KIND_OF_FILE.get(f);
    if (kind === undefined || kinds.has(kind)) return true;
    try {
      return lstatSync(`${abs}/${f}`, { throwIfNoEntry: false }) !== undefined;
    } catch {
      return true; // opening it says why it cannot be looked up
    }
  });
}

/** Reads every managed file and folder of `stateDir/pki` in one pass. */
export async function readPkiSnapshot(stateDir: string, options: SnapshotOptions = {}): Promise<PkiSnapshot> {
  const { reads, kinds } = options;
  const files = new Map<string, FileSnapshot>();
  const dirs = new Map<string, number>();
  const pkiMode = dirMode(join(stateDir, PKI_PATHS.dir));
  if (pkiMode === undefined) return { stateDir, exists: false, files, dirs, services: [] };
  dirs.set(PKI_PATHS.dir, pkiMode);
  const ocspMode = dirMode(join(stateDir, PKI_PATHS.ocsp));
  if (ocspMode !== undefined) dirs.set(PKI_PATHS.ocsp, ocspMode);
  const servicesMode = dirMode(join(stateDir, PKI_PATHS.services));
  let services: string[] = [];
  if (servicesMode !== undefined) {
    dirs.set(PKI_PATHS.services, servicesMode);
    const entries = await readdir(join(stateDir, PKI_PATHS.services), { withFileTypes: true });
    // Dot-folders are this module's own leftovers (removals in progress), never services.
    services = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  }
  // Paths below the folder are joined by hand: the folder resolved once, the rest are clean names
  // (path.join normalizes every one again, the most of this function's allocation for 6,000 files).
  const base = resolve(stateDir);
  const at = (rel: string): string => `${base}/${rel}`;
  for (const s of services) {
    const m = dirMode(at(servicePath(s)));
    if (m !== undefined) dirs.set(servicePath(s), m);
  }
  const paths = [
    PKI_PATHS.rootCert,
    PKI_PATHS.rootKey,
    PKI_PATHS.clientCaCert,
    PKI_PATHS.clientCaKey,
    PKI_PATHS.crl,
    PKI_PATHS.inventory,
    PKI_PATHS.externalCa,
    ...OCSP_FILE_NAMES.map((f) => `${PKI_PATHS.ocsp}/${f}`),
    ...services.flatMap((s) => candidateNames(at(servicePath(s)), kinds?.get(s)).map((f) => servicePath(s, f))),
  ];
  const read = (p: string): FileSnapshot | undefined => {
    const abs = at(p);
    const f = readOne(abs);
    if (reads && f?.text !== undefined) reads.set(abs, f.text);
    return f;
  };
  for (const p of paths) {
    const f = read(p);
    if (f) files.set(p, f);
  }
  return { stateDir, exists: true, files, dirs, services, verified: read(VERIFIED_FILE) };
}

/** A file reconcile wants to exist. */
export interface DesiredFile {
  /** Content, or null in a dry run for a file that would be (re)written without computing it. */
  readonly content: string | null;
  /** MODE.key or MODE.file. */
  readonly mode: number;
}

/** The PKI state reconcile wants. */
export interface DesiredState {
  /** Files that must exist, by relative path (in scope: other files are left alone). */
  readonly files: ReadonlyMap<string, DesiredFile>;
  /** When set, service folders not listed are removed, as are managed files not in `files`. */
  readonly prune: ReadonlySet<string> | undefined;
}

type Op =
  | { readonly op: 'mkdir'; readonly path: string }
  | {
      readonly op: 'write';
      readonly path: string;
      /** null only in a dry run's plan, which is never applied. */
      readonly content: string | null;
      readonly mode: number;
      readonly change: 'create' | 'update';
      /** Writes run in rank order (see writeRank). */
      readonly rank: number;
    }
  | { readonly op: 'chmod'; readonly path: string; readonly mode: number }
  | { readonly op: 'unlink'; readonly path: string }
  | { readonly op: 'rmdir'; readonly path: string };

/** The operations that turn `snapshot` into `desired`, in the order they must run. */
export interface ChangePlan {
  /** File-system operations in execution order. */
  readonly ops: readonly Op[];
  /** Every change a person sees in `podmesh diff`, sorted by path. */
  readonly changes: readonly FileChange[];
}

/** Write order: CA keys, CA certificates, inventory, CRL, then service keys before service certificates. */
function writeRank(path: string): number {
  if (path === PKI_PATHS.rootKey) return 0;
  if (path === PKI_PATHS.rootCert) return 1;
  if (path === PKI_PATHS.clientCaKey) return 2;
  if (path === PKI_PATHS.clientCaCert) return 3;
  if (path === PKI_PATHS.inventory) return 4;
  if (path === PKI_PATHS.crl) return 5;
  return path.endsWith('.key') ? 6 : 7;
}

const SERVICES_PREFIX = `${PKI_PATHS.services}/`;
const OCSP_PREFIX = `${PKI_PATHS.ocsp}/`;

/** The service folder (`pki/services/<service>`) a path is in, or undefined (no regular expression: it runs for every file). */
function serviceDirOf(path: string): string | undefined {
  if (!path.startsWith(SERVICES_PREFIX)) return undefined;
  const slash = path.indexOf('/', SERVICES_PREFIX.length);
  return slash > SERVICES_PREFIX.length ? path.slice(0, slash) : undefined;
}

/** Compares the desired state with the snapshot; unchanged files produce no operation at all. */
export function planChanges(snapshot: PkiSnapshot, desired: DesiredState): ChangePlan {
  const ops: Op[] = [];
  const changes: FileChange[] = [];
  const wantDirs = new Set<string>([PKI_PATHS.dir, PKI_PATHS.services]);
  for (const path of desired.files.keys()) {
    const dir = serviceDirOf(path);
    if (dir !== undefined) wantDirs.add(dir);
    else if (path.startsWith(OCSP_PREFIX)) wantDirs.add(PKI_PATHS.ocsp);
  }
  for (const dir of [...wantDirs].sort()) {
    const mode = snapshot.dirs.get(dir);
    if (mode === undefined) ops.push({ op: 'mkdir', path: dir });
    else if (mode !== MODE.dir) {
      ops.push({ op: 'chmod', path: dir, mode: MODE.dir });
      changes.push({ path: dir, change: 'chmod' });
    }
  }
  // Only files that change are ordered (a run with nothing to change sorts nothing).
  const writes: { path: string; want: DesiredFile; change: 'create' | 'update'; rank: number }[] = [];
  const chmods: { path: string; mode: number }[] = [];
  for (const [path, want] of desired.files) {
    const have = snapshot.files.get(path);
    if (have && have.text !== undefined && want.content !== null && have.text === want.content) {
      if (have.mode !== want.mode) chmods.push({ path, mode: want.mode });
      continue;
    }
    writes.push({ path, want, change: have ? 'update' : 'create', rank: writeRank(path) });
  }
  const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  for (const c of chmods.sort((a, b) => writeRank(a.path) - writeRank(b.path) || byPath(a, b))) {
    ops.push({ op: 'chmod', path: c.path, mode: c.mode });
    changes.push({ path: c.path, change: 'chmod' });
  }
  for (const w of writes.sort((a, b) => a.rank - b.rank || byPath(a, b))) {
    ops.push({ op: 'write', path: w.path, content: w.want.content, mode: w.want.mode, change: w.change, rank: w.rank });
    changes.push({ path: w.path, change: w.change });
  }
  if (desired.prune) {
    for (const service of snapshot.services) {
      if (desired.prune.has(service)) continue;
      ops.push({ op: 'rmdir', path: servicePath(service) });
      changes.push({ path: servicePath(service), change: 'remove' });
    }
    for (const path of snapshot.files.keys()) {
      const dir = serviceDirOf(path);
      if (dir !== undefined && desired.prune.has(dir.slice(SERVICES_PREFIX.length)) && !desired.files.has(path)) {
        ops.push({ op: 'unlink', path });
        changes.push({ path, change: 'remove' });
      }
    }
  }
  changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { ops, changes };
}

/**
 * Runs a change plan through the state writer. When `pki/` does not exist yet it is built in a
 * temp folder next to it and renamed into place at the end. All the files of a run are written as
 * one batch (StateWriter.writeBatch: temps, one flush, renames in plan order, one flush), between
 * the folder operations before them and the removals after them.
 */
export async function applyChanges(target: Pick<PkiSnapshot, 'stateDir' | 'exists'>, plan: ChangePlan, writer: StateWriter = atomicWriter): Promise<void> {
  if (plan.ops.length === 0) return;
  const incomplete = plan.ops.find((o) => o.op === 'write' && o.content === null);
  if (incomplete) throw new Error(`internal: ${incomplete.path} has no content (a dry-run plan cannot be applied)`);
  const { stateDir } = target;
  await writer.mkdir(stateDir, MODE.dir);
  const staging = target.exists ? undefined : join(stateDir, `.pki-${randomBytes(6).toString('hex')}.tmp`);
  const abs = (rel: string): string =>
    staging ? join(staging, rel.slice(PKI_PATHS.dir.length)) : join(stateDir, rel);
  const run = async (o: Exclude<Op, { op: 'write' }>): Promise<void> => {
    switch (o.op) {
      case 'mkdir':
        return writer.mkdir(abs(o.path), MODE.dir);
      case 'chmod':
        return writer.chmod(abs(o.path), o.mode);
      case 'unlink':
        return writer.unlink(abs(o.path));
      case 'rmdir':
        // Renamed away first, so the folder disappears in one step even if the delete is interrupted.
        return writer.removeDir(abs(o.path));
    }
  };
  try {
    for (let i = 0; i < plan.ops.length; ) {
      const o = plan.ops[i] as Op;
      if (o.op !== 'write') {
        await run(o);
        i++;
        continue;
      }
      // The writes are consecutive in the plan, in rank order (keys before their certificates).
      const batch: BatchFile[] = [];
      for (; i < plan.ops.length && (plan.ops[i] as Op).op === 'write'; i++) {
        const w = plan.ops[i] as Extract<Op, { op: 'write' }>;
        batch.push({ abs: abs(w.path), content: w.content as string, mode: w.mode });
      }
      // A staging folder nobody sees yet takes its files under their own names; renaming it publishes them.
      await writer.writeBatch(batch, { unpublished: staging !== undefined });
    }
    if (staging) await writer.rename(staging, join(stateDir, PKI_PATHS.dir));
  } catch (e) {
    if (staging) await rm(staging, { recursive: true, force: true });
    throw e;
  }
}
