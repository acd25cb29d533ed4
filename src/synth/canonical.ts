// A stable serialization of plain data: the text the fast path fingerprints (src/synth/fastpath.ts:
// the resolved model; src/synth/inputs.ts: the constructs' fields).
import { createHash } from 'node:crypto';
import { textSha256, utf8Pieces } from '../io/text-bytes.ts';

/** A value that is not plain data: it cannot be fingerprinted, so the slow path runs. */
export class NotPlain extends Error {}

/** The text of an object that stands for something by name (a construct by its path), or undefined for data. */
export type Refer = (v: object, path: string) => string | undefined;

/**
 * Appends a canonical text of `v` to `out`: objects with sorted keys (undefined properties kept,
 * so `{a: undefined}` differs from `{}`), arrays (holes refused), strings JSON-quoted, numbers with
 * -0, NaN and ±Infinity told apart, Dates by their time. An object or array met again (the model
 * shares them: a network in every service of it) is `#r<n>`, n its place in the order objects were
 * first written, so the text stays as large as the data and still tells every model apart.
 * Anything else (functions, symbols, bigints, Maps, Sets, class instances, cycles) throws NotPlain,
 * but for what `refer` names (it may throw NotPlain itself).
 */
export function canonical(v: unknown, out: string[], stack: Set<object>, path: string, seen: Map<object, number>, refer?: Refer): void {
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'number':
      out.push(Object.is(v, -0) ? '-0' : Number.isFinite(v) ? String(v) : `#${String(v)}`);
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'undefined':
      out.push('#u');
      return;
    case 'object':
      break;
    default:
      throw new NotPlain(`${path} is a ${typeof v}`);
  }
  if (v === null) {
    out.push('null');
    return;
  }
  const named = refer?.(v, path);
  if (named !== undefined) {
    out.push(named);
    return;
  }
  if (stack.has(v)) throw new NotPlain(`${path} refers to itself`);
  if (v instanceof Date) {
    out.push(`#d${v.getTime()}`);
    return;
  }
  const again = seen.get(v);
  if (again !== undefined) {
    out.push(`#r${again}`);
    return;
  }
  seen.set(v, seen.size);
  stack.add(v);
  if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) throw new NotPlain(`${path}[${i}] is a hole`);
      if (i > 0) out.push(',');
      canonical(v[i], out, stack, `${path}[${i}]`, seen, refer);
    }
    out.push(']');
  } else {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) throw new NotPlain(`${path} is a ${(v as object).constructor?.name ?? 'non-plain object'}`);
    if (Object.getOwnPropertySymbols(v).length > 0) throw new NotPlain(`${path} has symbol keys`);
    out.push('{');
    const keys = Object.keys(v).sort();
    for (const [i, k] of keys.entries()) {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(k), ':');
      canonical((v as Record<string, unknown>)[k], out, stack, `${path}.${k}`, seen, refer);
    }
    out.push('}');
  }
  stack.delete(v);
}

/** Depth past which {@link plainKind} leaves the value to {@link canonical} (a cycle, or data nested deeper than a model is). */
const PLAIN_DEPTH = 64;
/** Thrown by plainKind past PLAIN_DEPTH. */
class TooDeep extends Error {}

/**
 * Checks that `v` is plain data (as {@link canonical} defines it) and says which text tells it
 * apart: 'json' when JSON.stringify loses nothing of it (no undefined, Date, -0, NaN, ±Infinity),
 * 'tagged' when those are there (JSON.stringify with them tagged by strings starting with NUL),
 * 'canonical' when a string of its own starts with NUL. Throws NotPlain (without where: canonical
 * tells that) or, deeper than PLAIN_DEPTH, TooDeep: one pass with no bookkeeping per object, as
 * the model is walked on every synth.
 */
function plainKind(v: unknown, depth: number): 0 | 1 | 2 {
  switch (typeof v) {
    case 'string':
      return v.charCodeAt(0) === 0 ? 2 : 0;
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0) ? 0 : 1;
    case 'boolean':
      return 0;
    case 'undefined':
      return 1;
    case 'object':
      break;
    default:
      throw new NotPlain();
  }
  if (v === null) return 0;
  if (v instanceof Date) return 1;
  if (depth > PLAIN_DEPTH) throw new TooDeep();
  let kind: 0 | 1 | 2 = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (!(i in v)) throw new NotPlain();
      const k = plainKind(v[i], depth + 1);
      if (k > kind) kind = k;
    }
  } else {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) throw new NotPlain();
    if (Object.getOwnPropertySymbols(v).length > 0) throw new NotPlain();
    for (const key in v) {
      if (!Object.hasOwn(v, key)) throw new NotPlain();
      const k = key.charCodeAt(0) === 0 ? 2 : plainKind((v as Record<string, unknown>)[key], depth + 1);
      if (k > kind) kind = k;
    }
  }
  return kind;
}

