// Where generated secrets live, relative to a stack's state folder (and to its host root).

/** Secret values by id (`<workload>/<name>`), 0600. */
export const SECRETS_FILE = 'secrets/values.json';

/** A secret file (its value, or a configuration built from it), 0600: `secrets/<file>`, e.g. `secrets/postgres.password`. */
export function secretPath(file: string): string {
  return `secrets/${file}`;
}
