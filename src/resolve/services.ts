// Phase: each workload as a plain ResolvedService: identity, address, ports, the environment
// podmesh generates (and user variables that must not clash with it), mounts, health, order.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { MINIO_SETUP_CA, MINIO_SETUP_SCRIPT, MinioSetup, Postgres, Redis } from '../../constructs/model/infra.ts';
import { Service } from '../../constructs/model/service.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import { compare } from '../io/sort.ts';
import { withRemoteWaits } from './cross-host.ts';
import type { InfraDependencies, ServiceGraph } from './dependencies.ts';
import { clientPasswordId, generatedEnvironment, minioAccessKey, mtlsUrl, sidecarUrl, secretFileName, secretFiles, secretTarget, type InfraEndpoints, type SecretFile } from './environment.ts';
import { healthOf, resolveHealthcheck } from './health.ts';
import type { Inventory } from './inventory.ts';
import type { Unplaced } from '../layout.ts';
import type { ResolvedCredentials, ResolvedPort, ResolvedSecret, ResolvedService, ResolvedSidecar, SidecarPeer } from './model.ts';
import { resolveSidecar, sidecarSecurity } from './sidecar.ts';
import { resolveMounts } from './mounts.ts';
import { trustDomainOf } from './pki.ts';
import { spiffeIdOf } from '../state/pki/spiffe.ts';
import { resolveSecurity } from './security.ts';
import type { Names } from './naming.ts';
import type { Placement } from './placement.ts';

/** The facts of earlier phases that a service is built from. */
export interface ServiceFacts {
  readonly inv: Inventory;
  readonly placement: Placement;
  readonly names: Names;
  readonly ipOf: ReadonlyMap<Workload, string>;
  readonly portsOf: ReadonlyMap<Workload, readonly ResolvedPort[]>;
  readonly graph: ServiceGraph;
}

/**
 * Builds the service of every workload that has a host, a network, a DNS name and an address,
 * and checks its environment, mounts and public TLS port. A workload without them has no
 * service (its problem is already reported).
 */
export function resolveServices(facts: ServiceFacts, issues: IssueCollector): Map<Workload, Unplaced<ResolvedService>> {
  const services = new Map<Workload, Unplaced<ResolvedService>>();
  for (const w of facts.inv.workloads) {
    const s = resolveService(w, facts, issues);
    if (s) services.set(w, s);
  }
  return services;
}

function resolveService(w: Workload, facts: ServiceFacts, issues: IssueCollector): Unplaced<ResolvedService> | undefined {
  const { placement, names, graph } = facts;
  // Checked for every workload, so their problems show even when another phase left it without an address.
  const ports = facts.portsOf.get(w)!;
  const sidecar = w instanceof Service ? sidecarOf(w, facts, issues) : undefined;
  const environment = serviceEnvironment(w, facts, issues, sidecar);
  const mounts = resolveMounts(w, names, issues, {
    postgresRoles: hasRolesScript(environment.credentials),
    ...(w instanceof MinioSetup ? { minioSetup: { minio: w.minio.name, script: MINIO_SETUP_SCRIPT, ca: MINIO_SETUP_CA } } : {}),
  });
  const publicTls = w instanceof Service && w.publicTls ? { publicTlsPort: publicTlsPort(w, ports, issues) } : {};
  const host = placement.hostOf.get(w);
  const security = resolveSecurity(w, host, issues, { mountsSecrets: environment.secrets.length > 0 });
  const confined = sidecar ? { sidecar: { ...sidecar, security: sidecarSecurity(sidecar.proxy, security.userNamespace) } } : {};
  const network = placement.networkOf.get(w);
  const dnsName = names.dnsOf.get(w);
  const ip = facts.ipOf.get(w);
  if (!host || !network || !dnsName || !ip) return undefined;
  const health = healthOf(w, dnsName);
  const hyperf = w instanceof Service ? w.hyperf : undefined;
  return {
    name: w.name,
    path: w.node.path,
    kind: w.kind,
    serviceName: w.props.serviceName ?? w.name,
    host: host.node.id,
    network: network.node.id,
    image: w.props.image,
    containerName: names.containerNameOf.get(w)!,
    hostname: w.name,
    dnsName,
    aliases: [dnsName, ...(w.props.aliases ?? [])],
    ip,
    staticIp: w.props.ip !== undefined,
    ports,
    ...(w instanceof Service ? { mtls: { port: w.mtlsPort, url: mtlsUrl(dnsName, w.mtlsPort) } } : {}),
    ...environment,
    calls: graph.calls.calls.get(w.name)!,
    callers: graph.calls.callers.get(w.name)!,
    ...(hyperf ? { hyperf } : {}),
    ...publicTls,
    dependsOn: withRemoteWaits(w, graph.depsOf.get(w)!, facts, issues),
    ...(health ? { healthcheck: resolveHealthcheck(health) } : {}),
    restart: w.props.restart ?? 'unless-stopped',
    mounts,
    ...(w.props.command ? { command: [...w.props.command] } : {}),
    ...(w.entrypoint() ? { entrypoint: [...w.entrypoint()!] } : {}),
    ...(w instanceof MinioSetup ? { oneshot: true } : {}),
    ...(w.props.user ? { user: w.props.user } : {}),
    security,
    certificates: w.certificateKinds(),
    ...confined,
  };
}

