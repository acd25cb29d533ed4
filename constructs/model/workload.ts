// What every container of the mesh has in common: image, placement, address, ports, health.
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { Construct } from 'constructs';
import * as z from 'zod';
import { checkProps } from '../core/props.ts';
import { uniqueId } from '../core/unique.ts';
import { DNS_LABEL, DURATION, ENV_NAME, IMAGE_REF, WAIT_DURATION_ERROR, isDnsName, isWaitDuration, suggestLabel } from '../core/names.ts';
import { parseIp } from '../core/ip.ts';
import { resolveStackPath } from '../core/stack-file.ts';
import { Host } from './host.ts';
import { Network } from './network.ts';
import { Volume } from './volume.ts';
import type { CertKind, KeyType } from './certificates.ts';
import { resourcesSchema, securitySchema, tmpfsSchema, type ResourcesProps, type SecurityNeeds, type SecurityProps, type TmpfsProps } from './security.ts';

/** A container port, optionally published on the host. */

/** A generated secret a workload reads from a file. */
export interface SecretFileSpec {
  /** The secret's name, unique within its workload (its id is `<workload>/<secret>`). */
  readonly secret: string;
  /**
   * What the file holds: the value itself, or a Redis configuration (`requirepass`) built from it.
   * @default 'value'
   */
  readonly format?: 'value' | 'redis-conf';
}

export interface PortProps {
  /** Port inside the container. */
  readonly port: number;
  /**
   * @default 'tcp'
   */
  readonly protocol?: 'tcp' | 'udp';
  /**
   * Publish the port on the host: `true` for the same number, a number for another host port.
   * @default false
   * @see https://github.com/compose-spec/compose-spec/blob/main/spec.md#ports
   */
  readonly publish?: boolean | number;
  /**
   * Host address a published port binds to.
   * @default - every address of the host
   */
  readonly hostIp?: string;
}

/** How the runtime checks that a container is healthy. */
export interface HealthcheckProps {
  /**
   * Command to run in the container: an array runs directly (exec form), a string runs with
   * `/bin/sh -c`.
   */
  readonly command: readonly string[] | string;
  /** @default '10s' */
  readonly interval?: string;
  /** @default '5s' */
  readonly timeout?: string;
  /** @default 5 */
  readonly retries?: number;
  /** @default '10s' */
  readonly startPeriod?: string;
}

/** A start-up dependency on another workload. */
export interface DependencyProps {
  /** The workload that must start first. */
  readonly service: Workload | string;
  /**
   * What "started" means: `healthy` waits for its health check.
   * @default - 'healthy' when the dependency has a health check, else 'started'
   */
  readonly condition?: 'healthy' | 'started';
  /**
   * Only for a dependency on another host: how long the dependent's unit waits, at most, for the
   * dependency's address and port (its mTLS port, else its first TCP port) to accept connections
   * through the tunnel before it fails. systemd on one host cannot see a unit or a health check
   * on another, so across hosts "started" and "healthy" both mean "accepts connections".
   * @default - the stack's `wireguard.dependencyWait` ('300s')
   */
  readonly crossHostWait?: string;
}

/** A volume or host folder mounted into the container. */
export interface MountProps {
  /** Named volume to mount (exclusive with `hostPath`). @default - none */
  readonly volume?: Volume;
  /**
   * Host folder to bind-mount. An absolute path is used as given: `podmesh apply` checks that it
   * exists and refuses to install while it does not. A relative one resolves below the host
   * root's `data/` folder (`/etc/podmesh/<stack>/data/<hostPath>`; the compose files in out/ use
   * `<state>/<stack>/data/<host>/<hostPath>`), which apply creates when missing. TOPOLOGY.md lists
   * where each is.
   * @default - none
   */
  readonly hostPath?: string;
  /** Path inside the container. */
  readonly target: string;
  /** @default false */
  readonly readOnly?: boolean;
}

/** Options of the certificates podmesh issues for a workload. */
export interface CertificateProps {
  /**
   * Key algorithm.
   * @default 'ecdsa-p256'
   */
  readonly keyType?: KeyType;
  /**
   * Validity in days; renewed at 70% of it.
   * @default 365
   */
  readonly lifetimeDays?: number;
}

