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
  const result = schema.safeParse(props);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({
    path: scope.node.path,
    message: i.path.length > 0 ? `${formatField(i.path)}: ${i.message}` : i.message,
  }));
  recordIssues(scope, issues);
  return props as T;
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
  if (value === undefined) return [];
  const def = defOf(schema);
  if (WRAPPERS.has(def.type) && def.innerType) return unknownProps(def.innerType, value, path);
  if (def.type === 'pipe' && def.in) return unknownProps(def.in, value, path);
  if (def.type === 'array' && def.element && Array.isArray(value)) return value.flatMap((v, i) => unknownProps(def.element!, v, [...path, i]));
  if (def.type === 'record' && def.valueType && isPlainObject(value)) return Object.entries(value).flatMap(([k, v]) => unknownProps(def.valueType!, v, [...path, k]));
  if (def.type === 'union' && def.options && isPlainObject(value)) {
    // The object option that fits best speaks for the union.
    const found = def.options.filter((o) => isPlainObject(value) && acceptsObjects(o)).map((o) => unknownProps(o, value, path));
    return found.length === 0 ? [] : found.reduce((a, b) => (b.length < a.length ? b : a));
  }
  if (def.type !== 'object' || !def.shape || !isPlainObject(value)) return [];
  const known = Object.keys(def.shape);
  const messages: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const field = def.shape[key];
    if (field) {
      messages.push(...unknownProps(field, v, [...path, key]));
      continue;
    }
    const hint = closest(key, known);
    const where = path.length > 0 ? `${formatField(path)}: ` : '';
    messages.push(`${where}unknown prop ${key}. ${hint ? `Did you mean ${hint}? ` : ''}Known: ${known.join(', ')}.`);
  }
  return messages;
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
