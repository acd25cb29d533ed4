// docker compose against this machine's Podman inside a simulated host (a network namespace the
// test creates): private storage, network config and containers.conf (netavark + aardvark-dns, so
// the mesh's names resolve), the Podman API in the namespace, a health-check loop (no systemd runs
// Podman's checks here), and a teardown that removes all of it. Used by e2e.test.ts (ashchan-dev)
// and e2e-sidecar.test.ts.
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { healthCheckDue } from './mesh-checks.ts';
import { createHosts, type ExecResult, type SimHost, type SimNetwork } from './netns.ts';
import { findTool } from './tools.ts';

export const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// Debian 12's Podman defaults to CNI without DNS; the mesh's names need netavark and aardvark-dns
// (scripts/install-validators.sh installs them). Chosen in a private containers.conf so the
// machine's own Podman keeps its backend.
const NETWORK_BACKEND = '[network]\nnetwork_backend = "netavark"\n';

/** What {@link composeOnPodman} runs. */
export interface ComposeOnPodmanOptions {
  /** The simulated host's name (see createHosts). */
  readonly hostName: string;
  /** `docker compose -p`. */
  readonly project: string;
  readonly composeFile: string;
  /** The test's override file (written by the test before `dc(['up', ...])`). */
  readonly override: string;
  /** The state folder the generated compose file reads secrets from (`PODMESH_STATE_DIR`). */
  readonly stateDir: string;
}

/** Podman and compose in one simulated host. */
export interface ComposeOnPodman {
  readonly net: SimNetwork;
  readonly host: SimHost;
  /** The private folder of this Podman's storage, network config and containers.conf. */
  readonly root: string;
  /** `podman` in the namespace with the private storage. */
  pm(args: readonly string[], timeoutMs?: number, input?: string): Promise<ExecResult>;
  /** `docker compose -p <project> -f <compose file> -f <override>` against the API. */
  dc(args: readonly string[], timeoutMs?: number): Promise<ExecResult>;
  /** Imports a root filesystem folder as `image` (`podman import` with `changes`). */
  importRootfs(rootfs: string, changes: readonly string[], image: string): Promise<ExecResult>;
  /** Starts the Podman API in the namespace and waits (bounded) for its socket. */
  startApi(): Promise<void>;
  /** Runs the containers' health checks until teardown: every second those not healthy yet, every fifth round all. */
  startHealthChecks(): void;
  /** Bounded wait until every container named is healthy; the error carries `diagnose(sick)`. */
  waitHealthy(containers: readonly string[], diagnose: (sick: readonly string[]) => Promise<string>, ms?: number): Promise<void>;
  /**
   * Stops the health checks, runs `before` (containers compose does not know), `compose down`
   * (when the override was written), removes every container and the storage, stops the API and
   * removes the namespace. Returns what failed; idempotent.
   */
  teardown(before?: () => Promise<void>): Promise<string[]>;
}

