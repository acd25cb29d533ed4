// Templates rendered once per distinct input (src/render/templates.ts): which context keys a
// template reads, found in its syntax tree, and the texts TemplateTexts gives against a fresh
// rendering of every Hyperf template; the build's precompiled templates against those compiled at
// run time.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contextInputs } from '../src/render/template-compile.ts';
import { template, TemplateTexts } from '../src/render/templates.ts';

describe('contextInputs', () => {
  it('lists the top-level keys a template reads, in and out of blocks', () => {
    expect(contextInputs('{{header}} {{php mtls.name}} {{#if listeners}}{{#each listeners}}{{name}}{{php tls.certFile}}{{../service}}{{@root.dnsName}}{{@index}}{{/each}}{{else}}{{crlFile}}{{/if}}')).toEqual([
      'crlFile',
      'dnsName',
      'header',
      'listeners',
      'mtls',
      'service',
    ]);
    // {{else}} of each runs in the enclosing context; a nested each's parameter is the item's.
    expect(contextInputs('{{#each calls}}{{#each urls}}{{this}}{{../../top}}{{/each}}{{else}}{{empty}}{{/each}}')).toEqual(['calls', 'empty', 'top']);
    expect(contextInputs('{{#with client}}{{caFile}}{{/with}}')).toEqual(['client']);
  });

  it('cannot tell for the whole context, partials, sections and helpers it does not know', () => {
    for (const source of ['{{this}}', '{{php this}}', '{{@root}}', '{{> part}}', '{{#calls}}{{name}}{{/calls}}', '{{lookup calls 0}}', '{{upper name}}', '{{php (concat a b)}}']) {
      expect(contextInputs(source), source).toBeUndefined();
    }
  });
});

const HYPERF = [
  ...readdirSync(new URL('../templates/hyperf/', import.meta.url)).filter((f) => f.endsWith('.hbs')),
  ...readdirSync(new URL('../templates/hyperf/Podmesh/', import.meta.url)).map((f) => `Podmesh/${f}`),
].map((f) => `hyperf/${f.slice(0, -'.hbs'.length)}`);

/** A context as renderHyperf makes one, with every value drawn. */
const word = fc.constantFrom('a', 'b', "o'k", 'x\\y', '$z');
const call = fc.record({ name: word, url: word });
const context = fc.record({
  header: word,
  service: word,
  dnsName: word,
  mtls: fc.record({ name: word, port: fc.integer({ min: 1, max: 3 }) }),
  serverTls: fc.record({ certFile: word, keyFile: word, clientCaFile: word }),
  publicTls: fc.record({ certFile: word, keyFile: word }),
  listeners: fc.array(fc.record({ name: word, portName: word, port: fc.integer({ min: 1, max: 3 }), tls: fc.boolean() }), { maxLength: 2 }),
  client: fc.record({ caFile: word, certFile: word, keyFile: word, timeout: fc.integer({ min: 1, max: 3 }) }),
  calls: fc.array(call, { maxLength: 2 }),
  allowedClients: fc.array(word, { maxLength: 2 }),
  spiffeId: word,
  allowedSpiffeIds: fc.array(word, { maxLength: 2 }),
  crlFile: word,
  mesh: fc.array(fc.record({ name: word, origin: word }), { maxLength: 2 }),
});

