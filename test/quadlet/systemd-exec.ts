// A test-side reading of a systemd command line (ExecStart=…) as systemd 252 does it, written from
// systemd's sources so the round-trip tests judge podmesh's escaping against systemd's rules, not
// against podmesh's own:
// - config_parse_exec() (src/core/load-fragment.c): prefixes, a lone `;` separates commands,
//   `\;` is a literal `;`, each word goes through extract_first_word(EXTRACT_UNQUOTE|
//   EXTRACT_CUNESCAPE) and then unit_full_printf() (specifiers, `%%` → `%`);
// - extract_first_word() (src/basic/extract-word.c) and cunescape_one() (src/basic/escape.c);
// - replace_env_argv()/replace_env() (src/basic/env-util.c) at exec time: a word `$NAME` is
//   replaced by the variable's words, `${NAME}` inside a word by its value, `$$` by `$`.

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** Thrown where systemd would reject the line (log_syntax + -EINVAL/-ENOEXEC). */
export class SystemdSyntaxError extends Error {}

function unhex(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function unoct(c: number | undefined): number {
  return c !== undefined && c >= 0x30 && c <= 0x37 ? c - 0x30 : -1;
}

/** cunescape_one(): the escape after a backslash at `b[p]`; returns consumed length and bytes. */
function cunescapeOne(b: Buffer, p: number): { length: number; bytes: number[] } | undefined {
  const c = b[p];
  const simple: Record<number, number> = {
    0x61: 0x07, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x76: 0x0b,
    0x5c: 0x5c, 0x22: 0x22, 0x27: 0x27, 0x73: 0x20,
  };
  if (c === undefined) return undefined;
  const s = simple[c];
  if (s !== undefined) return { length: 1, bytes: [s] };
  const utf8 = (cp: number): number[] => [...Buffer.from(String.fromCodePoint(cp), 'utf8')];
  if (c === 0x78) {
    const a = unhex(b[p + 1]);
    const d = unhex(b[p + 2]);
    if (a < 0 || d < 0 || (a === 0 && d === 0)) return undefined;
    return { length: 3, bytes: [(a << 4) | d] };
  }
  if (c === 0x75 || c === 0x55) {
    const n = c === 0x75 ? 4 : 8;
    let cp = 0;
    for (let i = 1; i <= n; i++) {
      const h = unhex(b[p + i]);
      if (h < 0) return undefined;
      cp = cp * 16 + h;
    }
    if (cp === 0 || cp > 0x10ffff) return undefined;
    return { length: n + 1, bytes: utf8(cp) };
  }
  if (c >= 0x30 && c <= 0x37) {
    const a = unoct(b[p]);
    const d = unoct(b[p + 1]);
    const e = unoct(b[p + 2]);
    if (a < 0 || d < 0 || e < 0 || (a === 0 && d === 0 && e === 0)) return undefined;
    const m = (a << 6) | (d << 3) | e;
    if (m > 255) return undefined;
    return { length: 3, bytes: [m] };
  }
  return undefined;
}

/**
 * extract_first_word(&p, &word, WHITESPACE, EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) over bytes.
 * Returns the word (possibly empty, e.g. `""`) and the position after it, or undefined at the end.
 */
function extractFirstWord(b: Buffer, start: number): { word: Buffer; next: number } | undefined {
  let p = start;
  while (p < b.length && WHITESPACE.has(b[p] ?? 0)) p++;
  if (p >= b.length) return undefined;
  const out: number[] = [];
  let quote = 0;
  while (p < b.length) {
    const c = b[p] ?? 0;
    if (quote !== 0) {
      if (c === quote) {
        quote = 0;
        p++;
      } else if (c === 0x5c) {
        const esc = cunescapeOne(b, p + 1);
        if (!esc) throw new SystemdSyntaxError(`invalid escape at byte ${p}`);
        out.push(...esc.bytes);
        p += 1 + esc.length;
      } else {
        out.push(c);
        p++;
      }
      continue;
    }
    if (c === 0x22 || c === 0x27) {
      quote = c;
      p++;
    } else if (c === 0x5c) {
      if (p + 1 >= b.length) throw new SystemdSyntaxError('trailing backslash');
      const esc = cunescapeOne(b, p + 1);
      if (!esc) throw new SystemdSyntaxError(`invalid escape at byte ${p}`);
      out.push(...esc.bytes);
      p += 1 + esc.length;
    } else if (WHITESPACE.has(c)) {
      while (p < b.length && WHITESPACE.has(b[p] ?? 0)) p++;
      return { word: Buffer.from(out), next: p };
    } else {
      out.push(c);
      p++;
    }
  }
  if (quote !== 0) throw new SystemdSyntaxError('unbalanced quotes');
  return { word: Buffer.from(out), next: p };
}

function decode(word: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(word);
  } catch {
    throw new SystemdSyntaxError(`word is not valid UTF-8: ${word.toString('hex')}`);
  }
}

