// Infrastructure services without mTLS: PostgreSQL, Redis, MinIO, or any other container.
import type { Construct } from 'constructs';
import * as z from 'zod';
import { checkProps } from '../core/props.ts';
import { Stack } from '../core/stack.ts';
import { Volume } from './volume.ts';
import type { CertKind } from './certificates.ts';
import { waiver, type SecurityNeeds, type WaiverProps } from './security.ts';
import { Workload, workloadSchema, type HealthcheckProps, type SecretFileSpec, type TlsMount, type WorkloadProps } from './workload.ts';

/** Where the MinIO image (running as root) looks for its certificates. */
const MINIO_CERTS = '/root/.minio/certs';

/** Options of a generic infrastructure service. */
export interface InfraServiceProps extends WorkloadProps {}

/** Any container of the mesh that is not behind mTLS. */
export class InfraService extends Workload {
  public readonly kind = 'infra' as const;

  /** `schema`: a preset's own props on top of the workload's, so they are known and checked. */
  constructor(scope: Construct, id: string, props: InfraServiceProps, schema: z.ZodType<WorkloadProps> = workloadSchema) {
    super(scope, id, props, schema);
  }

  defaultHealthcheck(_dnsName: string): HealthcheckProps | undefined {
    return undefined;
  }
}

/** Options of the PostgreSQL preset. */
export interface PostgresProps extends Partial<WorkloadProps> {
  /**
   * Database the image creates and clients connect to (`POSTGRES_DB`, the clients' `DB_DATABASE`).
   * @default - the stack's project, e.g. `ashchan`
   */
  readonly database?: string;
  /**
   * The superuser the image creates (`POSTGRES_USER`). Its password is generated into the state
   * folder. Clients connect as roles of their own, or as this one with `sharedCredentials`. This preset's `user` is the database role, not
   * the container's user.
   * @default - the stack's project, e.g. `ashchan`
   */
  readonly user?: string;
  /**
   * Let every client connect as the superuser (`user`) with its password, as before least-privilege
   * credentials. By default each client gets a role of its own (named after it, with its own
   * generated password), owning only its schema (named after it too); a generated init script
   * creates them.
   * @default - one role and schema per client
   */
  readonly sharedCredentials?: WaiverProps;
}

// The presets' own props are taken out before the workload's are checked; naming them here only
// lets a misspelling of one be told what was meant.
const postgresSchema = workloadSchema.extend({ database: z.string().optional(), sharedCredentials: z.unknown().optional() }) as unknown as z.ZodType<WorkloadProps>;
const redisSchema = workloadSchema.extend({ sharedCredentials: z.unknown().optional() }) as unknown as z.ZodType<WorkloadProps>;
const minioSchema = workloadSchema.extend({ rootUser: z.string().optional(), bucket: z.string().optional(), sharedCredentials: z.unknown().optional() }) as unknown as z.ZodType<WorkloadProps>;

// The presets' own props, checked on their own: they become environment values of the container
// and of every client (POSTGRES_DB and DB_DATABASE, MINIO_ROOT_USER, S3_BUCKET).
const postgresName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, {
  error: (i) => `${JSON.stringify(i.input)} is not a PostgreSQL name: a letter or "_", then letters, digits, "_" or "-", at most 63 characters (e.g. "ashchan")`,
});
const postgresOwn = z.object({ database: postgresName.optional(), user: postgresName.optional(), sharedCredentials: waiver.optional() });
const redisOwn = z.object({ sharedCredentials: waiver.optional() });
const minioOwn = z.object({
  rootUser: z.string().regex(/^[^\s\x00-\x1f\x7f]{3,128}$/, { error: 'must be 3-128 characters without spaces or control characters (MinIO\'s root user)' }).optional(),
  bucket: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
      error: (i) => `${JSON.stringify(i.input)} is not an S3 bucket name: 3-63 lower-case letters, digits, "." or "-", starting and ending with a letter or digit (e.g. "ashchan-media")`,
    })
    .optional(),
  sharedCredentials: waiver.optional(),
});

