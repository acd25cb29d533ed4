// An application service of the mesh: reachable over mTLS at https://<name>.<domain>:<port>.
import type { Construct } from 'constructs';
import * as z from 'zod';
import { IMAGE_REF, isHostName } from '../core/names.ts';
import { parseIp } from '../core/ip.ts';
import type { CertKind } from './certificates.ts';
import type { SecurityNeeds } from './security.ts';
import { Workload, unionProblem, workloadSchema, type HealthcheckProps, type TlsMount, type WorkloadProps } from './workload.ts';

/** mTLS listener of a service. */
export interface MtlsProps {
  /**
   * Port of the mTLS listener inside the container.
   * @default 8443
   */
  readonly port?: number;
}

/** A public TLS termination certificate (the gateway's, port 9501). */
export interface PublicTlsProps {
  /** Host names clients use, e.g. `['ashchan.example']`; the first is the CN. */
  readonly hostnames: readonly string[];
  /**
   * IP addresses to add to the SAN.
   * @default - none
   */
  readonly ipAddresses?: readonly string[];
  /**
   * Name of the port (in `ports`) that terminates public TLS with this certificate. Hyperf
   * services get a TLS listener there that asks for no client certificate.
   * @default 'public'
   */
  readonly port?: string;
}

/** How podmesh configures a Hyperf application. */
export interface HyperfProps {
  /**
   * The application's root in the image: the generated files are mounted at
   * `<appRoot>/config/autoload/`.
   * @default '/opt/www'
   */
  readonly appRoot?: string;
  /**
   * Hyperf server name of the mTLS listener. Hyperf serves the routes registered for a server's
   * name, and `config/routes.php` and `#[Controller]` register for `http` unless told otherwise,
   * so the default serves the application's existing routes over mTLS. The seed calls it `mtls`:
   * choose that only if the routes are registered with `Router::addServer('mtls', …)`.
   * @default 'http'
   */
  readonly serverName?: string;
}

/**
 * A proxy in the service's network namespace that speaks mTLS for an application that cannot: it
 * terminates inbound mTLS on the service's mTLS port (the call policy, the CRL, OCSP stapling) and
 * forwards plain HTTP to the application on 127.0.0.1, and it originates mTLS for the
 * application's outbound calls, which go to `http://127.0.0.1:<port>`.
 */
export interface SidecarProps {
  /**
   * The proxy: HAProxy (run and tested with Debian's 2.6), or Envoy (the configuration is
   * rendered only; README "Sidecar").
   */
  readonly proxy: 'haproxy' | 'envoy';
  /**
   * Port the application serves plain HTTP on, at 127.0.0.1 inside the shared network namespace.
   * @default 8080
   */
  readonly appPort?: number;
  /**
   * Local port of each call, by the called service's name: the application reaches it at
   * `http://127.0.0.1:<port>` (its `<NAME>_SERVICE_URL`). Calls not listed get the first free
   * port from 15001 up, in the order of `calls`.
   * @default - 15001, 15002, … in the order of calls
   */
  readonly outbound?: Readonly<Record<string, number>>;
  /**
   * The proxy's image.
   * @default - 'docker.io/library/haproxy:2.6' or 'docker.io/envoyproxy/envoy:v1.31-latest'
   */
  readonly image?: string;
}

/** The default image of each sidecar proxy. */
export const SIDECAR_IMAGES = { haproxy: 'docker.io/library/haproxy:2.6', envoy: 'docker.io/envoyproxy/envoy:v1.31-latest' } as const;

/** Options of an application Service. */
export interface ServiceProps extends WorkloadProps {
  /**
   * The services this one may call over mTLS (the call policy): each gets `<NAME>_SERVICE_URL`
   * here and accepts this service's client certificate (`MTLS_ALLOWED_CLIENTS`); a call nobody
   * declared is refused. A call implies start order: this service starts after the services it
   * calls, as if they were in `dependsOn` (so they need not be listed there; on a Podman that
   * cannot report health to systemd, before 4.7, its units wait for the start), except where calls
   * close a loop: two services that call each other get no order between them (TOPOLOGY.md says
   * so), never a cycle error. Depending on an mTLS service means calling it, so it must be listed.
   * @default - none
   */
  readonly calls?: ReadonlyArray<Service | string>;
  /**
   * The service is a Hyperf application: podmesh generates its `config/autoload/server.php`,
   * `mtls_client.php`, `mtls_policy.php` and the mTLS classes of `app/Podmesh/` (the service's
   * own `Policy.php`, the rest shared by the host's Hyperf services) and mounts them under
   * `appRoot`. `false` for images that configure themselves from the environment alone.
   * @default { appRoot: '/opt/www', serverName: 'http' }
   */
  readonly hyperf?: false | HyperfProps;
  /**
   * The mTLS listener.
   * @default { port: 8443 }
   */
  readonly mtls?: MtlsProps;
  /**
   * Issue a certificate for public TLS termination (`/etc/mtls/public.crt`, `public.key`).
   * @default - none
   */
  readonly publicTls?: PublicTlsProps;
  /**
   * Run a proxy beside the application that does its mTLS (for applications that cannot): the
   * application then serves plain HTTP on 127.0.0.1 and calls other services through the proxy.
   * Needs `hyperf: false` (a Hyperf service speaks mTLS itself).
   * @default - none: the application speaks mTLS itself
   */
  readonly sidecar?: SidecarProps;
}