describe('TemplateTexts', () => {
  it('finds what every Hyperf template reads', () => {
    expect(HYPERF.length).toBe(8);
    for (const file of HYPERF) expect(contextInputs(readFileText(file)), file).toBeDefined();
  });

  it('finds that the files a host\'s Hyperf services share read none of a service\'s values', () => {
    // renderHyperf renders them once per host from these keys alone (strict: another would fail).
    // Only the middleware list, rendered once per mTLS server name, reads `mtls` (that name); the
    // classes and config files are one per host whatever the name, and do not.
    expect(contextInputs(readFileText('hyperf/middlewares.php'))).toEqual(['header', 'mtls']);
    for (const file of ['hyperf/Podmesh/MtlsMiddleware.php', 'hyperf/Podmesh/MtlsClientFactory.php', 'hyperf/Podmesh/Crl.php', 'hyperf/server.php', 'hyperf/mtls_client.php', 'hyperf/mtls_policy.php']) {
      expect(['client', 'crlFile', 'header', 'publicTls', 'serverTls'], file).toEqual(expect.arrayContaining([...contextInputs(readFileText(file))!]));
    }
    expect(contextInputs(readFileText('hyperf/Podmesh/Policy.php'))).toEqual(['allowedClients', 'allowedSpiffeIds', 'calls', 'dnsName', 'header', 'listeners', 'mesh', 'mtls', 'service', 'spiffeId']);
  });

  it('gives every Hyperf template the text a fresh rendering gives, for contexts that differ in one key', () => {
    fc.assert(
      fc.property(context, context, fc.constantFrom('header', 'service', 'dnsName', 'mtls', 'serverTls', 'publicTls', 'listeners', 'client', 'calls', 'allowedClients', 'spiffeId', 'allowedSpiffeIds', 'crlFile', 'mesh'), (a, b, key) => {
        // The second context is the first with one key drawn anew: a template reading that key must not get the first text.
        const second = { ...a, [key]: b[key as keyof typeof b] };
        const texts = new TemplateTexts();
        for (const file of HYPERF) {
          expect(texts.render(file, a)).toBe(template(file)(a));
          expect(texts.render(file, second)).toBe(template(file)(second));
        }
      }),
      { numRuns: 300, seed: 1717 },
    );
  });

  it('renders a text once for contexts that agree on what the template reads', () => {
    const texts = new TemplateTexts();
    const ctx = fc.sample(context, { numRuns: 1, seed: 1718 })[0]!;
    const crl = texts.render('hyperf/Podmesh/Crl.php', ctx);
    // Crl.php reads only the header: another service's context gives the very same string.
    expect(texts.render('hyperf/Podmesh/Crl.php', { ...ctx, service: `${ctx.service}-other` })).toBe(crl);
    expect(texts.render('hyperf/Podmesh/Crl.php', { ...ctx, header: `${ctx.header} other` })).not.toBe(crl);
  });
});

function readFileText(file: string): string {
  return readFileSync(new URL(`../templates/${file}.hbs`, import.meta.url), 'utf8');
}

describe('the precompiled templates of the build', () => {
  it('render what the templates compiled at run time render, read the same keys, and are as strict', async () => {
    const { build } = await import('esbuild');
    // @ts-expect-error: a plain JavaScript module without types
    const { templatesPlugin } = (await import('../scripts/build.mjs')) as { templatesPlugin: (b: typeof build) => Promise<{ plugin: Plugin; templates: string[] }> };
    const { plugin, templates } = await templatesPlugin(build);
    expect(templates).toEqual(expect.arrayContaining([...HYPERF, 'openssl/openssl.cnf'].map((f) => `templates/${f}.hbs`)));
    // template-source.ts as dist/ holds it: plain JavaScript that imports handlebars' runtime only,
    // beside node_modules so that Node resolves it.
    const cache = fileURLToPath(new URL('../node_modules/.cache/', import.meta.url));
    mkdirSync(cache, { recursive: true });
    const dir = mkdtempSync(join(cache, 'precompiled-'));
    try {
      const out = join(dir, 'templates.mjs');
      await build({ entryPoints: [fileURLToPath(new URL('../src/render/template-source.ts', import.meta.url))], bundle: true, format: 'esm', platform: 'node', packages: 'external', outfile: out, plugins: [plugin], logLevel: 'silent' });
      const text = readFileSync(out, 'utf8');
      expect(text).toContain('handlebars/runtime.js');
      expect(text).not.toMatch(/from ["']handlebars["']/);
      const built = (await import(pathToFileURL(out).href)) as { loadTemplate: (file: string) => { render: (c: object) => string; inputs: readonly string[] | undefined } };
      for (const file of [...HYPERF, 'openssl/openssl.cnf']) {
        expect(built.loadTemplate(file).inputs, file).toEqual(contextInputs(readFileText(file)));
        expect(() => built.loadTemplate(file).render({}), file).toThrow();
      }
      expect(() => built.loadTemplate('hyperf/none')).toThrow(/templates\/hyperf\/none\.hbs/);
      fc.assert(
        fc.property(context, (ctx) => {
          for (const file of HYPERF) expect(built.loadTemplate(file).render(ctx), file).toBe(template(file)(ctx));
        }),
        { numRuns: 200, seed: 1719 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