/** PostgreSQL on 5432 with a data volume and a `pg_isready` health check. */
export class Postgres extends InfraService {
  /** The data volume mounted at /var/lib/postgresql/data. */
  public readonly data: Volume;
  /** Database clients connect to (`DB_DATABASE`). */
  public readonly database: string;
  /** The superuser the image creates (`POSTGRES_USER`); clients connect as it only with `sharedCredentials`. */
  public readonly user: string;
  /** Why clients share the superuser's credentials; undefined: each client has its own role. */
  public readonly sharedCredentials?: WaiverProps;

  constructor(scope: Construct, id: string, props: PostgresProps = {}) {
    const project = Stack.of(scope).project;
    const { database = project, user = project, sharedCredentials, ...rest } = props;
    const preset = withPreset(rest, {
      image: 'docker.io/library/postgres:16-alpine',
      ports: { postgres: 5432 },
      environment: { POSTGRES_DB: database, POSTGRES_USER: user },
    });
    super(scope, id, preset, postgresSchema);
    checkProps(this, postgresOwn, { database: props.database, user: props.user, sharedCredentials });
    this.data = new Volume(this, 'data');
    this.addMount({ volume: this.data, target: '/var/lib/postgresql/data' });
    this.database = database;
    this.user = user;
    this.sharedCredentials = sharedCredentials;
  }

  override defaultHealthcheck(): HealthcheckProps {
    return { command: 'pg_isready -U "$POSTGRES_USER" -d "$POSTGRES_DB"' };
  }

  /** The official image's entrypoint reads the superuser's password from POSTGRES_PASSWORD_FILE (as root, before dropping to postgres). */
  override secretFiles(): Readonly<Record<string, SecretFileSpec>> {
    return { POSTGRES_PASSWORD_FILE: { secret: 'password' } };
  }

  /**
   * docker-library/postgres `docker-entrypoint.sh`, started as root: `docker_create_db_directories`
   * runs `chmod 00700 "$PGDATA"` on a folder the postgres user owns (FOWNER), `find "$PGDATA"
   * /var/run/postgresql \! -user postgres -exec chown postgres` (CHOWN; DAC_READ_SEARCH to walk
   * the 0700 data folder on later starts), then `exec gosu postgres` (SETUID, SETGID for
   * setgroups). The server then runs as postgres (uid 999) with no capability left.
   */
  override securityNeeds(): SecurityNeeds {
    return {
      capabilities: {
        add: ['CHOWN', 'DAC_READ_SEARCH', 'FOWNER', 'SETGID', 'SETUID'],
        reason: 'docker-entrypoint.sh (as root) chmods and chowns PGDATA and /var/run/postgresql for the postgres user, then switches to it with gosu',
      },
      tmpfs: [{ path: '/tmp' }, { path: '/var/run/postgresql' }],
      dropsRoot: 'docker-entrypoint.sh switches to the postgres user (uid 999) with gosu before starting the server',
    };
  }
}

/** Options of the Redis preset. */
export interface RedisProps extends Partial<WorkloadProps> {
  /**
   * Let every client authenticate as the default user with its password (`requirepass`), as before
   * least-privilege credentials. By default each client gets an ACL user of its own (named after
   * it, with its own generated password) limited to the keys and channels `<client>:*`.
   * @default - one ACL user per client
   */
  readonly sharedCredentials?: WaiverProps;
}

/** Redis on 6379 with an append-only data volume and a `redis-cli ping` health check. */
export class Redis extends InfraService {
  /** The data volume mounted at /data. */
  public readonly data: Volume;
  /** Why clients share the default user's password; undefined: each client has its own ACL user. */
  public readonly sharedCredentials?: WaiverProps;

