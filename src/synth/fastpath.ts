// Synth's verified no-change fast path. A synth renders a pure function of the resolved model, the
// state folder, the engine, the options and the clock: when none of them changed since a synth that
// left out/<stack> exactly as rendered, reconciling, rendering and comparing are skipped and the
// no-change report recorded then is given again. Everything is checked, nothing assumed: any
// doubt (missing, unreadable or foreign cache entry, a changed file, a clock past the horizon) is
// the slow path. The cache lives in the private per-user folder of the stack builds, never in out/
// or the state folder; writing it is the only write a no-change synth makes.
import { randomBytes } from 'node:crypto';
import { isAscii } from 'node:buffer';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Stack } from '../../constructs/core/stack.ts';
import type { WriteReport } from '../io/writer.ts';
import type { WrittenFiles } from '../io/atomic.ts';
import type { ResolveOutcome } from '../resolve/resolve.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import { LOCK_FILE } from '../resolve/lock.ts';
import { privateCacheRoot } from '../io/cache-root.ts';
import type { Issue } from '../../constructs/core/errors.ts';
import type { RenderedFile } from '../render/file.ts';
import { stampStat, type StampStat } from '../io/staging-protocol.ts';
import { fileSha256 } from '../render/manifest.ts';
import { stateContext } from '../state/reconciler.ts';
import type { StateReport, SynthResult } from './apply.ts';
import { changesOf } from './check.ts';
import type { StatePlan, SynthPlan } from './plan.ts';
import { withPublicKeys } from '../state/wireguard/index.ts';
import { engineIdentity } from './engine-id.ts';
import { canonicalDigest, canonicalText, NotPlain, TextHash } from './canonical.ts';
import { hashConstructs } from './inputs.ts';
import { checkStamps, RACY_MS, sha256, StampList, takeStamps, topChanged, type Stamp } from './stamps.ts';
import { startStateChecks, type StateChecks } from './state-check.ts';

export { canonicalText } from './canonical.ts';
export { checkStamps, takeStamps, type Stamp } from './stamps.ts';

/** Changes whenever what an entry holds or means changes, so older entries are not reused. */
const FORMAT = 6;
/** Entries unused (not written or touched) for a week belong to removed checkouts or test folders. */
const UNUSED_MS = 7 * 86_400_000;

/** How a synth run may use the fast path (see {@link SynthOptions.cache}). */
export interface FastPathOptions {
  /** The cache folder. @default - the private per-user cache of stack builds (`$PODMESH_CACHE_DIR`, else `<tmp>/podmesh-<uid>`), `synth/` in it */
  readonly dir?: string;
  /** The engine's identity. @default - {@link engineIdentity} */
  readonly engine?: string;
  /**
   * Told, per run, whether the fast path served it and, when not, why; when it did, whether the
   * constructs vouched for the models (nothing resolved) or the resolved models did.
   */
  readonly onDecision?: (d: { readonly fast: boolean; readonly reason: string; readonly by?: 'constructs' | 'model' }) => void;
  /** Told, on a run the fast path did not serve, the stacks whose state folder was not planned ({@link keptStates}), when there are any. */
  readonly onKeptState?: (stacks: readonly string[]) => void;
  /** Told the stacks whose out/ folder was written while they rendered, by a worker thread (src/io/staged.ts), when there are any. */
  readonly onStaged?: (stacks: readonly string[]) => void;
  /** Told the stacks whose state folder was checked against its entry on a worker thread while the stacks resolved (src/synth/state-check.ts), when there are any. */
  readonly onStateChecked?: (stacks: readonly string[]) => void;
}

// ---------------------------------------------------------------------------------------------
// Fingerprints.

/**
 * What, besides the engine and the files, decides a stack's synth: its resolved model and where it
 * is written, as given (paths in the report and the files) and absolute (what is read).
 */
function fingerprint(model: ResolvedStack, given: Where, where: Where): string {
  const key = `${given.outDir}\0${given.stateDir}\0${where.outDir}\0${where.stateDir}`;
  let known = fingerprints.get(model);
  if (!known) fingerprints.set(model, (known = new Map()));
  let print = known.get(key);
  if (print === undefined) known.set(key, (print = canonicalDigest({ format: FORMAT, given, where, model })));
  return print;
}

