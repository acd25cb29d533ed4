// Where a template comes from: run from the sources, `templates/<file>.hbs` compiled at its first use.
// The build (scripts/build.mjs) replaces this module with one holding every template precompiled
// (src/render/template-compile.ts, precompiledModule), so the command never loads handlebars' compiler.
import { readFileSync } from 'node:fs';
import { packageFile } from '../package-root.ts';
import { compileTemplate } from './template-compile.ts';
import type { Compiled } from './template-php.ts';

/** `templates/<file>.hbs`, compiled. */
export function loadTemplate(file: string): Compiled {
  return compileTemplate(readFileSync(packageFile(`templates/${file}.hbs`), 'utf8'));
}
