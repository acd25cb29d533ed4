// The Quadlet runner's reading of what `quadlet -dryrun` generates (test/helpers/quadlet-run.ts),
// judged on the checked-in ashchan-dev units and small hand-made services, without any runtime:
// the end-to-end test (test/e2e-quadlet.test.ts) relies on these rules being systemd's.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateUnits, parseUnitText, prepare, specifiers, startOrder, SYSTEM_MANAGER, userManager, values } from '../helpers/quadlet-run.ts';
import { repoRoot, tool } from '../helpers/tools.ts';
import { SystemdSyntaxError } from './systemd-exec.ts';

const quadlet = tool('quadlet');
const MANAGER = userManager(1000, '/home/ashchan');

describe.skipIf(!quadlet)('Quadlet runner: ashchan-dev as Quadlet generates it', () => {
  const units = generateUnits(join(repoRoot, 'out/ashchan-dev/hosts/local/quadlet'), true);

  it('GIVEN the units WHEN ordered THEN every unit comes after all it names in After=/Requires=, ties by name', () => {
    // WHEN
    const order = startOrder(units).map((u) => u.name);
    // THEN
    expect(order).toEqual([
      'ashchan-mesh-network.service',
      'ashchan-minio-data-volume.service',
      'ashchan-minio.service',
      'ashchan-minio-setup.service',
      'ashchan-postgres-data-volume.service',
      'ashchan-postgres.service',
      'ashchan-media.service',
      'ashchan-redis-data-volume.service',
      'ashchan-redis.service',
      'ashchan-auth.service',
      'ashchan-moderation.service',
      'ashchan-boards.service',
      'ashchan-search.service',
      'ashchan-gateway.service',
    ]);
    for (const u of units) {
      for (const dep of [...values(u, 'Unit', 'After'), ...values(u, 'Unit', 'Requires')]) {
        if (order.includes(dep)) expect(order.indexOf(dep), `${u.name} after ${dep}`).toBeLessThan(order.indexOf(u.name));
      }
    }
  });

  it('GIVEN a container unit of a user manager WHEN prepared THEN %h, %t, %n, %N and $$ are expanded as systemd does, nothing else changes', () => {
    // GIVEN
    const pg = units.find((u) => u.name === 'ashchan-postgres.service')!;
    // WHEN
    const r = prepare(pg, MANAGER);
    // THEN
    expect(r.type).toBe('notify');
    expect(r.env).toEqual({ HOME: '/home/ashchan', XDG_RUNTIME_DIR: '/run/user/1000', PODMAN_SYSTEMD_UNIT: 'ashchan-postgres.service' });
    expect(r.commands.map((c) => [c.key, c.ignoreFailure])).toEqual([['ExecStart', false], ['ExecStop', false], ['ExecStopPost', true]]);
    // Quadlet 5.4.2 writes --ip, --hostname, the --network-alias and the --tmpfs groups in any order
    // from run to run (a Go map): taken out first, each group keeping its own order.
    const start = [...r.commands[0]!.argv];
    const takeOut = (flag: string): string[] => {
      const values: string[] = [];
      for (let i = start.indexOf(flag); i >= 0; i = start.indexOf(flag)) values.push(...start.splice(i, 2).slice(1));
      return values;
    };
    expect(takeOut('--ip')).toEqual(['10.90.0.2']);
    expect(takeOut('--hostname')).toEqual(['postgres']);
    expect(takeOut('--network-alias')).toEqual(['postgres.ashchan.local', 'postgres']);
    expect(takeOut('--tmpfs')).toEqual(['/run/secrets:mode=0755', '/tmp', '/var/run/postgresql']);
    expect(start.join(' ')).toBe(
      '/usr/bin/podman run --name ashchan-postgres-1 --cidfile=/run/user/1000/ashchan-postgres.cid --replace --rm --cgroups=split --pids-limit 1024 ' +
        '--network ashchan-mesh --sdnotify=healthy -d ' +
        '--security-opt=no-new-privileges --cap-drop all --cap-add chown --cap-add dac_read_search --cap-add fowner --cap-add setgid --cap-add setuid --read-only ' +
        '-v ashchan-postgres-data:/var/lib/postgresql/data ' +
        '-v /home/ashchan/.config/podmesh/ashchan-dev/config/postgres/podmesh-roles.sh:/docker-entrypoint-initdb.d/podmesh-roles.sh:ro,Z ' +
        '--env POSTGRES_DB=ashchan --env POSTGRES_PASSWORD_FILE=/run/secrets/postgres.password --env POSTGRES_USER=ashchan ' +
        // Its own password, and each client's for the roles script.
        '--secret ashchan-dev-auth.postgres-password,type=mount,target=auth.postgres-password --secret ashchan-dev-boards.postgres-password,type=mount,target=boards.postgres-password ' +
        '--secret ashchan-dev-media.postgres-password,type=mount,target=media.postgres-password --secret ashchan-dev-moderation.postgres-password,type=mount,target=moderation.postgres-password ' +
        '--secret ashchan-dev-postgres.password,type=mount,target=postgres.password --secret ashchan-dev-search.postgres-password,type=mount,target=search.postgres-password ' +
        '--health-cmd ["CMD-SHELL","pg_isready -U \\"$POSTGRES_USER\\" -d \\"$POSTGRES_DB\\""] --health-interval 10s --health-retries 5 --health-start-period 10s --health-timeout 5s ' +
        '--memory=1g docker.io/library/postgres:16-alpine',
    );
    for (const c of r.commands.slice(1)) expect(c.argv.join(' ')).toBe('/usr/bin/podman rm -v -f -i --cidfile=/run/user/1000/ashchan-postgres.cid');
  });

  it('GIVEN the network unit WHEN prepared THEN it is a oneshot with the flags Podman 4.3 lacks, kept as written', () => {
    const r = prepare(units.find((u) => u.name === 'ashchan-mesh-network.service')!, MANAGER);
    expect(r.type).toBe('oneshot');
    expect(r.commands).toEqual([
      {
        key: 'ExecStart',
        ignoreFailure: false,
        argv: ['/usr/bin/podman', 'network', 'create', '--ignore', '--driver', 'bridge', '--subnet', '10.90.0.0/24', '--gateway', '10.90.0.1', '--interface-name=ashchan-mesh', 'ashchan-mesh'],
      },
    ]);
  });
});

