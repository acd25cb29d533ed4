// The handlebars templates of `templates/`, each compiled once (or precompiled by the build: see
// src/render/template-source.ts), strict, with one helper for PHP literals.
import { loadTemplate } from './template-source.ts';
import type { Compiled, Template } from './template-php.ts';

export { phpString, type Template } from './template-php.ts';

const compiled = new Map<string, Compiled>();

function compiledTemplate(file: string): Compiled {
  let t = compiled.get(file);
  if (!t) {
    t = loadTemplate(file);
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
 * every key it reads (see contextInputs in src/render/template-compile.ts) gives the same text, so the second time it is
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


