// Construct ids are names in podmesh: a second construct with the same id is a user error.
import type { Construct } from 'constructs';
import { PodmeshError } from './errors.ts';

/**
 * Returns `id` when the scope has no child of that name yet; otherwise throws a podmesh error
 * (the constructs library would throw its own, less helpful one).
 */
export function uniqueId(scope: Construct, id: string): string {
  const existing = scope.node.tryFindChild(id);
  if (existing) {
    const where = scope.node.path || '(app)';
    throw PodmeshError.at(
      where,
      `two constructs are named "${id}" (${existing.node.path}). ` +
        'Names become DNS labels, container and unit names, so each must be unique: rename one of them.',
    );
  }
  return id;
}
