// The handlebars templates of `templates/`, compiled once, strict, with one helper for PHP literals.
import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { packageFile } from '../package-root.ts';

/**
 * A PHP single-quoted string literal: inside one only `\\` and `\'` are escapes, so `$`, `"`
 * and newlines stay literal and nothing can end the string early.
 */
export function phpString(value: unknown): string {
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new Error(`the php helper takes a string or number, got ${value === undefined ? 'undefined' : typeof value}`);
  }
  return `'${String(value).replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

const hb = Handlebars.create();
hb.registerHelper('php', (value: unknown) => new hb.SafeString(phpString(value)));

export type Template = (context: object) => string;

/** A compiled template and the top-level context keys it reads (undefined: it cannot tell). */
interface Compiled {
  readonly render: Template;
  readonly inputs: readonly string[] | undefined;
}

const compiled = new Map<string, Compiled>();

function compiledTemplate(file: string): Compiled {
  let t = compiled.get(file);
  if (!t) {
    const source = readFileSync(packageFile(`templates/${file}.hbs`), 'utf8');
    t = { render: hb.compile(source, { noEscape: true, strict: true }), inputs: contextInputs(source) };
    compiled.set(file, t);
  }
  return t;
}

/** `templates/<file>.hbs`, compiled once; strict: a missing value is an error, not ''. */
export function template(file: string): Template {
  return compiledTemplate(file).render;
}

/**
 * Renders templates, each text once per distinct input: a template given contexts that agree on
 * every key it reads (see {@link contextInputs}) gives the same text, so the second time it is
 * the first's string (the same object: hashing and comparing it again is cheap). For one
 * rendering pass: it keeps every text it made.
 */
export class TemplateTexts {
  private readonly texts = new Map<string, string>();

  /** `templates/<file>.hbs` with `context` (a plain object of JSON values), as {@link template} renders it. */
  render(file: string, context: Readonly<Record<string, unknown>>): string {
    const t = compiledTemplate(file);
    if (t.inputs === undefined) return t.render(context);
    // Each input as [value], or [] when absent (strict mode fails on it, and then nothing is kept).
    const key = `${file}\u0000${JSON.stringify(t.inputs.map((k) => (Object.hasOwn(context, k) ? [context[k]] : [])))}`;
    let text = this.texts.get(key);
    if (text === undefined) {
      text = t.render(context);
      this.texts.set(key, text);
    }
    return text;
  }
}


/** Built-in block helpers {@link contextInputs} knows: those giving their block the item as context, and those keeping it. */
const SCOPE_HELPERS = new Set(['each', 'with']);
const SAME_SCOPE_HELPERS = new Set(['if', 'unless']);

interface HbNode {
  readonly type: string;
  readonly [field: string]: unknown;
}
interface HbPath extends HbNode {
  readonly data: boolean;
  readonly depth: number;
  readonly parts: readonly string[];
}

/**
 * The top-level context keys a template can read, found in its syntax tree, or undefined when it
 * cannot tell (`this` of the top-level context, a partial, a decorator, a helper other than
 * `php`, `if`, `unless`, `each`, `with`). Inside `each` and `with` a path is the item's unless it
 * climbs out (`../`, `@root.`); the items themselves come from the block's parameter, a path of
 * the enclosing scope. Over-approximates: a name read from an item may be listed too.
 */
export function contextInputs(source: string): readonly string[] | undefined {
  const heads = new Set<string>();
  let known = true;
  const path = (p: HbPath, scope: number): void => {
    if (p.data) {
      // @root.x reads the top-level context; @index, @key, @first, @last are the block's own.
      if (p.parts[0] === 'root') {
        if (p.parts.length < 2) known = false;
        else heads.add(p.parts[1]!);
      }
      return;
    }
    if (scope - p.depth > 0) return;
    if (p.parts.length === 0) known = false;
    else heads.add(p.parts[0]!);
  };
  const expression = (n: HbNode, scope: number): void => {
    if (n.type === 'PathExpression') path(n as HbPath, scope);
    else if (n.type === 'SubExpression') call(n, scope);
    else if (!/Literal$/.test(n.type)) known = false;
  };
  const call = (n: HbNode, scope: number): string | undefined => {
    const callee = n.path as HbPath;
    const params = (n.params as HbNode[] | undefined) ?? [];
    const pairs = ((n.hash as { pairs?: { value: HbNode }[] } | undefined)?.pairs ?? []).map((p) => p.value);
    const helper = callee.type === 'PathExpression' && !callee.data && callee.depth === 0 && callee.parts.length === 1 ? callee.parts[0]! : undefined;
    if (helper !== undefined && (helper === 'php' || SCOPE_HELPERS.has(helper) || SAME_SCOPE_HELPERS.has(helper))) {
      for (const p of [...params, ...pairs]) expression(p, scope);
      return helper;
    }
    // A name without parameters is a value of the context; anything else would be a helper we do not know.
    if (params.length > 0 || pairs.length > 0 || n.type === 'SubExpression') known = false;
    else expression(callee, scope);
    return undefined;
  };
  const program = (p: HbNode | undefined, scope: number): void => {
    for (const n of (p?.body as HbNode[] | undefined) ?? []) {
      if (n.type === 'ContentStatement' || n.type === 'CommentStatement') continue;
      if (n.type === 'MustacheStatement') call(n, scope);
      else if (n.type === 'BlockStatement') {
        const helper = call(n, scope);
        if (helper === undefined) known = false;
        // each/with give their block a new context (the item); the inverse ({{else}}) keeps the enclosing one.
        program(n.program as HbNode | undefined, helper !== undefined && SCOPE_HELPERS.has(helper) ? scope + 1 : scope);
        program(n.inverse as HbNode | undefined, scope);
      } else known = false;
    }
  };
  program(Handlebars.parse(source) as unknown as HbNode, 0);
  return known ? [...heads].sort() : undefined;
}