describe.skipIf(!quadlet)('Quadlet runner: every host in out/', () => {
  // Rootless hosts' units use %h (the user's home); rootful ones /etc/podmesh.
  const hosts = readdirSync(join(repoRoot, 'out')).flatMap((stack) =>
    readdirSync(join(repoRoot, 'out', stack, 'hosts')).map((host) => join(repoRoot, 'out', stack, 'hosts', host, 'quadlet')),
  );

  it.each(hosts)('GIVEN %s WHEN its services are prepared THEN every command is a podman command (or the wait for another host\'s services) with no specifier left', (dir) => {
    const rootless = readdirSync(dir).some((f) => readFileSync(join(dir, f), 'utf8').includes('%h'));
    const manager = rootless ? MANAGER : SYSTEM_MANAGER;
    const order = startOrder(generateUnits(dir, rootless));
    expect(order.length).toBeGreaterThan(0);
    for (const u of order) {
      const r = prepare(u, manager);
      for (const c of r.commands) {
        // A dependency on another host: the one ExecStartPre that waits for it through the tunnel,
        // its arguments in fives (service, host, address, port, seconds).
        if (c.key === 'ExecStartPre' && c.argv[0] === '/bin/bash') {
          expect(c.argv.slice(0, 2).concat(c.argv.slice(3, 4)), u.name).toEqual(['/bin/bash', '-c', 'podmesh-wait']);
          const args = c.argv.slice(4);
          expect(args.length % 5, u.name).toBe(0);
          for (let i = 0; i < args.length; i += 5) expect(args.slice(i + 2, i + 5).join(' '), u.name).toMatch(/^10\.90\.0\.\d+ \d+ 300$/);
          continue;
        }
        expect(c.argv[0], u.name).toBe('/usr/bin/podman');
        expect(c.argv.filter((w) => /%[a-zA-Z%]/.test(w)), u.name).toEqual([]);
      }
      if (u.name.endsWith('-network.service') || u.name.endsWith('-volume.service')) expect(r.type, u.name).toBe('oneshot');
      else expect(r.commands.find((c) => c.key === 'ExecStart')!.argv.find((w) => w.startsWith('--cidfile='))).toBe(`--cidfile=${manager.runtimeDir}/${u.name.replace(/\.service$/, '')}.cid`);
    }
  });
});

