// The downgrade table: each row turns an ideal unit into what an older Podman runs (or a problem),
// and a stack whose hosts have different render-time problems reports all of them in one run.
import { describe, expect, it } from 'vitest';
import { App, Host, Network, Postgres, Stack } from '../../src/index.ts';
import { DOWNGRADE_TABLE, downgrade, parsePodmanVersion, type ContainerSection, type ContainerUnit, type NetworkUnit, type QuadletUnit, type VolumeUnit } from '../../src/render/quadlet/index.ts';
import { renderStack } from '../../src/render/stack.ts';
import { resolveStack } from '../../src/resolve/resolve.ts';
import { withPublicKeys } from '../../src/state/wireguard/index.ts';
import { svc } from '../helpers/stacks.ts';

const c = (container: Omit<ContainerSection, 'image'>): ContainerUnit => ({ kind: 'container', container: { image: 'img', ...container } });
const net = (network: NetworkUnit['network']): NetworkUnit => ({ kind: 'network', network });
const vol = (volume: VolumeUnit['volume']): VolumeUnit => ({ kind: 'volume', volume });

/** Each row: the ideal unit, the host's version, the unit it gets, and the problems. */
const ROWS: readonly { gate: string; ideal: QuadletUnit; version: string; unit: QuadletUnit; problems: string[] }[] = [
  { gate: 'HostName', ideal: c({ hostName: 'api' }), version: '4.5', unit: c({ podmanArgs: ['--hostname=api'] }), problems: [] },
  {
    gate: 'NetworkAlias',
    ideal: c({ network: ['mesh.network'], ip: '10.0.0.3', networkAlias: ['api.local', 'api'] }),
    version: '5.1',
    unit: c({ network: [{ network: 'mesh.network', ip: '10.0.0.3', aliases: ['api.local', 'api'] }] }),
    problems: [],
  },
  { gate: 'IP', ideal: c({ network: ['mesh.network'], ip: '10.0.0.3' }), version: '4.4', unit: c({ network: [{ network: 'mesh.network', ip: '10.0.0.3' }] }), problems: [] },
  {
    gate: 'AddHost',
    ideal: c({ addHost: ['a.local:10.0.0.1', 'b.local:10.0.0.2'] }),
    version: '5.2',
    unit: c({ podmanArgs: ['--add-host=a.local:10.0.0.1', '--add-host=b.local:10.0.0.2'] }),
    problems: [],
  },
  { gate: 'User=name', ideal: c({ user: 'www-data', group: 'www' }), version: '4.7', unit: c({ podmanArgs: ['--user=www-data:www'] }), problems: [] },
  { gate: 'Tmpfs', ideal: c({ tmpfs: ['/tmp', '/run/app:size=64m,mode=1777'] }), version: '4.4', unit: c({ podmanArgs: ['--tmpfs=/tmp', '--tmpfs=/run/app:size=64m,mode=1777'] }), problems: [] },
  { gate: 'UserNS', ideal: c({ userNS: 'auto' }), version: '4.4', unit: c({ podmanArgs: ['--userns=auto'] }), problems: [] },
  // MinIO's setup on the data host (Podman 4.9): Entrypoint= is 5.0's.
  { gate: 'Entrypoint', ideal: c({ entrypoint: '/bin/sh', exec: ['/etc/podmesh/podmesh-users.sh'] }), version: '4.9', unit: c({ exec: ['/etc/podmesh/podmesh-users.sh'], podmanArgs: ['--entrypoint=/bin/sh'] }), problems: [] },
  {
    gate: 'Secret',
    ideal: c({ secret: ['s-db.password,type=mount,target=db.password', 's-cache.password,type=mount,target=cache.password'] }),
    version: '4.4',
    unit: c({ podmanArgs: ['--secret=s-db.password,type=mount,target=db.password', '--secret=s-cache.password,type=mount,target=cache.password'] }),
    problems: [],
  },
  // Appended after the words already there (the memory limit, which no Quadlet key carries).
  { gate: 'PidsLimit', ideal: c({ pidsLimit: 1024, podmanArgs: ['--memory=1g'] }), version: '4.6', unit: c({ podmanArgs: ['--memory=1g', '--pids-limit=1024'] }), problems: [] },
  {
    gate: 'HealthCmd',
    ideal: c({ healthCmd: '["true"]', healthInterval: '10s', healthTimeout: '5s', healthRetries: 3, healthStartPeriod: '1s' }),
    version: '4.4',
    unit: c({ podmanArgs: ['--health-cmd=["true"]', '--health-interval=10s', '--health-timeout=5s', '--health-retries=3', '--health-start-period=1s'] }),
    problems: [],
  },
  { gate: 'Notify=healthy', ideal: c({ healthCmd: '["true"]', notify: 'healthy' }), version: '4.9', unit: c({ healthCmd: '["true"]', podmanArgs: ['--sdnotify=healthy'] }), problems: [] },
  {
    gate: 'Notify=healthy',
    ideal: c({ healthCmd: '["true"]', notify: 'healthy' }),
    version: '4.6',
    unit: c({ healthCmd: '["true"]', notify: 'healthy' }),
    problems: ["Quadlet option `Notify=healthy` was not supported until Podman v5.0 (host runs 4.6). Raise the host's podmanVersion or use Notify=false (Podman ≥ 4.7 also takes PodmanArgs=--sdnotify=healthy)."],
  },
  { gate: 'Network.InterfaceName', ideal: net({ interfaceName: 'br0' }), version: '5.4', unit: net({ podmanArgs: ['--interface-name=br0'] }), problems: [] },
  { gate: 'Network.InterfaceName', ideal: net({ interfaceName: 'br0' }), version: '4.5', unit: net({}), problems: [] },
  { gate: 'Network.NetworkName', ideal: net({ networkName: 'mesh' }), version: '4.6', unit: net({}), problems: [] },
  { gate: 'Volume.VolumeName', ideal: vol({ volumeName: 'data' }), version: '4.6', unit: vol({}), problems: [] },
];

