// End to end, the production path: ashchan-dev installed by `podmesh apply` into a temporary host
// root, its Quadlet units turned into services by `quadlet -dryrun -user` (Quadlet 5.4.2), and the
// `podman` commands of those services run unchanged, in systemd's order, by Podman 5.4.2 from a
// Debian 13 root filesystem, inside a network namespace this test creates. There is no systemd
// here: test/helpers/quadlet-run.ts does the few things it would (specifiers, the unit's cgroup,
// NOTIFY_SOCKET, health-check timers) and says so. Then the same checks as the compose test: DNS,
// `podmesh verify` from inside the mesh, boards calling media and moderation; then `ExecStop` of
// every unit and a teardown that leaves nothing.
//
// The rootless user manager is simulated for root: %h = /root (apply's `--home /root`, the host
// root's /root bound onto the Debian 13 root's /root), %t = /run/user/0.
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ASHCHAN_DEV_SECRET_IDS,
  ASHCHAN_APPS,
  ASHCHAN_INFRA,
  ASHCHAN_SEED_IPS,
  expectAshchanPolicy,
  expectConfined,
  expectHealthy,
  expectOnlyUnstapled,
  expectWrongPasswordRefused,
  INFRA_PID1,
  pid1,
  PID1_STATUS,
  verifyLines,
  WRONG_PASSWORD_PHP,
} from './helpers/mesh-checks.ts';
import { netnsReady } from './helpers/netns.ts';
import { podman54Ready } from './helpers/podman54.ts';
import { QuadletHost } from './helpers/quadlet-host.ts';
import { userManager, value } from './helpers/quadlet-run.ts';
import { serviceImagesReady } from './helpers/service-images.ts';
import { inCI, tool } from './helpers/tools.ts';

const ready = netnsReady() && podman54Ready() && serviceImagesReady();
const quadlet = tool('quadlet');
const python = tool('python3');
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
if (!busybox) {
  if (inCI) throw new Error('busybox-static is required under CI: run scripts/install-validators.sh');
  console.warn('skipping the Quadlet end-to-end test: apt-get install busybox-static');
}
const runnable = ready && !!quadlet && !!python && !!busybox;

const STACK = 'ashchan-dev';
const NETWORK = 'ashchan-mesh';
/** The simulated user manager (see the top of this file). */
const MANAGER = userManager(0, '/root');