/** The service's sidecar, with its peers' identities. */
function sidecarOf(w: Service, facts: ServiceFacts, issues: IssueCollector): Omit<ResolvedSidecar, 'security'> | undefined {
  if (!w.sidecar) return undefined;
  const { inv, names, graph } = facts;
  const trustDomain = trustDomainOf(inv.stack, inv.networks[0]?.domain ?? '');
  const peer = (name: string): SidecarPeer => ({ service: name, commonName: names.dnsOf.get(inv.byName.get(name)!) ?? name, spiffeId: spiffeIdOf(trustDomain, inv.stack.node.id, name) });
  return resolveSidecar(w, {
    project: inv.stack.project,
    containerName: names.containerNameOf.get(w) ?? w.name,
    ports: facts.portsOf.get(w)!,
    self: peer(w.name),
    callers: graph.calls.callers.get(w.name)!.map(peer),
    calls: graph.calls.calls.get(w.name)!.map((c) => ({ ...peer(c), port: (inv.byName.get(c) as Service).mtlsPort })),
  }, issues);
}

/** Generated, env-file and user variables (sorted), and the secret ones; a user variable may not redefine a generated one. */
function serviceEnvironment(w: Workload, facts: ServiceFacts, issues: IssueCollector, sidecar?: Omit<ResolvedSidecar, 'security'>): Pick<ResolvedService, 'environment' | 'secrets' | 'credentials'> {
  const { names, graph, inv } = facts;
  const dnsOf = (name: string) => names.dnsOf.get(inv.byName.get(name)!) ?? name;
  const deps = graph.infraOf.get(w)!;
  const infra = infraEndpoints(w, deps, facts, issues);
  const credentials = serverCredentials(w, facts);
  // The stack's one trust domain (assemble gives the PKI the same); a stack without networks is reported elsewhere.
  const trustDomain = trustDomainOf(inv.stack, inv.networks[0]?.domain ?? '');
  const spiffeId = (name: string) => spiffeIdOf(trustDomain, inv.stack.node.id, name);
  const generated = generatedEnvironment(w.kind, {
    serviceName: w.props.serviceName ?? w.name,
    dnsName: names.dnsOf.get(w) ?? w.name,
    ...(w instanceof Service ? { mtlsPort: w.mtlsPort } : {}),
    calls: graph.calls.calls.get(w.name)!.map((c) => {
      const route = sidecar?.routes.find((r) => r.service === c);
      return { name: c, url: route ? sidecarUrl(route.port) : mtlsUrl(dnsOf(c), (inv.byName.get(c) as Service).mtlsPort) };
    }),
    allowedClients: graph.calls.callers.get(w.name)!.map(dnsOf).sort(compare),
    spiffeId: spiffeId(w.name),
    allowedSpiffeIds: graph.calls.callers.get(w.name)!.map(spiffeId).sort(compare),
    infra,
    ...(sidecar ? { sidecar: { proxy: sidecar.proxy, appPort: sidecar.appPort } } : {}),
  });
  const files = withServerSecrets(
    secretFiles(
      Object.fromEntries(Object.entries(w.secretFiles()).map(([k, f]) => [k, { id: `${w.name}/${f.secret}`, ...(f.format ? { format: f.format } : {}) }])),
      infra,
    ),
    credentials,
  );
  const secrets = files
    .map((f): ResolvedSecret => ({ ...f, file: secretFileName(f.id, f.format), target: secretTarget(f.id, f.format) }))
    // Named files by variable, then the unnamed ones (a server's copies of its clients' passwords) by id.
    .sort((a, b) => (a.variable === undefined) !== (b.variable === undefined) ? (a.variable === undefined ? 1 : -1) : compare(a.variable ?? a.id, b.variable ?? b.id));
  const named = secrets.flatMap((f) => (f.variable ? [{ variable: f.variable, target: f.target }] : []));
  // The variables naming the secret files are generated like the rest.
  const withFiles: [string, string][] = [...generated, ...named.map((f): [string, string] => [f.variable, f.target])];
  const env = new Map(withFiles);
  // The plain variable beside a secret's *_FILE one would put a password in the environment.
  const plain = named.filter((f) => f.variable.endsWith('_FILE')).map((f): [string, string] => [f.variable.slice(0, -'_FILE'.length), `(a secret: a file mounted at ${f.target}, named by ${f.variable})`]);
  const reserved = new Map([...withFiles, ...plain]);
  for (const { name, value, file } of w.fileEnvironment) {
    if (reserved.has(name)) {
      issues.add(w.node.path, `environment variable ${name} from env file ${file} is generated by podmesh (${name}=${reserved.get(name)}). Remove it from the file.`);
    }
    env.set(name, value);
  }
  for (const [k, v] of Object.entries(w.props.environment ?? {})) {
    if (reserved.has(k)) {
      issues.add(w.node.path, `environment variable ${k} is generated by podmesh (${k}=${reserved.get(k)}). Remove it from environment, or change the model that generates it.`);
    }
    env.set(k, v);
  }
  return { environment: [...env].sort(([a], [b]) => compare(a, b)), secrets, ...(credentials ? { credentials } : {}) };
}

