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

const compiled = new Map<string, Template>();

/** `templates/<file>.hbs`, compiled once; strict: a missing value is an error, not ''. */
export function template(file: string): Template {
  let t = compiled.get(file);
  if (!t) {
    const source = readFileSync(packageFile(`templates/${file}.hbs`), 'utf8');
    t = hb.compile(source, { noEscape: true, strict: true });
    compiled.set(file, t);
  }
  return t;
}
