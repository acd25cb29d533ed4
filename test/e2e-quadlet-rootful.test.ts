// End to end, a rootful host: ashchan-prod's host `data` (PostgreSQL, Redis, MinIO and media on
// its slice of the mesh) installed by `podmesh apply` into a temporary root (`/etc/podmesh`,
// `/etc/containers/systemd`), its units turned into services by `quadlet -dryrun` (system mode)
// and run unchanged on Podman 5.4 as the system manager would: `%t` = `/run`, no HOME or
// XDG_RUNTIME_DIR. The other hosts and the WireGuard tunnel are not part of this test (the units
// only order themselves After= the tunnel's unit); test/e2e-quadlet.test.ts runs a whole rootless
// mesh. Torn down completely.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectConfined, expectHealthy, INFRA_PID1, pid1, PID1_STATUS } from './helpers/mesh-checks.ts';
import { netnsReady } from './helpers/netns.ts';
import { podman54Ready } from './helpers/podman54.ts';
import { QuadletHost } from './helpers/quadlet-host.ts';
import { SYSTEM_MANAGER } from './helpers/quadlet-run.ts';
import { serviceImagesReady } from './helpers/service-images.ts';
import { inCI, tool } from './helpers/tools.ts';

const ready = netnsReady() && podman54Ready() && serviceImagesReady();
const quadlet = tool('quadlet');
const python = tool('python3');
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
if (!busybox) {
  if (inCI) throw new Error('busybox-static is required under CI: run scripts/install-validators.sh');
  console.warn('skipping the rootful Quadlet end-to-end test: apt-get install busybox-static');
}
const runnable = ready && !!quadlet && !!python && !!busybox;
const SERVICES = ['postgres', 'redis', 'minio', 'media'] as const;