/** Fingerprints taken in this process, by model and folders: a synth that checks a model against its entry records the same one. */
const fingerprints = new WeakMap<ResolvedStack, Map<string, string>>();

/**
 * What, besides the engine, the lock and the files, decides a stack's synth when its constructs
 * stand for its model ({@link constructsText}): the constructs and the folders. Undefined when they
 * do not (the model is fingerprinted instead).
 */
export function inputsPrint(stack: Stack, given: Where): string | undefined {
  const where = whereOf(given);
  try {
    const hash = new TextHash();
    hash.add(JSON.stringify({ format: FORMAT, given: { outDir: given.outDir, stateDir: given.stateDir }, where }));
    hashConstructs(stack, hash);
    return hash.digest();
  } catch (e) {
    if (!(e instanceof NotPlain)) throw e;
    return undefined;
  }
}


/**
 * Of the files `written` claims, those the stamps of `dir` hashed (racy when stamped): after a
 * {@link checkStamps} of those stamps passed, their contents on disk are these.
 */
function checkedContents(dir: string, stamps: readonly Stamp[], written: WrittenFiles): Map<string, string | Uint8Array> {
  const out = new Map<string, string | Uint8Array>();
  if (written.size === 0) return out;
  for (const [rel, type, , , , , , hash] of stamps) {
    if (type !== 'f' || hash === undefined) continue;
    const abs = join(dir, rel);
    const text = written.get(abs);
    if (text !== undefined) out.set(abs, text);
  }
  return out;
}

/**
 * Stamps of `dir` as {@link takeStamps} takes them, when `dir` holds exactly the rendered `files`
 * (just written there) and their folders: each of those is lstat'ed, and only folders that are not
 * racy are listed (a racy folder is marked and listed again by the next check, so an entry it holds
 * beyond these is found then). Racy files get the sha256 of their rendered text, which the manifest
 * renderer already computed for every file it lists ({@link fileSha256}). Undefined when `dir` holds
 * anything else, or other types, than that.
 */
export function writtenStamps(dir: string, since: number, files: ReadonlyMap<string, RenderedFile>, known?: ReadonlyMap<string, StampStat>): Stamp[] | undefined {
  // The tree of the rendered paths; folders as maps of their entries (a file is null).
  type Tree = Map<string, Tree | null>;
  const root: Tree = new Map();
  for (const rel of files.keys()) {
    const parts = rel.split('/');
    let at = root;
    for (let i = 0; i < parts.length - 1; i++) {
      let sub = at.get(parts[i]!);
      if (sub === null) return undefined;
      if (sub === undefined) at.set(parts[i]!, (sub = new Map()));
      at = sub;
    }
    const name = parts[parts.length - 1]!;
    if (name === '' || at.has(name)) return undefined;
    at.set(name, null);
  }
  const stamps: Stamp[] = [];
  const racy = (st: StampStat): boolean => Math.max(st.mtimeMs, st.ctimeMs) >= since - RACY_MS;
  /** The stat of an entry below `dir`: as the writer took it (`known`), or read now. */
  const stat = (abs: string, rel: string): StampStat | undefined => {
    const k = rel === '.' ? undefined : known?.get(rel);
    if (k) return k;
    const st = lstatSync(abs, { throwIfNoEntry: false });
    return st && (st.isDirectory() || st.isFile()) ? stampStat(st) : undefined;
  };
  const visit = (abs: string, rel: string, tree: Tree): boolean => {
    const st = stat(abs, rel);
    if (!st?.folder) return false;
    const names = [...tree.keys()].sort();
    const stamp: Stamp = [rel, 'd', st.size, st.mtimeMs, st.ctimeMs, st.ino, st.mode];
    if (racy(st)) stamp.push('dir');
    else {
      const listed = readdirSync(abs).sort();
      if (listed.length !== names.length || listed.some((n, i) => n !== names[i])) return false;
    }
    stamps.push(stamp);
    for (const name of names) {
      const childRel = rel === '.' ? name : `${rel}/${name}`;
      const childAbs = `${abs}/${name}`;
      const sub = tree.get(name)!;
      if (sub !== null) {
        if (!visit(childAbs, childRel, sub)) return false;
        continue;
      }
      const fst = stat(childAbs, childRel);
      if (!fst || fst.folder) return false;
      const f: Stamp = [childRel, 'f', fst.size, fst.mtimeMs, fst.ctimeMs, fst.ino, fst.mode];
      if (racy(fst)) f.push(fileSha256(files.get(childRel)!));
      stamps.push(f);
    }
    return true;
  };
  return visit(dir, '.', root) ? stamps : undefined;
}