  constructor(scope: Construct, id: string, props: RedisProps = {}) {
    const { sharedCredentials, ...rest } = props;
    super(scope, id, withPreset(rest, {
      image: 'docker.io/library/redis:7-alpine',
      ports: { redis: 6379 },
      // The password is in a generated configuration file (a secret, `requirepass`), never on a
      // command line: the shell opens it while still root and redis-server reads it from stdin
      // (`-`), so the redis user needs no access to the mounted file. Through the image's
      // entrypoint: it drops root for the redis user only when its first argument is redis-server
      // (a bare `exec redis-server` from sh would run as root).
      command: ['sh', '-c', 'exec docker-entrypoint.sh redis-server - --appendonly yes < "$REDIS_CONFIG_FILE"'],
    }), redisSchema);
    checkProps(this, redisOwn, { sharedCredentials });
    this.data = new Volume(this, 'data');
    this.addMount({ volume: this.data, target: '/data' });
    this.sharedCredentials = sharedCredentials;
  }

  override defaultHealthcheck(): HealthcheckProps {
    // redis-cli takes the password from REDISCLI_AUTH, set by the shell from the secret file: on no command line.
    return { command: 'REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")" redis-cli ping | grep -q PONG' };
  }

  override secretFiles(): Readonly<Record<string, SecretFileSpec>> {
    return { REDIS_CONFIG_FILE: { secret: 'password', format: 'redis-conf' }, REDIS_PASSWORD_FILE: { secret: 'password' } };
  }

  /**
   * docker-library/redis `docker-entrypoint.sh`, started as root with redis-server first: `find .
   * \! -user redis -exec chown redis` in /data (CHOWN; DAC_READ_SEARCH to walk the 0700
   * appendonlydir it leaves under umask 0077, or `set -e` stops the entrypoint), then `exec gosu
   * redis` (SETUID, SETGID).
   */
  override securityNeeds(): SecurityNeeds {
    return {
      capabilities: {
        add: ['CHOWN', 'DAC_READ_SEARCH', 'SETGID', 'SETUID'],
        reason: 'docker-entrypoint.sh (as root) chowns /data for the redis user, then switches to it with gosu',
      },
      tmpfs: [{ path: '/tmp' }],
      dropsRoot: 'docker-entrypoint.sh switches to the redis user (uid 999) with gosu before starting the server',
    };
  }
}

/** Options of the MinIO preset. */
export interface MinioProps extends Partial<WorkloadProps> {
  /**
   * Root user (`MINIO_ROOT_USER`, the clients' `S3_KEY`); its password is generated.
   * @default 'minio-root'
   */
  readonly rootUser?: string;
  /**
   * Bucket clients use (`S3_BUCKET`).
   * @default - the stack's project name
   */
  readonly bucket?: string;
  /**
   * Let every client use the root user (`S3_KEY` = `rootUser`, `S3_SECRET_FILE` = the root
   * password), as before least-privilege credentials. By default each client gets a MinIO user of
   * its own (access key: its name, `<project>-<name>` when shorter than 3 characters) with its own
   * generated password and a policy limited to the bucket; the setup container creates them.
   * @default - one user and policy per client
   */
  readonly sharedCredentials?: WaiverProps;
}

/**
 * The MinIO client image of the setup container: the release of the same month as the MinIO
 * preset's server image.
 */
export const MINIO_MC_IMAGE = 'quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z';

/** Where the setup container mounts its generated script. */
export const MINIO_SETUP_SCRIPT = '/etc/podmesh/podmesh-users.sh';

/** Where the setup container mounts the mesh CA that issued MinIO's certificate. */
export const MINIO_SETUP_CA = '/etc/podmesh/minio-ca.crt';

/** MinIO: S3 API on 9000 (server TLS), console on 9001, with a data volume, and its one-shot setup container beside it (`setup`). */
export class Minio extends InfraService {
  /** The data volume mounted at /data. */
  public readonly data: Volume;
  /** Root user name. */
  public readonly rootUser: string;
  /** Bucket name, when given. */
  public readonly bucket?: string;
  /** Why clients share the root user; undefined: each client has a MinIO user of its own. */
  public readonly sharedCredentials?: WaiverProps;
  /** The one-shot container that creates the bucket, the clients' users and their policies (`<name>-setup`). */
  public readonly setup: MinioSetup;

