// The compose layout written in src/render/yaml.ts against the yaml library's own rendering of the
// same document: byte for byte, by property, over documents full of strings YAML 1.1 reads as
// something else. The library stays the judge of every scalar; the layout only saves its cost.
import fc from 'fast-check';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { composeYaml, jsonLength, layoutYaml, libraryYaml, YamlAlias, YamlAnchor, YamlLazyMap } from '../src/render/yaml.ts';

/** Strings that are not what they look like in YAML 1.1, beside ordinary ones. */
const TRICKY = [
  'on', 'Off', 'y', 'N', 'yes', 'NO', 'true', 'False', 'null', '~', '', ' ', 'a b', ' lead', 'trail ',
  '8080', '22:22', '190:20:30', '0x1F', '0o17', '017', '1_000', '1e3', '.5', '.inf', '-.inf', '.NaN', '2001-12-14', '+1', '-1',
  'a:b', 'a: b', 'a:', ':9001', 'a #b', '#c', '-c', '- x', '--console-address', '*x', '&a', '!tag', '|', '>', '%x', '@x', '`x`', '?', '? x',
  '"quoted"', "it's", 'back\\slash', 'tab\there', 'uni\u00e9', 'emoji \u{1F600}', 'ctrl\u0001', 'dollar $$HOME', '${PODMESH_STATE_DIR:-../../.podmesh}/x',
  '[a]', '{a}', 'a,b', 'a]b', '/tmp', '/run/secrets:mode=0755', 'ghcr.io/ashchan/boards:1.0.0', 'svc-1.bench.local:10.64.0.2', '10.90.0.21',
  'com.docker.network.bridge.name', 'ipv4_address', 'CMD-SHELL', 'no-new-privileges', 'ALL', '<<', '=', 'a=b', 'x-podmesh-remote-hosts', '_x', 'Y2K',
];
const text = fc.oneof(
  fc.constantFrom(...TRICKY),
  fc.string({ unit: fc.constantFrom(...'aZ09 :-_./#"\'\\$&*!|>%@`[]{},?=+~<()\t\u00e9'.split('')), maxLength: 12 }),
  // Near the edge of what is written plain: name characters and the indicators allowed inside.
  fc.string({ unit: fc.constantFrom(...'aeyY0159_./:$(){}=+@%~,[]-'.split('')), minLength: 1, maxLength: 10 }),
);
const scalar = fc.oneof(
  { weight: 6, arbitrary: text },
  { weight: 1, arbitrary: fc.integer({ min: -100000, max: 100000 }) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }) },
  { weight: 1, arbitrary: fc.constantFrom(true, false, null, 0, -0.5, 1.5, 1e21, Number.MAX_SAFE_INTEGER + 2) },
);
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(scalar, { maxLength: 8 }),
    fc.dictionary(text, tie('value'), { maxKeys: 4 }),
  ),
}));
const doc = fc
  .tuple(fc.dictionary(text, value, { minKeys: 1, maxKeys: 5 }), fc.option(fc.array(text, { minLength: 1, maxLength: 12 })), fc.boolean())
  .map(([body, anchored, flowish]) => {
    if (!anchored) return body as Record<string, unknown>;
    // The anchor comes before its aliases, as in a compose file (integer-like keys would come first).
    for (const k of Object.keys(body)) if (k === 'x-podmesh-remote-hosts' || /^(0|[1-9][0-9]*)$/.test(k)) delete body[k];
    // One anchored list and aliases to it in every map one level down, as compose's extra_hosts.
    const items = flowish ? anchored.slice(0, 2) : anchored;
    const withAliases = Object.fromEntries(
      Object.entries(body).map(([k, v]) => [k, v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...v, extra_hosts: new YamlAlias('remote-hosts') } : v]),
    );
    return { 'x-podmesh-remote-hosts': new YamlAnchor('remote-hosts', items), ...withAliases };
  });

/** Whether any key or string of `v` satisfies `test`. */
const anyText = (v: unknown, test: (s: string) => boolean): boolean =>
  typeof v === 'string' ? test(v) : v instanceof YamlAnchor ? v.items.some((i) => anyText(i, test)) : v !== null && typeof v === 'object' ? Object.entries(v).some(([k, w]) => test(k) || anyText(w, test)) : false;
const hasLineBreak = (v: unknown): boolean => anyText(v, (s) => /[\n\r\u0085\u2028\u2029]/.test(s));