// ---------------------------------------------------------------------------------------------
// Cache entries.

interface Where {
  readonly outDir: string;
  readonly stateDir: string;
}

/** One stack's record of its last verified synth. */
export interface Entry {
  readonly format: number;
  readonly engine: string;
  /** Absolute output and state folders. */
  readonly outDir: string;
  readonly stateDir: string;
  readonly stack: string;
  readonly fingerprint: string;
  /**
   * {@link inputsPrint} of the constructs the fingerprinted model was resolved from with the lock
   * now in out/<stack>; null when not known (the constructs do not stand for the model, or the
   * synth changed the lock: the next one resolves and, its model matching, records it).
   */
  readonly inputs: string | null;
  /** The clock the recorded decisions were made with (ms), and when they may first change (ms; null: never). */
  readonly decidedAt: number;
  readonly horizon: number | null;
  /** When the stamps were taken (ms). */
  readonly stampedAt: number;
  /** The stamps of out/<stack> and of the state folder: each a line of the entry's file, parsed at first use. */
  readonly out: StampList;
  readonly state: StampList;
  /** What a synth with nothing to change reports: files in out/<stack>, and the state report (Dates tagged). */
  readonly unchanged: number;
  /** JSON of the report (Dates tagged), decoded only when it is given. */
  readonly report: string;
}

/** The cache folder: the private per-user cache's `synth/`, unless the caller gave one. */
function cacheDir(o: FastPathOptions): string {
  if (o.dir !== undefined) return o.dir;
  return join(privateCacheRoot(), 'synth');
}

const entryPath = (dir: string, where: Where, stack: string): string => join(dir, `${sha256(`${where.outDir}\0${where.stateDir}\0${stack}`).slice(0, 32)}.json`);

/** Dates as `{ $date: ms }` so a report comes back as it was. */
const encode = (v: unknown): string => JSON.stringify(v, function (this: Record<string, unknown>, k) {
  const raw = this[k];
  return raw instanceof Date ? { $date: raw.getTime() } : raw;
});
const decode = (text: string): unknown => JSON.parse(text, (_k, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { $date?: unknown }).$date === 'number' ? new Date((v as { $date: number }).$date) : v));

/** An entry's first line: every field but the stamps and the report, which have a line each, and the stamps' tops. */
type Head = Omit<Entry, 'out' | 'state' | 'report'> & { readonly outTop: Stamp | null; readonly stateTop: Stamp | null };

/**
 * Every character past ASCII as its JSON escape: an entry's file is ASCII, read as such without
 * decoding UTF-8 (a 1,000-service entry, 1.7 MB: 0.1 ms instead of 6). JSON has such characters
 * only inside strings, where the escape stands for the same character.
 */
const asciiJson = (json: string): string => json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const isTop = (t: unknown): t is Stamp | null => t === null || (Array.isArray(t) && t[0] === '.');

/**
 * An entry's file: four lines of ASCII JSON, its head, the stamps of out/<stack>, those of the
 * state folder, and the report. Only the head is parsed here: a synth that finds out/<stack>
 * emptied or changed by its top stamp never parses the rest, a state folder checked on a worker
 * (state-check.ts) is checked against the text of its line, and the report is decoded only when
 * it is given. A file that is not such is no entry.
 */
function readEntry(path: string): Entry | undefined {
  try {
    const bytes = readFileSync(path);
    if (!isAscii(bytes)) return undefined;
    const lines = bytes.toString('latin1').split('\n');
    if (lines.length !== 5 || lines[4] !== '') return undefined;
    const [first, out, state, report] = lines as [string, string, string, string];
    const h = JSON.parse(first) as Head;
    if (typeof h !== 'object' || h === null || h.format !== FORMAT || typeof h.fingerprint !== 'string' || (h.inputs !== null && typeof h.inputs !== 'string') || !isTop(h.outTop) || !isTop(h.stateTop)) return undefined;
    const { outTop, stateTop, ...head } = h;
    return { ...head, out: StampList.text(out, outTop), state: StampList.text(state, stateTop), report };
  } catch {
    return undefined;
  }
}

