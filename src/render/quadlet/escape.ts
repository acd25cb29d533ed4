// Quoting for systemd unit files, in one place. Each function takes a literal value and returns
// the text to put after `Key=`, such that systemd (and Quadlet, for Quadlet files) reads back
// exactly the literal; a value that cannot be written that way throws a PodmeshError naming the
// key. The rules come from systemd's config_parse_exec()/extract_first_word()/cunescape_one() and
// from Quadlet's pkg/systemd/parser (unitfile.go, split.go) and quadlet.go; test/quadlet/
// roundtrip.test.ts runs the real quadlet 5.4.2 and reads its ExecStart= back with a port of
// systemd 252's parser, and validators.test.ts has systemd-analyze verify the result.
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';

/** What reads a value back, which decides how it must be escaped. */
export interface EscapeContext {
  /**
   * The value ends up in a command line (`ExecStart=` and friends, or any key of a Quadlet
   * `[Container]`/`[Network]`/`[Volume]`/`[Pod]` section, which Quadlet copies into
   * `ExecStart=`), where systemd expands `$NAME` and `${NAME}`: every `$` is doubled.
   */
  readonly commandLine: boolean;
  /**
   * Quadlet reads the value (resource sections and `[Quadlet]`): it strips double quotes around
   * single values, drops an empty argument and everything after it, and writes a `;` argument
   * unquoted into `ExecStart=`, where systemd takes it for a command separator.
   */
  readonly quadlet: boolean;
  /**
   * Key named in error messages, e.g. `Environment`.
   * @default - the message names no key
   */
  readonly key?: string;
  /**
   * Keep a leading systemd path specifier (`%h/`, `%t/`, `%S/`, `%C/`, `%L/`, `%E/`) for systemd
   * to expand; the rest of the value stays literal.
   * @default false
   */
  readonly pathSpecifier?: boolean;
  /**
   * Construct path the error is reported at.
   * @default ''
   */
  readonly path?: string;
}

// Go's unicode.IsSpace (Quadlet trims lines and values with it) plus U+FEFF; systemd itself only
// strips " \t\n\r", so a value must avoid the wider set at its ends to mean the same to both.
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/u;
const SPACE_START = new RegExp(`^${SPACE.source}`, 'u');
const SPACE_END = new RegExp(`${SPACE.source}$`, 'u');
// C0 controls except TAB, DEL, C1 controls: no unit-file syntax carries them safely.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/u;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const CONTROL_NAMES: Readonly<Record<number, string>> = {
  0x00: 'a NUL byte',
  0x0a: 'a line feed',
  0x0d: 'a carriage return',
  0x0b: 'a vertical tab',
  0x0c: 'a form feed',
  0x1b: 'an escape character',
  0x7f: 'a DEL character',
  0x85: 'a next-line character',
};