/**
 * A text of plain data that tells every two different values apart (throws NotPlain, with where,
 * for anything else). Mostly JSON.stringify's (native, fast; key order is part of it, and resolution
 * builds the model in a fixed order), prefixed by which of three encodings it is.
 */
export function canonicalText(v: unknown): string {
  let kind: 0 | 1 | 2;
  try {
    kind = plainKind(v, 0);
  } catch (e) {
    if (!(e instanceof NotPlain || e instanceof TooDeep)) throw e;
    // canonical decides: it tells where a value is not plain (a cycle too), or encodes deep data.
    const out: string[] = [];
    canonical(v, out, new Set(), '$', new Map());
    if (e instanceof NotPlain) throw new NotPlain('$ is not plain data');
    return `c${out.join('')}`;
  }
  if (kind === 0) return `j${JSON.stringify(v)}`;
  if (kind === 1) {
    return `t${JSON.stringify(v, function (this: Record<string, unknown>, k: string, value: unknown) {
      const raw = this[k];
      if (raw === undefined) return '\u0000u';
      if (raw instanceof Date) return `\u0000d${raw.getTime()}`;
      if (typeof raw === 'number' && (!Number.isFinite(raw) || Object.is(raw, -0))) return `\u0000n${Object.is(raw, -0) ? '-0' : String(raw)}`;
      return value;
    })}`;
  }
  const out: string[] = [];
  canonical(v, out, new Set(), '$', new Map());
  return `c${out.join('')}`;
}

/** How many levels of objects and arrays {@link canonicalDigest} writes itself before JSON.stringify writes the rest. */
const DIGEST_LEVELS = 4;
/** Text given to a {@link TextHash} goes to the hash once it adds up to this many characters. */
const HASH_CHUNK = 1 << 16;

/**
 * A sha256 of text given in pieces, as of their concatenation's UTF-8: the pieces go to the hash
 * in chunks of about 64 KiB, each through {@link utf8Pieces} (an ASCII chunk as its bytes in one
 * reused buffer). A text of megabytes hashed whole is a string of that size and its UTF-8 in a
 * buffer of that size, fresh memory that costs about 3 ms a MB to touch on these machines (a page
 * fault each 4 KiB); in chunks, the same few hundred KiB serve throughout.
 */
export class TextHash {
  private readonly hash = createHash('sha256');
  private pending = '';

  add(text: string): void {
    this.pending += text;
    if (this.pending.length >= HASH_CHUNK) this.flush();
  }

  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }

  private flush(): void {
    utf8Pieces(this.pending, (bytes) => this.hash.update(bytes));
    this.pending = '';
  }
}

/**
 * The sha256 (hex) of {@link canonicalText}(v), without that text when it is JSON: the hash takes
 * it in pieces of about 64 KiB, JSON.stringify's of each value below the top levels. A 1,000-service
 * model's text is 6 MB: built whole, it is a string of that size and, for the hash, its UTF-8 in a
 * buffer of that size, both fresh memory, which costs about 3 ms a MB to touch on these machines
 * (a page fault each 4 KiB); in pieces, the same few hundred KiB serve throughout. About 10 % less
 * time than the whole text (fresh processes, the 1,000-service model: 100 against 112 ms).
 */
export function canonicalDigest(v: unknown): string {
  let kind: 0 | 1 | 2 | undefined;
  try {
    kind = plainKind(v, 0);
  } catch (e) {
    if (!(e instanceof NotPlain || e instanceof TooDeep)) throw e;
  }
  if (kind !== 0) return textSha256(canonicalText(v));
  const h = new TextHash();
  h.add('j');
  const put = (text: string): void => h.add(text);
  const json = (x: unknown, levels: number): void => {
    if (levels === 0 || x === null || typeof x !== 'object') return put(JSON.stringify(x));
    if (Array.isArray(x)) {
      put('[');
      for (let i = 0; i < x.length; i++) {
        if (i > 0) put(',');
        json(x[i], levels - 1);
      }
      return put(']');
    }
    put('{');
    let first = true;
    for (const k of Object.keys(x)) {
      put(first ? `${JSON.stringify(k)}:` : `,${JSON.stringify(k)}:`);
      first = false;
      json((x as Record<string, unknown>)[k], levels - 1);
    }
    put('}');
  };
  json(v, DIGEST_LEVELS);
  return h.digest();
}
