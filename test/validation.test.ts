// Bad input: every case names the construct path and the fix, and leaves out/ exactly as it was.
import { Construct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App, Host, InfraService, Minio, Network, PodmeshError, Postgres, Redis, Stack, synth, Volume, type Issue } from '../src/index.ts';
import { podmeshError, podmeshRejection } from './helpers/errors.ts';
import { Ashchan } from '../stacks/lib/ashchan.ts';
import { miniStack, svc, tempDir, testState } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';

interface BadCase {
  readonly name: string;
  /** Builds the app; may throw (construct-time errors) or leave it for synth. */
  readonly build: (app: App) => void;
  readonly stacks?: string[];
  /** Expected issues: path and a fragment of the message. */
  readonly expect: ReadonlyArray<readonly [path: string, fragment: string | RegExp]>;
}

const cases: BadCase[] = [
  {
    name: 'duplicate service names',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      svc(stack, 'auth');
      svc(stack, 'auth');
    },
    expect: [['bad', 'two constructs are named "auth" (bad/auth)']],
  },
  {
    name: 'duplicate service names in different scopes',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      svc(stack, 'auth');
      svc(new Construct(stack, 'team-b'), 'auth');
    },
    expect: [['bad/team-b/auth', 'service name "auth" is already used by bad/auth']],
  },
  {
    name: 'IP outside the subnet',
    build: (app) => svc(miniStack('bad', app).stack, 'auth', { ip: '10.90.1.5' }),
    expect: [['bad/auth', 'ip 10.90.1.5 is outside network mesh (10.90.0.0/24). Pick an address in 10.90.0.2-10.90.0.254 or leave ip unset.']],
  },
  {
    name: 'IP equal to the network address',
    build: (app) => svc(miniStack('bad', app).stack, 'auth', { ip: '10.90.0.0' }),
    expect: [['bad/auth', 'ip 10.90.0.0 is the network address of network mesh']],
  },
  {
    name: 'IP equal to the gateway',
    build: (app) => svc(miniStack('bad', app).stack, 'auth', { ip: '10.90.0.1' }),
    expect: [['bad/auth', 'ip 10.90.0.1 is the gateway address of network mesh']],
  },
  {
    name: 'IP equal to the broadcast address',
    build: (app) => svc(miniStack('bad', app).stack, 'auth', { ip: '10.90.0.255' }),
    expect: [['bad/auth', 'ip 10.90.0.255 is the broadcast address']],
  },
  {
    name: 'duplicate IP',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      svc(stack, 'auth', { ip: '10.90.0.21' });
      svc(stack, 'boards', { ip: '10.90.0.21' });
    },
    expect: [['bad/boards', 'ip 10.90.0.21 is already given to bad/auth']],
  },
  {
    name: 'invalid DNS label',
    build: (app) => svc(miniStack('bad', app).stack, 'Auth_Service'),
    expect: [['bad/Auth_Service', 'service name "Auth_Service" is not a valid DNS label: it becomes Auth_Service.<domain>. Use lower-case letters, digits and inner hyphens, e.g. "auth-service".']],
  },
  {
    name: 'unknown dependency, with a suggestion',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      new Redis(stack, 'redis');
      svc(stack, 'auth', { dependsOn: ['redsi'] });
    },
    expect: [['bad/auth', 'depends on unknown service "redsi". Did you mean "redis"? Known services: redis, auth.']],
  },
  {
    name: 'dependency cycle',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      svc(stack, 'a', { dependsOn: ['c'] });
      svc(stack, 'b', { dependsOn: ['a'] });
      svc(stack, 'c', { dependsOn: ['b'] });
    },
    expect: [['bad/a', 'dependency cycle: a → c → b → a']],
  },
  {
    name: 'two services publishing the same host port',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      svc(stack, 'web', { ports: { public: { port: 8080, publish: true } } });
      svc(stack, 'admin', { ports: { ui: { port: 3000, publish: 8080 } } });
    },
    expect: [['bad/admin', 'host port 8080/tcp on host local is already published by bad/web. Publish another host port, e.g. publish: 8081.']],
  },
  {
    name: 'invalid CIDR',
    build: (app) => {
      const stack = new Stack(app, 'bad');
      new Host(stack, 'local');
      new Network(stack, 'mesh', { subnet: '10.90.0.1', domain: 'bad.local' });
      svc(stack, 'auth');
    },
    expect: [['bad/mesh', 'subnet: CIDR mask is missing in "10.90.0.1". Did you mean "10.90.0.1/24"?']],
  },
  {
    name: 'overlapping networks',
    build: (app) => {
      const { stack, network } = miniStack('bad', app);
      const other = new Network(stack, 'backend', { subnet: '10.90.0.128/25', domain: 'backend.local' });
      svc(stack, 'auth', { network });
      svc(stack, 'db', { network: other });
    },
    expect: [['bad/backend', 'subnet 10.90.0.128/25 overlaps network mesh (10.90.0.0/24). Give each network its own range, e.g. 10.90.1.0/25.']],
  },
  {
    name: 'subnet too small for its services',
    build: (app) => {
      const stack = new Stack(app, 'bad');
      new Host(stack, 'local');
      new Network(stack, 'mesh', { subnet: '10.90.0.0/30', domain: 'bad.local' });
      ['a', 'b', 'c'].forEach((n) => svc(stack, n));
    },
    expect: [['bad/mesh', 'network mesh has 1 usable addresses in 10.90.0.0/30 (host local) but 3 services need one. Use a larger subnet (at least /29) or move services elsewhere.']],
  },
  {
    name: 'empty stack',
    build: (app) => {
      const stack = new Stack(app, 'bad');
      new Host(stack, 'local');
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
    },
    expect: [['bad', 'the stack has no services. Add a Service, Postgres, Redis, Minio or InfraService to it, or delete the stack.']],
  },
  {
    name: 'unknown --stack name',
    build: (app) => svc(miniStack('bad', app).stack, 'auth'),
    stacks: ['bda'],
    expect: [['', 'unknown stack "bda". Known stacks: bad.']],
  },
  {
    name: 'image reference with whitespace',
    build: (app) => svc(miniStack('bad', app).stack, 'auth', { image: 'ghcr.io/ashchan/auth accounts:1.0' }),
    expect: [['bad/auth', 'image: "ghcr.io/ashchan/auth accounts:1.0" contains whitespace. Image references have none: did you mean "ghcr.io/ashchan/authaccounts:1.0"?']],
  },
  {
    name: 'environment variable name that is not an identifier',
    build: (app) => svc(miniStack('bad', app).stack, 'auth', { environment: { 'LOG-LEVEL': 'debug' } }),
    expect: [['bad/auth', 'environment.LOG-LEVEL: environment variable name "LOG-LEVEL" is not valid: use letters, digits and "_", not starting with a digit (e.g. "LOG_LEVEL")']],
  },
  {
    name: 'environment variable that podmesh generates',
    build: (app) => svc(miniStack('bad', app).stack, 'auth', { environment: { SERVICE_NAME: 'x' } }),
    expect: [['bad/auth', 'environment variable SERVICE_NAME is generated by podmesh (SERVICE_NAME=auth)']],
  },
  {
    name: 'public TLS on a port the service does not declare',
    build: (app) => svc(miniStack('bad', app).stack, 'web', { ports: { https: { port: 443, publish: 8443 } }, publicTls: { hostnames: ['shop.example'] } }),
    expect: [['bad/web', 'publicTls is served on port "public", which the service does not declare. Declare it in ports, or set publicTls.port to one of: https.']],
  },
  {
    name: 'public TLS on the mTLS port',
    build: (app) => svc(miniStack('bad', app).stack, 'web', { publicTls: { hostnames: ['shop.example'], port: 'mtls' } }),
    expect: [['bad/web', 'publicTls cannot be served on the mTLS port']],
  },
  {
    name: 'Hyperf server name that is not a name',
    build: (app) => svc(miniStack('bad', app).stack, 'web', { hyperf: { serverName: 'm tls' } }),
    expect: [['bad/web', 'must be a Hyperf server name']],
  },
  {
    name: 'invalid DNS domain',
    build: (app) => {
      const stack = new Stack(app, 'bad');
      new Host(stack, 'local');
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'Ashchan_Local' });
      svc(stack, 'auth');
    },
    expect: [['bad/mesh', 'domain: "Ashchan_Local" is not a DNS domain']],
  },
  {
    name: 'bridge name longer than a Linux interface name',
    build: (app) => {
      const stack = new Stack(app, 'bad');
      new Host(stack, 'local');
      new Network(stack, 'ashchan-service-mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      svc(stack, 'auth');
    },
    expect: [['bad/ashchan-service-mesh', 'bridge interface name "ashchan-service-mesh" is not a valid Linux interface name (at most 15 characters']],
  },
  {
    name: 'waiting for health of a service without a health check',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      svc(stack, 'worker', { healthcheck: false });
      svc(stack, 'auth', { dependsOn: [{ service: 'worker', condition: 'healthy' }] });
    },
    expect: [['bad/auth', 'waits for worker to be healthy, but worker has no health check']],
  },
  {
    name: 'a volume mounted on two hosts',
    build: (app) => {
      const stack = new Stack(app, 'bad');
      const a = new Host(stack, 'a', { endpoint: '198.51.100.1:51820' });
      const b = new Host(stack, 'b', { endpoint: '198.51.100.2:51820' });
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      const v = new Volume(stack, 'shared');
      svc(stack, 'x', { host: a, mounts: [{ volume: v, target: '/data' }] });
      svc(stack, 'y', { host: b, mounts: [{ volume: v, target: '/data' }] });
    },
    expect: [['bad/y', 'mounts volume bad/shared on host b, but bad/x mounts it on host a']],
  },
  {
    name: 'a rootless host in a multi-host stack with a host-mode tunnel',
    build: (app) => {
      const stack = new Stack(app, 'bad');
      const a = new Host(stack, 'a', { endpoint: '198.51.100.1:51820', rootless: true, wireguard: { mode: 'host' } });
      const b = new Host(stack, 'b', { endpoint: '198.51.100.2:51820' });
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      svc(stack, 'x', { host: a });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad/a', "is rootless with wireguard mode 'host', but the stack spans 2 hosts joined by WireGuard"]],
  },
  {
    name: 'a Quadlet feature the host\'s Podman lacks',
    build: (app) => {
      const stack = new Stack(app, 'bad');
      new Host(stack, 'old', { podmanVersion: '4.5' });
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      const db = new Postgres(stack, 'db');
      svc(stack, 'auth', { dependsOn: [db] });
    },
    expect: [['bad/auth', /waits for db to be healthy, but Podman 4\.5 on host old cannot tell systemd/]],
  },
  {
    name: 'an environment value no unit file can carry',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      svc(stack, 'auth', { environment: { MOTD: 'line one\nline two' } });
    },
    expect: [['bad/auth', /`Environment=` value "MOTD=line one\\nline two" contains a line feed .* must go into a file/]],
  },
  {
    name: 'several bad props reported together',
    build: (app) => {
      const { stack } = miniStack('bad', app);
      svc(stack, 'auth', { image: 'Bad Image', ip: '10.90.0.300' });
      new Postgres(stack, 'db', { ports: { postgres: 70000 } });
    },
    expect: [
      ['bad/auth', 'image: "Bad Image" contains whitespace'],
      ['bad/auth', 'ip: "10.90.0.300" is not an IPv4 address'],
      ['bad/db', 'ports.postgres: ports are 1-65535'],
    ],
  },
];