/** Restart policy shared by compose and systemd. */
export type RestartPolicy = 'no' | 'always' | 'on-failure' | 'unless-stopped';

/** Options every workload takes. */
export interface WorkloadProps {
  /** OCI image reference, e.g. `docker.io/library/redis:7-alpine`. */
  readonly image: string;
  /**
   * Host the workload runs on.
   * @default - the stack's only host
   */
  readonly host?: Host;
  /**
   * Network it joins.
   * @default - the stack's only network
   */
  readonly network?: Network;
  /**
   * Static IPv4 address on the network.
   * @default - allocated from the host's slice and kept in the stack's lock file
   */
  readonly ip?: string;
  /**
   * Further DNS names (fully qualified) that resolve to this workload inside the mesh.
   * @default - only `<name>.<domain>`
   */
  readonly aliases?: readonly string[];
  /**
   * Named ports, e.g. `{ http: 9502 }` or `{ public: { port: 9501, publish: true } }`.
   * @default - none
   */
  readonly ports?: Readonly<Record<string, number | PortProps>>;
  /**
   * Extra environment variables. Generated variables win no clash: a clash is an error.
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Env files (`KEY=value` lines, `#` comments, optional quotes) read at synth and merged under
   * `environment` (which wins). A relative path is relative to the folder of the stack file that
   * declares the workload (`stacks/` for `stacks/shop.ts`), whatever directory synth runs in: the
   * loader records the file it imports while its default export runs. A stack built in code
   * without the loader (a test, your own script calling `synth`) resolves against the working
   * directory. Their values land in `out/`:
   * settings, not secrets (podmesh generates the secrets it knows). A variable podmesh generates
   * is an error naming the file.
   * @default - none
   */
  readonly envFiles?: readonly string[];
  /**
   * Workloads that must be up first. A Service also waits for the services in its `calls`
   * without listing them here.
   * @default - none
   */
  readonly dependsOn?: ReadonlyArray<Workload | string | DependencyProps>;
  /**
   * Health check; `false` for none.
   * @default - a check that fits the kind of workload
   */
  readonly healthcheck?: HealthcheckProps | false;
  /**
   * @default 'unless-stopped'
   */
  readonly restart?: RestartPolicy;
  /**
   * Volumes and host folders to mount.
   * @default - none (infrastructure services add their data volume)
   */
  readonly mounts?: readonly MountProps[];
  /**
   * Command (arguments to the image's entrypoint).
   * @default - the image's
   */
  readonly command?: readonly string[];
  /**
   * Container name.
   * @default - `<project>-<name>-1`, the name compose gives
   */
  readonly containerName?: string;
  /**
   * Logical name of the application (`SERVICE_NAME`), e.g. `auth-accounts`.
   * @default - the construct id
   */
  readonly serviceName?: string;
  /**
   * User (and group) the container process runs as, `uid[:gid]` or a name.
   * @default - the image's
   */
  readonly user?: string;
  /**
   * Mount the container's root filesystem read-only. `false` alone is refused: a writable root is
   * `security: { writableRootFilesystem: { reason } }`.
   * @default true
   */
  readonly readOnlyRootFilesystem?: boolean;
  /**
   * tmpfs mounts on top of the preset's (a preset's own come first; the same path here wins).
   * @default - the preset's: `/tmp` for every workload, `/var/run/postgresql` for PostgreSQL
   * @see https://docs.podman.io/en/v5.4.2/markdown/podman-run.1.html#tmpfs-fs
   */
  readonly tmpfs?: ReadonlyArray<string | TmpfsProps>;
  /**
   * Memory, CPU and process limits.
   * @default { memory: '1g', pids: 1024 }
   */
  readonly resources?: ResourcesProps;
  /**
   * Relaxations of the secure defaults, each with its reason.
   * @default - none: every default holds
   */
  readonly security?: SecurityProps;
  /**
   * Key type and lifetime of the certificates issued for this workload (services behind mTLS,
   * and infrastructure that serves TLS such as MinIO).
   * @default - ECDSA P-256, 365 days
   */
  readonly certificate?: CertificateProps;
}

