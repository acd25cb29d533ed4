// What the compiled templates share, in either form (compiled at run time, src/render/template-compile.ts,
// or precompiled by the build): the `php` helper and the shape of a compiled template.

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

/** The part of a handlebars environment the helper needs (the full one and the runtime's both have it). */
interface Environment {
  registerHelper(name: string, fn: (value: unknown) => unknown): void;
  SafeString: new (text: string) => unknown;
}

/** Registers `{{php value}}` on a handlebars environment; returns it. */
export function registerPhp<E extends Environment>(env: E): E {
  env.registerHelper('php', (value: unknown) => new env.SafeString(phpString(value)));
  return env;
}

export type Template = (context: object) => string;

/** A compiled template and the top-level context keys it reads (undefined: it cannot tell). */
export interface Compiled {
  readonly render: Template;
  readonly inputs: readonly string[] | undefined;
}
