// End to end, the Kubernetes export consumed by a real reader of Kubernetes YAML: `podman kube
// play` (Podman 5.4.2 from a Debian 13 root filesystem, test/helpers/podman54.ts) runs the
// Deployments of ashchan-dev's application services inside a network namespace this test creates,
// with the ConfigMaps of 20-configmaps.yaml and the Secrets that kubernetes/secrets.sh makes from
// the state folder with the real kubectl; then each pod's mTLS port is asked by a TLS client that
// presents a client certificate the call policy allows and verifies the server certificate against
// the mesh CA under the cluster Service names (`<svc>.ashchan.svc`, `<svc>.ashchan.svc.cluster.local`).
//
// What runs, and why not more:
// - ashchan-dev with one prop changed, `kubernetes.certificates: 'secrets'` (the stack file copied,
//   that prop replaced): with the default, cert-manager issues the pods' certificates, and there is
//   no cert-manager here; with `secrets`, secrets.sh exports the state folder's own leaves, so the
//   pods serve the very certificates podmesh generated.
// - The six Deployments, not the StatefulSets (PostgreSQL, Redis, MinIO): `podman kube play` 5.4
//   reads Pod, Deployment, DaemonSet, Job, PersistentVolumeClaim, ConfigMap and Secret
//   (podman-kube-play(1)), no StatefulSet; nor the Job, MinIO's setup, which needs MinIO. The
//   Hyperf services' mTLS listener needs neither PostgreSQL nor Redis to start: only their /health
//   asks them, and the check here is /whoami, which answers with what the TLS handshake and the
//   call policy decided.
// - The app image is the e2e one (test/helpers/quadlet-images.ts): PHP 8.2 + Swoole with the PHP
//   sample (examples/php-sample/server.php), which reads only the generated config/autoload files
//   and the service's app/Podmesh/Policy.php (here from the ConfigMap) and the certificates (here from the Secret), tagged with the images
//   the Deployments name, so nothing is pulled.
// - Services and NetworkPolicies are not run (kube play has neither): the Service names are checked
//   as the TLS server name, each pod reached at its address on a Podman network.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { loadStacks } from '../src/cli/load.ts';
import { synth } from '../src/index.ts';
import { KUBECTL, recordSecretsScript } from './helpers/kubectl.ts';
import { createHosts, netnsReady, type SimNetwork } from './helpers/netns.ts';
import { podman54Ready, podman54Rootfs, startPodman54, type Podman54 } from './helpers/podman54.ts';
import { buildServiceImages, importArgs, serviceImagesReady } from './helpers/service-images.ts';
import { podmeshProject, tempDir } from './helpers/stacks.ts';
import { inCI, repoRoot } from './helpers/tools.ts';

const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
if (!busybox) {
  if (inCI) throw new Error('busybox-static is required under CI (the pods\' pause image): run scripts/install-validators.sh');
  console.warn('skipping the kube play end-to-end test: apt-get install busybox-static');
}
const runnable = netnsReady() && podman54Ready() && serviceImagesReady() && !!KUBECTL && !!busybox;

const STACK = 'ashchan-dev';
const NS = 'ashchan';
const NETWORK = 'ashchan-kube';
/** The application services: each a Deployment with an mTLS port 8443. */
const APPS = ['auth', 'moderation', 'search', 'media', 'boards', 'gateway'] as const;
/**
 * Per service, a caller the call policy allows (stacks/lib/ashchan.ts): the gateway calls all but
 * itself; nobody calls the gateway, whose own certificate (its health check's) is always allowed.
 */
const CALLER: Record<(typeof APPS)[number], string> = { auth: 'gateway', moderation: 'boards', search: 'gateway', media: 'boards', boards: 'gateway', gateway: 'gateway' };
/** Per service, a mesh member the policy does not allow to call it. */
const STRANGER: Record<(typeof APPS)[number], string> = { auth: 'boards', moderation: 'search', search: 'boards', media: 'auth', boards: 'media', gateway: 'auth' };
const APP_IMAGE = 'localhost/podmesh-kube/php-sample:8.2';
/**
 * The pods' infra container. Podman builds its own pause image from catatonit, which Debian's
 * podman only recommends and the test root filesystem (scripts/podman54-rootfs.sh, no recommends)
 * lacks: `kube play` then fails with `finding pause binary: exec: "catatonit": executable file not
 * found`. A static busybox waiting for SIGTERM holds the pod's namespaces open instead, named by
 * containers.conf's `infra_image` (CONTAINERS_CONF_OVERRIDE, for this test's commands only).
 */