function hex(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The value as shown in messages: JSON-quoted (control characters visible), shortened. */
export function showValue(value: string): string {
  const shown = JSON.stringify(value);
  return shown.length > 72 ? `${shown.slice(0, 60)}…" (${value.length} chars)` : shown;
}

function fail(value: string, problem: string, fix: string, ctx: EscapeContext): never {
  const key = ctx.key ? `\`${ctx.key}=\` value ` : 'value ';
  throw PodmeshError.at(ctx.path ?? '', `${key}${showValue(value)} ${problem}. ${fix}.`);
}

/** Rejects what no unit-file syntax can carry: control characters and broken UTF-16. */
function checkCharacters(value: string, ctx: EscapeContext): void {
  const control = CONTROL.exec(value);
  if (control) {
    const code = control[0].charCodeAt(0);
    const name = CONTROL_NAMES[code] ?? 'a control character';
    const fix =
      code === 0x0a || code === 0x0d
        ? 'Unit files are line-based and Quadlet re-splits values, so multi-line data must go into a file (EnvironmentFile=, a mounted config file, or a Podman secret)'
        : 'Remove it; unit files cannot carry control characters';
    fail(value, `contains ${name} (${hex(code)}) at index ${control.index}`, fix, ctx);
  }
  const lone = LONE_SURROGATE.exec(value);
  if (lone) {
    fail(
      value,
      `is not valid Unicode: lone surrogate ${hex(lone[0].charCodeAt(0))} at index ${lone.index}`,
      'Fix how the string is built (a UTF-16 pair was split)',
      ctx,
    );
  }
}

function expand(text: string, ctx: EscapeContext): string {
  // systemd resolves specifiers in (nearly) every value: `%%` is a literal `%`. In command lines
  // it also expands `$NAME`/`${NAME}` when the command runs: `$$` is a literal `$`.
  const pct = text.replaceAll('%', '%%');
  return ctx.commandLine ? pct.replaceAll('$', '$$$$') : pct;
}

/**
 * Escapes a single literal value, written as-is after `Key=` (`Description=`, `Image=`,
 * `HostName=`, `PublishPort=`…). Doubles `%` (and `$` in command-line contexts). Rejects values
 * that systemd or Quadlet would change on the way back: empty (an empty assignment resets the
 * key), whitespace at either end (trimmed), a trailing backslash (line continuation), a double
 * quote at either end in Quadlet sections (Quadlet's Lookup strips it), a lone `;` in Quadlet
 * resource sections (re-emitted unquoted into `ExecStart=`), control characters.
 * @throws PodmeshError naming the key
 * @see https://www.freedesktop.org/software/systemd/man/latest/systemd.unit.html#Specifiers
 */
export function escapeValue(value: string, ctx: EscapeContext): string {
  // Fast path (most values: names, addresses, paths): nothing to check, quote or double.
  if (PLAIN.test(value)) return value;
  if (value.length === 0) {
    fail(value, 'is empty, and an empty assignment resets the key in systemd', 'Leave the field unset instead', ctx);
  }
  checkCharacters(value, ctx);
  if (SPACE_START.test(value) || SPACE_END.test(value)) {
    fail(value, 'starts or ends with whitespace, which systemd and Quadlet strip', 'Trim the value', ctx);
  }
  if (value.endsWith('\\')) {
    fail(value, 'ends with a backslash, which continues the line in unit files', 'Remove the trailing backslash', ctx);
  }
  if (ctx.quadlet && ctx.commandLine && value === ';') {
    fail(
      value,
      'is a lone ";", which Quadlet copies unquoted into ExecStart=, where systemd reads it as a command separator',
      'Use another value',
      ctx,
    );
  }
  if (ctx.quadlet && (value.startsWith('"') || value.endsWith('"'))) {
    fail(
      value,
      'starts or ends with a double quote, which Quadlet strips from single values',
      'Remove the quote',
      ctx,
    );
  }
  const specifier = ctx.pathSpecifier ? PATH_SPECIFIER.exec(value)?.[0] : undefined;
  return specifier ? specifier + expand(value.slice(specifier.length), ctx) : expand(value, ctx);
}

/** systemd specifiers that expand to a directory: home, runtime, state, cache, logs, config. */
const PATH_SPECIFIER = /^%[htSCLE](?=\/)/;

/**
 * Text every context writes as-is: no whitespace, quote, backslash, `%`, `$`, `;` or control
 * character, and no `"` at either end. Checked first so that large units stay cheap.
 */
const PLAIN = /^[A-Za-z0-9_.:\/=,@+-][A-Za-z0-9_.:\/=,@+\-[\]{}()*?!#&^~<>|]*$/;

/** True when a word must be quoted to come back as one word with the same text. */
function needsQuotes(word: string): boolean {
  return word === ';' || /["'\\]/.test(word) || SPACE.test(word);
}

/**
 * Escapes one word of a whitespace-separated list that systemd or Quadlet splits like a command
 * line (`ExecStart=`, `Exec=`, `PodmanArgs=`, `Environment=`, `Label=`…). Words with whitespace,
 * quotes, backslashes (or a lone `;`) are wrapped in double quotes with `\\`, `\"` and `\t`
 * escapes, the only C escapes both systemd and Quadlet decode alike; `%` (and `$` in command
 * lines) are doubled. Non-ASCII text is written as UTF-8, never as `\x`/octal escapes (Quadlet
 * before 5.4 mis-decoded octal escapes).
 * @throws PodmeshError naming the key
 * @see https://www.freedesktop.org/software/systemd/man/latest/systemd.syntax.html#Quoting
 */
export function escapeWord(word: string, ctx: EscapeContext): string {
  if (PLAIN.test(word)) return word;
  if (word.length === 0 && ctx.quadlet) {
    fail(word, 'is an empty argument, and Quadlet drops it together with every argument after it', 'Leave it out', ctx);
  }
  checkCharacters(word, ctx);
  if (word === ';' && ctx.quadlet) {
    fail(
      word,
      'is a lone ";", which Quadlet copies unquoted into ExecStart=, where systemd reads it as a command separator',
      'Pass it another way (e.g. inside a shell string)',
      ctx,
    );
  }
  if (!needsQuotes(word) && word.length > 0) return expand(word, ctx);
  const inner = word.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\t', '\\t');
  return `"${expand(inner, ctx)}"`;
}

/**
 * Escapes the words of one command line or argument list and joins them with spaces.
 * @throws PodmeshError naming the key (all problems of the line at once)
 */
export function escapeWords(words: readonly string[], ctx: EscapeContext): string {
  const issues: Issue[] = [];
  const out: string[] = [];
  for (const word of words) {
    try {
      // A word may start with a path specifier (pathSpecifier contexts) while the rest needs no
      // quoting: systemd unquotes only at a word's start.
      const specifier = ctx.pathSpecifier ? PATH_SPECIFIER.exec(word)?.[0] : undefined;
      const rest = specifier ? escapeWord(word.slice(specifier.length), ctx) : undefined;
      if (specifier && rest !== undefined && /^["']/.test(rest)) {
        fail(word, 'starts with a path specifier and needs quoting after it, which systemd would not unquote', 'Use a path without spaces, quotes or backslashes', ctx);
      }
      out.push(specifier ? specifier + rest : escapeWord(word, ctx));
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.push(...e.issues);
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  return out.join(' ');
}

/**
 * Escapes a value that must stay a single bare token: unit names (`After=`, `WantedBy=`) and
 * Quadlet keys split without unescaping (`AddCapability=`, `Sysctl=`, `LogOpt=`). No whitespace,
 * quotes or backslashes.
 * @throws PodmeshError naming the key
 */
export function escapeToken(token: string, ctx: EscapeContext): string {
  if (token.length === 0) {
    fail(token, 'is empty, and an empty assignment resets the key in systemd', 'Leave it out', ctx);
  }
  checkCharacters(token, ctx);
  const bad = /["'\\]/.exec(token) ?? SPACE.exec(token);
  if (bad) {
    const what = bad[0] === '\\' ? 'a backslash' : bad[0] === '"' || bad[0] === "'" ? 'a quote' : 'whitespace';
    fail(
      token,
      `contains ${what} at index ${bad.index}, but this key is split into words and takes single tokens`,
      'Use one entry per token, without quotes or backslashes',
      ctx,
    );
  }
  return expand(token, ctx);
}

/**
 * Escapes a `NAME=value` assignment as one word (`Environment=`, `Label=`, `Options=`). Quadlet
 * cuts at the first `=`, so the name must not contain one. With `strictName`, the name must be a
 * shell-style identifier (systemd's own `[Service]` `Environment=`).
 * @throws PodmeshError naming the key
 */
export function escapeAssignment(
  name: string,
  value: string,
  ctx: EscapeContext & { readonly strictName?: boolean },
): string {
  const word = `${name}=${value}`;
  if (name.length === 0 || name.includes('=')) {
    fail(word, `has the name ${showValue(name)}, which is empty or contains "="`, 'Use a non-empty name without "="', ctx);
  }
  if (ctx.strictName && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    fail(word, `has the name ${showValue(name)}, which is not a variable name`, 'Use letters, digits and "_", not starting with a digit', ctx);
  }
  return escapeWord(word, ctx);
}
