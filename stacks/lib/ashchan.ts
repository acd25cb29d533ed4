// Ashchan as one construct: the seed's six services behind mTLS and its PostgreSQL, Redis and
// MinIO, shared by the dev and prod stacks. It only groups them: their names (services, DNS,
// units, certificates, volumes) are the ones they would have directly in the stack.
import { Construct } from 'constructs';
import { z } from 'zod';
import { checkProps, Host, isHostName, Minio, Network, Postgres, Redis, Service, type Workload } from 'podmesh';

/** Version of the Ashchan images the stacks run. */
export const ASHCHAN_VERSION = '1.0.0';

/** The hosts that run each group of Ashchan's services. */
export interface AshchanHosts {
  /**
   * Host of the API gateway, which publishes public TLS on 9501.
   * @default - the stack's only host
   */
  readonly gateway?: Host;
  /**
   * Host of auth, boards, search and moderation.
   * @default - the stack's only host
   */
  readonly apps?: Host;
  /**
   * Host of the media service (beside the object store it writes to).
   * @default - the stack's only host
   */
  readonly media?: Host;
  /**
   * Host of PostgreSQL, Redis and MinIO.
   * @default - the stack's only host
   */
  readonly data?: Host;
}

/** Options of Ashchan. */
export interface AshchanProps {
  /** Host names of the gateway's public TLS termination on 9501; the first is the certificate's CN. */
  readonly publicHostnames: readonly string[];
  /**
   * Keep the plain-HTTP ports 9502-9506 beside mTLS (development), or serve mTLS only (the seed's
   * migration step 6).
   * @default false
   */
  readonly plainHttp?: boolean;
  /**
   * The mesh network every service joins.
   * @default - the stack's only network
   */
  readonly network?: Network;
  /**
   * Where each group of services runs.
   * @default - every service on the stack's only host
   */
  readonly hosts?: AshchanHosts;
  /**
   * Tag of the `ghcr.io/ashchan/*` images.
   * @default ASHCHAN_VERSION
   */
  readonly version?: string;
}

const host = z.custom<Host>((v) => v instanceof Host, { error: 'must be a Host construct' }).optional();

const schema = z.object({
  publicHostnames: z.array(z.string().refine(isHostName, { error: (i) => `${JSON.stringify(String(i.input))} is not a host name, e.g. "ashchan.example.org"` })).min(1, { error: 'give at least one host name' }),
  plainHttp: z.boolean().optional(),
  network: z.custom<Network>((v) => v instanceof Network, { error: 'must be a Network construct' }).optional(),
  hosts: z.object({ gateway: host, apps: host, media: host, data: host }).optional(),
  version: z.string().regex(/^[\w][\w.-]{0,127}$/, { error: 'must be an image tag, e.g. "1.0.0"' }).optional(),
});

/**
 * Ashchan, the imageboard of the seed: gateway, auth, boards, media, search and moderation behind
 * mTLS, with the seed's names, ports and static IPs, and the call policy of its request flow.
 *
 * @example
 * const ashchan = new Ashchan(stack, 'ashchan', { publicHostnames: ['ashchan.example.org'] });
 * ashchan.boards.allowCallsTo(ashchan.search);
 */
export class Ashchan extends Construct {
  /** The API gateway: public TLS on 9501, calls every application service. */
  public readonly gateway: Service;
  /** Accounts and sessions (`auth-accounts`, 10.90.0.21). */
  public readonly auth: Service;
  /** Boards, threads and posts (`boards-threads-posts`, 10.90.0.22); calls media and moderation. */
  public readonly boards: Service;
  /** Uploads (`media-uploads`), stored in MinIO. */
  public readonly media: Service;
  /** Search and indexing (`search-indexing`). */
  public readonly search: Service;
  /** Moderation and anti-spam (`moderation-anti-spam`). */
  public readonly moderation: Service;
  /** PostgreSQL (`postgresql`); database and role are the stack's project. */
  public readonly postgres: Postgres;
  /** Redis. */
  public readonly redis: Redis;
  /** MinIO, with the root user `ashchan`. */
  public readonly minio: Minio;

  constructor(scope: Construct, id: string, props: AshchanProps) {
    super(scope, id);
    const p = checkProps(this, schema, props);
    const { network } = p;
    const at = p.hosts ?? {};
    const image = (name: string) => `ghcr.io/ashchan/${name}:${p.version ?? ASHCHAN_VERSION}`;
    const http = (port: number) => (p.plainHttp ? { ports: { http: port } } : {});
    this.postgres = new Postgres(this, 'postgres', { host: at.data, network, serviceName: 'postgresql' });
    this.redis = new Redis(this, 'redis', { host: at.data, network });
    this.minio = new Minio(this, 'minio', { host: at.data, network, rootUser: 'ashchan' });
    const db: Workload[] = [this.postgres, this.redis];

    this.auth = new Service(this, 'auth', {
      host: at.apps, network, image: image('auth-accounts'), serviceName: 'auth-accounts',
      ip: '10.90.0.21', ...http(9502), dependsOn: db,
    });
    this.media = new Service(this, 'media', {
      host: at.media, network, image: image('media-uploads'), serviceName: 'media-uploads',
      ...http(9504), dependsOn: [this.postgres, this.minio],
    });
    this.moderation = new Service(this, 'moderation', {
      host: at.apps, network, image: image('moderation-anti-spam'), serviceName: 'moderation-anti-spam',
      ...http(9506), dependsOn: db,
    });
    this.search = new Service(this, 'search', {
      host: at.apps, network, image: image('search-indexing'), serviceName: 'search-indexing',
      ...http(9505), dependsOn: db,
    });
    this.boards = new Service(this, 'boards', {
      host: at.apps, network, image: image('boards-threads-posts'), serviceName: 'boards-threads-posts',
      ip: '10.90.0.22', ...http(9503), dependsOn: db,
      // Seed, "Request Flow Example": boards calls media and moderation (and so starts after them).
      calls: [this.media, this.moderation],
    });
    // Only the valid names: a bad one is reported once, here, as the Ashchan prop it was given as.
    const hostnames = (p.publicHostnames ?? []).filter((h) => typeof h === 'string' && isHostName(h));
    this.gateway = new Service(this, 'gateway', {
      host: at.gateway, network, image: image('api-gateway'), serviceName: 'api-gateway',
      ip: '10.90.0.10', ports: { public: { port: 9501, publish: true } },
      ...(hostnames.length > 0 ? { publicTls: { hostnames } } : {}),
      // The gateway routes to every application service (seed: gateway → auth, gateway → boards, …).
      calls: [this.auth, this.boards, this.media, this.search, this.moderation],
    });
  }
}