/** A file or folder of the workload's certificate folder (`pki/services/<name>/`), mounted read-only. */
export interface TlsMount {
  /** `''` for the whole folder, or a file name in it, e.g. `server.crt`. */
  readonly file: string;
  /** Path inside the container. */
  readonly target: string;
}

const isWorkload = (v: unknown): boolean => v instanceof Workload;

const port = z.number().int().min(1, { error: 'ports are 1-65535' }).max(65535, { error: 'ports are 1-65535' });

const portProps = z.object({
  port,
  protocol: z.enum(['tcp', 'udp'], { error: 'must be "tcp" or "udp"' }).optional(),
  publish: z.union([z.boolean(), port]).optional(),
  hostIp: z.string().refine((v) => parseIp(v) !== undefined, { error: 'must be an IPv4 address' }).optional(),
});

/**
 * Mount paths go into `-v source:target:options` (compose short syntax, `Volume=` in Quadlet), where
 * `:` and `,` are separators: `/data:ro` would silently become a read-only mount of `/data`.
 */
const MOUNT_PATH = /^[^:,\x00-\x1f\x7f]+$/;
const MOUNT_PATH_ERROR = 'must not contain ":", "," or control characters (they separate the parts of a mount); rename the folder or mount its parent';

const PORT_NAME = /^[a-z][a-z0-9-]*$/;
const PORT_NAME_ERROR = 'port names are lower-case words like "http"';

/**
 * A union's problem in the words of the option the value's shape chose: zod alone says "Invalid
 * input". An option that failed on the value's type at its top did not fit; the first that did speaks.
 */
export function unionProblem(issue: { readonly code?: string; readonly errors?: unknown }, otherwise: string): string | undefined {
  if (issue.code !== 'invalid_union') return undefined;
  const options = (issue.errors ?? []) as ReadonlyArray<ReadonlyArray<{ readonly code: string; readonly path: readonly PropertyKey[]; readonly message: string }>>;
  // An option refused at its top by type, literal value or a custom check (a number for an
  // object, `false`, an object that is not a construct) did not fit.
  const misfit = new Set(['invalid_type', 'invalid_value', 'custom']);
  const first = options.find((o) => o.length > 0 && !o.some((i) => misfit.has(i.code) && i.path.length === 0))?.[0];
  if (!first) return otherwise;
  return first.path.length > 0 ? `${first.path.map(String).join('.')}: ${first.message}` : first.message;
}

const duration = z.string().regex(DURATION, { error: 'must be a duration like "10s", "1m30s" or "500ms"' });