describe('bad input', () => {
  const out = tempDir();
  let before: Record<string, string>;

  beforeAll(async () => {
    // A valid previous synth of the same stack name: nothing of it may change.
    const app = new App();
    svc(miniStack('bad', app).stack, 'auth');
    await synth(app, { stateDir: testState, outDir: out.path });
    before = treeState(out.path);
    expect(Object.keys(before)).toContain('bad/hosts/local/compose.yaml');
  });
  afterAll(() => out.cleanup());

  it.each(cases)('$name', async (c) => {
    // GIVEN / WHEN
    let error: unknown;
    try {
      const app = new App();
      c.build(app);
      await synth(app, { stateDir: testState, outDir: out.path, stacks: c.stacks });
    } catch (e) {
      error = e;
    }
    // THEN: a podmesh error with each expected issue, no raw ZodError, and out/ untouched
    expect(error).toBeInstanceOf(PodmeshError);
    const issues = (error as PodmeshError).issues;
    for (const [path, fragment] of c.expect) {
      const match = (i: Issue) => i.path === path && (typeof fragment === 'string' ? i.message.includes(fragment) : fragment.test(i.message));
      expect(issues.some(match), `expected [${path}] ${String(fragment)} in:\n${(error as Error).message}`).toBe(true);
    }
    expect((error as Error).message).not.toMatch(/ZodError|invalid_type|"code":/);
    expect(treeState(out.path)).toEqual(before);
  });

  it('has at least the fifteen cases the issue asks for', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });
});

