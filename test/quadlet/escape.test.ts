// Escaping table: what podmesh writes after `Key=` for each kind of value and context.
import { describe, expect, it } from 'vitest';
import {
  escapeAssignment,
  escapeToken,
  escapeValue,
  escapeWord,
  escapeWords,
  type EscapeContext,
} from '../../src/render/quadlet/index.ts';
import { podmeshError } from '../helpers/errors.ts';

const SYSTEMD: EscapeContext = { commandLine: false, quadlet: false, key: 'Description' };
const EXEC: EscapeContext = { commandLine: true, quadlet: false, key: 'ExecStart' };
const QUADLET: EscapeContext = { commandLine: true, quadlet: true, key: 'PodmanArgs' };

const error = podmeshError;

describe('escapeValue (single literal values)', () => {
  it.each([
    // [value, systemd section ([Unit] Description=), Quadlet section (Container HostName=)]
    ['plain', 'plain', 'plain'],
    ['with inner spaces', 'with inner spaces', 'with inner spaces'],
    ['100%', '100%%', '100%%'],
    ['%n %i', '%%n %%i', '%%n %%i'],
    ['$HOME ${X} $$', '$HOME ${X} $$', '$$HOME $${X} $$$$'],
    ['back\\slash', 'back\\slash', 'back\\slash'],
    ['say "hi" there', 'say "hi" there', 'say "hi" there'],
    ["it's", "it's", "it's"],
    ['tab\there', 'tab\there', 'tab\there'],
    ['ünïcødé € 漢字 🎉', 'ünïcødé € 漢字 🎉', 'ünïcødé € 漢字 🎉'],
    ['inner\u00a0nbsp', 'inner\u00a0nbsp', 'inner\u00a0nbsp'],
    ['a;b', 'a;b', 'a;b'],
    ['#not-a-comment', '#not-a-comment', '#not-a-comment'],
  ])('GIVEN %j WHEN escaped THEN systemd gets %j and Quadlet gets %j', (value, systemd, quadlet) => {
    // WHEN / THEN
    expect(escapeValue(value, SYSTEMD)).toBe(systemd);
    expect(escapeValue(value, { ...QUADLET, key: 'HostName' })).toBe(quadlet);
  });

  it.each([
    ['', 'is empty'],
    ['line\nfeed', 'a line feed (U+000A) at index 4'],
    ['nul\u0000byte', 'a NUL byte (U+0000) at index 3'],
    ['cr\rhere', 'a carriage return (U+000D)'],
    ['bell\u0007', 'a control character (U+0007)'],
    ['del\u007f', 'a DEL character (U+007F)'],
    ['c1\u0085', 'a next-line character (U+0085)'],
    ['c1\u009b', 'a control character (U+009B)'],
    [' leading', 'starts or ends with whitespace'],
    ['trailing ', 'starts or ends with whitespace'],
    ['\ttab-led', 'starts or ends with whitespace'],
    ['nbsp\u00a0', 'starts or ends with whitespace'],
    ['ends\\', 'ends with a backslash'],
    ['lone \ud800 surrogate', 'lone surrogate U+D800'],
  ])('GIVEN %j WHEN escaped THEN it is rejected: %s', (value, reason) => {
    // WHEN
    const e = error(() => escapeValue(value, { ...SYSTEMD, path: 'stack/svc' }));
    // THEN
    expect(e.message).toContain('[stack/svc] `Description=` value');
    expect(e.message).toContain(reason);
  });

  it.each([
    ['"quoted"', 'double quote'],
    ['"lead', 'double quote'],
    ['trail"', 'double quote'],
    [';', 'lone ";"'],
  ])('GIVEN %j in a Quadlet section WHEN escaped THEN it is rejected (%s), but fine for systemd', (value, reason) => {
    expect(error(() => escapeValue(value, { ...QUADLET, key: 'HostName' })).message).toContain(reason);
    expect(escapeValue(value, SYSTEMD)).toBe(value);
  });

  it('GIVEN a newline WHEN rejected THEN the fix points at files instead of unit text', () => {
    expect(error(() => escapeValue('a\nb', SYSTEMD)).message).toMatch(/\(EnvironmentFile=, a mounted config file, or a Podman secret\)\.$/);
  });
});

