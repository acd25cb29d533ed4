// One host of a stack brought up from its Quadlet units, as the end-to-end tests need it: synth,
// `podmesh apply` into a temporary host root, `quadlet -dryrun` over the installed units, Podman 5.4
// in a simulated host (test/helpers/podman54.ts) seeing the host root where systemd's specifiers
// point, the test images under the units' image names, and the units started in systemd's order
// (test/helpers/quadlet-run.ts). `teardown()` stops the units and removes everything.
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHosts, type SimHost, type SimNetwork } from './netns.ts';
import { podman54Rootfs, startPodman54, type Bind, type Podman54 } from './podman54.ts';
import { buildNodeRootfs, importImages, NODE_IMAGE, type ImageRole } from './quadlet-images.ts';
import { generateUnits, parseUnitText, QuadletRunner, value, values, type GeneratedUnit, type Manager } from './quadlet-run.ts';
import { buildServiceImages } from './service-images.ts';
import { tempDir } from './stacks.ts';
import { repoRoot } from './tools.ts';

const bin = join(repoRoot, 'bin/podmesh.mjs');
/** Services whose images are the infrastructure ones; every other service runs the PHP sample. */
const INFRA: readonly ImageRole[] = ['postgres', 'redis', 'minio'];

/** What a podmesh command did. */
export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link QuadletHost.start}. */
export interface QuadletHostOptions {
  readonly stack: string;
  readonly host: string;
  /** The project prefix of unit and container names (`ashchan`). */
  readonly project: string;
  /** The systemd instance: a user manager for rootless hosts, the system manager for rootful ones. */
  readonly manager: Manager;
  /** Path of static busybox, for the Node image. */
  readonly busybox: string;
  /** Time allowed for one unit to start. @default 120_000 */
  readonly unitTimeoutMs?: number;
}

/** A host brought up from its Quadlet units (see the top of this file). */
export class QuadletHost {
  /** Temporary folder with `out/`, `state/` and `hostroot/`; shown read-only at `/mnt/e2e` inside. */
  readonly dir = tempDir('podmesh-e2eq-');
  readonly out = join(this.dir.path, 'out');
  readonly state = join(this.dir.path, 'state');
  /** `podmesh apply --root`: the host's files, rootless under `<hostRoot><home>`, rootful under `<hostRoot>/etc`. */
  readonly hostRoot = join(this.dir.path, 'hostroot');
  units: GeneratedUnit[] = [];
  net: SimNetwork | undefined;
  podman: Podman54 | undefined;
  runner: QuadletRunner | undefined;
  /** Milliseconds spent: set-up (synth, apply, root, images), service images alone, unit start. */
  readonly times = { setup: 0, images: 0, start: 0 };
  private tornDown = false;

  private constructor(readonly opts: QuadletHostOptions) {}

  /** One log line: set-up and start times, and how long each unit took to start. */
  startSummary(label: string): string {
    const s = (ms: number) => Math.round(ms / 1000);
    return (
      `${label}: set up in ${s(this.times.setup)} s (service images ${s(this.times.images)} s), units started in ${s(this.times.start)} s: ` +
      this.runner!.started.map((r) => `${r.unit} ${(r.ms / 1000).toFixed(1)}s`).join(', ')
    );
  }

  /** Brings the host up; on failure tears down what was made, then rethrows. */
  static async start(opts: QuadletHostOptions): Promise<QuadletHost> {
    const h = new QuadletHost(opts);
    try {
      await h.bringUp();
      return h;
    } catch (e) {
      await h.teardown().catch(() => undefined);
      throw e;
    }
  }

  /** The simulated host. */
  get host(): SimHost {
    return this.net!.host('quadlet');
  }