describe('compose YAML layout', () => {
  it('writes what the yaml library writes, byte for byte', () => {
    fc.assert(
      fc.property(doc, (d) => {
        const reference = libraryYaml(d);
        const laid = layoutYaml(d);
        // Only a scalar over several lines is left to the library.
        if (!hasLineBreak(d)) expect(laid).toBeDefined();
        if (laid !== undefined) expect(laid).toBe(reference);
        expect(composeYaml(d)).toBe(reference);
        // With values rewritten on the way (compose's `$` escaping), both still agree.
        const escape = (s: string) => s.replaceAll('$', '$$$$');
        const escaped = layoutYaml(d, escape);
        if (escaped !== undefined) expect(escaped).toBe(libraryYaml(d, escape));
      }),
      { numRuns: 1500, seed: 1701 },
    );
  });

  it('writes a map made value by value (YamlLazyMap) as the plain map, each value made once a rendering', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(text, fc.constantFrom('0', '7', '10', '01')), value), { maxLength: 6 }), doc, (entries, d) => {
        let made = 0;
        const lazy = new YamlLazyMap(entries.map(([k, v]) => [k, () => (made++, v)] as const));
        // As Object.fromEntries: a plain object's key order, the last of equal keys winning.
        const plain = Object.fromEntries(entries);
        for (const wrap of [(m: unknown) => ({ ...d, services: m }), (m: unknown) => ({ services: m, after: [m] })]) {
          made = 0;
          const withLazy = composeYaml(wrap(lazy));
          expect(withLazy).toBe(composeYaml(wrap(plain)));
          expect(withLazy).toBe(libraryYaml(wrap(plain)));
        }
        // Laid out here: one maker call per key written.
        made = 0;
        if (layoutYaml({ services: plain }) !== undefined) {
          layoutYaml({ services: lazy });
          expect(made).toBe(Object.keys(plain).length);
        }
      }),
      { numRuns: 400, seed: 1702 },
    );
  });

  it('writes values ending in ":" as the library does (its quoting is taken without asking it)', () => {
    const colon = fc.string({ unit: fc.constantFrom(...'aZ09 :-_./#"\'\\$&*!|>%@`[]{},?=+~<()\t\u00e9'.split('')), maxLength: 10 }).map((s) => `${s}:`);
    fc.assert(
      fc.property(fc.dictionary(text, fc.oneof(colon, fc.array(colon, { maxLength: 3 })), { minKeys: 1, maxKeys: 4 }), (d) => {
        expect(layoutYaml(d)).toBe(libraryYaml(d));
      }),
      { numRuns: 1000, seed: 1703 },
    );
  });

  it('counts a list of scalars as long as its JSON text, without writing it', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('"', '\\', '\u0001', '\ud800', '\udc00', 'é', 'a') }), fc.integer(), fc.double(), fc.constantFrom(true, false, null, -0, Infinity, Number.NaN)), { maxLength: 12 }), (items) => {
        const length = JSON.stringify(items).length;
        // Exact up to the limit; past it, only that it is past it.
        expect(jsonLength(items, 1000)).toBe(length);
        expect(jsonLength(items, 10) > 10).toBe(length > 10);
      }),
      { numRuns: 2000, seed: 1704 },
    );
  });

  it('reads back as the document it was given', () => {
    fc.assert(
      // `<<` is YAML 1.1's merge key, which the library writes plain; compose files have none.
      fc.property(doc.filter((d) => !anyText(d, (s) => s === '<<')), (d) => {
        const plain = (v: unknown): unknown =>
          v instanceof YamlAnchor ? v.items.map(plain) : v instanceof YamlAlias ? (d['x-podmesh-remote-hosts'] as YamlAnchor).items.map(plain) : Array.isArray(v) ? v.map(plain) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, w]) => [k, plain(w)])) : v;
        expect(parse(composeYaml(d), { version: '1.1', merge: false, maxAliasCount: -1 })).toEqual(plain(d));
      }),
      { numRuns: 500, seed: 1702 },
    );
  });

  it('lays out nested lists and maps as the library does', () => {
    const d = {
      name: 'p',
      services: { a: { command: ['sh', '-c', 'exec x'], x: [[1, 2], [{ k: 'v', w: [] }], []], y: [{ a: { b: [{ c: 'd' }] } }], z: {}, long: Array.from({ length: 30 }, (_, i) => `item-${i}`) } },
      'x-list': new YamlAnchor('l', Array.from({ length: 20 }, (_, i) => `host-${i}.mesh.local:10.0.0.${i}`)),
    };
    expect(layoutYaml(d)).toBe(libraryYaml(d));
  });
});

describe('compose files of large generated stacks', () => {
  it('are what the yaml library writes for the same document (parsed and written again)', async () => {
    const { App, resolveStack } = await import('../src/index.ts');
    const { renderStack } = await import('../src/render/stack.ts');
    const { withPublicKeys } = await import('../src/state/wireguard/index.ts');
    const { meshStack, generatedStack } = await import('../bench/stacks.ts');
    const { parseDocument } = await import('yaml');
    const stacks = [generatedStack(120, new App()), meshStack(6, 90, new App())].map((app) => app.node.children[0] as never);
    for (const stack of stacks) {
      const resolved = resolveStack(stack);
      // Made-up WireGuard public keys: the compose files do not depend on them.
      const keys = Object.fromEntries(resolved.hosts.map((h, i) => [h.name, Buffer.alloc(32, i + 1).toString('base64')]));
      const rendered = renderStack(withPublicKeys(resolved, keys), { outDir: 'out' });
      expect(rendered.issues).toEqual([]);
      const files = rendered.files;
      const composeFiles = [...files].filter(([path]) => path.endsWith('compose.yaml'));
      expect(composeFiles.length).toBeGreaterThan(0);
      for (const [path, { content }] of composeFiles) {
        const [header, ...body] = content.split('\n');
        const text = `${body.join('\n')}`;
        // Parsed (anchors, aliases and flow lists kept as written) and written again by the library.
        const doc = parseDocument(text, { version: '1.1', merge: false });
        expect(doc.errors, path).toEqual([]);
        expect(header, path).toMatch(/^# Generated by podmesh/);
        expect(doc.toString({ lineWidth: 0, indent: 2, flowCollectionPadding: false }), path).toBe(text);
      }
    }
  });
});
