// The one writer of unit files: typed units in, exact text out. Order comes from the field tables
// in units.ts; all escaping is delegated to escape.ts; every bad value of a unit is reported at
// once in a single PodmeshError.
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import {
  escapeAssignment,
  escapeToken,
  escapeValue,
  escapeWord,
  escapeWords,
  showValue,
  type EscapeContext,
} from './escape.ts';
import {
  UNIT_LAYOUT,
  type AnyUnit,
  type FieldSpec,
  type NetworkAttachment,
  type SectionLayout,
  type UnitKind,
} from './units.ts';

/** One `Key=value` line; the value is already escaped. */
export type RawEntry = readonly [key: string, value: string];

/** A section of already-escaped entries, in output order. */
export interface RawSection {
  /** Section name without brackets, e.g. `Container`. */
  readonly name: string;
  /** Entries in output order. */
  readonly entries: readonly RawEntry[];
  /**
   * Write the section header even without entries.
   * @default false
   */
  readonly always?: boolean;
}

/** Options of {@link renderUnit}. */
export interface RenderOptions {
  /**
   * Construct path that errors are reported at, e.g. `ashchan-dev/auth`.
   * @default ''
   */
  readonly path?: string;
  /**
   * Comment lines written as `# …` before the first section (e.g. the generated-file header).
   * @default - none
   */
  readonly comments?: readonly string[];
}

const KEY_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
const SECTION_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;
/** Keys already found valid: a large unit repeats a few keys a thousand times. */
const checkedKeys = new Set<string>();

/**
 * Writes sections as a unit file: `[Name]` then `Key=value` lines, one blank line between
 * sections, a trailing newline, no trailing spaces. Sections without entries are skipped unless
 * `always`. Values must already be escaped (see escape.ts); a raw line break, or a key or
 * section name that is not an identifier, throws, since it would corrupt the file.
 * @throws PodmeshError
 * @see https://www.freedesktop.org/software/systemd/man/latest/systemd.syntax.html
 */
export function writeUnitFile(sections: readonly RawSection[], comments: readonly string[] = []): string {
  // The pieces of the whole text, joined once: one flat string, no per-line concatenations.
  const parts: string[] = [];
  for (const c of comments) parts.push(c.length > 0 ? `# ${checkComment(c)}\n` : '#\n');
  let first = true;
  for (const s of sections) {
    if (s.entries.length === 0 && !s.always) continue;
    if (!SECTION_NAME.test(s.name)) throw PodmeshError.at('', `Invalid unit-file section name ${showValue(s.name)}.`);
    // One blank line between blocks (the comments are one block).
    if (!first || comments.length > 0) parts.push('\n');
    first = false;
    parts.push('[', s.name, ']\n');
    for (const [key, value] of s.entries) {
      if (!checkedKeys.has(key)) {
        if (!KEY_NAME.test(key)) throw PodmeshError.at('', `Invalid unit-file key ${showValue(key)} in [${s.name}].`);
        checkedKeys.add(key);
      }
      if (/[\r\n]/.test(value) || value !== value.trim()) {
        throw PodmeshError.at('', `Unescaped value ${showValue(value)} for \`${key}=\` in [${s.name}] (a podmesh bug).`);
      }
      parts.push(key, '=', value, '\n');
    }
  }
  return parts.join('');
}

function checkComment(comment: string): string {
  if (/[\u0000-\u001f\u007f]/.test(comment) || comment.endsWith('\\') || comment !== comment.trimEnd()) {
    throw PodmeshError.at('', `Comment ${showValue(comment)} cannot be written into a unit file.`);
  }
  return comment;
}

/** Formats one `Network=` entry: `NAME` or `NAME:ip=…,ip6=…,mac=…,interface_name=…,alias=…`. */
function formatNetwork(attachment: NetworkAttachment, ctx: EscapeContext): string {
  if (typeof attachment === 'string') return attachment;
  const opts: string[] = [];
  const add = (name: string, value: string | undefined): void => {
    if (value === undefined) return;
    if (value.length === 0 || /[,\s]/.test(value)) {
      throw PodmeshError.at(
        ctx.path ?? '',
        `\`${ctx.key ?? 'Network'}=\` option ${name}=${showValue(value)} for network ${showValue(attachment.network)} is empty or contains a comma or whitespace, which separate network options. Fix the ${name} value.`,
      );
    }
    opts.push(`${name}=${value}`);
  };
  add('ip', attachment.ip);
  add('ip6', attachment.ip6);
  add('mac', attachment.mac);
  add('interface_name', attachment.interfaceName);
  for (const alias of attachment.aliases ?? []) add('alias', alias);
  if (attachment.network.includes(':')) {
    throw PodmeshError.at(
      ctx.path ?? '',
      `\`${ctx.key ?? 'Network'}=\` network name ${showValue(attachment.network)} contains ":", which starts the options. Use the bare network name.`,
    );
  }
  return opts.length > 0 ? `${attachment.network}:${opts.join(',')}` : attachment.network;
}