describe.skipIf(!runnable)('end to end: ashchan-dev from its Quadlet units on Podman 5.4', () => {
  let q: QuadletHost;
  const pm = (args: readonly string[], timeoutMs?: number) => q.pm(args, timeoutMs);
  const container = (name: string) => q.container(name);
  const curlIn = (name: string, url: string) => q.curlIn(name, url);
  const verifyInMesh = () => q.verifyIn(NETWORK, ['--json']);

  /**
   * Polls each app's /health (as its health check asks it) until all answer 200, at most `ms`:
   * restarted containers make netavark restart aardvark-dns, and a PDO connect blocked meanwhile
   * can hold a service's workers for a few seconds.
   */
  async function waitServing(ms = 60_000): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const results = await Promise.all(ASHCHAN_APPS.map((n) => curlIn(n, `https://${n}.ashchan.local:8443/health`).catch(() => ({ stdout: '' }))));
      const waiting = ASHCHAN_APPS.filter((_, i) => !/\n200$/.test(results[i]!.stdout));
      if (waiting.length === 0) return;
      if (Date.now() > until) throw new Error(`not serving /health after ${ms} ms: ${waiting.join(', ')}\n${await q.runner!.diagnose()}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  beforeAll(async () => {
    // GIVEN ashchan-dev synthesized and host `local` installed by `podmesh apply` into a host root
    // whose rootless user has the home /root, Podman 5.4 in a simulated host, the test images
    // WHEN the services Quadlet makes of the installed units are started as systemd would
    q = await QuadletHost.start({
      stack: STACK,
      host: 'local',
      project: 'ashchan',
      manager: MANAGER,
      busybox: busybox!,
      unitTimeoutMs: Number(process.env.PODMESH_UNIT_TIMEOUT_MS ?? 120_000),
    });
    const version = await pm(['version', '--format', '{{.Client.Version}}']);
    expect(version.stdout.trim(), version.stderr).toBe('5.4.2');
    console.log(q.startSummary('e2e-quadlet'));
  }, 600_000);

  afterAll(() => q?.teardown(), 180_000);

  it('GIVEN the generated units WHEN started THEN they run in dependency order: network and volumes, the secrets, infrastructure, services, gateway', () => {
    expect(q.runner!.started.map((r) => r.unit)).toEqual([
      'ashchan-mesh-network.service',
      'ashchan-minio-data-volume.service',
      'ashchan-postgres-data-volume.service',
      'ashchan-redis-data-volume.service',
      'podmesh-ashchan-dev-secrets.service',
      'ashchan-minio.service',
      'ashchan-minio-setup.service',
      'ashchan-postgres.service',
      'ashchan-media.service',
      'ashchan-redis.service',
      'ashchan-auth.service',
      'ashchan-moderation.service',
      'ashchan-boards.service',
      'ashchan-search.service',
      'ashchan-gateway.service',
    ]);
  });

  it('GIVEN the commands run WHEN compared with what Quadlet generated THEN only the specifiers differ', () => {
    const argv = (unit: string) => q.runner!.started.find((r) => r.unit === unit)!.argv;
    // Podman 4.3 would refuse these flags; 5.4 ran them as written.
    expect(argv('ashchan-mesh-network.service')).toEqual([
      ['/usr/bin/podman', 'network', 'create', '--ignore', '--driver', 'bridge', '--subnet', '10.90.0.0/24', '--gateway', '10.90.0.1', '--interface-name=ashchan-mesh', 'ashchan-mesh'],
    ]);
    const pg = argv('ashchan-postgres.service')[0]!;
    expect(pg.slice(0, 7)).toEqual(['/usr/bin/podman', 'run', '--name', 'ashchan-postgres-1', '--cidfile=/run/user/0/ashchan-postgres.cid', '--replace', '--rm']);
    expect(pg).toContain('--sdnotify=healthy');
    // No env file: the password is a Podman secret (a file at /run/secrets), named by POSTGRES_PASSWORD_FILE,
    // created by the secrets unit from the host root's copy before any container started.
    expect(pg).not.toContain('--env-file');
    expect(pg[pg.indexOf('ashchan-dev-postgres.password,type=mount,target=postgres.password') - 1]).toBe('--secret');
    const order = q.runner!.started.map((r) => r.unit);
    expect(order.indexOf('podmesh-ashchan-dev-secrets.service')).toBeLessThan(order.indexOf('ashchan-postgres.service'));
    expect(argv('podmesh-ashchan-dev-secrets.service')).toContainEqual(['/bin/sh', '-c', 'exec /usr/bin/podman secret create --replace --label io.podmesh.stack=ashchan-dev ashchan-dev-postgres.password "$HOME/.config/podmesh/ashchan-dev/secrets/postgres.password"']);
    expect(pg[pg.indexOf('POSTGRES_PASSWORD_FILE=/run/secrets/postgres.password') - 1]).toBe('--env');
    // systemd turns `$$` into `$`: the shell in the container expands the variables.
    expect(pg[pg.indexOf('--health-cmd') + 1]).toBe('["CMD-SHELL","pg_isready -U \\"$POSTGRES_USER\\" -d \\"$POSTGRES_DB\\""]');
    for (const r of q.runner!.started) for (const a of r.argv) expect(a.filter((w) => /%[a-zA-Z]/.test(w)), r.unit).toEqual([]);
  });

  it('GIVEN Notify=healthy WHEN a unit starts THEN READY=1 arrives only once its container is healthy', () => {
    // Every container unit is Type=notify; all but the gateway (nobody waits for it) wait for health.
    const notify = q.runner!.started.filter((r) => r.type === 'notify');
    expect(notify.map((r) => r.unit).sort()).toEqual([...ASHCHAN_APPS, ...ASHCHAN_INFRA].map((s) => `ashchan-${s}.service`).sort());
    for (const r of notify) expect(r.notifications.join('\n').split('\n'), r.unit).toContain('READY=1');
    const gated = q.units.filter((u) => value(u, 'X-Container', 'Notify') === 'healthy').map((u) => u.name);
    expect(gated.sort()).toEqual([...ASHCHAN_APPS, ...ASHCHAN_INFRA].filter((s) => s !== 'gateway').map((s) => `ashchan-${s}.service`).sort());
    for (const r of notify.filter((x) => gated.includes(x.unit))) expect(r.health, r.unit).toBe('healthy');
  });

  it('GIVEN the started units WHEN the health checks run THEN every container turns healthy', async () => {
    // The gateway started without waiting for its health check (--sdnotify=conmon): wait for it, bounded.
    const until = Date.now() + 60_000;
    let ps = await pm(['ps', '--format', '{{.Names}} {{.Status}}']);
    while (!/^ashchan-gateway-1 Up .*\(healthy\)$/m.test(ps.stdout) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 1_000));
      ps = await pm(['ps', '--format', '{{.Names}} {{.Status}}']);
    }
    for (const s of [...ASHCHAN_APPS, ...ASHCHAN_INFRA]) expect(ps.stdout, s).toMatch(new RegExp(`^${container(s)} Up .*\\(healthy\\)$`, 'm'));
  });

  it('GIVEN the mesh WHEN a container looks up a DNS name THEN aardvark-dns answers with the generated address', async () => {
    for (const [name, ip] of Object.entries(ASHCHAN_SEED_IPS)) {
      const r = await pm(['exec', container('gateway'), 'getent', 'hosts', `${name}.ashchan.local`]);
      expect(r.stdout.trim(), r.stderr).toMatch(new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+${name}\\.ashchan\\.local$`));
    }
  });

  it('GIVEN the mesh WHEN podmesh verify runs inside it THEN every probe is as the policy says', async () => {
    // WHEN
    const r = await verifyInMesh();
    // THEN
    expectAshchanPolicy(verifyLines(r.stdout), r.exitCode, r.stderr);
  });

  it('GIVEN the host side of the mesh WHEN verify connects to the lock\'s addresses THEN prom output counts the handshakes', async () => {
    // In the simulated host's own network namespace (--network host), with --resolve-from-lock;
    // DNS asked of aardvark-dns at the bridge gateway, as in the compose test.
    const r = await q.verifyIn('host', ['--resolve-from-lock', '--dns', '10.90.0.1', '--format', 'prom']);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('mtls_handshake_total{stack="ashchan-dev",service="auth",client="gateway",check="allowed"} 1');
    expect(r.stdout).toContain('mtls_handshake_failures{stack="ashchan-dev",service="auth",client="gateway",check="allowed"} 0');
    expect(r.stdout).toContain('mtls_handshake_failures{stack="ashchan-dev",service="auth",client="boards",check="not-allowed"} 1');
    expect(r.stdout).toContain('podmesh_verify_unexpected{stack="ashchan-dev"} 0');
  });

  it('GIVEN the generated DB_* and REDIS_* settings and secrets WHEN every service answers /health THEN PostgreSQL and Redis accepted them', async () => {
    for (const app of ASHCHAN_APPS) {
      // WHEN the service is asked as its generated health check asks it (its own client certificate)
      const r = await curlIn(app, `https://${app}.ashchan.local:8443/health`);
      // THEN
      expectHealthy(app, r.stdout, r.stderr);
    }
  });

  it('GIVEN the running units WHEN every container is inspected and every command line read, inside the containers and outside THEN no secret value appears: each is a read-only file under /run/secrets', async () => {
    const values = JSON.parse(readFileSync(join(q.state, STACK, 'secrets/values.json'), 'utf8')) as Record<string, string>;
    expect(Object.keys(values).sort()).toEqual(ASHCHAN_DEV_SECRET_IDS);
    const names = [...ASHCHAN_APPS, ...ASHCHAN_INFRA].map(container);
    const inspect = await pm(['inspect', ...names]);
    expect(inspect.exitCode, inspect.stderr).toBe(0);
    for (const [id, v] of Object.entries(values)) expect(inspect.stdout.includes(v), `${id} in podman inspect`).toBe(false);
    const containers = JSON.parse(inspect.stdout) as { Name: string; Config: { Env: string[] }; Mounts: { Destination: string; RW: boolean }[] }[];
    expect(containers).toHaveLength(names.length);
    for (const c of containers) expect(c.Config.Env.filter((e) => /^[A-Z_]*(PASSWORD|AUTH|SECRET)=/.test(e)), c.Name).toEqual([]);
    // The stack's Podman secrets, by name; inside, read-only files the image's users can read.
    // One per secret file: the ids above, and Redis' configuration.
    const stackSecrets = [...Object.keys(values).map((id) => `ashchan-dev-${id.replace('/', '.')}`), 'ashchan-dev-redis.password.conf'].sort();
    const listed = await pm(['secret', 'ls', '--format', '{{.Name}}']);
    expect(listed.stdout.trim().split('\n').sort(), listed.stderr).toEqual(stackSecrets);
    const labels = await pm(['secret', 'inspect', '--format', '{{.Spec.Name}} {{.Spec.Labels}}', ...stackSecrets]);
    expect(labels.stdout.trim().split('\n').sort(), labels.stderr).toEqual(stackSecrets.map((n) => `${n} map[io.podmesh.stack:ashchan-dev]`));
    const files = await pm(['exec', container('redis'), 'sh', '-c', 'stat -c "%n %a" /run/secrets/*; echo x >> /run/secrets/redis.password && echo writable']);
    expect(files.stdout.trim().split('\n').sort(), files.stderr).toEqual(['/run/secrets/redis.password 444', '/run/secrets/redis.password.conf 444']);
    for (const n of [...ASHCHAN_APPS, 'postgres', 'redis']) {
      const inside = await pm(['exec', container(n), 'sh', '-c', 'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done 2>/dev/null']);
      expect(inside.stdout, `${n}: ${inside.stderr}`).toMatch(/\S/);
      for (const [id, v] of Object.entries(values)) expect(inside.stdout.includes(v), `${id} on a command line in ${n}`).toBe(false);
    }
    // Outside: this machine's process table holds every container's processes, health checks included.
    await pm(['healthcheck', 'run', container('redis')]);
    const outside = await execa('ps', ['-eo', 'args'], { reject: false });
    expect(outside.stdout).toContain('redis-server');
    for (const [id, v] of Object.entries(values)) expect(outside.stdout.includes(v), `${id} on a command line`).toBe(false);
  }, 300_000);

  it('GIVEN the official entrypoints WHEN PostgreSQL and Redis run with the generated commands THEN they dropped root for their users (gosu)', async () => {
    for (const s of ['postgres', 'redis'] as const) {
      const r = await q.pm(['exec', q.container(s), ...PID1_STATUS]);
      expect(pid1(r.stdout), `${s}: ${r.stderr}`).toBe(INFRA_PID1[s]);
    }
  });

  it('GIVEN the secure defaults of the units WHEN each container is looked at from inside THEN no_new_privs, exactly its declared capabilities, a read-only root with a writable /tmp; podman inspect holds the memory and pids limits', async () => {
    // Every container at once: each looks only at itself.
    await Promise.all([...ASHCHAN_APPS, ...ASHCHAN_INFRA].map(async (s) => {
      const declared = q.declaredConfinement(s);
      expect(declared.keys, s).toMatchObject({ NoNewPrivileges: ['true'], DropCapability: ['all'], ReadOnly: ['true'], PidsLimit: ['1024'] });
      // ashchan-dev's host is rootless: rootless Podman maps container root already, so no UserNS= key.
      expect(declared.keys.UserNS, s).toEqual([]);
      await expectConfined(s, (argv) => q.pm(['exec', q.container(s), ...argv]), declared.capAdd, s === 'postgres' || s === 'redis');
      const inspect = await q.pm(['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.ReadonlyRootfs}}', q.container(s)]);
      expect(inspect.stdout.trim(), `${s}: ${inspect.stderr}`).toBe('1073741824 1024 true');
    }));
  }, 300_000);

  it('GIVEN the real servers WHEN a client brings a wrong password THEN PostgreSQL and Redis refuse it', async () => {
    const r = await pm(['exec', container('boards'), 'php', '-r', WRONG_PASSWORD_PHP]);
    expectWrongPasswordRefused(r.stdout, r.stderr);
  });

  it('GIVEN a caller outside boards\' policy WHEN it presents its own valid client certificate THEN boards\' policy code answers 403', async () => {
    const r = await curlIn('auth', 'https://boards.ashchan.local:8443/health');
    expect(r.stdout, r.stderr).toMatch(/\n403$/);
    expect(JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf('\n')))).toEqual({ error: 'forbidden', client_cn: 'auth.ashchan.local', client_spiffe_id: 'spiffe://ashchan.local/ashchan-dev/auth' });
  });

  it('GIVEN the gateway\'s PublishPort WHEN the host connects to localhost:9501 without a client certificate THEN the public TLS listener answers with public.crt', async () => {
    // From the simulated host itself (its own loopback), through the port Podman 5.4 published.
    const ca = `${MANAGER.home}/.config/podmesh/${STACK}/pki/services/gateway/ca.crt`;
    const r = await q.podman!.exec(['curl', '-sS', '--max-time', '10', '--tlsv1.3', '--cacert', ca, '-o', '/dev/null', '-w', '%{http_code} %{ssl_verify_result}', 'https://localhost:9501/health'], { timeoutMs: 20_000 });
    expect(r.stdout, r.stderr).toBe('200 0');
  });

  it('GIVEN boards WHEN it calls media and moderation by their *_SERVICE_URL THEN the calls go through over mTLS', async () => {
    for (const target of ['media', 'moderation']) {
      const r = await curlIn('boards', `https://boards.ashchan.local:8443/call/${target}`);
      expect(r.stdout, r.stderr).toMatch(/"status":200[\s\S]*\n200$/);
    }
  });

  it('GIVEN boards\' client certificate revoked, synth and apply WHEN the units apply names are restarted THEN the revoked certificate is refused and boards calls again with its new one', async () => {
    // GIVEN the production loop: revoke, synth, apply (which lists the units to restart)
    const rv = await q.cli('certs', 'revoke', 'boards', '--kind', 'client', '--reason', 'keyCompromise');
    expect(rv.exitCode, rv.stderr).toBe(0);
    const s = await q.cli('synth');
    expect(s.exitCode, s.stderr).toBe(0);
    const a = await q.apply();
    expect(a.exitCode, a.stderr).toBe(0);
    const restarts = [...a.stdout.matchAll(/^ {4}systemctl --user restart (\S+)$/gm)].map((m) => m[1]!);
    // Every service with the new CRL, boards with its new client certificate; not the databases.
    // MinIO's setup mounts MinIO's ca.crt from the same certificate folder: it runs again (idempotent).
    // (Sorted by unit name: `ashchan-minio-setup.service` before `ashchan-minio.service`.)
    // The revocation rewrote the OCSP index: both responders restart to answer from it.
    const containers = ['auth', 'boards', 'gateway', 'media', 'minio-setup', 'minio', 'moderation', 'search'].map((x) => `ashchan-${x}.service`);
    expect(restarts).toEqual([...containers, 'podmesh-ashchan-dev-ocsp-client-ca.service', 'podmesh-ashchan-dev-ocsp-root.service']);
    // WHEN the container units are restarted as systemctl would (ExecStop, ExecStopPost, ExecStart);
    // the responders are host services this test does not run (test/ocsp.test.ts runs them).
    const t0 = Date.now();
    await q.runner!.restart(containers);
    console.log(`e2e-quadlet: ${containers.length} units restarted in ${Math.round((Date.now() - t0) / 1000)} s`);
    await waitServing();
    // THEN verify's probes with the revoked serial are refused by both servers boards may call ...
    const r = await verifyInMesh();
    const lines = verifyLines(r.stdout);
    expectOnlyUnstapled(lines, r.stderr);
    expect(r.exitCode).toBe(0);
    expect(lines.filter((l) => l.check === 'revoked').map((l) => `${l.client}->${l.target}:${l.result}`).sort()).toEqual(['boards->media:pass', 'boards->moderation:pass']);
    // ... and boards, restarted with its new certificate, calls media again
    const ok = await curlIn('boards', 'https://boards.ashchan.local:8443/call/media');
    expect(ok.stdout, ok.stderr).toMatch(/"status":200[\s\S]*\n200$/);
    // Seven units restart one after another, each health-gated: about 25 s alone, twice that under load.
  }, 150_000);

  it('GIVEN the units WHEN stopped by their ExecStop lines and the run torn down THEN no container, cgroup, namespace or process is left', async () => {
    // WHEN every unit's ExecStop/ExecStopPost runs (last started first)
    const t0 = Date.now();
    const errors = await q.runner!.stop();
    expect(errors).toEqual([]);
    console.log(`e2e-quadlet: all units stopped in ${Math.round((Date.now() - t0) / 1000)} s`);
    // THEN no container is left; networks and volumes stay, as with systemd (oneshot units without ExecStop)
    const ps = await pm(['ps', '-a', '--format', '{{.Names}}']);
    expect(ps.stdout.trim()).toBe('');
    const nets = await pm(['network', 'ls', '--format', '{{.Name}}']);
    expect(nets.stdout.split('\n')).toContain(NETWORK);

    const ns = q.host.netns;
    const net = q.net!;
    const p = q.podman!;
    await q.teardown();
    expect(net.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    expect(p.cgroups()).toEqual([]);
    expect(readdirSync('/run/netns').filter((n) => n === ns)).toEqual([]);
    expect(existsSync(q.dir.path)).toBe(false);
  });
});
