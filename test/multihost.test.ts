// Multi-host stacks: per-host outputs that together form one mesh (ashchan-prod), names that
// resolve across hosts, and the mistakes a multi-host stack can hold, each named.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { App, Host, InfraService, Network, PodmeshError, Postgres, Stack, synth, type Issue } from '../src/index.ts';
import { loadStacks } from '../src/cli/load.ts';
import { podmeshRejection } from './helpers/errors.ts';
import { svc, tempDir, testState } from './helpers/stacks.ts';
import { treeState } from './helpers/tree.ts';
import { repoRoot, tool } from './helpers/tools.ts';
import { dryRun, podmanRun, verifyUnits } from './helpers/units.ts';

const quadlet = tool('quadlet');
const analyze = tool('systemd-analyze');
const dockerCompose = tool('docker-compose');
const podmanCompose = tool('podman-compose');
const openssl = tool('openssl');

const HOSTS = ['app', 'data', 'edge'];

describe('ashchan-prod', () => {
  const tmp = tempDir();
  const out = join(tmp.path, 'out');
  const state = join(tmp.path, '.podmesh');
  let lock: any;
  beforeAll(async () => {
    await synth(await loadStacks(join(repoRoot, 'stacks')), { outDir: out, stateDir: state, stacks: ['ashchan-prod'] });
    lock = JSON.parse(readFileSync(join(out, 'ashchan-prod/podmesh.lock.json'), 'utf8'));
  });
  afterAll(() => tmp.cleanup());

  it('GIVEN the stack WHEN synthesized THEN three hosts: gateway on edge, the apps on app, data and media on data', () => {
    expect(readdirSync(join(out, 'ashchan-prod/hosts')).sort()).toEqual(HOSTS);
    const services = (h: string) => Object.keys(parse(readFileSync(join(out, 'ashchan-prod/hosts', h, 'compose.yaml'), 'utf8')).services).sort();
    expect(services('edge')).toEqual(['gateway']);
    expect(services('app')).toEqual(['auth', 'boards', 'moderation', 'search']);
    // MinIO's setup runs beside MinIO.
    expect(services('data')).toEqual(['media', 'minio', 'minio-setup', 'postgres', 'redis']);
  });

  it('GIVEN the address plan WHEN locked THEN each host has its slice, every service sits in its host\'s slice, and the tunnel overlaps nothing', () => {
    const net = lock.networks['ashchan-mesh'];
    expect(net.slices).toEqual({ app: '10.90.0.16/28', data: '10.90.0.64/26', edge: '10.90.0.0/28' });
    expect(net.addresses).toMatchObject({ gateway: '10.90.0.10', auth: '10.90.0.21', boards: '10.90.0.22' });
    expect(lock.wireguard.subnet).toBe('10.255.0.0/24');
    expect(Object.keys(lock.wireguard.hosts).sort()).toEqual(HOSTS);
  });

  it('GIVEN the seed\'s migration step 6 WHEN rendered THEN no plain-HTTP port 9502-9506 is published or listened on anywhere', () => {
    for (const h of HOSTS) {
      for (const file of [join('hosts', h, 'compose.yaml'), ...readdirSync(join(out, 'ashchan-prod/hosts', h, 'quadlet')).map((f) => join('hosts', h, 'quadlet', f))]) {
        expect(readFileSync(join(out, 'ashchan-prod', file), 'utf8'), file).not.toMatch(/\b950[2-6]\b/);
      }
    }
    expect(readFileSync(join(out, 'ashchan-prod/TOPOLOGY.md'), 'utf8')).not.toMatch(/\b950[2-6]\b/);
  });

  it.skipIf(!openssl)('GIVEN each service WHEN its server certificate is read by openssl THEN its SAN holds its DNS name and its real (allocated) IP', () => {
    const issued = readdirSync(join(state, 'ashchan-prod/pki/services')).sort();
    expect(issued).toEqual(['auth', 'boards', 'gateway', 'media', 'minio', 'moderation', 'search']);
    for (const service of issued) {
      const ip = lock.networks['ashchan-mesh'].addresses[service];
      const cert = join(state, 'ashchan-prod/pki/services', service, 'server.crt');
      const text = execFileSync(openssl!, ['x509', '-in', cert, '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' });
      expect(text, service).toContain(`DNS:${service}.ashchan.local`);
      expect(text, service).toContain(`IP Address:${ip}`);
    }
  });

  it('GIVEN every container of every host WHEN its names are gathered (network aliases on its host, host entries for the rest) THEN every service\'s DNS name resolves to that service\'s address', () => {
    const addresses: Record<string, string> = lock.networks['ashchan-mesh'].addresses;
    for (const h of HOSTS) {
      const doc = parse(readFileSync(join(out, 'ashchan-prod/hosts', h, 'compose.yaml'), 'utf8'));
      const local = new Map<string, string>();
      for (const s of Object.values<any>(doc.services)) {
        for (const a of s.networks['ashchan-mesh'].aliases) local.set(a, s.networks['ashchan-mesh'].ipv4_address);
      }
      for (const [name, s] of Object.entries<any>(doc.services)) {
        const seen = new Map(local);
        for (const e of s.extra_hosts ?? []) {
          const [n, ip] = e.split(':');
          expect(seen.has(n), `${h}/${name}: ${n} both local and a host entry`).toBe(false);
          seen.set(n, ip);
        }
        for (const [service, ip] of Object.entries(addresses)) {
          // MinIO's setup (a one-shot container that serves nothing) is named on its own host only.
          if (service === 'minio-setup' && h !== 'data') expect(seen.has(`${service}.ashchan.local`), `${h}/${name} → ${service}`).toBe(false);
          else expect(seen.get(`${service}.ashchan.local`), `${h}/${name} → ${service}`).toBe(ip);
        }
      }
    }
  });

  it.skipIf(!dockerCompose || !podmanCompose)('GIVEN each host\'s compose file WHEN read by docker compose and podman-compose THEN both accept it and see the host entries', () => {
    for (const h of HOSTS) {
      const file = join(out, 'ashchan-prod/hosts', h, 'compose.yaml');
      const dc = spawnSync(dockerCompose!, ['-f', file, 'config', '--format', 'json'], { encoding: 'utf8', timeout: 30_000 });
      expect(dc.status, dc.stderr).toBe(0);
      expect(dc.stderr).toBe('');
      const pc = spawnSync(podmanCompose!, ['-f', file, 'config'], { encoding: 'utf8', timeout: 30_000 });
      expect(pc.status, pc.stderr).toBe(0);
      const model = parse(pc.stdout);
      for (const s of Object.values<any>(model.services)) expect(s.extra_hosts.length).toBe(h === 'edge' ? 8 : h === 'app' ? 5 : 5);
    }
  });

  it.skipIf(!quadlet || !analyze)('GIVEN each host\'s Quadlet folder WHEN quadlet -dryrun (rootful) THEN silent, and systemd-analyze verify accepts the services with the target', () => {
    for (const h of HOSTS) {
      const dir = join(out, 'ashchan-prod/hosts', h);
      const gen = dryRun(quadlet!, join(dir, 'quadlet'), false);
      expect(gen.status, `${h}: ${gen.complaints.join('\n')}`).toBe(0);
      expect(gen.complaints).toEqual([]);
      const verify = verifyUnits(analyze!, gen.services, join(dir, 'systemd'), false);
      expect(verify.stderr, h).toBe('');
      for (const [name, text] of gen.services) {
        if (name.endsWith('-network.service') || name.endsWith('-volume.service')) continue;
        const run = podmanRun(text);
        const pki = run.volumes.filter((v) => v.includes('/pki/services/'));
        expect(pki.every((v) => v.startsWith('/etc/podmesh/ashchan-prod/pki/services/')), name).toBe(true);
        if (!/postgres|redis/.test(name)) expect(pki.length, name).toBeGreaterThan(0);
      }
    }
  });

  it('GIVEN calls and dependencies across hosts WHEN rendered THEN each dependent unit waits for them through the tunnel, bounded; compose and same-host ones do not', () => {
    const unit = (h: string, s: string) => readFileSync(join(out, `ashchan-prod/hosts/${h}/quadlet/ashchan-${s}.container`), 'utf8');
    const waitArgs = (text: string) => {
      const line = text.split('\n').filter((l) => l.startsWith('ExecStartPre='));
      expect(line).toHaveLength(1);
      // the arguments after the script: five per dependency on another host
      return line[0]!.slice(line[0]!.indexOf('" podmesh-wait ') + '" podmesh-wait '.length).split(' ');
    };
    // gateway (edge) calls the five apps on app and data
    expect(waitArgs(unit('edge', 'gateway')).join(' ')).toBe(
      'auth app 10.90.0.21 8443 300 boards app 10.90.0.22 8443 300 media data 10.90.0.69 8443 300 search app 10.90.0.19 8443 300 moderation app 10.90.0.18 8443 300',
    );
    expect(unit('edge', 'gateway')).toContain('TimeoutStartSec=1205\n');
    // boards (app) waits for PostgreSQL and Redis (data) and media (data), not for anything on app
    expect(waitArgs(unit('app', 'boards')).join(' ')).toBe('postgres data 10.90.0.66 5432 300 redis data 10.90.0.67 6379 300 media data 10.90.0.69 8443 300');
    // media (data) depends only on its own host: ordered by systemd, no wait
    expect(unit('data', 'media')).not.toContain('ExecStartPre=');
    expect(unit('data', 'media')).toContain('Requires=ashchan-postgres.service\nRequires=ashchan-minio.service\n');
    // compose cannot wait across hosts: no depends_on naming another host's service
    const compose = parse(readFileSync(join(out, 'ashchan-prod/hosts/edge/compose.yaml'), 'utf8'));
    expect(compose.services.gateway.depends_on).toBeUndefined();
    // TOPOLOGY.md lists every wait
    const topology = readFileSync(join(out, 'ashchan-prod/TOPOLOGY.md'), 'utf8');
    expect(topology).toContain('## Start order across hosts');
    expect(topology).toContain('| gateway (edge) | auth (app) | 10.90.0.21:8443 | 300 s |');
    expect(topology).toContain('| boards (app) | postgres (data) | 10.90.0.66:5432 | 300 s |');
  });

  it('GIVEN the data host on Podman 4.9 WHEN rendered THEN it uses the older forms and still waits for health', () => {
    const pg = readFileSync(join(out, 'ashchan-prod/hosts/data/quadlet/ashchan-postgres.container'), 'utf8');
    expect(pg).toContain('Network=ashchan-mesh.network:ip=10.90.0.66,alias=postgres.ashchan.local,alias=postgres\n');
    expect(pg).toMatch(/^PodmanArgs=.*--sdnotify=healthy/m);
    expect(pg).toMatch(/^PodmanArgs=.*--add-host=auth\.ashchan\.local:10\.90\.0\.21/m);
    const auth = readFileSync(join(out, 'ashchan-prod/hosts/app/quadlet/ashchan-auth.container'), 'utf8');
    // The app host's Podman 5.4 reads the other hosts' services from one shared file (--hosts-file).
    expect(auth).not.toMatch(/^AddHost=/m);
    expect(auth).toMatch(/^PodmanArgs=.*--hosts-file \/etc\/podmesh\/ashchan-prod\/remote-hosts$/m);
    expect(readFileSync(join(out, 'ashchan-prod/hosts/app/remote-hosts'), 'utf8')).toContain('10.90.0.66\tpostgres.ashchan.local\n');
    // auth's dependencies live on another host: no unit ordering across hosts.
    expect(auth).not.toMatch(/^Requires=/m);
  });
});

