// YAML 1.1 in compose's layout: block maps and lists, short lists of scalars on one line, one
// anchored list shared by aliases. Two writers with one output: the yaml library's (the
// reference), and a layout written here that asks the library for every scalar it cannot
// prove plain. A 1,000-service compose file costs the library ~0.5 s in node objects alone; laid
// out here it costs a few milliseconds. test/yaml-layout.test.ts checks, by property, that both
// write the same bytes.
import { Document, isScalar, isSeq, visit, type Node } from 'yaml';
import { progress } from './progress.ts';

/** How compose files are stringified: no folding, two spaces, `[a, b]`. */
const TO_STRING = { lineWidth: 0, indent: 2, flowCollectionPadding: false } as const;

/** A list written once, under its key, with `&name`; {@link YamlAlias} values refer to it. */
export class YamlAnchor {
  constructor(
    readonly name: string,
    readonly items: readonly unknown[],
  ) {}
}

/** `*name`: the list of the {@link YamlAnchor} of that name. */
export class YamlAlias {
  constructor(readonly name: string) {}
}

/**
 * A map whose values are made one at a time, as the layout writes them, and dropped once written:
 * a compose file's thousand services then die young instead of living, all of them, until the
 * whole file is written (old garbage for the collector, fresh memory for the heap). The same map
 * as `Object.fromEntries(entries)` with every value made: its keys in a plain object's order, the
 * last of equal keys winning. Each maker is called once per rendering (twice when the library
 * writes the document instead), so it must give equal values each time.
 */
export class YamlLazyMap {
  readonly keys: readonly string[];
  private readonly makers: ReadonlyMap<string, () => unknown>;

  constructor(entries: readonly (readonly [string, () => unknown])[]) {
    this.makers = new Map(entries);
    // A plain object's key order: integer-like keys first, ascending.
    this.keys = Object.keys(Object.fromEntries(entries.map(([k]) => [k, 0])));
  }

  value(key: string): unknown {
    return this.makers.get(key)!();
  }

  /** Every value made: the plain map. */
  plain(): Record<string, unknown> {
    return Object.fromEntries(this.keys.map((k) => [k, this.value(k)]));
  }
}

/** A string that go-yaml and PyYAML both read as itself when it is written plain inside `[…]`. */
const PLAIN_IN_FLOW = /^[A-Za-z0-9_/][A-Za-z0-9_./=+-]*$/;

/** Whether a list is written on one line: scalars only, at most 100 characters as JSON. */
function isFlow(items: readonly unknown[]): boolean {
  return items.every((i) => i === null || typeof i !== 'object') && jsonLength(items, 100) <= 100;
}

/** Nothing JSON escapes in a string: no quote, backslash, control character or surrogate. */
const JSON_AS_IS = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/**
 * `JSON.stringify(items).length` for a list of scalars without building the text (a compose file
 * asks for every list), or some number above `limit` once the length passes it.
 */
export function jsonLength(items: readonly unknown[], limit: number): number {
  let n = items.length > 0 ? items.length + 1 : 2;
  for (const i of items) {
    n += typeof i === 'string' && JSON_AS_IS.test(i) ? i.length + 2 : typeof i === 'number' && Number.isSafeInteger(i) && !Object.is(i, -0) ? String(i).length : JSON.stringify(i ?? null)?.length ?? 4;
    if (n > limit) return n;
  }
  return n;
}

/**
 * The document as YAML 1.1 (PyYAML, which podman-compose reads with, takes `22:22` for a number
 * and `on` for a boolean). Values: strings, finite numbers, booleans, null, arrays, plain objects
 * (their own key order), {@link YamlAnchor} and {@link YamlAlias}.
 */
export function composeYaml(doc: Readonly<Record<string, unknown>>, text: (s: string) => string = same): string {
  return layoutYaml(doc, text) ?? libraryYaml(doc, text);
}

const same = (s: string): string => s;

/**
 * The yaml library's rendering: the reference, and the way for what {@link layoutYaml} declines.
 * `text` rewrites every string value (not keys) before it is written: compose's `$` escaping.
 */