  constructor(scope: Construct, id: string, props: MinioProps = {}) {
    const { rootUser = 'minio-root', bucket, sharedCredentials, ...rest } = props;
    const preset = withPreset(rest, {
      image: 'quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z',
      ports: { api: 9000, console: 9001 },
      command: ['server', '/data', '--console-address', ':9001'],
      environment: { MINIO_ROOT_USER: rootUser },
    });
    super(scope, id, preset, minioSchema);
    checkProps(this, minioOwn, { rootUser: props.rootUser, bucket: props.bucket, sharedCredentials });
    this.data = new Volume(this, 'data');
    this.addMount({ volume: this.data, target: '/data' });
    this.rootUser = rootUser;
    this.bucket = bucket;
    this.sharedCredentials = sharedCredentials;
    // A sibling, so that it is a workload of the stack like any other (address, DNS name, units).
    this.setup = new MinioSetup(scope, `${this.node.id}-setup`, this, { host: rest.host, network: rest.network });
  }

  /** MinIO reads the root password from the file MINIO_ROOT_PASSWORD_FILE names. */
  override secretFiles(): Readonly<Record<string, SecretFileSpec>> {
    return { MINIO_ROOT_PASSWORD_FILE: { secret: 'password' } };
  }

  /** MinIO serves its API and console over TLS with a server certificate. */
  override certificateKinds(): readonly CertKind[] {
    return ['server'];
  }

  /** MinIO reads `public.crt`, `private.key` and trusted CAs from `~/.minio/certs`. */
  override tlsMounts(): readonly TlsMount[] {
    return [
      { file: 'server.crt', target: `${MINIO_CERTS}/public.crt` },
      { file: 'server.key', target: `${MINIO_CERTS}/private.key` },
      { file: 'ca.crt', target: `${MINIO_CERTS}/CAs/ca.crt` },
    ];
  }

  override defaultHealthcheck(dnsName: string): HealthcheckProps {
    return { command: ['curl', '-fsS', '--max-time', '4', '--cacert', `${MINIO_CERTS}/CAs/ca.crt`, `https://${dnsName}:9000/minio/health/live`] };
  }
}

/**
 * MinIO's setup: a one-shot container of the official `mc` image, started once MinIO is healthy,
 * that runs the generated `config/<minio>/podmesh-users.sh` (mounted read-only): it creates the
 * bucket when missing and, unless MinIO shares its root user, one user per client with its own
 * password and a policy limited to the bucket. The clients on MinIO's host start once it completed.
 * Created by the Minio preset; not a construct to create by hand.
 */
export class MinioSetup extends InfraService {
  /** The MinIO it sets up. */
  public readonly minio: Minio;

  constructor(scope: Construct, id: string, minio: Minio, placement: Pick<WorkloadProps, 'host' | 'network'>) {
    super(scope, id, {
      image: MINIO_MC_IMAGE,
      ...(placement.host ? { host: placement.host } : {}),
      ...(placement.network ? { network: placement.network } : {}),
      // MinIO's own health check (unless the stack turned it off) says when it takes requests.
      dependsOn: [{ service: minio, condition: minio.props.healthcheck === false ? 'started' : 'healthy' }],
      healthcheck: false,
      restart: 'no',
      command: [MINIO_SETUP_SCRIPT],
    });
    this.minio = minio;
  }

  /** The image's entrypoint is `mc`: the script runs under its `/bin/sh` (bash in the UBI micro base). */
  override entrypoint(): readonly string[] {
    return ['/bin/sh'];
  }

  /** mc keeps its configuration (the alias with the root credentials, the CA) in a tmpfs: nothing else is written. */
  override securityNeeds(): SecurityNeeds {
    return { tmpfs: [{ path: '/tmp' }] };
  }
}

/** Preset values under the user's: user props win, maps are merged key by key. */
function withPreset(user: Partial<WorkloadProps>, preset: WorkloadProps): WorkloadProps {
  return {
    ...preset,
    ...user,
    ports: user.ports ?? preset.ports,
    environment: { ...preset.environment, ...user.environment },
    image: user.image ?? preset.image,
  };
}