/** Base schema for every workload's props; kinds extend it. */
export const workloadSchema = z.object({
  image: z.string().superRefine((v, ctx) => {
    if (/\s/.test(v)) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} contains whitespace. Image references have none: did you mean "${v.replace(/\s+/g, '')}"?` });
    } else if (!IMAGE_REF.test(v)) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not an image reference like "docker.io/library/redis:7-alpine" (repository paths are lower-case)` });
    }
  }),
  host: z.custom<Host>((v) => v instanceof Host, { error: 'must be a Host construct' }).optional(),
  network: z.custom<Network>((v) => v instanceof Network, { error: 'must be a Network construct' }).optional(),
  ip: z.string().refine((v) => parseIp(v) !== undefined, { error: (i) => `${JSON.stringify(String(i.input))} is not an IPv4 address` }).optional(),
  aliases: z.array(z.string().refine(isDnsName, { error: (i) => `${JSON.stringify(String(i.input))} is not a DNS name` })).optional(),
  ports: z
    .record(
      z.string().regex(PORT_NAME, { error: PORT_NAME_ERROR }),
      z.union([port, portProps], { error: (i) => unionProblem(i, 'must be a port number (1-65535) or { port, protocol, publish, hostIp }') }),
      // zod's own words for a bad key are "Invalid key in record"
      { error: (i) => (i.code === 'invalid_key' ? `${PORT_NAME_ERROR}, not ${JSON.stringify(String(i.input))}` : undefined) },
    )
    .optional(),
  environment: z
    .record(z.string(), z.string({ error: 'environment values are strings: quote numbers and booleans' }))
    .superRefine((env, ctx) => {
      for (const name of Object.keys(env)) {
        if (ENV_NAME.test(name)) continue;
        const fix = name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^(\d)/, '_$1');
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `environment variable name "${name}" is not valid: use letters, digits and "_", not starting with a digit (e.g. "${fix}")`,
        });
      }
    })
    .optional(),
  envFiles: z.array(z.string().min(1)).optional(),
  dependsOn: z
    .array(
      z.union([
        z.custom<Workload>(isWorkload),
        z.string(),
        z.object({
          service: z.union([z.custom<Workload>(isWorkload), z.string()], { error: 'must be a workload or its name' }),
          condition: z.enum(['healthy', 'started']).optional(),
          crossHostWait: z.string().refine(isWaitDuration, { error: WAIT_DURATION_ERROR }).optional(),
        }),
      ], { error: (i) => unionProblem(i, 'must be a workload, its name, or { service, condition, crossHostWait }') }),
    )
    .optional(),
  healthcheck: z
    .union([
      z.literal(false),
      z.object({
        command: z.union([z.array(z.string()).min(1), z.string().min(1)], { error: 'must be a command: a non-empty array of words, or a shell string' }),
        interval: duration.optional(),
        timeout: duration.optional(),
        retries: z.number().int().min(1).optional(),
        startPeriod: duration.optional(),
      }),
    ], { error: (i) => unionProblem(i, 'must be false or { command, interval, timeout, retries, startPeriod }') })
    .optional(),
  restart: z.enum(['no', 'always', 'on-failure', 'unless-stopped']).optional(),
  mounts: z
    .array(
      z
        .object({
          volume: z.custom<Volume>((v) => v instanceof Volume, { error: 'must be a Volume construct' }).optional(),
          hostPath: z
            .string()
            .min(1)
            .regex(MOUNT_PATH, { error: MOUNT_PATH_ERROR })
            .refine((p) => p.startsWith('/') || !p.split('/').includes('..'), {
              error: 'must not climb out of the data folder with "..": give an absolute path, or one below the data folder (relative paths resolve below the host root\'s data/ folder, e.g. /etc/podmesh/<stack>/data/)',
            })
            .optional(),
          target: z.string().regex(/^\//, { error: 'must be an absolute path inside the container' }).regex(MOUNT_PATH, { error: MOUNT_PATH_ERROR }),
          readOnly: z.boolean().optional(),
        })
        .refine((m) => (m.volume === undefined) !== (m.hostPath === undefined), { error: 'give exactly one of volume or hostPath' }),
    )
    .optional(),
  command: z.array(z.string()).optional(),
  containerName: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, { error: 'must start with a letter or digit and hold only letters, digits, "_", "." and "-"' }).optional(),
  serviceName: z.string().min(1).regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must be one line without control characters: it names the service in logs, unit descriptions and PHP config' }).optional(),
  user: z.string().regex(/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/, { error: 'must be "uid[:gid]" or a user name' }).optional(),
  readOnlyRootFilesystem: z.boolean().optional(),
  tmpfs: z.array(tmpfsSchema).optional(),
  resources: resourcesSchema.optional(),
  security: securitySchema.optional(),
  certificate: z
    .object({
      keyType: z.enum(['ecdsa-p256', 'rsa-2048']).optional(),
      lifetimeDays: z.number().int().min(1).max(825, { error: 'leaf certificates live at most 825 days (CA/Browser Forum limit)' }).optional(),
    })
    .optional(),
});

/** What kind of workload: an application behind mTLS, or infrastructure without it. */
export type WorkloadKind = 'app' | 'infra';

/**
 * One container of the mesh. Use `Service` for applications with mTLS, and `Postgres`, `Redis`,
 * `Minio` or `InfraService` for infrastructure.
 */
