// Ashchan's services as the seed describes them, shared by the dev and prod stacks.
import { Minio, Postgres, Redis, Service, type Host, type Network, type Stack, type Workload } from 'podmesh';

/** Version of the Ashchan images the stacks run. */
export const ASHCHAN_VERSION = '1.0.0';

const image = (name: string) => `ghcr.io/ashchan/${name}:${ASHCHAN_VERSION}`;

/** Where each group of Ashchan services runs. */
export interface AshchanPlacement {
  readonly network: Network;
  readonly gateway: Host;
  readonly apps: Host;
  readonly media: Host;
  readonly data: Host;
  /** Keep the plain-HTTP ports 9502-9506 (dev), or only mTLS (the seed's migration step 6). */
  readonly plainHttp: boolean;
  /** Host names of the gateway's public TLS termination on 9501. */
  readonly publicHostnames: readonly string[];
}

/** The six application services behind mTLS and the three infrastructure services. */
export interface AshchanServices {
  readonly gateway: Service;
  readonly auth: Service;
  readonly boards: Service;
  readonly media: Service;
  readonly search: Service;
  readonly moderation: Service;
  readonly postgres: Postgres;
  readonly redis: Redis;
  readonly minio: Minio;
}

/** Adds Ashchan's nine services to a stack: the seed's names, ports and static IPs. */
export function addAshchan(stack: Stack, at: AshchanPlacement): AshchanServices {
  const { network } = at;
  const http = (port: number) => (at.plainHttp ? { ports: { http: port } } : {});
  const postgres = new Postgres(stack, 'postgres', { host: at.data, network, serviceName: 'postgresql' });
  const redis = new Redis(stack, 'redis', { host: at.data, network });
  const minio = new Minio(stack, 'minio', { host: at.data, network, rootUser: 'ashchan' });
  const db: Workload[] = [postgres, redis];

  const auth = new Service(stack, 'auth', {
    host: at.apps, network, image: image('auth-accounts'), serviceName: 'auth-accounts',
    ip: '10.90.0.21', ...http(9502), dependsOn: db,
  });
  const media = new Service(stack, 'media', {
    host: at.media, network, image: image('media-uploads'), serviceName: 'media-uploads',
    ...http(9504), dependsOn: [postgres, minio],
  });
  const moderation = new Service(stack, 'moderation', {
    host: at.apps, network, image: image('moderation-anti-spam'), serviceName: 'moderation-anti-spam',
    ...http(9506), dependsOn: db,
  });
  const search = new Service(stack, 'search', {
    host: at.apps, network, image: image('search-indexing'), serviceName: 'search-indexing',
    ...http(9505), dependsOn: db,
  });
  const boards = new Service(stack, 'boards', {
    host: at.apps, network, image: image('boards-threads-posts'), serviceName: 'boards-threads-posts',
    ip: '10.90.0.22', ...http(9503), dependsOn: [...db, media, moderation],
    // Seed, "Request Flow Example": boards calls media and moderation.
    calls: [media, moderation],
  });
  const gateway = new Service(stack, 'gateway', {
    host: at.gateway, network, image: image('api-gateway'), serviceName: 'api-gateway',
    ip: '10.90.0.10', ports: { public: { port: 9501, publish: true } },
    publicTls: { hostnames: at.publicHostnames },
    dependsOn: [auth, boards, media, search, moderation],
    // The gateway routes to every application service (seed: gateway → auth, gateway → boards, …).
    calls: [auth, boards, media, search, moderation],
  });
  return { gateway, auth, boards, media, search, moderation, postgres, redis, minio };
}
