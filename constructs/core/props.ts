// Turns zod results into podmesh issues so that no raw ZodError reaches a user.
import type { Construct } from 'constructs';
import type { z } from 'zod';
import type { Issue } from './errors.ts';

const PROP_ISSUES = Symbol.for('podmesh.propIssues');

type WithIssues = { [PROP_ISSUES]?: Issue[] };

/**
 * Checks construct props against a schema when the construct is created. Problems are recorded on
 * the construct, not thrown, so that one synth reports every bad prop of every construct at once.
 * Returns the parsed props (defaults applied) or, when invalid, the raw props as given.
 */
export function checkProps<T>(scope: Construct, schema: z.ZodType<T>, props: unknown): T {
  const result = schema.safeParse(props);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({
    path: scope.node.path,
    message: i.path.length > 0 ? `${formatField(i.path)}: ${i.message}` : i.message,
  }));
  recordIssues(scope, issues);
  return props as T;
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