export function libraryYaml(doc: Readonly<Record<string, unknown>>, text: (s: string) => string = same): string {
  const anchors = new Map<string, readonly (string | number)[]>();
  const aliases: { path: readonly (string | number)[]; name: string }[] = [];
  const plain = (value: unknown, path: readonly (string | number)[]): unknown => {
    if (value instanceof YamlAnchor) {
      anchors.set(value.name, path);
      return value.items.map((v, i) => plain(v, [...path, i]));
    }
    if (value instanceof YamlAlias) {
      aliases.push({ path, name: value.name });
      return null;
    }
    if (value instanceof YamlLazyMap) return plain(value.plain(), path);
    if (Array.isArray(value)) return value.map((v, i) => plain(v, [...path, i]));
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v, [...path, k])]));
    return typeof value === 'string' ? text(value) : value;
  };
  const yaml = new Document(plain(doc, []), { version: '1.1' });
  for (const [name, path] of anchors) (yaml.getIn(path, true) as Node).anchor = name;
  for (const { path, name } of aliases) yaml.setIn(path, yaml.createAlias(yaml.getIn(anchors.get(name)!, true) as never));
  visit(yaml, {
    Seq(_, seq) {
      if (!isSeq(seq) || !seq.items.every(isScalar) || JSON.stringify(seq.toJSON()).length > 100) return;
      seq.flow = true;
      // Plain scalars in flow context are parsed differently by go-yaml and PyYAML: quote all but the plainest.
      for (const item of seq.items) {
        if (typeof item.value === 'string' && !PLAIN_IN_FLOW.test(item.value)) item.type = 'QUOTE_DOUBLE';
      }
    },
  });
  return yaml.toString(TO_STRING);
}

/** Thrown inside the layout when the library must write the whole document. */
class Decline extends Error {}

/**
 * The YAML 1.1 types a plain scalar can resolve to besides a string (booleans, null, integers,
 * floats, sexagesimals, timestamps, merge keys), as the library's own schema recognises them: a
 * string one of these matches must be quoted.
 */
const OTHER_TYPES: readonly RegExp[] = (() => {
  const schema = new Document(null, { version: '1.1' }).schema as unknown as { tags: readonly { default?: unknown; tag: string; test?: RegExp }[]; compat?: readonly { default?: unknown; tag: string; test?: RegExp }[] | null };
  return [...schema.tags, ...(schema.compat ?? [])].flatMap((t) => (t.default && t.tag !== 'tag:yaml.org,2002:str' && t.test ? [t.test] : []));
})();
/** All of them as one alternation (when none has flags): one regular expression run per string instead of fourteen. */
const OTHER_TYPE: RegExp | undefined = OTHER_TYPES.every((t) => t.flags === '') ? new RegExp(OTHER_TYPES.map((t) => `(?:${t.source})`).join('|')) : undefined;
const otherType = (s: string): boolean => (OTHER_TYPE ? OTHER_TYPE.test(s) : OTHER_TYPES.some((t) => t.test(s)));

/**
 * Strings the library writes as they are, by its own rules (plainString): no space, quote,
 * comment, newline or control character; no indicator first (`-?:,[]{}#&*!|>'"%@` and the
 * backquote), no `:` last, no document marker; flow indicators only outside `[…]`. Anything else
 * is the library's to write.
 */