function checkNoSpace(value: string, spec: FieldSpec, ctx: EscapeContext): void {
  if (spec.noSpace && /\s/u.test(value)) {
    throw PodmeshError.at(
      ctx.path ?? '',
      `\`${spec.key}=\` value ${showValue(value)} contains whitespace, but ${spec.noSpace}. Use a path without whitespace.`,
    );
  }
}

function isEmpty(value: unknown): boolean {
  if (value === undefined) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length === 0;
  return false;
}

/** Sorted by UTF-16 code units: deterministic, independent of insertion order. */
function sortedEntries(record: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Maps every item, collecting the problems of all items into one PodmeshError. */
function each<T>(items: readonly T[], fn: (item: T) => RawEntry): RawEntry[] {
  const issues: Issue[] = [];
  const out: RawEntry[] = [];
  for (const item of items) {
    try {
      out.push(fn(item));
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.push(...e.issues);
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  return out;
}

// The escaped entries of `plain[]` lists by list identity and escaping context: a host's units share
// one list of remote host entries (a 50-host mesh: ~1,000 entries in each of ~1,000 units). Only
// lists that escaped without error are kept, so every unit still reports its own problems.
const plainLists = new WeakMap<readonly string[], Map<string, readonly RawEntry[]>>();

/** Lists shorter than this are escaped each time: remembering them costs more than it saves. */
const MEMO_MIN_ITEMS = 32;

function plainListEntries(spec: FieldSpec, strings: readonly string[], ctx: EscapeContext): readonly RawEntry[] {
  if (strings.length < MEMO_MIN_ITEMS) return plainList(spec, strings, ctx);
  const memoKey = `${spec.key}\0${ctx.commandLine}\0${ctx.quadlet}\0${spec.pathSpecifier === true}\0${spec.noSpace ?? ''}`;
  const hit = plainLists.get(strings)?.get(memoKey);
  if (hit) return hit;
  const out = plainList(spec, strings, ctx);
  let byCtx = plainLists.get(strings);
  if (!byCtx) plainLists.set(strings, (byCtx = new Map()));
  byCtx.set(memoKey, out);
  return out;
}

function plainList(spec: FieldSpec, strings: readonly string[], ctx: EscapeContext): RawEntry[] {
  const escapeCtx = spec.pathSpecifier ? { ...ctx, pathSpecifier: true } : ctx;
  return each(strings, (v) => {
    checkNoSpace(v, spec, ctx);
    return [spec.key, escapeValue(v, escapeCtx)];
  });
}

/** Escapes one field into entries, or throws PodmeshError. */
function fieldEntries(spec: FieldSpec, value: unknown, ctx: EscapeContext): readonly RawEntry[] {
  const k = spec.key;
  const strings = value as readonly string[];
  switch (spec.kind) {
    case 'plain':
      checkNoSpace(value as string, spec, ctx);
      return [[k, escapeValue(value as string, ctx)]];
    case 'plain[]':
      return plainListEntries(spec, strings, ctx);
    case 'token':
      return [[k, escapeToken(value as string, ctx)]];
    case 'token[]':
      return each(strings, (v) => [k, escapeToken(v, ctx)]);
    case 'argv':
      return [[k, escapeWords(strings, spec.pathSpecifier ? { ...ctx, pathSpecifier: true } : ctx)]];
    case 'word[]':
      return each(strings, (v) => {
        checkNoSpace(v, spec, ctx);
        // A leading path specifier stays one word only while the rest needs no quoting (noSpace).
        const specifier = spec.pathSpecifier ? /^%[htSCLE](?=\/)/.exec(v)?.[0] : undefined;
        return [k, specifier ? specifier + escapeWord(v.slice(specifier.length), ctx) : escapeWord(v, ctx)];
      });
    case 'keyval':
    case 'env': {
      const assignment = { ...ctx, strictName: spec.kind === 'env' };
      return each(sortedEntries(value as Readonly<Record<string, string>>), ([name, v]) => [k, escapeAssignment(name, v, assignment)]);
    }
    case 'bool':
      return [[k, value ? 'true' : 'false']];
    case 'int': {
      const n = value as number;
      if (!Number.isSafeInteger(n) || n < 0) {
        throw PodmeshError.at(ctx.path ?? '', `\`${k}=\` value ${String(n)} is not a non-negative integer. Use a whole number.`);
      }
      return [[k, String(n)]];
    }
    case 'notify':
      return [[k, value === 'healthy' ? 'healthy' : value ? 'true' : 'false']];
    case 'networks':
      return each(value as readonly NetworkAttachment[], (n) => [k, escapeValue(formatNetwork(n, ctx), ctx)]);
    case 'exec[]':
      return each(value as readonly (readonly string[])[], (argv) => [k, escapeCommand(argv, ctx)]);
  }
}

/** One systemd command line: the program, then its arguments. */
function escapeCommand(argv: readonly string[], ctx: EscapeContext): string {
  const [program] = argv;
  if (program === undefined || program.length === 0) {
    throw PodmeshError.at(ctx.path ?? '', `\`${ctx.key ?? 'Exec'}=\` has an empty command line. Give the program as the first element.`);
  }
  if (program.includes('$')) {
    throw PodmeshError.at(
      ctx.path ?? '',
      `\`${ctx.key ?? 'Exec'}=\` program ${showValue(program)} contains "$", which systemd does not expand in the executable path. Use a literal path.`,
    );
  }
  return escapeWords(argv, { ...ctx, commandLine: true });
}

/** Escapes every field of one section, collecting problems into `issues`. */
/** Each layout's fields in table order, listed once (the tables are constants). */
const fieldLists = new WeakMap<SectionLayout, readonly (readonly [string, FieldSpec])[]>();

function fieldList(layout: SectionLayout): readonly (readonly [string, FieldSpec])[] {
  let list = fieldLists.get(layout);
  if (!list) fieldLists.set(layout, (list = Object.entries(layout.fields)));
  return list;
}

function renderSection(layout: SectionLayout, section: object | undefined, path: string, issues: Issue[]): RawSection {
  const entries: RawEntry[] = [];
  if (section == null) return { name: layout.name, entries, always: layout.always };
  const values = section as Readonly<Record<string, unknown>>;
  for (const [prop, spec] of fieldList(layout)) {
    const value = values[prop];
    if (isEmpty(value)) continue;
    const ctx: EscapeContext = {
      commandLine: layout.commandLine || spec.kind === 'exec[]',
      quadlet: layout.quadlet,
      key: spec.key,
      path,
    };
    try {
      for (const entry of fieldEntries(spec, value, ctx)) entries.push(entry);
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      for (const issue of e.issues) issues.push({ path: issue.path, message: `[${layout.name}] ${issue.message}` });
    }
  }
  return { name: layout.name, entries, always: layout.always };
}

/**
 * Renders a typed unit as unit-file text: sections in the kind's fixed order (`[Unit]`, the
 * resource section, `[Quadlet]`, `[Service]`, `[Install]`), fields in field-table order,
 * repeatable keys one line per item, empty sections skipped (the Quadlet resource section is
 * always written). Deterministic: the same unit gives the same bytes.
 * @throws PodmeshError with one issue per value that cannot be written safely
 * @see https://docs.podman.io/en/v5.4.2/markdown/podman-systemd.unit.5.html
 */
export function renderUnit(unit: AnyUnit, options: RenderOptions = {}): string {
  const path = options.path ?? '';
  const issues: Issue[] = [];
  const record = unit as unknown as Readonly<Record<string, object | undefined>>;
  const sections = UNIT_LAYOUT[unit.kind].map((layout) => renderSection(layout, record[layout.prop], path, issues));
  if (issues.length > 0) throw new PodmeshError(issues);
  return writeUnitFile(sections, options.comments);
}

/** File name of a unit: `auth` + container → `auth.container`. */
export function unitFileName(name: string, kind: UnitKind): string {
  return `${name}.${kind}`;
}

/**
 * Name of the systemd service Quadlet generates from a Quadlet file (what other units put in
 * `After=`/`Requires=`): `auth.container` → `auth.service`, `mesh.network` →
 * `mesh-network.service`, `data.volume` → `data-volume.service`, `web.pod` → `web-pod.service`;
 * a `ServiceName=` overrides it. Plain units keep their own name.
 * @see https://docs.podman.io/en/v5.4.2/markdown/podman-systemd.unit.5.html#servicename
 */
export function serviceName(name: string, unit: AnyUnit): string {
  switch (unit.kind) {
    case 'container':
      return `${unit.container.serviceName ?? name}.service`;
    case 'network':
      return `${unit.network.serviceName ?? `${name}-network`}.service`;
    case 'volume':
      return `${unit.volume.serviceName ?? `${name}-volume`}.service`;
    case 'pod':
      return `${unit.pod.serviceName ?? `${name}-pod`}.service`;
    default:
      return `${name}.${unit.kind}`;
  }
}