/**
 * Role names PostgreSQL refuses (`public`, `none`); a workload's name is a DNS label, so the other
 * reserved ones (`pg_*`, `current_user`, …) cannot occur.
 */
const RESERVED_ROLES: ReadonlySet<string> = new Set(['public', 'none']);

/**
 * Where a workload reaches the infrastructure it depends on, and as whom: by default its own
 * PostgreSQL role and Redis ACL user, both named after it, each with a password of its own; the
 * server's superuser or default user when the server shares its credentials.
 */
function infraEndpoints(w: Workload, deps: InfraDependencies, facts: ServiceFacts, issues: IssueCollector): InfraEndpoints {
  const { names, portsOf, inv } = facts;
  const dns = (w: Workload) => names.dnsOf.get(w) ?? w.name;
  const portOf = (w: Workload, name: string, fallback: number): number => portsOf.get(w)?.find((p) => p.name === name)?.port ?? fallback;
  const { postgres, redis, minio } = deps;
  const optOut = (server: string) => `or give ${server} sharedCredentials: { reason: "…" } to let every client use its superuser`;
  if (postgres && !postgres.sharedCredentials) {
    if (w.name === postgres.user) issues.add(w.node.path, `would connect to ${postgres.name} as its own role "${w.name}", which is ${postgres.name}'s superuser (user "${postgres.user}"). Rename the workload or ${postgres.name}'s user, ${optOut(postgres.name)}.`);
    else if (RESERVED_ROLES.has(w.name)) issues.add(w.node.path, `would connect to ${postgres.name} as its own role "${w.name}", a name PostgreSQL reserves. Rename the workload, ${optOut(postgres.name)}.`);
  }
  if (redis && !redis.sharedCredentials && w.name === 'default') {
    issues.add(w.node.path, `would connect to ${redis.name} as its own ACL user "default", which is Redis' default user. Rename the workload, or give ${redis.name} sharedCredentials: { reason: "…" } to let every client use the default user.`);
  }
  const minioKey = minioAccessKey(inv.stack.project, w.name);
  if (minio && !minio.sharedCredentials && minioKey === minio.rootUser) {
    issues.add(w.node.path, `would connect to ${minio.name} as its own user "${minioKey}", which is ${minio.name}'s root user. Rename the workload or ${minio.name}'s rootUser, or give ${minio.name} sharedCredentials: { reason: "…" } to let every client use the root user.`);
  }
  return {
    ...(postgres
      ? {
          postgres: {
            dnsName: dns(postgres),
            port: portOf(postgres, 'postgres', 5432),
            database: postgres.database,
            ...(postgres.sharedCredentials
              ? { user: postgres.user, passwordId: `${postgres.name}/password` }
              : { user: w.name, schema: w.name, passwordId: clientPasswordId(w.name, postgres.name) }),
          },
        }
      : {}),
    ...(redis
      ? {
          redis: {
            dnsName: dns(redis),
            port: portOf(redis, 'redis', 6379),
            ...(redis.sharedCredentials ? { passwordId: `${redis.name}/password` } : { user: w.name, prefix: `${w.name}:`, passwordId: clientPasswordId(w.name, redis.name) }),
          },
        }
      : {}),
    ...(minio
      ? {
          minio: {
            dnsName: dns(minio),
            port: portOf(minio, 'api', 9000),
            bucket: minio.bucket ?? inv.stack.project,
            ...(minio.sharedCredentials ? { user: minio.rootUser, passwordId: `${minio.name}/password` } : { user: minioKey, passwordId: clientPasswordId(w.name, minio.name) }),
          },
        }
      : {}),
  };
}

