// Round trip through the real Quadlet: random environment names/values, labels, plain values and
// PodmanArgs=/Exec= arguments full of spaces, quotes, %, $, backslashes, unicode and control
// characters are rendered by podmesh, converted by `quadlet -dryrun`, and the generated
// ExecStart= is read back the way systemd reads it (./systemd-exec.ts). Every accepted value must
// come back unchanged; every rejected one must have produced a clear PodmeshError.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { renderUnit, type ContainerSection, type ContainerUnit } from '../../src/render/quadlet/index.ts';
import { parseExecLine } from './systemd-exec.ts';
import { quadletComplaints, quadletDryRun, run } from '../helpers/quadlet.ts';
import { tool } from '../helpers/tools.ts';

const quadlet = { path: tool('quadlet') };
const SEED = Number(process.env.PODMESH_FUZZ_SEED ?? 0x5eed2024);
const COUNT = Number(process.env.PODMESH_FUZZ_COUNT ?? 300);

/** mulberry32: small, seedable, good enough to spread cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Pieces values are built from: ordinary text, every character with a meaning to systemd or
// Quadlet, look-alikes of escapes and variables, unicode, and what must be refused.
const PIECES = [
  'a', 'Z', '7', 'x_y', '-', '.', '/', ':', ',', '=', '@', '#', '*', '?', '!', '&', '|', '<', '(', ')', '[', ']', '{', '}', '~', '`', '^',
  ' ', '  ', '\t', '"', "'", '\\', '\\\\', ';', ' ; ', '%', '%%', '%n', '%t', '$', '$$', '$HOME', '${X}', '$X', '\\n', '\\x41', '\\101', '\\u00e9',
  'é', '€', '漢字', '🎉', '\u00a0', '\u2028', '\u3000', '\ufeff',
  '\n', '\r', '\u0000', '\u0001', '\u001b', '\u007f', '\u0085', '\u009b', '\ud800',
];
const SPECIAL = ['', ';', '\\;', '"', '"x"', "'x'", ' lead', 'trail ', 'end\\', '$HOME', '${PODMAN_SYSTEMD_UNIT}', '%%', '%', '$', '=', 'A=b'];

function randomValue(rand: () => number): string {
  if (rand() < 0.08) return SPECIAL[Math.floor(rand() * SPECIAL.length)] ?? '';
  const n = Math.floor(rand() * 9);
  let s = '';
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(rand() * PIECES.length)] ?? '';
  return s;
}

// The refusal rules, restated independently of the implementation.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/u;
const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const EDGE_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]$/u;
const unwritable = (v: string): boolean => CONTROL.test(v) || LONE.test(v);
const refusedWord = (w: string): boolean => w === '' || w === ';' || unwritable(w);
const refusedPlain = (v: string): boolean =>
  v === '' || v === ';' || unwritable(v) || EDGE_SPACE.test(v) || v.endsWith('\\') || v.startsWith('"') || v.endsWith('"');
const refusedName = (n: string): boolean => n === '' || n.includes('=') || unwritable(n);

type Slot = 'envName' | 'envValue' | 'labelName' | 'labelValue' | 'podmanArg' | 'execArg' | 'hostName' | 'networkAlias';
const SLOTS: readonly Slot[] = ['envName', 'envValue', 'labelName', 'labelValue', 'podmanArg', 'execArg', 'hostName', 'networkAlias'];
const KEY_OF: Record<Slot, string> = {
  envName: 'Environment',
  envValue: 'Environment',
  labelName: 'Label',
  labelValue: 'Label',
  podmanArg: 'PodmanArgs',
  execArg: 'Exec',
  hostName: 'HostName',
  networkAlias: 'NetworkAlias',
};

/** The one-field section a fuzz value is tried in first, to see whether podmesh accepts it. */
function probe(slot: Slot, value: string): Partial<ContainerSection> {
  switch (slot) {
    case 'envName':
      return { environment: { [value]: 'v' } };
    case 'envValue':
      return { environment: { NAME: value } };
    case 'labelName':
      return { label: { [value]: 'v' } };
    case 'labelValue':
      return { label: { 'org.podmesh.k': value } };
    case 'podmanArg':
      return { podmanArgs: [value] };
    case 'execArg':
      return { exec: [value] };
    case 'hostName':
      return { hostName: value };
    case 'networkAlias':
      return { networkAlias: [value] };
  }
}

function refusedByRules(slot: Slot, value: string): boolean {
  switch (slot) {
    case 'envName':
    case 'labelName':
      return refusedName(value);
    case 'envValue':
    case 'labelValue':
      return unwritable(value);
    case 'podmanArg':
    case 'execArg':
      return refusedWord(value);
    case 'hostName':
    case 'networkAlias':
      return refusedPlain(value);
  }
}

const IMAGE = 'registry.example/podmesh/fuzz:1';
const BEGIN = '--podmesh-fuzz-begin';
const END = '--podmesh-fuzz-end';
const EXEC_BEGIN = '--podmesh-exec-begin';