describe('the downgrade table', () => {
  it.each(ROWS)('GIVEN the ideal unit using $gate WHEN downgraded for Podman $version THEN the expected unit and problems', ({ ideal, version, unit, problems }) => {
    // WHEN
    const r = downgrade(ideal, parsePodmanVersion(version), 'stack/x');
    // THEN
    expect(r.unit).toEqual(unit);
    expect(r.problems).toEqual(problems.map((message) => ({ path: 'stack/x', message })));
  });

  it('GIVEN every row of the table THEN a case above covers it', () => {
    const rows = Object.values(DOWNGRADE_TABLE).flatMap((t) => t.map((r) => r.gate));
    expect([...new Set(ROWS.map((r) => r.gate))].sort()).toEqual([...new Set(rows)].sort());
  });

  it.each(ROWS.map((r) => ({ ...r, version: '5.6' })))('GIVEN the ideal unit using $gate WHEN the host has the key (5.6) THEN it stays as it is', ({ ideal }) => {
    expect(downgrade(ideal, parsePodmanVersion('5.6'))).toEqual({ unit: ideal, problems: [] });
  });

  it('GIVEN several rows at once WHEN downgraded for 4.4 THEN PodmanArgs in table order', () => {
    const ideal = c({ hostName: 'api', addHost: ['a:10.0.0.1'], user: 'www-data', healthCmd: '["true"]' });
    expect(downgrade(ideal, parsePodmanVersion('4.4')).unit.container.podmanArgs).toEqual(['--hostname=api', '--add-host=a:10.0.0.1', '--user=www-data', '--health-cmd=["true"]']);
  });

  it('GIVEN a key no row stands in for WHEN downgraded THEN the version table reports it, once', () => {
    const r = downgrade(c({ stopSignal: 'SIGINT' }), parsePodmanVersion('5.0'), 'stack/x');
    expect(r.problems.map((p) => p.message)).toEqual(["Quadlet option `StopSignal=` was not supported until Podman v5.2 (host runs 5.0). Raise the host's podmanVersion or drop `StopSignal=`."]);
  });
});

describe('render-time problems of every host in one run', () => {
  it('GIVEN host a on Podman 4.6 waiting for a healthy database, host b with a value no unit file carries and no WireGuard key yet WHEN rendered THEN every problem, of both renderers', () => {
    // GIVEN
    const stack = new Stack(new App(), 'two', { project: 'two' });
    const a = new Host(stack, 'a', { podmanVersion: '4.6', endpoint: '198.51.100.1:51820' });
    const b = new Host(stack, 'b', { endpoint: '198.51.100.2:51820' });
    new Network(stack, 'mesh', { subnet: '10.95.0.0/24', domain: 'two.local' });
    const db = new Postgres(stack, 'db', { host: a });
    svc(stack, 'api', { host: a, dependsOn: [{ service: db, condition: 'healthy' }] });
    svc(stack, 'web', { host: b, environment: { BROKEN: 'line\nbreak' } });
    const resolved = withPublicKeys(resolveStack(stack), { a: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA=' });
    // WHEN
    const r = renderStack(resolved, { outDir: '/tmp/out' });
    // THEN nothing is rendered, and each problem is named at its construct: units (Quadlet), then the tunnel
    expect(r.files.size).toBe(0);
    expect(r.issues.map((i) => i.path)).toEqual(['two/api', 'two/web', 'two/b']);
    expect(r.issues[0]!.message).toMatch(/^waits for db to be healthy, but Podman 4\.6 on host a cannot tell systemd/);
    expect(r.issues[1]!.message).toMatch(/Environment=/);
    expect(r.issues[2]!.message).toMatch(/^has no WireGuard public key/);
  });
});
