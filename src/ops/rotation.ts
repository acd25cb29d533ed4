// What to do once generated secrets have new values (`podmesh secrets rotate` prints it): which
// services to redeploy, in which order, and the commands a server that keeps the old value in its
// data needs.
import { postgresRolesCommand } from '../render/postgres-roles.ts';
import type { ResolvedService, ResolvedStack } from '../resolve/model.ts';

/**
 * What to do once secrets `ids` have new values: redeploy every service that mounts one or whose
 * configuration is built from one (the server and its clients, by host): each reads its secret
 * files when it starts, and a running container keeps the file it was started with. Where the
 * server keeps the old value in its data (PostgreSQL's role passwords), the command that sets the
 * new one there, reading it from the mounted secret file so that it is never on a command line.
 */
export function afterRotation(stack: ResolvedStack, ids: readonly string[]): string[] {
  const rotatedIn = (f: ResolvedService['secrets'][number]) => ids.includes(f.id) || (f.acl ?? []).some((a) => ids.includes(a.id));
  const carriers = stack.services.filter((s) => s.secrets.some(rotatedIn));
  // A server: its own secret rotated, or one of its clients' own credentials (a role, an ACL user).
  const clientsRotated = (s: ResolvedService) => (s.credentials && !s.credentials.shared ? s.credentials.clients : []).filter((c) => ids.includes(c.secretId)).map((c) => c.name);
  // A client's own PostgreSQL or Redis password is its server's credential: the server goes first.
  const credentialIds = new Set(stack.services.flatMap((s) => (s.credentials && !s.credentials.shared ? s.credentials.clients.map((c) => c.secretId) : [])));
  const isServer = (s: ResolvedService) => s.secrets.some((f) => ids.includes(f.id) && f.id.startsWith(`${s.name}/`) && !credentialIds.has(f.id)) || clientsRotated(s).length > 0;
  const hosts = [...new Set(carriers.map((s) => s.host))];
  const lines = hosts.map((h) => {
    const servers = carriers.filter((s) => s.host === h && isServer(s)).map((s) => s.name);
    const clients = carriers.filter((s) => s.host === h && !isServer(s)).map((s) => s.name);
    const order = [servers.length > 0 ? `${servers.join(', ')} first` : '', clients.length > 0 ? `then ${clients.join(', ')}` : ''].filter(Boolean).join(', ');
    const compose = servers.length > 0 && clients.length > 0 ? `docker compose up -d --no-deps --force-recreate ${servers.join(' ')}, then docker compose up -d --no-deps --force-recreate ${clients.join(' ')}` : `docker compose up -d --no-deps --force-recreate ${[...servers, ...clients].join(' ')}`;
    return `Redeploy on host ${h}: ${order} (podmesh apply --stack ${stack.name} --host ${h} restarts them; with compose: ${compose}).`;
  });
  for (const s of carriers) {
    const own = s.secrets.filter((f) => ids.includes(f.id) && f.id.startsWith(`${s.name}/`));
    const roles = s.credentials?.kind === 'postgres' ? clientsRotated(s) : [];
    if (own.some((f) => f.variable === 'POSTGRES_PASSWORD_FILE')) {
      lines.push(
        s.credentials?.shared || !s.credentials
          ? `PostgreSQL keeps its role's password in its data: once ${s.name} runs with the new secret, and before its clients come back, set it there (host ${s.host}):`
          : `PostgreSQL keeps its superuser's password in its data (no client logs in with it: each has a role of its own): once ${s.name} runs with the new secret, set it there (host ${s.host}):`,
        `  podman exec ${s.containerName} sh -c '${POSTGRES_SET_PASSWORD}'`,
      );
    }
    if (roles.length > 0) {
      lines.push(
        `PostgreSQL keeps the passwords of roles ${roles.join(', ')} in its data: once ${s.name} runs with the new secret files, and before those clients come back, set them there with its roles script (host ${s.host}; idempotent):`,
        `  ${postgresRolesCommand(s.containerName)}`,
      );
    } else if (own.length > 0 && !own.some((f) => f.variable === 'POSTGRES_PASSWORD_FILE')) {
      lines.push(`${s.name} reads ${[...new Set(own.map((f) => f.target))].join(', ')} when it starts: the redeploy applies it.`);
    }
    const minioUsers = s.credentials?.kind === 'minio' ? clientsRotated(s) : [];
    if (minioUsers.length > 0) {
      lines.push(`${s.name} sets the passwords of ${s.credentials!.minio!.name}'s users for ${minioUsers.join(', ')} in ${s.credentials!.minio!.name} each time it runs: its redeploy, before those clients come back, applies them (host ${s.host}).`);
    }
    const acl = s.secrets.flatMap((f) => (f.acl ?? []).filter((a) => ids.includes(a.id)).map((a) => a.user));
    if (acl.length > 0 && own.length === 0) lines.push(`${s.name} reads its ACL users (${[...new Set(acl)].join(', ')}) from its configuration when it starts: the redeploy applies it.`);
  }
  return lines;
}

/**
 * Sets the role's password to the one in the container's POSTGRES_PASSWORD_FILE over the local
 * socket (trusted by the official image), the value reaching psql on stdin from the shell's printf
 * builtin (cat's command line names only the file); dollar quoting, since the value comes from
 * outside SQL.
 */
const POSTGRES_SET_PASSWORD = 'printf "ALTER ROLE CURRENT_USER PASSWORD \\$podmesh\\$%s\\$podmesh\\$;" "$(cat "$POSTGRES_PASSWORD_FILE")" | psql -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"';