const portNumber = z.number().int().min(1, { error: 'ports are 1-65535' }).max(65535, { error: 'ports are 1-65535' });

const schema = workloadSchema.extend({
  hyperf: z
    .union([
      z.literal(false),
      z.object({
        appRoot: z.string().regex(/^\/[^\s:,]*$/, { error: 'must be an absolute path without spaces, ":" or ","' }).optional(),
        serverName: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, { error: 'must be a Hyperf server name: a letter, then letters, digits, "_" or "-"' }).optional(),
      }),
    ], { error: (i) => unionProblem(i, 'must be false (no Hyperf configuration) or { appRoot, serverName }') })
    .optional(),
  calls: z
    .array(z.union([z.string(), z.custom<Workload>((v) => v instanceof Workload)], { error: 'must be a Service or a service name' }))
    .optional(),
  mtls: z
    .object({ port: z.number().int().min(1).max(65535, { error: 'ports are 1-65535' }).optional() })
    .optional(),
  publicTls: z
    .object({
      hostnames: z.array(z.string().refine(isHostName, { error: (i) => `${JSON.stringify(String(i.input))} is not a host name` })).min(1, { error: 'give at least one host name' }),
      ipAddresses: z.array(z.string().refine((v) => parseIp(v) !== undefined, { error: (i) => `${JSON.stringify(String(i.input))} is not an IPv4 address` })).optional(),
      port: z.string().min(1).optional(),
    })
    .optional(),
  sidecar: z
    .object({
      proxy: z.enum(['haproxy', 'envoy'], { error: 'must be "haproxy" or "envoy"' }),
      appPort: portNumber.optional(),
      outbound: z.record(z.string(), portNumber).optional(),
      image: z.string().regex(IMAGE_REF, { error: (i) => `${JSON.stringify(String(i.input))} is not an image reference like "docker.io/library/haproxy:2.6"` }).optional(),
    })
    .strict()
    .optional(),
});

/** Certificate paths inside every mTLS container (the seed's `/etc/mtls`). */
export const MTLS_DIR = '/etc/mtls';

/**
 * An application service behind mTLS (gateway, auth, boards, …): it gets a server and a client
 * certificate, the seed's environment, and is called at `https://<name>.<domain>:8443`.
 */
export class Service extends Workload {
  public readonly kind = 'app' as const;
  /** mTLS port inside the container. */
  public readonly mtlsPort: number;

  constructor(scope: Construct, id: string, props: ServiceProps) {
    super(scope, id, props, schema as unknown as z.ZodType<WorkloadProps>);
    this.mtlsPort = (this.props as ServiceProps).mtls?.port ?? 8443;
  }

  /** Declared calls, as given (services or names). */
  get calls(): ReadonlyArray<Service | string> {
    return [...((this.props as ServiceProps).calls ?? []), ...this.extraCalls];
  }

  private readonly extraCalls: Array<Service | string> = [];

  /** Allows this service to call `targets` over mTLS (the same as listing them in `calls`). */
  allowCallsTo(...targets: ReadonlyArray<Service | string>): this {
    this.extraCalls.push(...targets);
    return this;
  }

  /** The Hyperf settings with defaults, or undefined for `hyperf: false`. */
  get hyperf(): Required<HyperfProps> | undefined {
    const h = (this.props as ServiceProps).hyperf;
    return h === false ? undefined : { appRoot: h?.appRoot ?? '/opt/www', serverName: h?.serverName ?? 'http' };
  }

  /** Public TLS names, if the service terminates public TLS. */
  get publicTls(): PublicTlsProps | undefined {
    return (this.props as ServiceProps).publicTls;
  }

  /** The sidecar proxy, when the application leaves mTLS to one. */
  get sidecar(): SidecarProps | undefined {
    return (this.props as ServiceProps).sidecar;
  }

  /** A server and a client certificate, and the public one when asked for. */
  override certificateKinds(): readonly CertKind[] {
    return this.publicTls ? ['server', 'client', 'public'] : ['server', 'client'];
  }

  /** The whole certificate folder at the seed's `/etc/mtls`; none with a sidecar, which mounts it instead. */
  override tlsMounts(): readonly TlsMount[] {
    return this.sidecar ? [] : [{ file: '', target: MTLS_DIR }];
  }

  /** GET /health over mTLS with the service's own client certificate; with a sidecar, the application's plain port. */
  defaultHealthcheck(dnsName: string): HealthcheckProps {
    if (this.sidecar) return { command: ['curl', '-fsS', '--max-time', '4', `http://127.0.0.1:${this.sidecar.appPort ?? 8080}/health`] };
    return {
      command: [
        'curl', '-fsS', '--max-time', '4',
        '--cacert', `${MTLS_DIR}/ca.crt`, '--cert', `${MTLS_DIR}/client.crt`, '--key', `${MTLS_DIR}/client.key`,
        `https://${dnsName}:${this.mtlsPort}/health`,
      ],
    };
  }

  /** /tmp, and for Hyperf applications `<appRoot>/runtime` (its proxy classes, logs, pid file). */
  override securityNeeds(): SecurityNeeds {
    const h = this.hyperf;
    return { tmpfs: [{ path: '/tmp' }, ...(h ? [{ path: `${h.appRoot === '/' ? '' : h.appRoot}/runtime` }] : [])] };
  }

  /** Whether a construct is a Service. */
  static isService(x: unknown): x is Service {
    return x instanceof Service;
  }
}