describe('Quadlet runner: unit text, order and specifiers', () => {
  it('GIVEN a service text WHEN parsed THEN comments are dropped and repeated keys kept in order', () => {
    const u = parseUnitText('a.service', '# c\n[Unit]\nAfter=x.service\nAfter=y.service\n; c\n[Service]\nExecStart=/bin/true\n');
    expect(values(u, 'Unit', 'After')).toEqual(['x.service', 'y.service']);
    expect(values(u, 'Service', 'ExecStart')).toEqual(['/bin/true']);
  });

  it('GIVEN units that wait for each other WHEN ordered THEN the cycle is reported', () => {
    const a = parseUnitText('a.service', '[Unit]\nAfter=b.service\n');
    const b = parseUnitText('b.service', '[Unit]\nRequires=a.service\n');
    expect(() => startOrder([a, b])).toThrow('ordering cycle among a.service, b.service');
  });

  it('GIVEN a unit name WHEN specifiers are made THEN %N drops only the type suffix', () => {
    expect(specifiers('ashchan-mesh-network.service', MANAGER)).toEqual({ n: 'ashchan-mesh-network.service', N: 'ashchan-mesh-network', h: '/home/ashchan', t: '/run/user/1000' });
  });

  it('GIVEN the system manager WHEN a unit is prepared THEN %t is /run, %h /root, and no HOME or XDG_RUNTIME_DIR is passed', () => {
    const u = parseUnitText('x.service', '[Service]\nEnvironment=PODMAN_SYSTEMD_UNIT=%n\nExecStart=/usr/bin/podman run --cidfile=%t/%N.cid -v %h/a:/a img\n');
    const r = prepare(u, SYSTEM_MANAGER);
    expect(r.env).toEqual({ PODMAN_SYSTEMD_UNIT: 'x.service' });
    expect(r.commands[0]!.argv).toEqual(['/usr/bin/podman', 'run', '--cidfile=/run/x.cid', '-v', '/root/a:/a', 'img']);
  });

  it('GIVEN a specifier the runner does not know WHEN prepared THEN it fails instead of passing it through', () => {
    // %U (the user's uid) is a real systemd specifier, but no generated unit uses it: a new one must be added knowingly.
    const u = parseUnitText('a.service', '[Service]\nExecStart=/usr/bin/podman run --user %U x\n');
    expect(() => prepare(u, MANAGER)).toThrow(SystemdSyntaxError);
  });

  it('GIVEN %% and a quoted Environment= WHEN prepared THEN systemd\'s unquoting and %% apply', () => {
    const u = parseUnitText('a.service', '[Service]\nEnvironment="A=x y" B=100%%\nExecStart=-/usr/bin/echo "${A}" $B\n');
    const r = prepare(u, MANAGER);
    expect(r.env).toMatchObject({ A: 'x y', B: '100%' });
    expect(r.commands).toEqual([{ key: 'ExecStart', ignoreFailure: true, argv: ['/usr/bin/echo', 'x y', '100%'] }]);
  });
});