/** Whether a PostgreSQL service gets the roles script: its clients have roles of their own. */
export function hasRolesScript(c: ResolvedCredentials | undefined): boolean {
  return c?.kind === 'postgres' && !c.shared && c.clients.length > 0;
}

/**
 * A PostgreSQL or Redis workload's clients (the workloads that depend on it), and how they
 * authenticate; for MinIO's setup, its MinIO's clients.
 */
function serverCredentials(w: Workload, facts: ServiceFacts): ResolvedCredentials | undefined {
  if (w instanceof MinioSetup) return minioCredentials(w, facts);
  if (!(w instanceof Postgres) && !(w instanceof Redis)) return undefined;
  const kind = w instanceof Postgres ? 'postgres' : 'redis';
  const reason = w.sharedCredentials?.reason;
  const clients = facts.inv.workloads
    .filter((c) => facts.graph.infraOf.get(c)?.[kind] === w)
    .map((c) => ({ name: c.name, secretId: reason !== undefined ? `${w.name}/password` : clientPasswordId(c.name, w.name) }))
    .sort((a, b) => compare(a.name, b.name));
  const shared = reason === undefined ? {} : { shared: { user: w instanceof Postgres ? w.user : 'default', reason } };
  return { kind, ...shared, ...(w instanceof Postgres ? { database: w.database } : {}), clients };
}

/** MinIO's clients as its setup creates them: each its own user (access key) and password, or the root user's when shared. */
function minioCredentials(w: MinioSetup, facts: ServiceFacts): ResolvedCredentials {
  const minio = w.minio;
  const project = facts.inv.stack.project;
  const reason = minio.sharedCredentials?.reason;
  const rootPasswordId = `${minio.name}/password`;
  const clients = facts.inv.workloads
    .filter((c) => facts.graph.infraOf.get(c)?.minio === minio)
    .map((c) => (reason !== undefined ? { name: c.name, secretId: rootPasswordId } : { name: c.name, secretId: clientPasswordId(c.name, minio.name), user: minioAccessKey(project, c.name) }))
    .sort((a, b) => compare(a.name, b.name));
  return {
    kind: 'minio',
    ...(reason === undefined ? {} : { shared: { user: minio.rootUser, reason } }),
    minio: {
      name: minio.name,
      url: `https://${facts.names.dnsOf.get(minio) ?? minio.name}:${facts.portsOf.get(minio)?.find((p) => p.name === 'api')?.port ?? 9000}`,
      rootUser: minio.rootUser,
      rootPasswordId,
      bucket: minio.bucket ?? project,
    },
    clients,
  };
}

/**
 * A server's secret files with its clients' credentials: PostgreSQL mounts each client's password
 * (no variable: its roles script reads them by path); Redis' configuration gets one ACL user per client.
 */
function withServerSecrets(files: SecretFile[], credentials: ResolvedCredentials | undefined): SecretFile[] {
  if (credentials?.kind === 'minio') {
    // MinIO's setup reads the root password and each client's by path (its script names them).
    const ids = [credentials.minio!.rootPasswordId, ...(credentials.shared ? [] : credentials.clients.map((c) => c.secretId))];
    return [...files, ...ids.map((id): SecretFile => ({ id, format: 'value' }))];
  }
  if (!credentials || credentials.shared || credentials.clients.length === 0) return files;
  if (credentials.kind === 'postgres') return [...files, ...credentials.clients.map((c): SecretFile => ({ id: c.secretId, format: 'value' }))];
  const acl = credentials.clients.map((c) => ({ user: c.name, id: c.secretId }));
  return files.map((f) => (f.format === 'redis-conf' ? { ...f, acl } : f));
}

/** The port that terminates public TLS: it must be declared, over TCP, and not the mTLS listener. */
function publicTlsPort(w: Service, ports: readonly ResolvedPort[], issues: IssueCollector): string {
  const name = w.publicTls!.port ?? 'public';
  const port = ports.find((p) => p.name === name);
  const tcp = ports.filter((p) => p.name !== 'mtls' && p.protocol === 'tcp').map((p) => p.name);
  const choose = tcp.length > 0 ? `Declare it in ports, or set publicTls.port to one of: ${tcp.join(', ')}.` : `Declare it, e.g. ports: { ${name}: { port: 9501, publish: true } }.`;
  if (!port) issues.add(w.node.path, `publicTls is served on port "${name}", which the service does not declare. ${choose}`);
  else if (name === 'mtls') issues.add(w.node.path, 'publicTls cannot be served on the mTLS port: public clients have no client certificate. Declare a port of its own.');
  else if (port.protocol !== 'tcp') issues.add(w.node.path, `publicTls is served on port "${name}", which is ${port.protocol}; TLS needs tcp.`);
  return name;
}