/** Creates the simulated host and this Podman's private folders; nothing runs yet. */
export async function composeOnPodman(podman: string, compose: string, o: ComposeOnPodmanOptions): Promise<ComposeOnPodman> {
  const net = await createHosts([o.hostName], { privateDirs: ['/run/containers/networks'] });
  const host = net.host(o.hostName);
  const root = join(net.workDir, 'podman');
  for (const d of ['root', 'runroot', 'tmp', 'networks']) mkdirSync(join(root, d), { recursive: true });
  const socket = join(root, 'podman.sock');
  const systemConf = existsSync('/etc/containers/containers.conf') ? readFileSync('/etc/containers/containers.conf', 'utf8') : '';
  writeFileSync(join(root, 'containers.conf'), `${systemConf.replace(/^\[network\][^[]*/m, '')}\n${NETWORK_BACKEND}`);

  /** Flags that keep every byte of this Podman out of the machine's own storage and network config. */
  const flags = ['--root', join(root, 'root'), '--runroot', join(root, 'runroot'), '--tmpdir', join(root, 'tmp'), '--network-config-dir', join(root, 'networks')];
  const env = { PATH, CONTAINERS_CONF: join(root, 'containers.conf') };
  const pm = (args: readonly string[], timeoutMs = 60_000, input?: string) => host.exec([podman, ...flags, ...args], { timeoutMs, env, ...(input !== undefined ? { input } : {}) });
  const dc = async (args: readonly string[], timeoutMs = 180_000): Promise<ExecResult> => {
    const r = await execa(compose, ['-p', o.project, '-f', o.composeFile, '-f', o.override, ...args], {
      reject: false,
      timeout: timeoutMs,
      // out/ names the state folder by PODMESH_STATE_DIR (default: .podmesh beside out/).
      env: { DOCKER_HOST: `unix://${socket}`, PATH, PODMESH_STATE_DIR: o.stateDir },
      extendEnv: false,
    });
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  let api: ResultPromise | undefined;
  let healthLoop: Promise<void> | undefined;
  let stopHealth = false;
  let tornDown = false;

  return {
    net,
    host,
    root,
    pm,
    dc,
    importRootfs: (rootfs, changes, image) =>
      host.exec(['sh', '-c', `tar -C '${rootfs}' -c . | '${podman}' ${flags.join(' ')} import ${changes.map((c) => `'${c}'`).join(' ')} - ${image}`], { timeoutMs: 120_000, env }),
    async startApi() {
      api = execa(findTool('nsenter')!, [`--net=/run/netns/${host.netns}`, `--mount=${host.mountNs}`, '--', podman, ...flags, 'system', 'service', '--time=0', `unix://${socket}`], {
        reject: false,
        env,
        extendEnv: false,
        stdin: 'ignore',
      });
      for (let i = 0; !existsSync(socket); i++) {
        if (i > 100) throw new Error('the podman API socket did not appear');
        await sleep(100);
      }
    },
    startHealthChecks() {
      // Each check is a `podman exec`: nine of them a second kept both of CI's cores busy.
      healthLoop = (async () => {
        for (let round = 0; !stopHealth; round++) {
          const ps = await pm(['ps', '--format', '{{.Names}} {{.Status}}'], 15_000).catch(() => undefined);
          await Promise.all(healthCheckDue(ps?.stdout ?? '', round).map((n) => pm(['healthcheck', 'run', n], 15_000).catch(() => undefined)));
          await sleep(1_000);
        }
      })();
    },
    async waitHealthy(containers, diagnose, ms = 60_000) {
      const until = Date.now() + ms;
      for (;;) {
        const r = await pm(['ps', '--format', '{{.Names}} {{.Status}}']);
        const sick = containers.filter((n) => !new RegExp(`^${n} .*\\(healthy\\)`, 'm').test(r.stdout));
        if (sick.length === 0) return;
        if (Date.now() > until) throw new Error(`not healthy after ${ms} ms: ${sick.join(', ')}\n${r.stdout}\n${await diagnose(sick)}`);
        await sleep(500);
      }
    },
    async teardown(before) {
      if (tornDown) return [];
      tornDown = true;
      stopHealth = true;
      await healthLoop;
      const errors: string[] = [];
      await before?.().catch((e: unknown) => errors.push(String(e)));
      // Compose ran only if the API did and the override was written (a failed image build stops before it).
      const r = api && existsSync(o.override) ? await dc(['down', '-v', '-t', '1'], 60_000).catch((e: unknown) => ({ exitCode: -1, stderr: String(e) })) : { exitCode: 0, stderr: '' };
      if (r.exitCode !== 0) errors.push(`compose down: ${r.stderr}`);
      // Whatever compose did not remove (a failed start), then the storage itself (imported images too).
      await pm(['rm', '-af', '-t', '0']).catch(() => undefined);
      await pm(['system', 'reset', '-f'], 60_000).catch((e: unknown) => errors.push(`podman system reset: ${String(e)}`));
      api?.kill('SIGTERM');
      await api?.catch(() => undefined);
      await net.teardown().catch((e: unknown) => errors.push(String(e)));
      return errors;
    },
  };
}
