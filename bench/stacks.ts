// Generated stacks for benchmarks: N services on one host, with a realistic mix of dependencies.
import { App, Host, Network, Postgres, Redis, Service, Stack } from 'podmesh';

/** A single-host stack of `services` workloads (two of them infrastructure), named `name`. */
export function generatedStack(services: number, app = new App(), name = `bench-${services}`): App {
  const stack = new Stack(app, name, { project: 'bench' });
  const host = new Host(stack, 'local');
  const network = new Network(stack, 'mesh', { subnet: '10.64.0.0/16', domain: 'bench.local', bridgeName: 'bench0' });
  const db = new Postgres(stack, 'postgres', { host, network });
  const cache = new Redis(stack, 'redis', { host, network });
  const apps: Service[] = [];
  for (let i = 0; i < services - 2; i++) {
    // Each service depends on the data stores and on up to two earlier services.
    const callees = [...new Set([apps[i - 1], apps[Math.floor(i / 2) - 1]].filter((x): x is Service => x !== undefined))];
    apps.push(
      new Service(stack, `svc-${i}`, {
        host,
        network,
        image: `ghcr.io/bench/svc-${i % 17}:1.0.${i % 5}`,
        ports: { http: 9000 + (i % 100) },
        environment: { LOG_LEVEL: 'info', SHARD: String(i % 8) },
        // Services speak mTLS: a dependency on one must be an allowed call.
        dependsOn: [db, cache, ...callees],
        calls: callees,
      }),
    );
  }
  return app;
}

/**
 * A multi-host stack: `hosts` hosts joined by WireGuard (full mesh: hosts × (hosts − 1) peer
 * entries), `services` workloads spread evenly, PostgreSQL and Redis on the first host, and each
 * service calling up to two earlier ones.
 */
export function meshStack(hosts: number, services: number, app = new App()): App {
  const stack = new Stack(app, `mesh-${hosts}x${services}`, { project: 'mesh', wireguard: { presharedKeys: true } });
  const hostList = Array.from({ length: hosts }, (_, i) => new Host(stack, `h${i}`, { endpoint: `198.51.100.${i + 1}:51820` }));
  const network = new Network(stack, 'mesh', { subnet: '10.64.0.0/16', domain: 'mesh.local', bridgeName: 'mesh0' });
  const db = new Postgres(stack, 'postgres', { host: hostList[0], network });
  const cache = new Redis(stack, 'redis', { host: hostList[0], network });
  const apps: Service[] = [];
  for (let i = 0; i < services - 2; i++) {
    const callees = [apps[i - 1], apps[Math.floor(i / 2) - 1]].filter((x): x is Service => x !== undefined);
    apps.push(
      new Service(stack, `svc-${i}`, {
        host: hostList[(i + 2) % hosts],
        network,
        image: `ghcr.io/bench/svc-${i % 17}:1.0.${i % 5}`,
        environment: { LOG_LEVEL: 'info', SHARD: String(i % 8) },
        dependsOn: [db, cache, ...new Set(callees)],
        calls: [...new Set(callees)],
      }),
    );
  }
  return app;
}
