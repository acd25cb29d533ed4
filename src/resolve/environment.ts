// The environment podmesh generates for a workload: the seed's mTLS variables, the URLs of the
// services it may call, and connection settings for the infrastructure it depends on. User
// variables must not clash with any of it. Secret values are never here: they are files mounted
// under /run/secrets, named by `*_FILE` variables (see secretFiles).

/** Where `/etc/mtls` is mounted in application containers. */
export const MTLS_DIR = '/etc/mtls';

/**
 * Where the per-service OpenSSL configuration is mounted in application containers; the
 * environment points `OPENSSL_CONF` at it, so every TLS connection the container's OpenSSL makes
 * (Swoole's listeners and clients, curl, libpq) is TLS 1.3 with the mesh's suites.
 */
export const OPENSSL_CONF_PATH = '/etc/podmesh/openssl.cnf';

/** A called service, as its caller sees it. */
export interface CallTarget {
  readonly name: string;
  /** Its mTLS URL, see {@link mtlsUrl}. */
  readonly url: string;
}

/** The URL an mTLS service is called at: its DNS name (never an IP), its mTLS port. */
export function mtlsUrl(dnsName: string, port: number): string {
  return `https://${dnsName}:${port}`;
}

/** Infrastructure a workload depends on, by kind. */
export interface InfraEndpoints {
  /**
   * `user`: the client's own role (or the superuser with shared credentials); `schema`: the
   * schema its role owns (none when shared); `passwordId`: the secret id of the role's password.
   */
  readonly postgres?: { readonly dnsName: string; readonly port: number; readonly database: string; readonly user: string; readonly schema?: string; readonly passwordId: string };
  /**
   * `user` and `prefix`: the client's own ACL user and the key prefix it is limited to (none when
   * shared: the default user); `passwordId`: the secret id of its password.
   */
  readonly redis?: { readonly dnsName: string; readonly port: number; readonly user?: string; readonly prefix?: string; readonly passwordId: string };
  /**
   * `user`: the client's own access key (or the root user with shared credentials); `passwordId`:
   * the secret id of its secret key.
   */
  readonly minio?: { readonly dnsName: string; readonly port: number; readonly user: string; readonly bucket: string; readonly passwordId: string };
}

/** What the generator knows about a workload when it builds its environment. */
export interface EnvironmentContext {
  readonly serviceName: string;
  readonly dnsName: string;
  /** The mTLS listener of an application service. */
  readonly mtlsPort?: number;
  /** Services it may call, in stack order. */
  readonly calls: readonly CallTarget[];
  /** DNS names (certificate CNs) of the services allowed to call it, sorted. */
  readonly allowedClients: readonly string[];
  /** Its own SPIFFE ID (the URI SAN of its certificates). */
  readonly spiffeId: string;
  /** SPIFFE IDs of the services allowed to call it, sorted. */
  readonly allowedSpiffeIds: readonly string[];
  readonly infra: InfraEndpoints;
  /**
   * A sidecar does the mTLS: the application serves plain HTTP on 127.0.0.1:appPort and its calls'
   * URLs are the sidecar's local ports (`calls[].url` already says so).
   */
  readonly sidecar?: { readonly proxy: 'haproxy' | 'envoy'; readonly appPort: number };
}

/** The headers a sidecar passes the verified caller's identity in (and strips from what callers send). */
export const SIDECAR_IDENTITY_HEADERS = { commonName: 'X-Client-CN', spiffeId: 'X-Client-SPIFFE-ID' } as const;

/** The URL an application behind a sidecar calls another service at: the sidecar's local port. */
export function sidecarUrl(port: number): string {
  return `http://127.0.0.1:${port}`;
}

/** `auth` → `AUTH_SERVICE_URL`, `media-uploads` → `MEDIA_UPLOADS_SERVICE_URL`. */
export function serviceUrlVariable(name: string): string {
  return `${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_SERVICE_URL`;
}