const PLAIN_VALUE = /^[A-Za-z0-9_./$(=+~][A-Za-z0-9_./:$(){}=+@%~,[\]-]*$/;
const PLAIN_KEY = /^[A-Za-z0-9_./$(=+~][A-Za-z0-9_./:$()=+@%~-]*$/;
const surely = (re: RegExp, s: string): boolean => re.test(s) && !s.endsWith(':') && !s.startsWith('...') && !otherType(s);

const scalars = new Map<string, string>();

/** How the library writes one scalar in `context`; memoised; Decline when it takes more than a line. */
function libraryScalar(value: unknown, context: 'key' | 'nested key' | 'value' | 'flow'): string {
  const memo = `${context}\u0000${typeof value}\u0000${String(value)}`;
  const known = scalars.get(memo);
  if (known !== undefined) return known;
  let text: string;
  if (context === 'key') {
    // At the start of a line a key like `---` or `...` would end the document: the library quotes it there only.
    text = new Document({ [String(value)]: 0 }, { version: '1.1' }).toString(TO_STRING);
    if (!text.endsWith(': 0\n')) throw new Decline();
    text = text.slice(0, -': 0\n'.length);
  } else if (context === 'nested key') {
    text = new Document({ k: { [String(value)]: 0 } }, { version: '1.1' }).toString(TO_STRING);
    if (!text.startsWith('k:\n  ') || !text.endsWith(': 0\n')) throw new Decline();
    text = text.slice('k:\n  '.length, -': 0\n'.length);
  } else if (context === 'value') {
    text = new Document({ k: value }, { version: '1.1' }).toString(TO_STRING);
    if (!text.startsWith('k: ') || !text.endsWith('\n')) throw new Decline();
    text = text.slice('k: '.length, -1);
  } else {
    const yaml = new Document([value], { version: '1.1' });
    const seq = yaml.contents as unknown as { flow: boolean; items: { value: unknown; type?: string }[] };
    seq.flow = true;
    if (typeof value === 'string' && !PLAIN_IN_FLOW.test(value)) seq.items[0]!.type = 'QUOTE_DOUBLE';
    text = yaml.toString(TO_STRING);
    if (!text.startsWith('[') || !text.endsWith(']\n')) throw new Decline();
    text = text.slice(1, -2);
  }
  if (text.includes('\n')) throw new Decline();
  scalars.set(memo, text);
  return text;
}

/** An integer the library writes as JavaScript does (not -0, which it writes `-0`). */
const plainInteger = (v: unknown): v is number => Number.isSafeInteger(v) && !Object.is(v, -0);
/** Printable ASCII without `"` or `\\`: its double-quoted form is itself in quotes. */
const QUOTES_AS_IS = /^[ !#-[\]-~]*$/;
const keyText = (k: string, top = false): string => (surely(PLAIN_KEY, k) ? k : libraryScalar(k, top ? 'key' : 'nested key'));
/**
 * A value ending in `:` is never plain (plainString); without a `"` the library double-quotes it,
 * and printable ASCII without `"` or `\\` is itself inside those quotes (`REDIS_PREFIX: "svc-1:"`,
 * one per service: each would cost a Document).
 */
const quotedColon = (v: string): boolean => v.endsWith(':') && QUOTES_AS_IS.test(v);
const valueText = (v: unknown): string =>
  typeof v === 'string' && surely(PLAIN_VALUE, v) ? v : plainInteger(v) ? String(v) : typeof v === 'string' && quotedColon(v) ? `"${v}"` : libraryScalar(v, 'value');
const flowItem = (v: unknown): string => {
  if (plainInteger(v)) return String(v);
  if (typeof v !== 'string') return libraryScalar(v, 'flow');
  // In `[…]` all but the plainest strings are double-quoted (see PLAIN_IN_FLOW).
  if (PLAIN_IN_FLOW.test(v)) return otherType(v) || v.startsWith('...') ? libraryScalar(v, 'flow') : v;
  // (`<<`, YAML 1.1's merge key, the library leaves plain even here: it is the library's to write.)
  return QUOTES_AS_IS.test(v) && !otherType(v) ? `"${v}"` : libraryScalar(v, 'flow');
};

/** `s` flattened: V8 copies a rope into one string when it is converted to a number. */
const flat = (s: string): string => (Number(s), s);

/** `depth` levels of two-space indentation, each made once. */
const INDENTS: string[] = [''];
const indentOf = (depth: number): string => (INDENTS[depth] ??= `${indentOf(depth - 1)}  `);

/** The layout written here, or undefined where only the library knows (a scalar over lines). */
export function layoutYaml(doc: Readonly<Record<string, unknown>>, text: (s: string) => string = same): string | undefined {
  // The text, appended piece by piece (V8 keeps it as a rope, flattened once when it is used:
  // several times faster than joining an array of half a million pieces), and `key:` at each depth made once.
  let out = '';
  const leads: Map<string, string>[] = [];
  /** `k:` indented by `depth` levels. */
  const keyLead = (k: string, depth: number): string => {
    const byKey = (leads[depth] ??= new Map());
    let lead = byKey.get(k);
    if (lead === undefined) byKey.set(k, (lead = `${indentOf(depth)}${keyText(k, depth === 0)}:`));
    return lead;
  };
  const value = (v: unknown) => valueText(typeof v === 'string' ? text(v) : v);
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof YamlAnchor) && !(v instanceof YamlAlias) && !(v instanceof YamlLazyMap);
  /**
   * The entry `k: v` of a map whose lines are indented by `depth` levels. Each entry of a top-level
   * map (a service of compose's `services:`) is a step of the rendering, and its text is flattened
   * when it is done: the rope then holds one string per service, not every piece of it.
   */
  const entry = (k: string, v: unknown, depth: number): void => {
    if (depth !== 1) return node(keyLead(k, depth), v, depth + 1, false);
    progress();
    const before = out;
    out = '';
    node(keyLead(k, depth), v, depth + 1, false);
    out = before + flat(out);
  };
  /** `v` after `lead` (a key's `k:`, or a list item's `-` when `inList`), nested lines indented by `depth` levels. */
  const node = (lead: string, v: unknown, depth: number, inList: boolean): void => {
    if (v instanceof YamlAlias) return void (out += `${lead} *${v.name}\n`);
    if (v instanceof YamlAnchor) return list(`${lead} &${v.name}`, v.items, depth, false);
    if (v instanceof YamlLazyMap) {
      if (v.keys.length === 0 || inList) return node(lead, v.plain(), depth, inList);
      out += `${lead}\n`;
      for (const k of v.keys) entry(k, v.value(k), depth);
      return;
    }
    if (Array.isArray(v)) return list(lead, v, depth, inList);
    if (isMap(v)) {
      const keys = Object.keys(v);
      if (keys.length === 0) return void (out += `${lead} {}\n`);
      if (inList) {
        // `- k: v`, the rest of the map under the first key.
        const k0 = keys[0]!;
        node(`${lead} ${keyText(k0)}:`, v[k0], depth + 1, false);
        for (let i = 1; i < keys.length; i++) node(keyLead(keys[i]!, depth), v[keys[i]!], depth + 1, false);
        return;
      }
      out += `${lead}\n`;
      for (const k of keys) entry(k, v[k], depth);
      return;
    }
    out += `${lead} ${value(v)}\n`;
  };
  const list = (lead: string, items: readonly unknown[], depth: number, inList: boolean): void => {
    if (items.every((i) => i === null || typeof i !== 'object')) {
      const scalars = items.map((i) => (typeof i === 'string' ? text(i) : i));
      if (isFlow(scalars)) {
        out += `${lead} [`;
        scalars.forEach((x, i) => void (out += i > 0 ? `, ${flowItem(x)}` : flowItem(x)));
        return void (out += ']\n');
      }
    }
    // A list in a map goes under its key, indented; a list in a list starts on the dash's line.
    const dash = `${indentOf(depth)}-`;
    if (inList) {
      const [first, ...rest] = items;
      node(`${lead} -`, first, depth + 1, true);
      for (const item of rest) node(dash, item, depth + 1, true);
      return;
    }
    out += `${lead}\n`;
    for (const item of items) node(dash, item, depth + 1, true);
  };
  if (Object.keys(doc).length === 0) return undefined;
  try {
    for (const k of Object.keys(doc)) node(keyLead(k, 0), doc[k], 1, false);
  } catch (e) {
    if (e instanceof Decline) return undefined;
    throw e;
  }
  return out;
}
