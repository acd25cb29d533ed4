// A tiny TypeScript writer for the generated stack file: values as data, printed the way the
// repository's stacks are written (2 spaces, single quotes, short objects on one line).

/** A reference to a variable of the generated file. */
export class Ref {
  constructor(public readonly name: string) {}
}

/** An object literal whose keys keep the order they are given in. */
export class Obj {
  constructor(public readonly entries: ReadonlyArray<readonly [string, Expr]>) {}
}

/** A value the writer prints. */
export type Expr = string | number | boolean | Ref | Obj | readonly Expr[];

/** Lines longer than this are broken up. */
const WIDTH = 120;

/** A string literal in single quotes. */
export function quote(s: string): string {
  let out = "'";
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f || code === 0x2028 || code === 0x2029) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}'`;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** An object key: bare when it is an identifier, else quoted. */
function key(k: string): string {
  return IDENT.test(k) ? k : quote(k);
}

/** The value on one line. */
function inline(e: Expr): string {
  if (typeof e === 'string') return quote(e);
  if (typeof e === 'number' || typeof e === 'boolean') return String(e);
  if (e instanceof Ref) return e.name;
  if (e instanceof Obj) return e.entries.length === 0 ? '{}' : `{ ${e.entries.map(([k, v]) => `${key(k)}: ${inline(v)}`).join(', ')} }`;
  return `[${e.map(inline).join(', ')}]`;
}

/**
 * The value as it is written after `prefix` on a line indented by `indent` spaces: on one line when
 * it fits, else one element or entry per line.
 */
export function print(e: Expr, indent: number, prefixLength = 0): string {
  const flat = inline(e);
  if (indent + prefixLength + flat.length <= WIDTH || !(e instanceof Obj || Array.isArray(e))) return flat;
  const pad = ' '.repeat(indent + 2);
  if (e instanceof Obj) {
    const lines = e.entries.map(([k, v]) => `${pad}${key(k)}: ${print(v, indent + 2, key(k).length + 2)},`);
    return `{\n${lines.join('\n')}\n${' '.repeat(indent)}}`;
  }
  const lines = (e as readonly Expr[]).map((v) => `${pad}${print(v, indent + 2)},`);
  return `[\n${lines.join('\n')}\n${' '.repeat(indent)}]`;
}

const RESERVED = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for function if import in ' +
    'instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package ' +
    'private protected public await async of undefined app stack').split(' '),
);

/** A camelCase identifier for a compose name (`my-web` → `myWeb`), never a reserved word. */
export function identifier(name: string, suffix: string, taken: Set<string>, instead = 'Service'): string {
  const words = name.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
  let base = words.map((w, i) => (i === 0 ? w.charAt(0).toLowerCase() + w.slice(1) : w.charAt(0).toUpperCase() + w.slice(1))).join('') + suffix;
  if (base === '' || /^\d/.test(base)) base = `_${base}`;
  if (RESERVED.has(base)) base = `${base}${instead}`;
  let id = base;
  for (let n = 2; RESERVED.has(id) || taken.has(id); n++) id = `${base}${n}`;
  taken.add(id);
  return id;
}