  /** `podmesh ARGS --stacks … --out … --state … --stack S`. */
  async cli(...args: string[]): Promise<CliResult> {
    const r = await execa('node', [bin, ...args, '--stacks', join(repoRoot, 'stacks'), '--out', this.out, '--state', this.state, '--stack', this.opts.stack], { reject: false, timeout: 90_000 });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  /** `podmesh apply` of the host into the host root (again after a synth: it restarts nothing, it lists what to restart). */
  apply(): Promise<CliResult> {
    const home = this.opts.manager.kind === 'user' ? ['--home', this.opts.manager.home] : [];
    return this.cli('apply', '--host', this.opts.host, '--root', this.hostRoot, ...home, '--no-systemctl');
  }

  /** `podman ARGS` in the simulated host. */
  pm(args: readonly string[], timeoutMs = 60_000) {
    return this.podman!.podman(args, { timeoutMs });
  }

  /** Container name of a service (`<project>-<service>-1`, as compose). */
  container(service: string): string {
    return `${this.opts.project}-${service}-1`;
  }

  /**
   * curl in a service's container with its own client certificate, as the seed's debug commands;
   * stdout ends with `\n<http code>`. Waits longer than the sample's upstream timeout (5 s).
   */
  curlIn(service: string, url: string) {
    return this.pm(['exec', this.container(service), 'curl', '-sS', '--max-time', '15', '--cacert', '/etc/mtls/ca.crt', '--cert', '/etc/mtls/client.crt', '--key', '/etc/mtls/client.key', '-w', '\n%{http_code}', url]);
  }

  /** What a service's generated unit declares of the secure defaults (`[X-Container]`, Quadlet's copy of `[Container]`). */
  declaredConfinement(service: string): { capAdd: string[]; keys: Record<string, string[]> } {
    const unit = this.units.find((u) => u.name === `${this.opts.project}-${service}.service`);
    if (!unit) throw new Error(`no generated unit for ${service}`);
    const keys = Object.fromEntries(['NoNewPrivileges', 'DropCapability', 'ReadOnly', 'UserNS', 'PidsLimit', 'Tmpfs'].map((k) => [k, values(unit, 'X-Container', k)]));
    return { capAdd: values(unit, 'X-Container', 'AddCapability').flatMap((v) => v.split(/\s+/)), keys };
  }

  /** `podmesh verify ARGS` in a container on `network` (the generated one: names through aardvark-dns; `host`: the host's view). */
  verifyIn(network: string, args: readonly string[]) {
    return this.pm(
      [
        'run', '--rm', '--pull=never', '--network', network,
        '-v', '/mnt/repo:/repo:ro', '-v', '/mnt/node_modules:/repo/node_modules:ro', '-v', '/mnt/e2e:/e2e:ro',
        '-w', '/repo', NODE_IMAGE,
        'node', 'bin/podmesh.mjs', 'verify', '--stack', this.opts.stack, '--stacks', '/repo/stacks', '--out', '/e2e/out', '--state', '/e2e/state', ...args,
      ],
      120_000,
    );
  }

  /** Stops every unit (ExecStop), removes containers, storage, cgroups, namespaces and folders. Idempotent. */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    const errors: string[] = [];
    if (this.runner) errors.push(...(await this.runner.stop()));
    await this.runner?.close();
    await this.podman?.teardown().catch((e: unknown) => errors.push(String(e)));
    await this.net?.teardown().catch((e: unknown) => errors.push(String(e)));
    this.dir.cleanup();
    if (errors.length > 0) console.warn(`quadlet host teardown:\n${errors.join('\n')}`);
  }

  private async bringUp(): Promise<void> {
    const { manager } = this.opts;
    const started = Date.now();
    const s = await this.cli('synth');
    if (s.exitCode !== 0) throw new Error(`synth: ${s.stderr}`);
    const a = await this.apply();
    if (a.exitCode !== 0) throw new Error(`apply: ${a.stderr}`);
    // Where apply installs the units, and the folder the specifiers (%h) or fixed paths (/etc/podmesh) point into.
    const unitDir = manager.kind === 'user' ? join(this.hostRoot, manager.home, '.config/containers/systemd') : join(this.hostRoot, 'etc/containers/systemd');
    const hostFiles: Bind = manager.kind === 'user' ? { source: join(this.hostRoot, manager.home), target: manager.home } : { source: join(this.hostRoot, 'etc/podmesh'), target: '/etc/podmesh' };
    if (!existsSync(unitDir) || !existsSync(hostFiles.source)) throw new Error(`apply installed no ${unitDir} or ${hostFiles.source}`);
    // Quadlet's services, and the plain unit that creates the stack's Podman secrets before them
    // (the containers want it and start after it), as apply installed it.
    const secretsUnit = join(dirname(unitDir), '..', manager.kind === 'user' ? 'systemd/user' : 'systemd/system', `podmesh-${this.opts.stack}-secrets.service`);
    this.units = [...generateUnits(unitDir, manager.kind === 'user'), ...(existsSync(secretsUnit) ? [parseUnitText(`podmesh-${this.opts.stack}-secrets.service`, readFileSync(secretsUnit, 'utf8'))] : [])];

    const rootfs = podman54Rootfs();
    this.net = await createHosts(['quadlet']);
    const work = this.net.workDir;
    const imageDir = join(work, 'image');
    buildNodeRootfs(imageDir, this.opts.busybox);
    const imagesAt = Date.now();
    const service = await buildServiceImages();
    this.times.images = Date.now() - imagesAt;
    const notifyDir = { machine: join(work, 'notify'), inside: '/run/podmesh-notify' };
    mkdirSync(notifyDir.machine, { mode: 0o700 });
    this.podman = await startPodman54(this.host, rootfs, {
      workDir: work,
      binds: [
        { source: imageDir, target: '/mnt/image', readOnly: true },
        { source: dirname(service.php.tarball), target: '/mnt/service-images', readOnly: true },
        { source: notifyDir.machine, target: notifyDir.inside },
        hostFiles,
        { source: repoRoot, target: '/mnt/repo', readOnly: true },
        { source: realpathSync(join(repoRoot, 'node_modules')), target: '/mnt/node_modules', readOnly: true },
        { source: this.dir.path, target: '/mnt/e2e', readOnly: true },
      ],
    });

    const images: Record<string, ImageRole> = {};
    for (const u of this.units) {
      const image = value(u, 'X-Container', 'Image');
      if (!image) continue;
      const svc = u.name.replace(new RegExp(`^${this.opts.project}-|\\.service$`, 'g'), '');
      images[image] = svc === 'minio-setup' ? 'mc' : (INFRA as readonly string[]).includes(svc) ? (svc as ImageRole) : 'app';
    }
    await importImages(this.podman, { nodeDir: '/mnt/image', serviceDir: '/mnt/service-images', service }, images);
    this.times.setup = Date.now() - started;

    this.runner = new QuadletRunner(this.units, this.podman, manager, { notifyDir, startTimeoutMs: this.opts.unitTimeoutMs ?? 120_000 });
    const startAt = Date.now();
    await this.runner.start();
    this.times.start = Date.now() - startAt;
  }
}