interface Expected {
  hostName?: string;
  networkAlias: string[];
  env: Record<string, string>;
  label: Record<string, string>;
  podmanArgs: string[];
  exec: string[];
}

/** What systemd would run for a generated service, split into the parts the fuzz fed in. */
function readBack(service: string): Expected {
  const line = service.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error(`no ExecStart= in:\n${service}`);
  const argv = parseExecLine(line.slice('ExecStart='.length), {
    specifiers: { t: '/run/user/0', N: 'unit', n: 'unit.service', p: 'unit', i: '' },
    env: { PODMAN_SYSTEMD_UNIT: 'unit.service', HOME: '/root', X: 'expanded' },
  });
  const begin = argv.indexOf(BEGIN);
  const end = argv.indexOf(END);
  const execBegin = argv.indexOf(EXEC_BEGIN);
  expect(begin, line).toBeGreaterThan(0);
  const out: Expected = {
    networkAlias: [],
    env: {},
    label: {},
    podmanArgs: argv.slice(begin + 1, end),
    exec: argv.slice(execBegin + 1),
  };
  expect(argv[end + 1]).toBe(IMAGE);
  const assign = (target: Record<string, string>, word: string): void => {
    const eq = word.indexOf('=');
    target[word.slice(0, eq)] = word.slice(eq + 1);
  };
  for (let i = 0; i < begin; i++) {
    const flag = argv[i];
    const value = argv[i + 1] ?? '';
    if (flag === '--hostname') out.hostName = value;
    else if (flag === '--network-alias') out.networkAlias.push(value);
    else if (flag === '--env') assign(out.env, value);
    else if (flag === '--label') assign(out.label, value);
    else continue;
    i++;
  }
  return out;
}

