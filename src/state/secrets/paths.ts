// Where generated secrets live, relative to a stack's state folder (and to its host root).

/** Secret values by id (`<workload>/<name>`), 0600. */
export const SECRETS_FILE = 'secrets/values.json';

/** A workload's env file with its secret variables, 0600: `secrets/<service>.env`. */
export function secretEnvFile(service: string): string {
  return `secrets/${service}.env`;
}