describe.skipIf(!runnable)('end to end: ashchan-prod host data (rootful) from its Quadlet units on Podman 5.4', () => {
  let q: QuadletHost;

  beforeAll(async () => {
    // GIVEN host `data` of ashchan-prod installed by apply (rootful) and its units started as the system manager would
    q = await QuadletHost.start({ stack: 'ashchan-prod', host: 'data', project: 'ashchan', manager: SYSTEM_MANAGER, busybox: busybox! });
    console.log(q.startSummary('e2e-quadlet-rootful'));
  }, 600_000);

  afterAll(() => q?.teardown(), 180_000);

  it('GIVEN the rootful units WHEN started THEN in dependency order, with /run as %t and the host root under /etc/podmesh', () => {
    expect(q.runner!.started.map((r) => r.unit)).toEqual([
      'ashchan-mesh-network.service',
      'ashchan-minio-data-volume.service',
      'ashchan-postgres-data-volume.service',
      'ashchan-redis-data-volume.service',
      'podmesh-ashchan-prod-secrets.service',
      'ashchan-minio.service',
      'ashchan-minio-setup.service',
      'ashchan-postgres.service',
      'ashchan-media.service',
      'ashchan-redis.service',
    ]);
    const pg = q.runner!.started.find((r) => r.unit === 'ashchan-postgres.service')!.argv[0]!;
    expect(pg).toContain('--cidfile=/run/ashchan-postgres.cid');
    expect(pg).not.toContain('--env-file');
    expect(pg[pg.indexOf('ashchan-prod-postgres.password,type=mount,target=postgres.password') - 1]).toBe('--secret');
    // The secrets unit of a rootful host names the host root's copy directly (no shell, no $HOME).
    expect(q.runner!.started.find((r) => r.unit === 'podmesh-ashchan-prod-secrets.service')!.argv).toContainEqual([
      '/usr/bin/podman', 'secret', 'create', '--replace', '--label', 'io.podmesh.stack=ashchan-prod', 'ashchan-prod-postgres.password', '/etc/podmesh/ashchan-prod/secrets/postgres.password',
    ]);
    // The system manager passes no HOME or XDG_RUNTIME_DIR; the unit's own Environment= only.
    expect(q.runner!.order.find((u) => u.unit.name === 'ashchan-postgres.service')!.env).toEqual({ PODMAN_SYSTEMD_UNIT: 'ashchan-postgres.service' });
  });

  it('GIVEN a Podman 4.9 host WHEN a unit waits for health through PodmanArgs=--sdnotify=healthy THEN that flag wins over Quadlet\'s and READY=1 comes once healthy', () => {
    // Host data declares podmanVersion 4.9: no Notify=healthy key, so podmesh appends the flag
    // after Quadlet's own --sdnotify=conmon; podman takes the last one.
    for (const unit of ['ashchan-minio.service', 'ashchan-postgres.service']) {
      const r = q.runner!.started.find((x) => x.unit === unit)!;
      expect(r.argv[0]!.filter((w) => w.startsWith('--sdnotify=')), unit).toEqual(['--sdnotify=conmon', '--sdnotify=healthy']);
      expect(r.notifications.join('\n').split('\n'), unit).toContain('READY=1');
      expect(r.health, unit).toBe('healthy');
    }
  });

  it('GIVEN the started units WHEN the health checks run THEN every container turns healthy', async () => {
    const until = Date.now() + 60_000;
    const healthy = (ps: string) => SERVICES.every((s) => new RegExp(`^${q.container(s)} Up .*\\(healthy\\)$`, 'm').test(ps));
    let ps = await q.pm(['ps', '--format', '{{.Names}} {{.Status}}']);
    while (!healthy(ps.stdout) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 1_000));
      ps = await q.pm(['ps', '--format', '{{.Names}} {{.Status}}']);
    }
    expect(healthy(ps.stdout), ps.stdout).toBe(true);
  });

  it('GIVEN the official entrypoints WHEN PostgreSQL and Redis run with the generated commands THEN they dropped root for their users (gosu)', async () => {
    for (const s of ['postgres', 'redis'] as const) {
      const r = await q.pm(['exec', q.container(s), ...PID1_STATUS]);
      expect(pid1(r.stdout), `${s}: ${r.stderr}`).toBe(INFRA_PID1[s]);
    }
  });

  it('GIVEN a rootful host WHEN each container is looked at from inside THEN its root is an unprivileged host id (UserNS=auto), no_new_privs, its declared capabilities, a read-only root; the limits are in podman inspect', async () => {
    for (const s of SERVICES) {
      const declared = q.declaredConfinement(s);
      expect(declared.keys, s).toMatchObject({ NoNewPrivileges: ['true'], DropCapability: ['all'], ReadOnly: ['true'], UserNS: ['auto'], PidsLimit: ['1024'] });
      await expectConfined(s, (argv) => q.pm(['exec', q.container(s), ...argv]), declared.capAdd, s === 'postgres' || s === 'redis');
      // Container uid 0 is mapped to a host id other than 0.
      const map = await q.pm(['exec', q.container(s), 'cat', '/proc/1/uid_map']);
      const [inside, outside] = map.stdout.trim().split(/\s+/);
      expect([inside, Number(outside) > 0], `${s}: ${map.stdout} ${map.stderr}`).toEqual(['0', true]);
      const inspect = await q.pm(['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.ReadonlyRootfs}}', q.container(s)]);
      expect(inspect.stdout.trim(), `${s}: ${inspect.stderr}`).toBe('1073741824 1024 true');
    }
   }, 300_000);

  it('GIVEN media WHEN asked for /health as its health check asks THEN PostgreSQL accepted the generated credentials', async () => {
    const r = await q.curlIn('media', 'https://media.ashchan.local:8443/health');
    expectHealthy('media', r.stdout, r.stderr);
  });

  it('GIVEN the units WHEN stopped and the run torn down THEN no container, cgroup, namespace or process is left', async () => {
    expect(await q.runner!.stop()).toEqual([]);
    const ps = await q.pm(['ps', '-a', '--format', '{{.Names}}']);
    expect(ps.stdout.trim()).toBe('');
    const net = q.net!;
    const p = q.podman!;
    await q.teardown();
    expect(net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    expect(p.cgroups()).toEqual([]);
  });
});