describe.skipIf(!quadlet.path)('why podmesh refuses or escapes: the raw forms break in quadlet + systemd', () => {
  // Hand-written .container lines that podmesh would never produce, and what systemd then runs.
  const CASES: readonly [name: string, line: string, check: (argv: string[] | Error) => void][] = [
    ['lone-semicolon', 'PodmanArgs=--a ";" --b', (r) => expect(String(r)).toMatch(/bare ";" .* separates a second command/)],
    ['empty-argument', 'PodmanArgs=--a "" --b', (r) => expect(r).toEqual(expect.not.arrayContaining(['--b']))],
    ['plain-semicolon', 'HostName=;', (r) => expect(String(r)).toMatch(/separates a second command/)],
    ['edge-quotes', 'HostName="quoted"', (r) => expect(r).toEqual(expect.arrayContaining(['--hostname', 'quoted']))],
    ['unescaped-dollar', 'Exec=echo $HOME', (r) => expect(r).toEqual(expect.arrayContaining(['echo', '/root']))],
    ['unescaped-braces', 'Environment="A=${X}y"', (r) => expect(r).toEqual(expect.arrayContaining(['--env', 'A=expandedy']))],
    ['unescaped-percent', 'Environment=A=%n', (r) => expect(r).toEqual(expect.arrayContaining(['--env', 'A=unit.service']))],
    ['trailing-backslash', 'HostName=end\\\nLabel=k=v', (r) => expect(r).toEqual(expect.arrayContaining(['--hostname', 'endLabel=k=v']))],
  ];

  it.each(CASES)('GIVEN %s (%j) WHEN converted THEN systemd would not run the literal value', (_name, line, check) => {
    // GIVEN
    const dir = mkdtempSync(join(tmpdir(), 'podmesh-quadlet-raw-'));
    try {
      writeFileSync(join(dir, 'raw.container'), `[Container]\nImage=${IMAGE}\n${line}\n`);
      // WHEN
      const result = quadletDryRun(quadlet.path ?? '', dir);
      const exec = result.services.get('raw.service')?.split('\n').find((l) => l.startsWith('ExecStart=')) ?? '';
      let argv: string[] | Error;
      try {
        argv = parseExecLine(exec.slice('ExecStart='.length), {
          specifiers: { t: '/run/user/0', N: 'raw', n: 'unit.service' },
          env: { HOME: '/root', X: 'expanded' },
        });
      } catch (e) {
        argv = e as Error;
      }
      // THEN
      expect(result.status).toBe(0);
      check(argv);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!quadlet.path)(`round trip through quadlet -dryrun (seed ${SEED})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-quadlet-fuzz-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(`GIVEN ${COUNT} random values WHEN rendered, converted and read back THEN accepted ones are unchanged and refused ones explained`, () => {
    // GIVEN: values spread over the slots; podmesh decides on each alone
    const rand = prng(SEED);
    // Every special value in every slot first, then random ones up to COUNT.
    const cases = SLOTS.flatMap((slot) => SPECIAL.map((value) => ({ slot, value })));
    for (let i = cases.length; i < COUNT; i++) cases.push({ slot: SLOTS[i % SLOTS.length] ?? 'envValue', value: randomValue(rand) });
    const accepted: { slot: Slot; value: string }[] = [];
    let refused = 0;
    for (const [i, { slot, value }] of cases.entries()) {
      const unit: ContainerUnit = { kind: 'container', container: { image: IMAGE, ...probe(slot, value) } };
      let error: unknown;
      try {
        renderUnit(unit, { path: `fuzz/${i}` });
      } catch (e) {
        error = e;
      }
      const context = `seed ${SEED}, value #${i} ${JSON.stringify(value)} as ${slot}`;
      expect(error !== undefined, `${context}: podmesh and the stated rules disagree`).toBe(refusedByRules(slot, value));
      if (error === undefined) {
        accepted.push({ slot, value });
        continue;
      }
      refused++;
      expect(error, context).toBeInstanceOf(PodmeshError);
      const message = (error as PodmeshError).message;
      expect(message, context).toContain(`[fuzz/${i}] [Container] \`${KEY_OF[slot]}=\` value `);
      expect(message, context).toMatch(/(contains|is empty|is an empty argument|is a lone|starts or ends|ends with a backslash|is not valid Unicode|has the name)/);
    }
    expect(accepted.length).toBeGreaterThan(COUNT / 3);
    expect(refused).toBeGreaterThan(COUNT / 10);

    // WHEN: accepted values are batched into container files, about ten values per file
    const files: { name: string; expected: Expected }[] = [];
    for (let f = 0; f * 10 < accepted.length; f++) {
      const batch = accepted.slice(f * 10, f * 10 + 10);
      const expected: Expected = { networkAlias: [], env: {}, label: {}, podmanArgs: [], exec: [] };
      for (const { slot, value } of batch) {
        if (slot === 'envName') expected.env[value] = `name-${f}`;
        if (slot === 'envValue') expected.env[`V${f}_${Object.keys(expected.env).length}`] = value;
        if (slot === 'labelName') expected.label[value] = `name-${f}`;
        if (slot === 'labelValue') expected.label[`org.podmesh.v${Object.keys(expected.label).length}`] = value;
        if (slot === 'podmanArg') expected.podmanArgs.push(value);
        if (slot === 'execArg') expected.exec.push(value);
        if (slot === 'hostName') expected.hostName = value;
        if (slot === 'networkAlias') expected.networkAlias.push(value);
      }
      const container: ContainerSection = {
        image: IMAGE,
        ...(expected.hostName === undefined ? {} : { hostName: expected.hostName }),
        networkAlias: expected.networkAlias,
        environment: expected.env,
        label: expected.label,
        podmanArgs: [BEGIN, ...expected.podmanArgs, END],
        exec: [EXEC_BEGIN, ...expected.exec],
      };
      const name = `fuzz${String(f).padStart(3, '0')}`;
      writeFileSync(join(dir, `${name}.container`), renderUnit({ kind: 'container', container }));
      files.push({ name, expected });
    }
    const result = quadletDryRun(quadlet.path ?? '', dir);

    // THEN: Quadlet took every file silently, and systemd would run exactly the values given
    expect(result.status, result.stderr).toBe(0);
    expect(quadletComplaints(result.stderr)).toEqual([]);
    for (const { name, expected } of files) {
      const service = result.services.get(`${name}.service`);
      expect(service, `${name}.service missing`).toBeDefined();
      const back = readBack(service ?? '');
      expect(back, `seed ${SEED}, ${name}.container`).toEqual(expected);
    }
  });
});

const analyze = { path: tool('systemd-analyze') };

describe.skipIf(!analyze.path)(`plain systemd ExecStart= round trip (seed ${SEED})`, () => {
  it('GIVEN random arguments WHEN written into a .service THEN systemd-analyze accepts it and systemd would run them unchanged', () => {
    // GIVEN: arguments as a plain unit takes them (a lone ";" and "" are fine outside Quadlet)
    const rand = prng(SEED ^ 0x51);
    const args: string[] = [...SPECIAL];
    while (args.length < 120) args.push(randomValue(rand));
    const accepted = args.filter((a) => !unwritable(a));
    const dir = mkdtempSync(join(tmpdir(), 'podmesh-exec-fuzz-'));
    try {
      // WHEN
      const text = renderUnit({ kind: 'service', service: { type: 'oneshot', execStart: [['/usr/bin/true', ...accepted]] } });
      writeFileSync(join(dir, 'fuzz.service'), text);
      const verify = run(analyze.path ?? '', ['verify', '--generators=false', join(dir, 'fuzz.service')]);
      const line = text.split('\n').find((l) => l.startsWith('ExecStart=')) ?? '';
      const argv = parseExecLine(line.slice('ExecStart='.length), { specifiers: {}, env: { HOME: '/root', X: 'expanded' } });
      // THEN
      expect(verify.stderr).toBe('');
      expect(verify.status).toBe(0);
      expect(argv).toEqual(['/usr/bin/true', ...accepted]);
      for (const bad of args.filter((a) => unwritable(a))) {
        expect(() => renderUnit({ kind: 'service', service: { execStart: [['/usr/bin/true', bad]] } })).toThrow(PodmeshError);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