interface BadCase {
  readonly name: string;
  readonly build: (stack: Stack) => void;
  readonly expect: ReadonlyArray<readonly [path: string, fragment: string | RegExp]>;
}

/** Two hosts a and b with endpoints; the network is added by each case. */
function twoHosts(stack: Stack, props: { a?: object; b?: object } = {}) {
  const a = new Host(stack, 'a', { endpoint: '198.51.100.1:51820', ...props.a });
  const b = new Host(stack, 'b', { endpoint: '198.51.100.2:51820', ...props.b });
  return { a, b };
}

const cases: BadCase[] = [
  {
    name: 'overlapping slices',
    build: (stack) => {
      const { a, b } = twoHosts(stack);
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local', slices: { a: '10.90.0.0/25', b: '10.90.0.64/26' } });
      svc(stack, 'x', { host: a });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad/mesh', 'slice 10.90.0.64/26 of host b overlaps the slice 10.90.0.0/25 of host a']],
  },
  {
    name: 'a slice outside the subnet',
    build: (stack) => {
      const { a, b } = twoHosts(stack);
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local', slices: { a: '10.90.0.0/25', b: '10.91.0.0/25' } });
      svc(stack, 'x', { host: a });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad/mesh', 'slice 10.91.0.0/25 of host b is outside the network\'s subnet 10.90.0.0/24']],
  },
  {
    name: 'a tunnel subnet overlapping the mesh',
    build: (stack) => {
      const { a, b } = twoHosts(stack);
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      svc(stack, 'x', { host: a });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad', 'wireguard.subnet 10.90.0.128/25 overlaps network mesh (10.90.0.0/24)']],
  },
  {
    name: 'a slice too small for its services',
    build: (stack) => {
      const { a, b } = twoHosts(stack);
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local', slices: { a: '10.90.0.0/29', b: '10.90.0.128/25' } });
      for (const id of ['s1', 's2', 's3', 's4', 's5', 's6']) svc(stack, id, { host: a });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad/mesh', 'has 5 usable addresses in 10.90.0.0/29 (host a) but 6 services need one. Give host a a larger slice (at least /28)']],
  },
  {
    name: 'a service IP outside its host\'s slice',
    build: (stack) => {
      const { a, b } = twoHosts(stack);
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      svc(stack, 'x', { host: a, ip: '10.90.0.200' });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad/x', 'ip 10.90.0.200 is outside host a\'s slice of network mesh (10.90.0.0/25)']],
  },
  {
    name: 'a host without an endpoint',
    build: (stack) => {
      const { a, b } = twoHosts(stack, { b: { endpoint: undefined } });
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      svc(stack, 'x', { host: a });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad/b', 'has no endpoint, but the stack spans 2 hosts joined by WireGuard']],
  },
  {
    name: 'two hosts with one endpoint',
    build: (stack) => {
      const { a, b } = twoHosts(stack, { b: { endpoint: '198.51.100.1:51820' } });
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      svc(stack, 'x', { host: a });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad/b', 'endpoint 198.51.100.1:51820 is already the endpoint of bad/a']],
  },
  {
    name: 'a service placed on a host of another stack',
    build: (stack) => {
      const { a } = twoHosts(stack);
      const other = new Stack(stack.node.scope as App, 'other');
      const foreign = new Host(other, 'z');
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
      svc(stack, 'x', { host: a });
      svc(stack, 'y', { host: foreign });
    },
    expect: [['bad/y', 'host other/z belongs to another stack']],
  },
  {
    name: 'a slice for a host that does not exist',
    build: (stack) => {
      const { a, b } = twoHosts(stack);
      new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local', slices: { a: '10.90.0.0/25', c: '10.90.0.128/25' } });
      svc(stack, 'x', { host: a });
      svc(stack, 'y', { host: b });
    },
    expect: [['bad/mesh', 'has a slice for unknown host "c". Known hosts: a, b']],
  },
];

describe('waits across hosts', () => {
  const build = (stackProps: ConstructorParameters<typeof Stack>[2], dep: object) => {
    const app = new App();
    const stack = new Stack(app, 'w', stackProps);
    const { a, b } = twoHosts(stack);
    new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'w.local' });
    const db = new Postgres(stack, 'db', { host: b });
    svc(stack, 'api', { host: a, dependsOn: [{ service: db, ...dep }] });
    return app;
  };
  const waitOf = async (app: App) => {
    const tmp = tempDir();
    try {
      await synth(app, { stateDir: join(tmp.path, 'state'), outDir: join(tmp.path, 'out'), stacks: ['w'] });
      const text = readFileSync(join(tmp.path, 'out/w/hosts/a/quadlet/w-api.container'), 'utf8');
      return { args: /" podmesh-wait (.*)$/m.exec(text)?.[1], timeout: /^TimeoutStartSec=(\d+)$/m.exec(text)?.[1] };
    } finally {
      tmp.cleanup();
    }
  };

  it('GIVEN no bound anywhere WHEN synthesized THEN the wait is 300 s', async () => {
    expect(await waitOf(build({}, {}))).toEqual({ args: 'db b 10.90.0.130 5432 300', timeout: '1205' });
  });

  it("GIVEN the stack's wireguard.dependencyWait and a dependency's crossHostWait WHEN synthesized THEN the dependency's wins, the stack's is the default", async () => {
    expect(await waitOf(build({ wireguard: { dependencyWait: '2m' } }, {}))).toEqual({ args: 'db b 10.90.0.130 5432 120', timeout: '1025' });
    expect(await waitOf(build({ wireguard: { dependencyWait: '2m' } }, { crossHostWait: '45s' }))).toEqual({ args: 'db b 10.90.0.130 5432 45', timeout: '950' });
  });

  it.each([
    ['0s', 'w/api', 'dependsOn[0].crossHostWait: must be a duration between "1s" and "1h"'],
    ['2h', 'w/api', 'dependsOn[0].crossHostWait: must be a duration between "1s" and "1h"'],
    ['soon', 'w/api', 'dependsOn[0].crossHostWait: must be a duration between "1s" and "1h"'],
  ])('GIVEN crossHostWait %j WHEN synthesized THEN refused at %s', async (wait, path, message) => {
    const err = await podmeshRejection(waitOf(build({}, { crossHostWait: wait })));
    expect(err.issues.map((i) => `[${i.path}] ${i.message}`).join('\n')).toContain(`[${path}] ${message}`);
  });

  it('GIVEN a dependency on another host that listens on no TCP port WHEN synthesized THEN refused with what to change', async () => {
    const app = new App();
    const stack = new Stack(app, 'w');
    const { a, b } = twoHosts(stack);
    new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'w.local' });
    const worker = new InfraService(stack, 'worker', { image: 'localhost/test/worker:1', host: b });
    svc(stack, 'api', { host: a, dependsOn: [worker] });
    const err = await podmeshRejection(waitOf(app));
    expect(err.issues).toContainEqual({
      path: 'w/api',
      message: 'depends on worker on host b, which listens on no TCP port: from host a podmesh can only wait for a port to accept connections through the tunnel. Give worker a TCP port, or remove the dependency.',
    });
  });
});