describe('escapeWord (systemd/Quadlet word splitting)', () => {
  it.each([
    // [word, in a systemd command line, in a Quadlet resource section]
    ['simple', 'simple', 'simple'],
    ['--flag=value', '--flag=value', '--flag=value'],
    ['two words', '"two words"', '"two words"'],
    ['say "hi"', '"say \\"hi\\""', '"say \\"hi\\""'],
    ["it's", '"it\'s"', '"it\'s"'],
    ['back\\slash', '"back\\\\slash"', '"back\\\\slash"'],
    ['tab\there', '"tab\\there"', '"tab\\there"'],
    ['100%', '100%%', '100%%'],
    ['$HOME', '$$HOME', '$$HOME'],
    ['${X}$$', '$${X}$$$$', '$${X}$$$$'],
    ['€ 漢字', '"€ 漢字"', '"€ 漢字"'],
    ['🎉', '🎉', '🎉'],
    ['nb\u00a0sp', '"nb\u00a0sp"', '"nb\u00a0sp"'],
    ['a;b', 'a;b', 'a;b'],
    ['\\;', '"\\\\;"', '"\\\\;"'],
  ])('GIVEN %j WHEN escaped THEN %j (systemd) and %j (Quadlet)', (word, exec, quadlet) => {
    expect(escapeWord(word, EXEC)).toBe(exec);
    expect(escapeWord(word, QUADLET)).toBe(quadlet);
  });

  it('GIVEN a lone ";" WHEN escaped THEN systemd gets it quoted, Quadlet refuses it', () => {
    expect(escapeWord(';', EXEC)).toBe('";"');
    expect(error(() => escapeWord(';', QUADLET)).message).toContain('command separator');
  });

  it('GIVEN an empty argument WHEN escaped THEN systemd gets "", Quadlet refuses it', () => {
    expect(escapeWord('', EXEC)).toBe('""');
    expect(error(() => escapeWord('', QUADLET)).message).toContain('Quadlet drops it together with every argument after it');
  });

  it.each([['a\nb'], ['a\u0000b'], ['\u001b[31m']])('GIVEN %j WHEN escaped THEN it is rejected', (word) => {
    expect(error(() => escapeWord(word, QUADLET)).message).toContain('`PodmanArgs=` value');
  });

  it('GIVEN several bad words WHEN joined THEN every problem is reported at once', () => {
    // GIVEN
    const words = ['ok', 'bad\n', 'also\u0000bad'];
    // WHEN
    const e = error(() => escapeWords(words, QUADLET));
    // THEN
    expect(e.issues).toHaveLength(2);
  });

  it('GIVEN good words WHEN joined THEN they are separated by single spaces', () => {
    expect(escapeWords(['/bin/sh', '-c', 'echo "$HOME" 100%'], EXEC)).toBe('/bin/sh -c "echo \\"$$HOME\\" 100%%"');
  });
});

describe('escapeAssignment (NAME=value words)', () => {
  const ENV: EscapeContext = { commandLine: true, quadlet: true, key: 'Environment' };

  it.each([
    ['A', 'b', 'A=b'],
    ['A', '', 'A='],
    ['A', 'x y', '"A=x y"'],
    ['A', 'a=b=c', 'A=a=b=c'],
    ['PASS', 'p%ss$w"rd', '"PASS=p%%ss$$w\\"rd"'],
    ['weird name', 'v', '"weird name=v"'],
  ])('GIVEN %j=%j WHEN escaped THEN %j', (name, value, out) => {
    expect(escapeAssignment(name, value, ENV)).toBe(out);
  });

  it.each([[''], ['A=B']])('GIVEN the name %j WHEN escaped THEN it is rejected', (name) => {
    expect(error(() => escapeAssignment(name, 'v', ENV)).message).toContain('empty or contains "="');
  });

  it('GIVEN systemd [Service] Environment= WHEN the name is not an identifier THEN it is rejected', () => {
    const ctx = { ...ENV, commandLine: false, quadlet: false, strictName: true };
    expect(escapeAssignment('GOOD_1', '$x', ctx)).toBe('GOOD_1=$x');
    expect(error(() => escapeAssignment('1bad', 'v', ctx)).message).toContain('not a variable name');
  });
});

describe('escapeToken (single words of split lists)', () => {
  const CTX: EscapeContext = { commandLine: false, quadlet: false, key: 'After' };

  it.each([
    ['auth.service', 'auth.service'],
    ['sleep@%i.service', 'sleep@%%i.service'],
    ['CAP_NET_ADMIN', 'CAP_NET_ADMIN'],
  ])('GIVEN %j WHEN escaped THEN %j', (token, out) => {
    expect(escapeToken(token, CTX)).toBe(out);
  });

  it.each([
    ['two words', 'whitespace'],
    ['"q"', 'a quote'],
    ['back\\slash', 'a backslash'],
    ['', 'is empty'],
  ])('GIVEN %j WHEN escaped THEN it is rejected (%s)', (token, reason) => {
    expect(error(() => escapeToken(token, CTX)).message).toContain(reason);
  });
});

describe('path specifiers (Volume= sources of rootless units)', () => {
  const VOLUME: EscapeContext = { commandLine: true, quadlet: true, key: 'Volume', pathSpecifier: true };

  it.each([
    ['%h/.config/podmesh/s/pki/services/a:/etc/mtls:ro,Z', '%h/.config/podmesh/s/pki/services/a:/etc/mtls:ro,Z'],
    ['%t/run:/run/x', '%t/run:/run/x'],
    ['%h/100%/$x:/y', '%h/100%%/$$x:/y'],
    ['%x/not-a-path-specifier:/y', '%%x/not-a-path-specifier:/y'],
    ['%h:/y', '%%h:/y'],
    ['/abs/%h/inner:/y', '/abs/%%h/inner:/y'],
  ])('GIVEN %j WHEN escaped THEN only a leading path specifier survives: %j', (value, expected) => {
    expect(escapeValue(value, VOLUME)).toBe(expected);
  });

  it('GIVEN a key without pathSpecifier WHEN escaped THEN %h is literal', () => {
    expect(escapeValue('%h/x', QUADLET)).toBe('%%h/x');
  });
});