/** unit_full_printf(): `%%` → `%`, known specifiers from the table, others are an error. */
export function expandSpecifiers(word: string, specifiers: Readonly<Record<string, string>>): string {
  let out = '';
  for (let i = 0; i < word.length; i++) {
    const c = word[i];
    if (c !== '%') {
      out += c;
      continue;
    }
    const next = word[i + 1];
    if (next === undefined) {
      out += '%'; // a stray trailing % stays
    } else if (next === '%') {
      out += '%';
    } else {
      const value = specifiers[next];
      if (value === undefined) throw new SystemdSyntaxError(`unknown specifier %${next} in ${JSON.stringify(word)}`);
      out += value;
    }
    i++;
  }
  return out;
}

/** replace_env() with flags 0 (systemd 252 argv expansion): `${NAME}` and `$$`. */
function replaceEnv(word: string, env: Readonly<Record<string, string>>): string {
  let out = '';
  let state: 'word' | 'curly' | 'variable' = 'word';
  let start = 0;
  for (let e = 0; e < word.length; e++) {
    const c = word[e];
    if (state === 'word') {
      if (c === '$') state = 'curly';
    } else if (state === 'curly') {
      if (c === '{') {
        out += word.slice(start, e - 1);
        start = e - 1;
        state = 'variable';
      } else if (c === '$') {
        out += word.slice(start, e);
        start = e + 1;
        state = 'word';
      } else {
        state = 'word';
      }
    } else if (c === '}') {
      out += env[word.slice(start + 2, e)] ?? '';
      start = e + 1;
      state = 'word';
    }
  }
  return out + word.slice(start);
}

/** replace_env_argv(): whole-word `$NAME` splits into the variable's words (none if unset). */
export function replaceEnvArgv(argv: readonly string[], env: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith('$') && arg[1] !== '{' && arg[1] !== '$') {
      const value = env[arg.slice(1)];
      if (value !== undefined) out.push(...value.split(/[ \t\n\r]+/).filter((w) => w !== ''));
      continue;
    }
    out.push(replaceEnv(arg, env));
  }
  return out;
}

/** Options for {@link parseExecLine}. */
export interface ExecParseOptions {
  /** Specifier values, e.g. `{ t: '/run/user/0', N: 'auth' }`. */
  readonly specifiers: Readonly<Record<string, string>>;
  /** Environment at exec time. */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * The argv systemd executes for one `ExecStart=` value: unit-file parsing, specifiers, then
 * environment expansion. Throws SystemdSyntaxError where systemd would reject the line, and when
 * it holds more than one command (a bare `;`).
 */
export function parseExecLine(value: string, options: ExecParseOptions): string[] {
  const b = Buffer.from(value.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ''), 'utf8');
  const first = extractFirstWord(b, 0);
  if (!first) throw new SystemdSyntaxError('empty command line');
  const firstWord = decode(first.word);
  if (firstWord === ';') throw new SystemdSyntaxError('command line starts with a separator');
  const program = expandSpecifiers(firstWord.replace(/^[-@:+!]+/, ''), options.specifiers);
  const argv = [program];
  let p = first.next;
  while (p < b.length) {
    const c = b[p];
    const after = b[p + 1];
    if (c === 0x3b && (after === undefined || WHITESPACE.has(after))) {
      throw new SystemdSyntaxError(`a bare ";" at byte ${p} separates a second command`);
    }
    if (c === 0x5c && after === 0x3b && (b[p + 2] === undefined || WHITESPACE.has(b[p + 2] ?? 0))) {
      argv.push(';');
      p += 2;
      while (p < b.length && WHITESPACE.has(b[p] ?? 0)) p++;
      continue;
    }
    const next = extractFirstWord(b, p);
    if (!next) break;
    argv.push(expandSpecifiers(decode(next.word), options.specifiers));
    p = next.next;
  }
  return replaceEnvArgv(argv, options.env);
}

/**
 * The words of a unit-file value as config_parse_environ() reads `Environment=`: each word through
 * extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE), then specifiers; no `$` expansion.
 */
export function parseUnitWords(value: string, specifiers: Readonly<Record<string, string>>): string[] {
  const b = Buffer.from(value, 'utf8');
  const words: string[] = [];
  for (let p = 0; ; ) {
    const next = extractFirstWord(b, p);
    if (!next) return words;
    words.push(expandSpecifiers(decode(next.word), specifiers));
    p = next.next;
  }
}