describe('multi-host mistakes', () => {
  const out = tempDir();
  let before: Record<string, string>;
  beforeAll(async () => {
    const app = new App();
    const stack = new Stack(app, 'bad');
    const { a, b } = twoHosts(stack);
    new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });
    svc(stack, 'x', { host: a });
    svc(stack, 'y', { host: b });
    await synth(app, { stateDir: testState, outDir: out.path, stacks: ['bad'] });
    before = treeState(out.path);
  });
  afterAll(() => out.cleanup());

  it.each(cases)('$name', async (c) => {
    const app = new App();
    const stack = new Stack(app, 'bad', c.name === 'a tunnel subnet overlapping the mesh' ? { wireguard: { subnet: '10.90.0.128/25' } } : {});
    let err: PodmeshError;
    try {
      c.build(stack);
      err = await podmeshRejection(synth(app, { stateDir: testState, outDir: out.path, stacks: ['bad'] }));
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      err = e;
    }
    for (const [path, fragment] of c.expect) {
      const match = (i: Issue) => i.path === path && (typeof fragment === 'string' ? i.message.includes(fragment) : fragment.test(i.message));
      expect(err.issues.some(match), `${path}: ${String(fragment)}\ngot:\n${err.issues.map((i) => `[${i.path}] ${i.message}`).join('\n')}`).toBe(true);
    }
    expect(treeState(out.path)).toEqual(before);
  });
});