function writeEntry(dir: string, path: string, entry: Entry): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.entry-${process.pid}-${randomBytes(4).toString('hex')}`);
  const { out, state, report, ...rest } = entry;
  const head: Head = { ...rest, outTop: out.top, stateTop: state.top };
  try {
    writeFileSync(tmp, asciiJson(`${JSON.stringify(head)}\n${out.text}\n${state.text}\n${report}\n`), { mode: 0o600 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Removes entries not used for {@link UNUSED_MS} (run when recording, not on a fast run). */
function pruneEntries(dir: string, keep: ReadonlySet<string>): void {
  const before = Date.now() - UNUSED_MS;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (keep.has(p)) continue;
    const st = statSync(p, { throwIfNoEntry: false });
    if (st && st.mtimeMs < before) rmSync(p, { force: true });
  }
}



// ---------------------------------------------------------------------------------------------
// The fast path and the recording.

/** The cache entries a failed fast path read, by stack: what the recording after the slow path starts from. */
export type Previous = ReadonlyMap<string, Entry>;

/** A stack resolved for the fast path, reused by the slow path when the fast one cannot serve. */
type Resolved = ReadonlyMap<Stack, ResolveOutcome>;

/** The folders as entries record them (absolute). */
const whereOf = (o: { readonly outDir?: string; readonly stateDir?: string }): Where => ({ outDir: resolve(o.outDir ?? 'out'), stateDir: resolve(o.stateDir ?? '.podmesh') });

/**
 * Whether a stack's cache entry holds for the stack as it is now (its constructs or its model
 * print the same): the entry's fields to update when it does (e.g. `inputs` learnt), or why not.
 */
export type Vouch = (entry: Entry) => Vouched;
/** A vouch's answer. */
type Vouched = { readonly reason: string } | { readonly update?: { readonly inputs: string } };

/** Each stack's constructs' print ({@link inputsPrint}), by stack name: taken at first use, as it costs a walk of every construct. */
export type Prints = (stack: string) => string | undefined;

/** The prints of `stacks`' constructs, each taken at first use and then kept. */
export function printsOf(stacks: readonly Stack[], given: Where): Prints {
  const taken = new Map<string, string | undefined>();
  return (name) => {
    if (!taken.has(name)) {
      const stack = stacks.find((s) => s.node.id === name);
      taken.set(name, stack ? inputsPrint(stack, given) : undefined);
    }
    return taken.get(name);
  };
}

/** The entry of a stack vouched for by its constructs' print. */
export const byInputs =
  (prints: Prints): Vouch =>
  (entry): Vouched => {
    const print = entry.inputs === null ? undefined : prints(entry.stack);
    return print !== undefined && entry.inputs === print ? {} : { reason: `${entry.stack}: the stack or its folders changed` };
  };

/**
 * The entry of a resolved stack vouched for by its model's fingerprint; with `inputs` (its
 * constructs' print), an entry that did not know it learns it: this model was resolved from those
 * constructs with the lock the entry's stamps hold, so the next run need not resolve.
 */
export const byModel =
  (stack: Stack, outcome: ResolveOutcome | undefined, given: Where, prints: Prints): Vouch =>
  (entry) => {
    if (!outcome?.resolved || outcome.issues.length > 0) return { reason: `${stack.node.id}: not resolved without problems` };
    let print: string;
    try {
      print = fingerprint(outcome.resolved, { outDir: given.outDir, stateDir: given.stateDir }, whereOf(given));
    } catch (e) {
      if (e instanceof NotPlain) return { reason: `${stack.node.id}: the resolved model is not plain data (${e.message})` };
      throw e;
    }
    if (entry.fingerprint !== print) return { reason: `${entry.stack}: the stack or its folders changed` };
    const inputs = prints(entry.stack);
    return inputs !== undefined && entry.inputs !== inputs ? { update: { inputs } } : {};
  };

/** Whether `now` lies in [the entry's decision, its horizon): the clock decides nothing differently than it did then. */
const withinHorizon = (entry: Entry, now: number): boolean => entry.decidedAt <= now && (entry.horizon === null || now < entry.horizon);

/** Why `entry` cannot speak for stack `name` now (another engine, other folders, the clock outside its window), or undefined. */
function entryMismatch(entry: Entry, name: string, engine: string, where: Where, now: number): string | undefined {
  if (entry.engine !== engine) return `${name}: another engine`;
  if (entry.outDir !== where.outDir || entry.stateDir !== where.stateDir || entry.stack !== name) return `${name}: another folder`;
  if (!withinHorizon(entry, now)) return `${name}: the clock is outside [decided, horizon)`;
  return undefined;
}

/**
 * The result a slow synth would give when nothing changed, from the cache entries of `stacks`
 * (each vouched for by its `vouch`), or why it cannot: reads only (and refreshes an entry's racy
 * stamps or what a vouch learnt). Entries already read (`read`, by stack) are not read again.
 */
export async function fastResult(stacks: readonly { readonly name: string; readonly vouch: Vouch }[], given: Where, o: FastPathOptions, read: Previous = new Map()): Promise<{ result: SynthResult } | { reason: string; entries: Previous }> {
  const where = whereOf(given);
  let engine: string;
  let dir: string;
  try {
    engine = o.engine ?? engineIdentity();
    dir = cacheDir(o);
  } catch (e) {
    return { reason: `no cache: ${(e as Error).message}`, entries: new Map() };
  }
  const entries = new Map<string, Entry>();
  const reports: WriteReport[] = [];
  const state: StateReport[] = [];
  const refresh: { path: string; entry?: Entry }[] = [];
  for (const { name, vouch } of stacks) {
    const path = entryPath(dir, where, name);
    const entry = read.get(name) ?? readEntry(path);
    if (!entry) return { reason: `${name}: no cache entry`, entries };
    entries.set(name, entry);
    const now = Date.now();
    const other = entryMismatch(entry, name, engine, where, now);
    if (other) return { reason: other, entries };
    // The cheap checks first: out/<stack> and the state folder still there as they were (an
    // emptied out/ is told by one lstat), then the constructs or the model, then every stamp.
    const outDir = join(where.outDir, entry.stack);
    const stateDir = join(where.stateDir, entry.stack);
    const top = topChanged(outDir, entry.out.top) ?? topChanged(stateDir, entry.state.top);
    if (top) return { reason: top, entries };
    const vouched = vouch(entry);
    if ('reason' in vouched) return { reason: vouched.reason, entries };
    const since = Date.now();
    const out = checkStamps(outDir, entry.out.stamps, since);
    if (!out.ok) return { reason: out.reason, entries };
    const st = checkStamps(stateDir, entry.state.stamps, since);
    if (!st.ok) return { reason: st.reason, entries };
    reports.push({ stack: entry.stack, added: [], modified: [], removed: [], unchanged: entry.unchanged });
    let report: StateReport;
    try {
      report = decode(entry.report) as StateReport;
    } catch {
      return { reason: `${entry.stack}: the cache entry is damaged`, entries };
    }
    state.push(report);
    if (out.refreshed || st.refreshed || vouched.update) refresh.push({ path, entry: { ...entry, ...vouched.update, ...(out.refreshed || st.refreshed ? { stampedAt: since, out: StampList.of(out.next), state: StampList.of(st.next) } : {}) } });
    else if ((statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? now) < now - 86_400_000) refresh.push({ path });
  }
  // The only write of a no-change run: entries whose racy files have settled or that learnt their
  // constructs' print (or that were not touched for a day).
  for (const r of refresh) {
    try {
      if (r.entry) writeEntry(dir, r.path, r.entry);
      else utimesSync(r.path, new Date(), new Date());
    } catch {
      // Only a cache.
    }
  }
  return { result: { reports, state, prunedStacks: [], changed: false } };
}

/** A stack's state folder as stamped before a plan read it. */
interface StateStamps {
  readonly since: number;
  readonly stamps: StampList;
  /** The previous entry whose state stamps the folder was checked against and matched (its stamps, settled, are `stamps`). */
  readonly matched?: Entry;
}

/** What a synth saw before its plan: the stamps of each stack's state folder and the text of its lock file. */
export interface BeforePlan {
  readonly states: ReadonlyMap<string, StateStamps>;
  readonly locks: ReadonlyMap<string, string | undefined>;
  /** The entries the fast path read. */
  readonly previous: Previous;
  /** The stacks whose state folder a worker checked ({@link startBeforePlan}). */
  readonly checkedAhead: readonly string[];
}

const lockText = (outDir: string, stack: string): string | undefined => {
  try {
    return readFileSync(join(outDir, stack, LOCK_FILE), 'utf8');
  } catch {
    return undefined;
  }
};

/**
 * Stamps of the state folders of `names` (none for a folder that cannot be read) and their lock
 * files, taken before the plan reads them. A folder the previous entry stamped is checked against
 * those stamps first: when it matches, they (settled: {@link checkStamps}' next) are its stamps
 * now, as a walk would take them, without listing any folder that is not racy.
 */
export async function beforePlan(names: readonly string[], given: Where, previous: Previous = new Map(), started?: StateChecks): Promise<BeforePlan> {
  const where = whereOf(given);
  const states = new Map<string, StateStamps>();
  const locks = new Map<string, string | undefined>();
  const far = await started?.results;
  const checkedAhead: string[] = [];
  for (const name of names) {
    const since = Date.now();
    locks.set(name, lockText(where.outDir, name));
    const dir = join(where.stateDir, name);
    try {
      const prev = previous.get(name);
      if (!prev || prev.stateDir !== where.stateDir || prev.stack !== name) {
        states.set(name, { since, stamps: StampList.of(takeStamps(dir, since)) });
        continue;
      }
      // Checked already, on a worker (startStateChecks), or now: the stamps it leaves, or undefined when the folder is not as recorded.
      const ahead = far?.get(prev.state);
      if (ahead) checkedAhead.push(name);
      let matched: { since: number; stamps: StampList } | undefined;
      if (ahead) matched = ahead.ok ? { since: ahead.since, stamps: ahead.next ? StampList.text(ahead.next.stamps, ahead.next.top) : prev.state } : undefined;
      else {
        const now = checkStamps(dir, prev.state.stamps, since);
        matched = now.ok ? { since, stamps: now.refreshed ? StampList.of(now.next) : prev.state } : undefined;
      }
      states.set(name, matched ? { ...matched, matched: prev } : { since, stamps: StampList.of(takeStamps(dir, since)) });
    } catch {
      // Not recorded: the slow path runs next time.
    }
  }
  return { states, locks, previous, checkedAhead };
}

/**
 * Starts checking, on a worker thread ({@link startStateChecks}), the state folders of `names`
 * against their entries: those a fast path that did not serve the run read (`read`), and the
 * others' (read now). {@link beforePlan} takes the results; the entries read are returned for it.
 */
export function startBeforePlan(names: readonly string[], given: Where, o: FastPathOptions, read: Previous): { entries: Previous; checks?: StateChecks } {
  const where = whereOf(given);
  const entries = new Map(read);
  try {
    const dir = cacheDir(o);
    for (const name of names) {
      const entry = entries.get(name) ?? readEntry(entryPath(dir, where, name));
      if (entry) entries.set(name, entry);
    }
  } catch {
    // No cache: nothing to check against.
  }
  const folders = names.flatMap((name) => {
    const e = entries.get(name);
    return e && e.stateDir === where.stateDir && e.stack === name ? [{ dir: join(where.stateDir, name), stamps: e.state }] : [];
  });
  return { entries, checks: startStateChecks(folders) };
}

/**
 * The clock horizon of the state folder `dir` at `now`, as stamped by `stamps`: the previous
 * entry's when it stamped the folder identically (same stats, same content hashes of racy files:
 * the folder its horizon was read from, by this engine) and `now` lies in [its decision, its horizon), since no
 * boundary lies between its decision and `now` then and the earliest after `now` is its horizon
 * (`matched`: the folder was checked against that entry's state stamps, as {@link beforePlan} does);
 * else read by {@link clockHorizon}, which takes the files in `contents` (checked against the disk
 * by the caller) as they are there. (An empty out/ or an edited stack leaves the state as it was:
 * the PKI folder is not read again.)
 */
async function horizonOf(dir: string, stamps: StampList, now: number, previous: Entry | undefined, matched: boolean, contents?: ReadonlyMap<string, string | Uint8Array>): Promise<number> {
  if (previous && withinHorizon(previous, now) && (matched || previous.state === stamps || sameStamps(previous.state.stamps, stamps.stamps))) return previous.horizon ?? Infinity;
  // Only then the PKI's certificate and CRL readers (and its X.509 library) load.
  const { clockHorizon } = await import('../state/pki/horizon.ts');
  // Stamps checked with the contents list the folder as it is: its files need not be listed again.
  return clockHorizon(dir, now, contents, contents && pkiFiles(stamps.stamps));
}

/** The files below `pki/` that state stamps list (relative to the state folder). */
const pkiFiles = (stamps: readonly Stamp[]): string[] => stamps.flatMap(([rel, type]) => (type === 'f' && rel.startsWith('pki/') ? [rel] : []));

/** Whether two lists of stamps are the same, entry by entry. */
function sameStamps(a: readonly Stamp[], b: readonly Stamp[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}

/**
 * The stacks whose state need not be planned, with their no-change state report: those whose state
 * folder {@link beforePlan} found as their entry stamped it, recorded by this engine for these
 * folders, with `now` in [its decision, its horizon) and a model that fingerprints as it did. The
 * state plan is a function of the model, the state folder, the clock and the engine, all as they
 * were when that plan was found to change nothing; only out/ differs (emptied, edited, or the
 * constructs changed in a way the model does not show). The fast path's own argument, for the
 * state alone: a stack that fails any check is planned as before.
 */
export function keptStates(resolved: Resolved, given: Where, o: FastPathOptions, before: BeforePlan, now: number): Map<string, StateReport> {
  const kept = new Map<string, StateReport>();
  let engine: string;
  try {
    engine = o.engine ?? engineIdentity();
  } catch {
    return kept;
  }
  const where = whereOf(given);
  for (const outcome of resolved.values()) {
    const model = outcome.resolved;
    if (!model || outcome.issues.length > 0) continue;
    const entry = before.states.get(model.name)?.matched;
    if (!entry || entryMismatch(entry, model.name, engine, where, now)) continue;
    try {
      if (fingerprint(model, { outDir: given.outDir, stateDir: given.stateDir }, where) !== entry.fingerprint) continue;
      kept.set(model.name, decode(entry.report) as StateReport);
    } catch {
      // Not plain data, or a damaged entry: planned.
    }
  }
  return kept;
}

/** The state report of a plan with nothing to change: what a no-change synth prints. */
function noChangeReport(stack: string, st: StatePlan): StateReport | undefined {
  const r = { pki: st.pki.result, secrets: st.secrets.result, ...(st.wireguard ? { wireguard: st.wireguard.result } : {}), leftovers: st.leftovers };
  if (changesOf(stack, r).length > 0) return undefined;
  return { stack, pki: r.pki, secrets: r.secrets, leftovers: [], ...(r.wireguard ? { wireguard: r.wireguard } : {}) };
}

/**
 * Records, after a synth applied `plan`, what the next synth needs to skip its work: per stack the
 * fingerprint (and the print of its constructs, from `prints`), the stamps of out/<stack> (as just
 * written: racy files by the hash of what was rendered) and of the state folder, the clock horizon, and the report of a synth with nothing to
 * change. A stack whose state the synth changed is planned again first (writing nothing): only a
 * plan with nothing to change, over a state folder stat-identical before and after it, is recorded.
 * `stateWritten` (src/io/atomic.ts recordingWriter) holds what the synth's state writes left in each
 * file: those files are stamped and their horizon read from it, once the stamps checked out.
 * Errors are swallowed: the cache only saves time.
 */
export async function recordSynth(plan: SynthPlan, resolved: Resolved, before: BeforePlan, decidedAt: Date, o: FastPathOptions, prints: Prints = () => undefined, stateWritten: WrittenFiles = new Map()): Promise<void> {
  try {
    // Only a synth that planned loads the planner: a no-change run never does.
    const { planState } = await import('./plan.ts');
    const engine = o.engine ?? engineIdentity();
    const dir = cacheDir(o);
    const where = whereOf(plan);
    const given = { outDir: plan.outDir, stateDir: plan.stateDir };
    const models = new Map<string, { stack: Stack; model: ResolvedStack }>();
    for (const [stack, r] of resolved) if (r.resolved && r.issues.length === 0) models.set(r.resolved.name, { stack, model: r.resolved });
    const written = new Set<string>();
    for (const p of plan.stacks) {
      const known = models.get(p.stack);
      if (!known || !(p.state || p.kept) || !before.locks.has(p.stack)) continue;
      // out/ was rendered from this model with these WireGuard public keys.
      const keys = (p.state ? p.state.wireguard?.result : p.kept?.wireguard)?.publicKeys ?? {};
      let model = known.model;
      // The model was resolved with the lock as it was. When the synth changed the lock (a first
      // synth, an empty out/, new WireGuard keys), the next synth resolves with the new one: the
      // lock this model leaves, with the keys just rendered. Allocation keeps locked addresses, so
      // that model is this one with those keys; it is recorded as such, not resolved again. Should
      // the next model differ in anything, its fingerprint does and that synth takes the slow path:
      // the prediction can cost a slow run, never a wrong fast one.
      const lockKept = before.locks.get(p.stack) === lockText(where.outDir, p.stack);
      if (!lockKept) model = withPublicKeys(known.model, keys);
      const stateAbs = join(where.stateDir, p.stack);
      let report = p.state ? noChangeReport(p.stack, p.state) : p.kept;
      let decided = decidedAt.getTime();
      let stamps: StampList;
      let matched: Entry | undefined;
      // Files whose contents on disk are known without reading them (checked against the disk).
      let checked: ReadonlyMap<string, string | Uint8Array> | undefined;
      const pre = before.states.get(p.stack);
      if (report && pre && (p.kept !== undefined || checkStamps(stateAbs, pre.stamps.stamps, pre.since).ok)) {
        // The plan had nothing to change and the state folder is as it was before the plan.
        // (Checked, not assumed: apply may still write there, e.g. a secret's files made whole. A
        // kept state was neither planned nor applied: nothing of this synth wrote there, and
        // should anything else have, the stamps recorded are those it changed, and the next
        // synth plans the state again.)
        stamps = pre.stamps;
        matched = pre.matched;
      } else {
        // The synth changed the state (or it was touched): plan it again, as the next synth would,
        // and record that, if it has nothing to change and holds the keys out/ was rendered with.
        decided = Date.now();
        const since = Date.now();
        // The files this synth wrote are hashed from what it wrote. The check after the plan holds
        // each racy file against its stamp as the plan read it from disk (its answer is about those
        // contents), and reads the ones the plan did not: a file that holds anything else fails it.
        stamps = StampList.of(takeStamps(stateAbs, since, stateWritten));
        const problems: Issue[] = [];
        const reads = new Map<string, string>();
        const again = await planState(model, given, stateContext({ now: new Date(decided), reads }), { wireguard: [], secrets: [] }, problems);
        report = again && problems.length === 0 ? noChangeReport(p.stack, again) : undefined;
        if (!again || !report || !checkStamps(stateAbs, stamps.stamps, since, reads).ok) continue;
        if (canonicalText(again.wireguard?.result.publicKeys ?? {}) !== canonicalText(keys)) continue;
        checked = checkedContents(stateAbs, stamps.stamps, stateWritten);
      }
      const path = entryPath(dir, where, p.stack);
      const previous = matched ?? before.previous.get(p.stack) ?? readEntry(path);
      const horizon = await horizonOf(stateAbs, stamps, decided, previous?.engine === engine && previous.stack === p.stack && previous.stateDir === where.stateDir ? previous : undefined, matched !== undefined, checked);
      const out = writtenStamps(join(where.outDir, p.stack), decidedAt.getTime(), p.files, p.staged?.writtenStats());
      if (!out) continue;
      const entry: Entry = {
        format: FORMAT,
        engine,
        outDir: where.outDir,
        stateDir: where.stateDir,
        stack: p.stack,
        fingerprint: fingerprint(model, given, where),
        // The constructs stand for the model only when it was resolved with the lock now in out/.
        inputs: lockKept ? (prints(p.stack) ?? null) : null,
        decidedAt: decided,
        horizon: Number.isFinite(horizon) ? horizon : null,
        stampedAt: Date.now(),
        out: StampList.of(out),
        state: stamps,
        unchanged: p.files.size,
        report: encode(report),
      };
      writeEntry(dir, path, entry);
      written.add(path);
    }
    if (written.size > 0) pruneEntries(dir, written);
  } catch {
    // Only a cache: the next synth takes the slow path.
  }
}