describe('unknown props', () => {
  // zod drops keys a schema does not name: a misspelled prop must be an error, never ignored.
  const CASES: ReadonlyArray<readonly [construct: string, build: (app: App) => void, path: string, message: string]> = [
    ['Stack', (app) => new Stack(app, 'bad', { projcet: 'x' } as never), 'bad', 'unknown prop projcet. Did you mean project?'],
    ['Host', (app) => new Host(new Stack(app, 'bad'), 'h', { podmanVersoin: '5.4' } as never), 'bad/h', 'unknown prop podmanVersoin. Did you mean podmanVersion?'],
    ['Network', (app) => new Network(new Stack(app, 'bad'), 'mesh', { subnet: '10.90.0.0/24', domian: 'x.local' } as never), 'bad/mesh', 'unknown prop domian. Did you mean domain?'],
    ['Volume', (app) => new Volume(new Stack(app, 'bad'), 'v', { nmae: 'x' } as never), 'bad/v', 'unknown prop nmae. Did you mean name?'],
    ['Service', (app) => svc(miniStack('bad', app).stack, 'api', { imagee: 'x' } as never), 'bad/api', 'unknown prop imagee. Did you mean image?'],
    ['Service (nested)', (app) => svc(miniStack('bad', app).stack, 'api', { hyperf: { appRot: '/srv' } } as never), 'bad/api', 'hyperf: unknown prop appRot. Did you mean appRoot?'],
    ['Service (a port)', (app) => svc(miniStack('bad', app).stack, 'api', { ports: { http: { port: 80, pubish: true } } } as never), 'bad/api', 'ports.http: unknown prop pubish. Did you mean publish?'],
    ['Postgres', (app) => new Postgres(miniStack('bad', app).stack, 'db', { databse: 'x' } as never), 'bad/db', 'unknown prop databse. Did you mean database?'],
    ['Minio', (app) => new Minio(miniStack('bad', app).stack, 'store', { bukcet: 'x' } as never), 'bad/store', 'unknown prop bukcet. Did you mean bucket?'],
    ['InfraService', (app) => new InfraService(miniStack('bad', app).stack, 'mail', { image: 'x', comand: ['true'] } as never), 'bad/mail', 'unknown prop comand. Did you mean command?'],
    ['Redis', (app) => new Redis(miniStack('bad', app).stack, 'cache', { healthcheck: { comand: ['true'] } } as never), 'bad/cache', 'healthcheck: unknown prop comand. Did you mean command?'],
    ['Ashchan', (app) => new Ashchan(miniStack('bad', app).stack, 'ashchan', { publicHostnames: ['localhost'], plainHtp: true } as never), 'bad/ashchan', 'unknown prop plainHtp. Did you mean plainHttp?'],
    ['Ashchan (hosts)', (app) => {
      const { stack, host } = miniStack('bad', app);
      new Ashchan(stack, 'ashchan', { publicHostnames: ['localhost'], hosts: { gatway: host } } as never);
    }, 'bad/ashchan', 'hosts: unknown prop gatway. Did you mean gateway?'],
  ];

  it.each(CASES)('%s', async (_name, build, path, message) => {
    const app = new App();
    build(app);
    const err = await podmeshRejection(synth(app, { stateDir: testState, outDir: tempDir().path }));
    expect(err.issues.map((i) => `[${i.path}] ${i.message}`).join('\n')).toContain(`[${path}] ${message}`);
  });

  it('App: refused at once (the validation pass walks stacks, not the app)', () => {
    const err = podmeshError(() => new App({ nmae: 'x' } as never));
    expect(err.issues).toEqual([{ path: '(app)', message: 'unknown prop nmae. Did you mean name? Known: name.' }]);
  });
});
