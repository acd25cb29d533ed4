// Turns zod results into podmesh issues so that no raw ZodError reaches a user.
import type { Construct } from 'constructs';
import type { z } from 'zod';
import type { Issue } from './errors.ts';
import { closest } from './names.ts';

const PROP_ISSUES = Symbol.for('podmesh.propIssues');

type WithIssues = { [PROP_ISSUES]?: Issue[] };

/**
 * Checks construct props against a schema when the construct is created. Problems are recorded on
 * the construct, not thrown, so that one synth reports every bad prop of every construct at once.
 * Returns the parsed props (defaults applied) or, when invalid, the raw props as given.
 */
export function checkProps<T>(scope: Construct, schema: z.ZodType<T>, props: unknown): T {
  // zod drops keys a schema does not name; a misspelled prop must not vanish silently.
  const unknown = unknownProps(schema, props, []).map((message) => ({ path: scope.node.path, message }));
  recordIssues(scope, unknown);
  const result = schema.safeParse(props, { error: plainWords });
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({
    path: scope.node.path,
    message: i.path.length > 0 ? `${formatField(i.path)}: ${i.message}` : i.message,
  }));
  recordIssues(scope, issues);
  return props as T;
}

/** What a value of each zod type is, in a stack author's words. */
const KIND: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list ([…])',
  object: 'an object ({ … })',
  record: 'an object ({ … })',
  map: 'an object ({ … })',
};

/** A value as a stack author would name it. */
function described(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** The parts of a zod issue the words below read. */
interface RawIssue {
  readonly code?: string;
  readonly expected?: string;
  readonly input?: unknown;
  readonly origin?: string;
  readonly minimum?: number | bigint;
  readonly maximum?: number | bigint;
  readonly inclusive?: boolean;
  readonly values?: readonly unknown[];
}

/**
 * zod's fallback words where a schema gives none of its own, in a stack author's: "Invalid input:
 * expected string, received number" becomes "must be a string, not number 5", "Too small: expected
 * string to have >=1 characters" "must not be empty". Other problems keep zod's words.
 */
function plainWords(issue: RawIssue): string | undefined {
  if (issue.code === 'invalid_type' && issue.expected !== undefined && KIND[issue.expected]) {
    const kind = KIND[issue.expected];
    return issue.input === undefined ? `is required: give ${kind}` : `must be ${kind}, not ${described(issue.input)}`;
  }
  if (issue.code === 'invalid_value' && issue.values && issue.values.length > 0) {
    const near = typeof issue.input === 'string' ? closest(issue.input, issue.values.filter((v): v is string => typeof v === 'string')) : undefined;
    return `must be ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map((v) => JSON.stringify(v)).join(', ')}, not ${described(issue.input)}${near ? `. Did you mean ${JSON.stringify(near)}?` : ''}`;
  }
  if (issue.code === 'too_small' && issue.minimum !== undefined) return bound(issue.origin, 'least', Number(issue.minimum), issue.inclusive !== false);
  if (issue.code === 'too_big' && issue.maximum !== undefined) return bound(issue.origin, 'most', Number(issue.maximum), issue.inclusive !== false);
  return undefined;
}

/** "must not be empty", "must be at least 1", "must hold at most 3 items". */
function bound(origin: string | undefined, side: 'least' | 'most', n: number, inclusive: boolean): string | undefined {
  if (origin === 'string') return side === 'least' && n === 1 ? 'must not be empty' : `must be at ${side} ${n} characters long`;
  if (origin === 'array') return side === 'least' && n === 1 ? 'must not be empty: give at least one' : `must hold at ${side} ${n} items`;
  if (origin === 'number') return inclusive ? `must be at ${side} ${n}` : `must be ${side === 'least' ? 'more' : 'less'} than ${n}`;
  return undefined;
}

/** The zod internals the walk below reads (zod 4's `def`). */
interface Def {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly innerType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly in?: z.ZodType;
}
const defOf = (schema: z.ZodType): Def => (schema as unknown as { def: Def }).def;
const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'nonoptional', 'catch']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Keys of plain objects in `value` that the schema does not name, as messages with a suggestion.
 * Values of other shapes (constructs, custom checks) are left to the schema.
 */
function unknownProps(schema: z.ZodType, value: unknown, path: readonly PropertyKey[]): string[] {
  const messages: string[] = [];
  collectUnknown(schema, value, [...path], messages);
  return messages;
}

/**
 * The walk of {@link unknownProps}: appends to `messages`, with `path` (pushed and popped, copied
 * only into a message) the place of `value`. Valid props, the common case, allocate nothing here.
 */
function collectUnknown(schema: z.ZodType, value: unknown, path: PropertyKey[], messages: string[]): void {
  if (value === undefined) return;
  let def = defOf(schema);
  // Wrappers and pipes speak for what they wrap.
  for (let depth = 0; depth < 64; depth++) {
    if (WRAPPERS.has(def.type) && def.innerType) def = defOf(def.innerType);
    else if (def.type === 'pipe' && def.in) def = defOf(def.in);
    else break;
  }
  if (def.type === 'array' && def.element && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      collectUnknown(def.element, value[i], path, messages);
      path.pop();
    }
    return;
  }
  if (def.type === 'record' && def.valueType && isPlainObject(value)) {
    for (const k of Object.keys(value)) {
      path.push(k);
      collectUnknown(def.valueType, value[k], path, messages);
      path.pop();
    }
    return;
  }
  if (def.type === 'union' && def.options && isPlainObject(value)) {
    // The object option that fits best speaks for the union.
    let best: string[] | undefined;
    for (const o of def.options) {
      if (!acceptsObjects(o)) continue;
      const found: string[] = [];
      collectUnknown(o, value, path, found);
      if (best === undefined || found.length < best.length) best = found;
    }
    if (best) messages.push(...best);
    return;
  }
  if (def.type !== 'object' || !def.shape || !isPlainObject(value)) return;
  const shape = def.shape;
  for (const key of Object.keys(value)) {
    const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (field) {
      path.push(key);
      collectUnknown(field, value[key], path, messages);
      path.pop();
      continue;
    }
    const known = Object.keys(shape);
    const hint = closest(key, known);
    const where = path.length > 0 ? `${formatField(path)}: ` : '';
    messages.push(`${where}unknown prop ${key}. ${hint ? `Did you mean ${hint}? ` : ''}Known: ${known.join(', ')}.`);
  }
}

function acceptsObjects(schema: z.ZodType): boolean {
  const def = defOf(schema);
  if (WRAPPERS.has(def.type) && def.innerType) return acceptsObjects(def.innerType);
  return def.type === 'object';
}

/** Records issues on a construct to be reported by the validation pass. */
export function recordIssues(scope: Construct, issues: readonly Issue[]): void {
  const holder = scope as unknown as WithIssues;
  (holder[PROP_ISSUES] ??= []).push(...issues);
}

/** Issues recorded on one construct at creation. */
export function propIssues(scope: Construct): readonly Issue[] {
  return (scope as unknown as WithIssues)[PROP_ISSUES] ?? [];
}

function formatField(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}
