// Each construct: defaults applied once, props checked at creation, resolved as documented.
import { Construct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { App, Host, InfraService, Minio, Network, Postgres, Redis, Service, Stack, Volume } from '../src/index.ts';
import { propIssues } from '../constructs/core/props.ts';
import { resolveStack } from '../src/resolve/resolve.ts';
import { miniStack, svc } from './helpers/stacks.ts';

describe('Stack', () => {
  it('defaults the project to its id, and refuses a non-label project', () => {
    const app = new App();
    expect(new Stack(app, 'dev').project).toBe('dev');
    const bad = new Stack(app, 'x', { project: 'My Project' });
    expect(propIssues(bad).map((i) => i.message)).toEqual(['project: must be a lower-case DNS label (letters, digits, inner hyphens), e.g. "ashchan"']);
  });

  it('finds the stack of a nested construct', () => {
    const { stack } = miniStack();
    expect(Stack.of(svc(stack, 'a'))).toBe(stack);
  });
});

describe('Host', () => {
  it('defaults to Podman 5.4, no endpoint, rootless left to the resolver', () => {
    const h = new Host(new Stack(new App(), 's'), 'h');
    expect([h.podmanVersion, h.rootless, h.endpoint]).toEqual(['5.4', undefined, undefined]);
  });

  it.each([
    ['4.3', 'podmanVersion: must be 4.4 or later: Quadlet first shipped with Podman 4.4'],
    ['five', 'podmanVersion: must look like "5.4" or "4.9.3"'],
  ])('refuses podmanVersion %s', (v, message) => {
    const h = new Host(new Stack(new App(), 's'), 'h', { podmanVersion: v });
    expect(propIssues(h).map((i) => i.message)).toEqual([message]);
  });

  it('refuses an endpoint without a port', () => {
    const h = new Host(new Stack(new App(), 's'), 'h', { endpoint: '198.51.100.1' });
    expect(propIssues(h)[0]!.message).toContain('must be "address:port" or "name:port"');
  });
});

describe('Network', () => {
  it('resolves to one segment with the given gateway and the network name as bridge', () => {
    const { stack } = miniStack();
    svc(stack, 'a');
    const [net] = resolveStack(stack).networks;
    expect(net).toEqual({
      id: 'mesh',
      path: 'mini/mesh',
      name: 'mesh',
      domain: 'mini.local',
      subnet: '10.90.0.0/24',
      bridgeName: 'mesh',
      bridgeNameGiven: false,
      internal: false,
      segments: [{ host: 'local', subnet: '10.90.0.0/24', gateway: '10.90.0.1' }],
    });
  });

  it('defaults the gateway to the first address', () => {
    const stack = new Stack(new App(), 's');
    new Host(stack, 'h');
    new Network(stack, 'n', { subnet: '10.1.2.0/24', domain: 's.local' });
    svc(stack, 'a');
    expect(resolveStack(stack).networks[0]!.segments[0]!.gateway).toBe('10.1.2.1');
  });

  it('refuses a gateway that is the network address', () => {
    const stack = new Stack(new App(), 's');
    new Host(stack, 'h');
    new Network(stack, 'n', { subnet: '10.1.2.0/24', gateway: '10.1.2.0', domain: 's.local' });
    svc(stack, 'a');
    expect(() => resolveStack(stack)).toThrow('[s/n] gateway 10.1.2.0 is not a usable address of 10.1.2.0/24. Pick one in 10.1.2.1-10.1.2.254 or leave gateway unset.');
  });
});

describe('Service', () => {
  it('resolves name, DNS name, container name, mTLS port and the generated environment', () => {
    const { stack } = miniStack();
    svc(stack, 'auth', { serviceName: 'auth-accounts', ports: { http: 9502 }, environment: { LOG_LEVEL: 'debug' } });
    const [s] = resolveStack(stack).services;
    expect(s).toMatchObject({
      name: 'auth',
      kind: 'app',
      serviceName: 'auth-accounts',
      dnsName: 'auth.mini.local',
      aliases: ['auth.mini.local'],
      containerName: 'mini-auth-1',
      hostname: 'auth',
      mtls: { port: 8443 },
      restart: 'unless-stopped',
      ports: [
        { name: 'http', port: 9502, protocol: 'tcp' },
        { name: 'mtls', port: 8443, protocol: 'tcp' },
      ],
      calls: [],
      callers: [],
      secrets: [],
    });
    expect(Object.fromEntries(s!.environment)).toEqual({
      LOG_LEVEL: 'debug',
      SERVICE_NAME: 'auth-accounts',
      SERVICE_DNS_NAME: 'auth.mini.local',
      SERVICE_SPIFFE_ID: 'spiffe://mini.local/mini/auth',
      MTLS_ENABLED: 'true',
      MTLS_PORT: '8443',
      MTLS_CERT_FILE: '/etc/mtls/server.crt',
      MTLS_KEY_FILE: '/etc/mtls/server.key',
      MTLS_CA_FILE: '/etc/mtls/ca.crt',
      MTLS_CLIENT_CERT_FILE: '/etc/mtls/client.crt',
      MTLS_CLIENT_KEY_FILE: '/etc/mtls/client.key',
      MTLS_VERIFY_CLIENT: 'true',
      MTLS_MIN_TLS_VERSION: 'TLSv1.3',
      MTLS_CRL_FILE: '/etc/mtls/crl.pem',
      MTLS_ALLOWED_CLIENTS: '',
      MTLS_ALLOWED_SPIFFE_IDS: '',
      OPENSSL_CONF: '/etc/podmesh/openssl.cnf',
    });
    // Sorted by name.
    expect(s!.environment.map(([k]) => k)).toEqual(s!.environment.map(([k]) => k).sort());
    expect(s!.healthcheck!.command).toEqual({
      exec: ['curl', '-fsS', '--max-time', '4', '--cacert', '/etc/mtls/ca.crt', '--cert', '/etc/mtls/client.crt', '--key', '/etc/mtls/client.key', 'https://auth.mini.local:8443/health'],
    });
  });

  it('refuses an mTLS port that clashes with a named port', () => {
    const { stack } = miniStack();
    svc(stack, 'auth', { ports: { http: 8443 } });
    expect(() => resolveStack(stack)).toThrow('[mini/auth] port 8443/tcp is declared twice (http and mtls). Give each listener its own port.');
  });

  it('orders services dependencies first, ties in construct order', () => {
    const { stack } = miniStack();
    svc(stack, 'web', { dependsOn: ['api'], calls: ['api'] });
    svc(stack, 'api', { dependsOn: ['db'] });
    svc(stack, 'worker');
    new Postgres(stack, 'db');
    expect(resolveStack(stack).services.map((s) => s.name)).toEqual(['worker', 'db', 'api', 'web']);
  });

  it('waits for health when the dependency has a check, else for start', () => {
    const { stack } = miniStack();
    new InfraService(stack, 'cache', { image: 'docker.io/library/memcached:1' });
    new Redis(stack, 'redis');
    svc(stack, 'api', { dependsOn: ['cache', 'redis'] });
    const api = resolveStack(stack).services.find((s) => s.name === 'api')!;
    expect(api.dependsOn).toEqual([
      { service: 'cache', condition: 'started' },
      { service: 'redis', condition: 'healthy' },
    ]);
  });
});

describe('infrastructure presets', () => {
  it('Postgres: image, port 5432, data volume, pg_isready, database and user', () => {
    const { stack } = miniStack();
    new Postgres(stack, 'postgres', { database: 'board', user: 'boarduser' });
    const r = resolveStack(stack);
    const s = r.services[0]!;
    expect(s.image).toBe('docker.io/library/postgres:16-alpine');
    expect(s.ports).toEqual([{ name: 'postgres', port: 5432, protocol: 'tcp' }]);
    expect(s.mounts).toEqual([{ type: 'volume', source: 'mini-postgres-data', target: '/var/lib/postgresql/data', readOnly: false }]);
    expect(s.environment).toEqual([['POSTGRES_DB', 'board'], ['POSTGRES_PASSWORD_FILE', '/run/secrets/postgres.password'], ['POSTGRES_USER', 'boarduser']]);
    // The password is a mounted file, never a variable.
    expect(s.secrets).toEqual([{ id: 'postgres/password', format: 'value', variable: 'POSTGRES_PASSWORD_FILE', file: 'postgres.password', target: '/run/secrets/postgres.password' }]);
    expect(s.healthcheck!.command).toEqual({ shell: 'pg_isready -U "$POSTGRES_USER" -d "$POSTGRES_DB"' });
    expect(r.volumes).toEqual([{ path: 'mini/postgres/data', name: 'mini-postgres-data', host: 'local' }]);
  });

  it('Postgres: database and user default to the stack\'s project; each client connects as a role of its own', () => {
    // GIVEN a stack whose project is "mini", a Postgres without database or user, and a client
    const { stack } = miniStack();
    const db = new Postgres(stack, 'db');
    svc(stack, 'api', { dependsOn: [db] });
    // WHEN
    const [server, client] = resolveStack(stack).services;
    // THEN
    expect([db.database, db.user]).toEqual(['mini', 'mini']);
    expect(server!.environment).toEqual([['POSTGRES_DB', 'mini'], ['POSTGRES_PASSWORD_FILE', '/run/secrets/db.password'], ['POSTGRES_USER', 'mini']]);
    expect(Object.fromEntries(client!.environment)).toMatchObject({ DB_HOST: 'db.mini.local', DB_DATABASE: 'mini', DB_USERNAME: 'api', DB_SCHEMA: 'api', DB_PASSWORD_FILE: '/run/secrets/api.db-password' });
    expect(client!.secrets.map((f) => [f.variable, f.id, f.target])).toEqual([['DB_PASSWORD_FILE', 'api/db-password', '/run/secrets/api.db-password']]);
  });

  it('Postgres: the project is the stack\'s, not its id', () => {
    const stack = new Stack(new App(), 'shop-dev', { project: 'shop' });
    expect(new Postgres(stack, 'db').database).toBe('shop');
  });

  it('Postgres outside a stack: an error that says where it belongs', () => {
    expect(() => new Postgres(new App(), 'db')).toThrow('[(app)] is not inside a Stack. Create hosts, networks and services in a stack');
  });

  it('Redis and Minio: ports and volumes; user props override the preset', () => {
    const { stack } = miniStack();
    new Redis(stack, 'redis', { image: 'docker.io/library/redis:7.4' });
    new Minio(stack, 'minio');
    const [redis, minio] = resolveStack(stack).services;
    expect(redis!.image).toBe('docker.io/library/redis:7.4');
    expect(redis!.mounts[0]!.target).toBe('/data');
    expect(minio!.ports.map((p) => p.port)).toEqual([9000, 9001]);
  });
});

describe('Volume', () => {
  it('is named after the project and its path, unless named', () => {
    const { stack } = miniStack();
    const v = new Volume(stack, 'uploads');
    const w = new Volume(stack, 'cache', { name: 'shared-cache' });
    svc(stack, 'a', { mounts: [{ volume: v, target: '/uploads' }, { volume: w, target: '/cache', readOnly: true }] });
    expect(resolveStack(stack).volumes.map((x) => x.name)).toEqual(['mini-uploads', 'shared-cache']);
  });

  it('takes no name from a construct that only groups: names come from podmesh constructs', () => {
    // GIVEN a plain construct grouping a Postgres and a volume of its own
    const { stack } = miniStack();
    const team = new Construct(stack, 'team');
    const v = new Volume(team, 'uploads');
    new Postgres(team, 'db');
    svc(team, 'a', { mounts: [{ volume: v, target: '/uploads' }] });
    // WHEN
    const r = resolveStack(stack);
    // THEN the group adds nothing to volume, service or container names; paths still show it
    expect(r.volumes.map((x) => [x.path, x.name])).toEqual([['mini/team/uploads', 'mini-uploads'], ['mini/team/db/data', 'mini-db-data']]);
    expect(r.services.map((s) => [s.name, s.containerName])).toEqual([['db', 'mini-db-1'], ['a', 'mini-a-1']]);
  });

  it('refuses two volumes of one name on one host', () => {
    const { stack } = miniStack();
    const a = new Volume(new Construct(stack, 'one'), 'cache');
    const b = new Volume(new Construct(stack, 'two'), 'cache');
    svc(stack, 'x', { mounts: [{ volume: a, target: '/a' }, { volume: b, target: '/b' }] });
    expect(() => resolveStack(stack)).toThrow('[mini/two/cache] volume name "mini-cache" is already used by mini/one/cache on host local. Give one of them another name (name: \'…\') or id.');
  });

  it('refuses an unused volume', () => {
    const { stack } = miniStack();
    new Volume(stack, 'orphan');
    svc(stack, 'a');
    expect(() => resolveStack(stack)).toThrow('[mini/orphan] is not mounted by any service. Mount it (mounts: [{ volume, target }]) or remove it.');
  });
});

describe('Service props', () => {
  it('records, not throws, bad props so all are reported', () => {
    const { stack } = miniStack();
    const s = new Service(stack, 'x', { image: 'ok/image:1', healthcheck: { command: [], interval: '10 seconds' } });
    expect(propIssues(s).map((i) => i.message)).toEqual([
      'healthcheck.command: must not be empty: give at least one',
      'healthcheck.interval: must be a duration like "10s", "1m30s" or "500ms"',
    ]);
  });
});
