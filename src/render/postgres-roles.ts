// PostgreSQL's roles script (`hosts/<host>/config/<postgres>/podmesh-roles.sh`): one login role
// per client, named after it, owning only its schema; mounted read-only into the official image's
// /docker-entrypoint-initdb.d/, and run by hand on an existing database. It holds no secret: each
// password is read from the client's secret file mounted in the PostgreSQL container.
import { hostFile, serviceConfigPath } from '../layout.ts';
import { hasRolesScript, POSTGRES_ROLES_FILE, POSTGRES_ROLES_PATH } from '../resolve/resolve.ts';
import { secretTarget } from '../resolve/environment.ts';
import type { ResolvedCredentials, ResolvedService, ResolvedStack } from '../resolve/model.ts';
import type { RenderedFile } from './file.ts';
import { hashHeader } from './header.ts';

/** A PostgreSQL identifier in double quotes (an inner `"` doubled). */
export function sqlIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A single-quoted shell word (an inner `'` closed, escaped and reopened). */
function shellWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command that (re)runs the roles script on an existing database: as the postgres user, which
 * the image's local socket trusts, so no password is needed to connect.
 */
export function postgresRolesCommand(containerName: string): string {
  return `podman exec -u postgres ${containerName} sh ${POSTGRES_ROLES_PATH}`;
}

/** Dollar-quoting tags: the DO block's body, and literals (passwords, role names) inside or outside it. */
const DO_TAG = '$podmesh_do$';
const LITERAL = '$podmesh$';

/**
 * The SQL, as a printf format: each client's password is a `%s`, in client order. Dollar quoting
 * needs no quote characters in the shell word; generated passwords (base64url) hold no `$`, `%` or `\`.
 */
function rolesSql(database: string, clients: ResolvedCredentials['clients']): string {
  const db = sqlIdentifier(database);
  const lines = ['SET client_min_messages = warning;'];
  for (const c of clients) {
    const role = sqlIdentifier(c.name);
    lines.push(
      `DO ${DO_TAG} BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${LITERAL}${c.name}${LITERAL}) THEN CREATE ROLE ${role}; END IF; END ${DO_TAG};`,
      `ALTER ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${LITERAL}%s${LITERAL};`,
      `CREATE SCHEMA IF NOT EXISTS ${role} AUTHORIZATION ${role};`,
      `ALTER ROLE ${role} IN DATABASE ${db} SET search_path = ${role};`,
    );
  }
  lines.push(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC;`);
  for (const c of clients) lines.push(`GRANT CONNECT ON DATABASE ${db} TO ${sqlIdentifier(c.name)};`);
  lines.push('REVOKE ALL ON SCHEMA public FROM PUBLIC;');
  return `${lines.join('\n')}\n`;
}

// Longer than 80 lines' worth of reading: one shell script as one template literal, top to bottom like the file it writes.
/**
 * The script of one PostgreSQL service. The official entrypoint sources a non-executable `*.sh`
 * during its first initialisation (docker-entrypoint.sh `docker_process_init_files`) with `set
 * -Eeo pipefail` on: so it sets no option, never exits, and names only `podmesh_*` functions and
 * variables; its last command is the function, whose status fails the entrypoint or `sh`.
 */
export function postgresRolesScript(stack: string, s: Pick<ResolvedService, 'name' | 'containerName'>, credentials: ResolvedCredentials): string {
  const clients = credentials.clients;
  const files = clients.map((c) => secretTarget(c.secretId, 'value'));
  const names = clients.map((c) => c.name).join(', ');
  return `${hashHeader(stack).trimEnd()}
#
# PostgreSQL roles of ${s.name}'s clients in database "${credentials.database}": each client (${names})
# logs in as a role of its own, named after it, with its own password, owning only the schema of
# the same name (its search_path); the database and the public schema are closed to everyone else.
# Each password is read from the client's secret file under /run/secrets and reaches psql on its
# standard input (printf is a shell builtin): it is on no command line. Idempotent.
#
# The image's entrypoint sources this file on the first start (an empty data folder). On an
# existing database (a client added, a client's password rotated), run it by hand:
#   ${postgresRolesCommand(s.containerName)}
# (with compose, docker compose exec -u postgres ${s.name} sh ${POSTGRES_ROLES_PATH}).
# Sourced under \`set -Eeo pipefail\`: no shell option is set here, nothing exits, and every name
# starts with podmesh_.

podmesh_roles() {
	for podmesh_file in ${files.join(' ')}; do
		if [ ! -r "$podmesh_file" ] || [ ! -s "$podmesh_file" ]; then
			printf 'podmesh-roles: %s is missing, unreadable or empty: is the client'"'"'s secret mounted?\\n' "$podmesh_file" >&2
			return 1
		fi
	done
	unset podmesh_file
	printf ${shellWord(rolesSql(credentials.database!, clients))} \\
${files.map((f) => `		"$(cat ${f})" \\`).join('\n')}
	| PGHOST= PGHOSTADDR= psql -X -q -w -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" || return 1
	printf 'podmesh-roles: roles of ${names} are set in database %s\\n' "$POSTGRES_DB"
}

podmesh_roles
`;
}

/** `config/<postgres>/podmesh-roles.sh` of every PostgreSQL service whose clients have roles of their own. */
export function renderPostgresRoles(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  for (const s of stack.services) {
    const c = s.credentials;
    if (!c || !hasRolesScript(c)) continue;
    const host = stack.hosts.find((h) => h.name === s.host)!;
    // The container reads it only when it starts on an empty data folder: a restart brings the new
    // file in, the command in it sets it on an existing database.
    files.set(...hostFile(host, 'root', serviceConfigPath(s.name, POSTGRES_ROLES_FILE), postgresRolesScript(stack.name, s, c), { units: [s.unit.service] }));
  }
  return files;
}