describe('a checkout without the WireGuard keys (fresh clone, CI)', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('GIVEN a locked stack and a state folder without wireguard/ WHEN synthesized THEN out/ is unchanged and no key is made; a partial state still fails', async () => {
    const { rmSync, existsSync, unlinkSync } = await import('node:fs');
    const opts = { outDir: join(tmp.path, 'out'), stateDir: join(tmp.path, '.podmesh'), stacks: ['ashchan-prod'] };
    await synth(await loadStacks(join(repoRoot, 'stacks')), opts);
    const before = treeState(opts.outDir);
    rmSync(join(opts.stateDir, 'ashchan-prod/wireguard'), { recursive: true });
    const r = await synth(await loadStacks(join(repoRoot, 'stacks')), opts);
    expect(r.changed).toBe(false);
    expect(r.state[0]!.wireguard?.absent).toBe(true);
    expect(existsSync(join(opts.stateDir, 'ashchan-prod/wireguard'))).toBe(false);
    expect(treeState(opts.outDir)).toEqual(before);
    // One key of three missing is damage, not a checkout without keys: refused.
    await synth(await loadStacks(join(repoRoot, 'stacks')), { ...opts, rotateWireguard: { 'ashchan-prod': ['edge', 'app', 'data'] } });
    unlinkSync(join(opts.stateDir, 'ashchan-prod/wireguard/edge.key'));
    const err = await podmeshRejection(synth(await loadStacks(join(repoRoot, 'stacks')), opts));
    expect(err.issues[0]!.message).toContain('is recorded in');
  });
});