const PAUSE_IMAGE = 'localhost/podmesh-kube/pause:1';
const PAUSE = ['#!/bin/sh', '# holds the pod\'s namespaces open until stopped, as catatonit -P does', "trap 'exit 0' TERM INT", 'while :; do sleep 3600 & wait $!; done', ''].join('\n');
/** Where the test's folder (state, out/, the YAML played) is inside the Podman root. */
const INSIDE = '/mnt/kube';

type Doc = Record<string, any>;

function yamlDocs(file: string): Doc[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => {
      expect(d.errors, file).toEqual([]);
      return d.toJS() as Doc;
    })
    .filter(Boolean);
}

describe.skipIf(!runnable)('podman kube play (Podman 5.4) runs ashchan-dev\'s Deployments with the generated certificates', () => {
  // Made only when the test runs (a skipped describe still runs its body, never its afterAll).
  const dir = runnable ? tempDir('podmesh-e2ek-') : { path: '/nonexistent', cleanup: () => undefined };
  const out = join(dir.path, 'out');
  const state = join(dir.path, 'state');
  const kube = join(out, STACK, 'kubernetes');
  let net: SimNetwork | undefined;
  let podman: Podman54 | undefined;
  let deployments: Doc[] = [];
  let secrets: Doc[] = [];
  let configMaps: Doc[] = [];
  /** Each service's pod address on the Podman network. */
  const ips = new Map<string, string>();
  const times = { synth: 0, podman: 0, image: 0, play: 0, serving: 0 };

  const pm = (args: readonly string[], timeoutMs = 60_000) => podman!.podman(args, { timeoutMs, env: { CONTAINERS_CONF_OVERRIDE: `${INSIDE}/containers.conf` } });
  /** A leaf of the state folder, as seen inside the Podman root. */
  const leaf = (service: string, file: string) => `${INSIDE}/state/${STACK}/pki/services/${service}/${file}`;
  /**
   * curl in the simulated host (Debian 13's) to a pod's mTLS port under `name`, resolved to the
   * pod's address; with `as`, that service's client certificate. stdout ends with `\n<http code>`.
   */
  const ask = (service: string, name: string, as: string | undefined, path = '/whoami') =>
    podman!.exec(
      [
        'curl', '-sS', '--max-time', '10', '--tlsv1.3',
        '--cacert', `${INSIDE}/state/${STACK}/pki/ca.crt`,
        ...(as ? ['--cert', leaf(as, 'client.crt'), '--key', leaf(as, 'client.key')] : []),
        '--resolve', `${name}:8443:${ips.get(service)}`,
        '-w', '\n%{http_code}', `https://${name}:8443${path}`,
      ],
      { timeoutMs: 20_000 },
    );

  /** curl's output of {@link ask}: the body and the HTTP status after the last newline. */
  const answer = (stdout: string) => ({ body: stdout.slice(0, stdout.lastIndexOf('\n')), code: stdout.slice(stdout.lastIndexOf('\n') + 1) });

  beforeAll(async () => {
    const project = dir.path;
    // GIVEN ashchan-dev's stack file in a project of its own, exporting its certificate folders as
    // Secrets; its manifests and the Secrets of its secrets.sh
    const manifests = async () => {
      const at = Date.now();
      podmeshProject(project);
      mkdirSync(join(project, 'stacks'));
      symlinkSync(join(repoRoot, 'stacks/lib'), join(project, 'stacks/lib'));
      const source = readFileSync(join(repoRoot, 'stacks/ashchan-dev.ts'), 'utf8');
      const prop = `kubernetes: { namespace: '${NS}' }`;
      expect(source.split(prop)).toHaveLength(2);
      writeFileSync(join(project, 'stacks/ashchan-dev.ts'), source.replace(prop, `kubernetes: { namespace: '${NS}', certificates: 'secrets' }`));
      await synth(await loadStacks(join(project, 'stacks')), { outDir: out, stateDir: state, stacks: [STACK] });
      secrets = await recordSecretsScript(join(kube, 'secrets.sh'), project, state);
      configMaps = yamlDocs(join(kube, '20-configmaps.yaml'));
      deployments = yamlDocs(join(kube, '50-workloads.yaml')).filter((w) => w.kind === 'Deployment');
      // With certificates: 'secrets' each certificate folder is one Secret, a plain secret volume:
      // the manifests play as written. The committed ashchan-dev (cert-manager: the certificate's
      // Secret and the CRL's in one folder) needs a projected volume, which kube play refuses.
      const certManager = yamlDocs(join(repoRoot, 'out', STACK, 'kubernetes/50-workloads.yaml')).filter((w) => w.kind === 'Deployment');
      writeFileSync(join(project, 'cert-manager.yaml'), [...configMaps, ...secrets, ...certManager].map((d) => stringify(d)).join('---\n'));
      writeFileSync(join(project, 'play.yaml'), [...configMaps, ...secrets, ...deployments].map((d) => stringify(d)).join('---\n'));
      times.synth = Date.now() - at;
    };
    // AND Podman 5.4 in a simulated host with the app and pause images and a network (meanwhile)
    const runtime = async () => {
      let at = Date.now();
      writeFileSync(join(project, 'containers.conf'), `[engine]\ninfra_image = "${PAUSE_IMAGE}"\n`);
      const rootfs = podman54Rootfs();
      const images = await buildServiceImages();
      net = await createHosts(['kube']);
      const pause = join(net.workDir, 'pause');
      mkdirSync(join(pause, 'bin'), { recursive: true });
      copyFileSync(busybox!, join(pause, 'bin/busybox'));
      for (const applet of ['sh', 'sleep']) symlinkSync('busybox', join(pause, 'bin', applet));
      writeFileSync(join(pause, 'pause'), PAUSE, { mode: 0o755 });
      podman = await startPodman54(net.host('kube'), rootfs, {
        workDir: net.workDir,
        binds: [
          { source: dirname(images.php.tarball), target: '/mnt/service-images', readOnly: true },
          { source: project, target: INSIDE, readOnly: true },
          { source: pause, target: '/mnt/pause', readOnly: true },
        ],
      });
      await podman.importImage('/mnt/pause', PAUSE_IMAGE, ['--change', 'ENTRYPOINT=["/pause"]']);
      times.podman = Date.now() - at;
      at = Date.now();
      // Podman 5.4's `import --change` splits at whitespace before it reads the JSON form: compact it.
      const changes = [...images.php.changes.filter((c) => !c.startsWith('CMD=')), 'CMD=["php","/opt/www/server.php"]'].map((c) => c.replace(/^(\w+)=(\[.*\])$/, (_, k: string, v: string) => `${k}=${JSON.stringify(JSON.parse(v))}`));
      const imported = await pm(['import', ...importArgs({ ...images.php, tarball: `/mnt/service-images/${basename(images.php.tarball)}`, changes }, APP_IMAGE)], 180_000);
      expect(imported.exitCode, imported.stderr).toBe(0);
      const n = await pm(['network', 'create', NETWORK]);
      expect(n.exitCode, n.stderr).toBe(0);
      times.image = Date.now() - at;
    };
    // Both to the end (afterAll must not race a half-made host), then the first failure.
    const failed = (await Promise.allSettled([manifests(), runtime()])).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const image of new Set(deployments.map((d) => d.spec.template.spec.containers[0].image as string))) {
      const t = await pm(['tag', APP_IMAGE, image]);
      expect(t.exitCode, t.stderr).toBe(0);
    }
  }, 600_000);

  afterAll(async () => {
    const errors: string[] = [];
    await podman?.teardown().catch((e: unknown) => errors.push(String(e)));
    await net?.teardown().catch((e: unknown) => errors.push(String(e)));
    dir.cleanup();
    console.log(`e2e-kube: synth and Secrets ${times.synth} ms, Podman 5.4 up ${times.podman} ms, image ${times.image} ms, kube play ${times.play} ms, all serving ${times.serving} ms`);
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }, 180_000);

  it('GIVEN the committed ashchan-dev\'s Deployments (cert-manager) WHEN played THEN Podman 5.4 refuses their projected certificate volumes', async () => {
    const v = await pm(['version', '--format', '{{.Client.Version}}']);
    expect(v.stdout.trim(), v.stderr).toBe('5.4.2');
    const r = await pm(['kube', 'play', '--network', NETWORK, `${INSIDE}/cert-manager.yaml`]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('failed to create volume "pki-auth": HostPath, ConfigMap, EmptyDir, Secret, and PersistentVolumeClaim are currently the only supported VolumeSource');
    // Nothing of it stays.
    const ps = await pm(['pod', 'ps', '-q']);
    expect(ps.stdout.trim()).toBe('');
  });

  it('GIVEN the ConfigMaps, the Secrets of secrets.sh and the Deployments WHEN played THEN every pod runs', async () => {
    // WHEN
    const at = Date.now();
    const r = await pm(['kube', 'play', '--network', NETWORK, `${INSIDE}/play.yaml`], 180_000);
    times.play = Date.now() - at;
    // THEN
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const pods = await pm(['pod', 'ps', '--format', '{{.Name}} {{.Status}}']);
    expect(pods.stdout.trim().split('\n').sort(), pods.stderr).toEqual(APPS.map((a) => `${a}-pod Running`).sort());
    for (const app of APPS) {
      const i = await pm(['inspect', '--format', `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`, `${app}-pod-${app}`]);
      expect(i.stdout.trim(), i.stderr).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      ips.set(app, i.stdout.trim());
    }
  }, 240_000);

  it('GIVEN each pod WHEN a caller the policy allows asks its mTLS port under its Service names THEN the server certificate verifies against the mesh CA and the service answers as itself', async () => {
    // Swoole starts within seconds of its pod: poll, bounded.
    const at = Date.now();
    const until = at + 60_000;
    for (;;) {
      const results = await Promise.all(APPS.map((a) => ask(a, `${a}.${NS}.svc`, CALLER[a])));
      const waiting = APPS.filter((_, i) => !/\n200$/.test(results[i]!.stdout));
      if (waiting.length === 0) break;
      if (Date.now() > until) {
        const logs = await Promise.all(waiting.map((a) => pm(['logs', '--tail', '20', `${a}-pod-${a}`])));
        throw new Error(`not answering after 60 s: ${waiting.map((a, i) => `${a}: ${results[APPS.indexOf(a)]!.stdout} ${results[APPS.indexOf(a)]!.stderr}\n${logs[i]!.stdout}${logs[i]!.stderr}`).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
    times.serving = Date.now() - at;
    for (const app of APPS) {
      for (const name of [`${app}.${NS}.svc`, `${app}.${NS}.svc.cluster.local`]) {
        // WHEN
        const r = await ask(app, name, CALLER[app]);
        // THEN the handshake verified the server under the Service name, the server the caller's certificate
        const { body, code } = answer(r.stdout);
        expect(code, `${name}: ${r.stderr}`).toBe('200');
        expect(JSON.parse(body), name).toEqual({ client_cn: `${CALLER[app]}.ashchan.local`, client_spiffe_id: `spiffe://ashchan.local/${STACK}/${CALLER[app]}`, server_cn: `${app}.ashchan.local` });
      }
    }
  }, 120_000);

  it('GIVEN the pods WHEN their certificates are looked at on the wire THEN each serves its leaf from the state folder, through the Secret secrets.sh made', async () => {
    for (const app of APPS) {
      // -k only to read what is served: verification is the test above's.
      const r = await podman!.exec(['curl', '-sS', '--max-time', '10', '-k', '-o', '/dev/null', '-w', '%{certs}', '--resolve', `${app}.${NS}.svc:8443:${ips.get(app)}`, `https://${app}.${NS}.svc:8443/`], { timeoutMs: 20_000 });
      const served = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
      expect(served, `${app}: ${r.stderr}`).toBeDefined();
      expect(served!.replace(/\s+/g, ''), app).toBe(readFileSync(join(state, STACK, 'pki/services', app, 'server.crt'), 'utf8').replace(/\s+/g, ''));
    }
  });

  it('GIVEN the pods WHEN asked under a name not theirs, by a member the policy does not allow, or without a client certificate THEN they are refused', async () => {
    // Every service at once: each request is its own connection.
    await Promise.all(
      APPS.map(async (app) => {
        // A name the certificate does not carry: curl refuses the server (60: peer certificate not OK).
        const wrong = await ask(app, `${app}.elsewhere.svc`, CALLER[app]);
        expect(wrong.exitCode, `${app}: ${wrong.stdout}`).toBe(60);
        expect(wrong.stderr).toMatch(/no alternative certificate subject name matches|does not match/);
        // A mesh member outside the policy: the handshake succeeds, the service answers 403.
        const stranger = await ask(app, `${app}.${NS}.svc`, STRANGER[app]);
        const { body, code } = answer(stranger.stdout);
        expect(code, `${app}: ${stranger.stderr}`).toBe('403');
        expect(JSON.parse(body)).toMatchObject({ error: 'forbidden', client_spiffe_id: `spiffe://ashchan.local/${STACK}/${STRANGER[app]}` });
        // No client certificate: the port verifies peers (ssl_verify_peer), the connection fails.
        const anonymous = await ask(app, `${app}.${NS}.svc`, undefined);
        expect(anonymous.exitCode, `${app}: ${anonymous.stdout}`).not.toBe(0);
        expect(anonymous.stdout).not.toMatch(/\n200$/);
      }),
    );
  }, 120_000);

  it('GIVEN the manifests\' confinement, ConfigMaps and Secrets WHEN the containers are inspected THEN Podman applied them: read-only root, no capabilities, no new privileges, the files where the mesh has them', async () => {
    const values = JSON.parse(readFileSync(join(state, STACK, 'secrets/values.json'), 'utf8')) as Record<string, string>;
    const inspect = await pm(['inspect', ...APPS.map((a) => `${a}-pod-${a}`)]);
    expect(inspect.exitCode, inspect.stderr).toBe(0);
    for (const [id, v] of Object.entries(values)) expect(inspect.stdout.includes(v), `${id} in podman inspect`).toBe(false);
    const containers = JSON.parse(inspect.stdout) as { Name: string; HostConfig: { ReadonlyRootfs: boolean; Memory: number }; Config: { Healthcheck?: { Test: string[] } } }[];
    expect(containers.map((c) => c.Name)).toEqual(APPS.map((a) => `${a}-pod-${a}`));
    containers.forEach((c, i) => {
      const app = APPS[i]!;
      expect(c.HostConfig.ReadonlyRootfs, c.Name).toBe(true);
      // resources.limits.memory: 1Gi
      expect(c.HostConfig.Memory, c.Name).toBe(1024 ** 3);
      // The livenessProbe became the container's health check (no timer runs it here: no systemd).
      expect(c.Config.Healthcheck?.Test.join(' '), c.Name).toContain(`https://${app}.ashchan.local:8443/health`);
    });
    // From inside: no capabilities, no_new_privs, a seccomp filter (Podman's default profile: the
    // manifests' seccompProfile RuntimeDefault is a field kube play does not read).
    await Promise.all(
      APPS.map(async (app) => {
        const status = await pm(['exec', `${app}-pod-${app}`, 'grep', '-E', '^(CapEff|NoNewPrivs|Seccomp):', '/proc/self/status']);
        expect(status.stdout.trim().split('\n'), `${app}: ${status.stderr}`).toEqual(['CapEff:\t0000000000000000', 'NoNewPrivs:\t1', 'Seccomp:\t2']);
      }),
    );
    const auth = 'auth-pod-auth';
    // The files compare as sha256 sums: no secret value on a command line or in the test's output.
    const sums = await pm(['exec', auth, 'sha256sum', '/run/secrets/auth.postgres-password', '/etc/mtls/server.key', '/opt/www/config/autoload/server.php', '/opt/www/app/Podmesh/Policy.php']);
    expect(sums.exitCode, sums.stderr).toBe(0);
    const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
    expect(sums.stdout.trim().split('\n')).toEqual([
      `${sha(join(state, STACK, 'secrets/auth.postgres-password'))}  /run/secrets/auth.postgres-password`,
      `${sha(join(state, STACK, 'pki/services/auth/server.key'))}  /etc/mtls/server.key`,
      `${sha(join(out, STACK, 'hosts/local/config/_shared/autoload/server.php'))}  /opt/www/config/autoload/server.php`,
      `${sha(join(out, STACK, 'hosts/local/config/auth/Policy.php'))}  /opt/www/app/Podmesh/Policy.php`,
    ]);
    // The certificate folder holds exactly the items of the manifest's volume.
    const items = deployments.find((d) => d.metadata.name === 'auth')!.spec.template.spec.volumes.find((v: Doc) => v.name === 'pki-auth').secret.items.map((i: Doc) => i.path as string);
    const listed = await pm(['exec', auth, 'ls', '-1', '/etc/mtls']);
    expect(listed.stdout.trim().split('\n'), listed.stderr).toEqual([...items].sort());
    // The Secrets' defaultMode (0444): readable by the image's users, written by nobody.
    const modes = await pm(['exec', auth, 'stat', '-c', '%n %a', '/run/secrets/auth.postgres-password', '/etc/mtls/server.key']);
    expect(modes.stdout.trim().split('\n'), modes.stderr).toEqual(['/run/secrets/auth.postgres-password 444', '/etc/mtls/server.key 444']);
  });

  it('GIVEN the run WHEN torn down THEN nothing of it is left: no container, pod, network namespace, mount or cgroup', async () => {
    const p = podman!;
    const n = net!;
    await p.teardown();
    await n.teardown();
    expect(n.leftovers()).toEqual({ netns: [], mounts: [], processes: [], paths: [] });
    expect(p.cgroups()).toEqual([]);
  }, 180_000);
});