export abstract class Workload extends Construct {
  /** Application or infrastructure. */
  public abstract readonly kind: WorkloadKind;
  /** Props after checking, with nothing defaulted yet. */
  public readonly props: WorkloadProps;
  private readonly presetMounts: MountProps[] = [];
  /** Variables read from `envFiles`, each with the file it came from, in file order. */
  public readonly fileEnvironment: ReadonlyArray<{ readonly name: string; readonly value: string; readonly file: string }>;

  protected constructor(scope: Construct, id: string, props: WorkloadProps, schema: z.ZodType<WorkloadProps> = workloadSchema) {
    super(scope, uniqueId(scope, id));
    this.props = checkProps(this, schema, props);
    const fromFiles: { name: string; value: string; file: string }[] = [];
    const fileProblems: string[] = [];
    // Names the schema refused (not strings, empty) are reported there; reading them says nothing more.
    for (const given of (this.props.envFiles ?? []).filter((f) => typeof f === 'string' && f !== '')) {
      const path = resolveStackPath(given);
      // Messages show where a relative path led, the first thing to check when it is wrong.
      const file = path === given ? given : `${given} (${path})`;
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        fileProblems.push(`env file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)}). A relative path is relative to the folder of the stack file.`);
        continue;
      }
      // Node's own dotenv reader (the format compose and `podman --env-file` read too).
      for (const [name, value] of Object.entries(parseEnv(text))) {
        if (ENV_NAME.test(name)) fromFiles.push({ name, value: value ?? '', file });
        else fileProblems.push(`env file ${file}: variable name "${name}" is not valid: use letters, digits and "_", not starting with a digit.`);
      }
    }
    this.fileEnvironment = fromFiles;
    if (fileProblems.length > 0) this.node.addValidation({ validate: () => fileProblems });
    if (!DNS_LABEL.test(id)) {
      this.node.addValidation({
        validate: () => [
          `service name "${id}" is not a valid DNS label: it becomes ${id}.<domain>. Use lower-case letters, digits and inner hyphens, e.g. "${suggestLabel(id)}".`,
        ],
      });
    }
  }

  /** Mounts from the props followed by those a preset added. */
  get mounts(): readonly MountProps[] {
    return [...(this.props.mounts ?? []), ...this.presetMounts];
  }

  /** Adds a mount on top of the props (used by presets for their data volume). */
  protected addMount(mount: MountProps): void {
    this.presetMounts.push(mount);
  }

  /** The service name, which is its DNS label. */
  get name(): string {
    return this.node.id;
  }

  /**
   * The entrypoint, when a preset replaces the image's (`command` then holds its arguments).
   * @default - the image's
   */
  entrypoint(): readonly string[] | undefined {
    return undefined;
  }

  /** Certificates podmesh issues for this workload (none unless the kind serves TLS). */
  certificateKinds(): readonly CertKind[] {
    return [];
  }

  /** Where the certificate files go in the container. */
  tlsMounts(): readonly TlsMount[] {
    return [];
  }

  /**
   * The health check used when the props give none. `undefined` means no check.
   * @internal
   */
  abstract defaultHealthcheck(dnsName: string): HealthcheckProps | undefined;

  /**
   * Secret files podmesh generates for this workload, by the variable that names the mounted file
   * (e.g. `{ POSTGRES_PASSWORD_FILE: { secret: 'password' } }`): the value is kept in the state
   * folder, mounted read-only at `/run/secrets/<file>` (a compose file secret, a Quadlet bind mount
   * of the host's copy), never put in the environment or written to `out/`.
   */
  secretFiles(): Readonly<Record<string, SecretFileSpec>> {
    return {};
  }

  /**
   * What the image needs of the secure defaults: capabilities its entrypoint uses, where it writes,
   * whether it drops root itself. The base: nothing added, a tmpfs on /tmp.
   */
  securityNeeds(): SecurityNeeds {
    return { tmpfs: [{ path: '/tmp' }] };
  }

  /** Whether a construct is a Workload. */
  static isWorkload(x: unknown): x is Workload {
    return x instanceof Workload;
  }
}