/** Generated variables of one workload: identity and mTLS first (the seed's order), then calls, then infrastructure. */
export function generatedEnvironment(kind: 'app' | 'infra', ctx: EnvironmentContext): [string, string][] {
  const env: [string, string][] = [];
  if (kind === 'app' && ctx.sidecar) {
    // No certificate is mounted: the sidecar beside it terminates and originates the mTLS.
    env.push(
      ['SERVICE_NAME', ctx.serviceName],
      ['SERVICE_DNS_NAME', ctx.dnsName],
      ['SERVICE_SPIFFE_ID', ctx.spiffeId],
      ['MTLS_ENABLED', 'false'],
      ['MTLS_SIDECAR', ctx.sidecar.proxy],
      ['APP_HOST', '127.0.0.1'],
      ['APP_PORT', String(ctx.sidecar.appPort)],
      ['MTLS_CLIENT_CN_HEADER', SIDECAR_IDENTITY_HEADERS.commonName],
      ['MTLS_CLIENT_SPIFFE_ID_HEADER', SIDECAR_IDENTITY_HEADERS.spiffeId],
      ['OPENSSL_CONF', OPENSSL_CONF_PATH],
    );
    for (const c of ctx.calls) env.push([serviceUrlVariable(c.name), c.url]);
  } else if (kind === 'app') {
    env.push(
      ['SERVICE_NAME', ctx.serviceName],
      ['SERVICE_DNS_NAME', ctx.dnsName],
      ['SERVICE_SPIFFE_ID', ctx.spiffeId],
      ['MTLS_ENABLED', 'true'],
      ['MTLS_PORT', String(ctx.mtlsPort ?? 8443)],
      ['MTLS_CERT_FILE', `${MTLS_DIR}/server.crt`],
      ['MTLS_KEY_FILE', `${MTLS_DIR}/server.key`],
      ['MTLS_CA_FILE', `${MTLS_DIR}/ca.crt`],
      ['MTLS_CLIENT_CERT_FILE', `${MTLS_DIR}/client.crt`],
      ['MTLS_CLIENT_KEY_FILE', `${MTLS_DIR}/client.key`],
      ['MTLS_VERIFY_CLIENT', 'true'],
      ['MTLS_MIN_TLS_VERSION', 'TLSv1.3'],
      ['MTLS_CRL_FILE', `${MTLS_DIR}/crl.pem`],
      ['MTLS_ALLOWED_CLIENTS', ctx.allowedClients.join(',')],
      ['MTLS_ALLOWED_SPIFFE_IDS', ctx.allowedSpiffeIds.join(',')],
      ['OPENSSL_CONF', OPENSSL_CONF_PATH],
    );
    for (const c of ctx.calls) env.push([serviceUrlVariable(c.name), c.url]);
  }
  const { postgres, redis, minio } = ctx.infra;
  if (postgres) {
    env.push(
      ['DB_DRIVER', 'pgsql'],
      ['DB_HOST', postgres.dnsName],
      ['DB_PORT', String(postgres.port)],
      ['DB_DATABASE', postgres.database],
      ['DB_USERNAME', postgres.user],
      ...(postgres.schema ? [['DB_SCHEMA', postgres.schema] as [string, string]] : []),
    );
  }
  if (redis) {
    env.push(['REDIS_HOST', redis.dnsName], ['REDIS_PORT', String(redis.port)]);
    if (redis.user) env.push(['REDIS_USERNAME', redis.user], ['REDIS_PREFIX', redis.prefix ?? `${redis.user}:`]);
  }
  if (minio) {
    env.push(
      ['S3_ENDPOINT', `https://${minio.dnsName}:${minio.port}`],
      ['S3_KEY', minio.user],
      ['S3_BUCKET', minio.bucket],
      ['S3_REGION', 'us-east-1'],
      ['S3_USE_PATH_STYLE_ENDPOINT', 'true'],
      // MinIO's certificate is issued by the mesh CA.
      ['S3_CA_FILE', `${MTLS_DIR}/ca.crt`],
    );
  }
  return env;
}

/** Where generated secret files are mounted in every container (compose's and Podman's place). */
export const SECRETS_DIR = '/run/secrets';

/** What a secret file holds: the value, or a Redis configuration built from it. */
export type SecretFormat = 'value' | 'redis-conf';

/** A generated secret, as a file mounted into a container. */
export interface SecretFile {
  /** `<workload>/<name>`, e.g. `postgres/password`: the value's key in the state's `secrets/values.json`. */
  readonly id: string;
  readonly format: SecretFormat;
  /** The variable that names the mounted file, e.g. `DB_PASSWORD_FILE`; none for a file read by its path. */
  readonly variable?: string;
  /** A Redis configuration's ACL users: user name and password id each. */
  readonly acl?: readonly { readonly user: string; readonly id: string }[];
}

/** The file a secret is kept in (state folder's `secrets/`, the host root's `secrets/`) and mounted as (`/run/secrets/`). */
export function secretFileName(id: string, format: SecretFormat): string {
  return `${id.replace('/', '.')}${format === 'redis-conf' ? '.conf' : ''}`;
}

/** Where a secret file is mounted in a container. */
export function secretTarget(id: string, format: SecretFormat): string {
  return `${SECRETS_DIR}/${secretFileName(id, format)}`;
}

/**
 * The secret files of a workload: its own (`own`, by variable) and the passwords it connects to
 * its infrastructure with (`DB_PASSWORD_FILE`, `REDIS_AUTH_FILE`, `S3_SECRET_FILE`), each named
 * by a `*_FILE` variable; no value is ever in the environment.
 */
export function secretFiles(own: Readonly<Record<string, { readonly id: string; readonly format?: SecretFormat }>>, infra: InfraEndpoints): SecretFile[] {
  const files: SecretFile[] = Object.entries(own).map(([variable, s]) => ({ id: s.id, format: s.format ?? 'value', variable }));
  if (infra.postgres) files.push({ id: infra.postgres.passwordId, format: 'value', variable: 'DB_PASSWORD_FILE' });
  if (infra.redis) files.push({ id: infra.redis.passwordId, format: 'value', variable: 'REDIS_AUTH_FILE' });
  if (infra.minio) files.push({ id: infra.minio.passwordId, format: 'value', variable: 'S3_SECRET_FILE' });
  return files;
}

/**
 * A client's MinIO access key: its name, or `<project>-<name>` for a name shorter than MinIO's
 * 3-character minimum.
 */
export function minioAccessKey(project: string, client: string): string {
  return client.length >= 3 ? client : `${project}-${client}`;
}

/** The secret id of a client's own password for server `server`: `<client>/<server>-password`. */
export function clientPasswordId(client: string, server: string): string {
  return `${client}/${server}-password`;
}
