// Runs a generated host's Quadlet folder through the real quadlet and systemd-analyze, and reads
// back the `podman run` command lines systemd would execute.
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExecLine } from '../quadlet/systemd-exec.ts';
import { quadletComplaints, quadletDryRun, run } from './quadlet.ts';

/** What `quadlet -dryrun` made of a folder. */
export interface DryRun {
  readonly status: number | null;
  /** Warnings and errors, progress lines removed. */
  readonly complaints: readonly string[];
  /** Generated services by name. */
  readonly services: ReadonlyMap<string, string>;
}

/** `quadlet -dryrun [-user]` over one folder. */
export function dryRun(quadlet: string, dir: string, user: boolean): DryRun {
  const r = quadletDryRun(quadlet, dir, user);
  return { status: r.status, complaints: quadletComplaints(r.stderr), services: r.services };
}

/**
 * `systemd-analyze [--user] verify --generators=false` over generated services plus the plain
 * units of a `systemd/` folder; returns what it printed (empty when satisfied).
 */
export function verifyUnits(analyze: string, services: ReadonlyMap<string, string>, systemdDir: string | undefined, user: boolean): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-verify-'));
  const runtime = mkdtempSync(join(tmpdir(), 'podmesh-xdg-'));
  try {
    for (const [name, text] of services) writeFileSync(join(dir, name), text);
    if (systemdDir && existsSync(systemdDir)) {
      for (const f of readdirSync(systemdDir)) copyFileSync(join(systemdDir, f), join(dir, f));
    }
    const files = readdirSync(dir).sort().map((f) => join(dir, f));
    const r = run(analyze, [...(user ? ['--user'] : []), 'verify', '--generators=false', ...files], { XDG_RUNTIME_DIR: runtime });
    return { status: r.status, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(runtime, { recursive: true, force: true });
  }
}

/** A container as a `podman run` command line describes it. */
export interface RunSpec {
  name?: string;
  image?: string;
  hostname?: string;
  network?: string;
  ip?: string;
  aliases: string[];
  /** `--add-host` entries as `name:ip`. */
  addHost: string[];
  /** `--hosts-file`: the base of the container's /etc/hosts. */
  hostsFile?: string;
  publish: string[];
  volumes: string[];
  env: Record<string, string>;
  /** `--env-file` paths. */
  envFiles: string[];
  /** `--secret` values (`NAME,type=mount,target=…`). */
  secrets: string[];
  healthCmd?: string;
  health: Record<string, string>;
  user?: string;
  readOnly: boolean;
  sdnotify?: string;
  /** `--security-opt` values, e.g. `no-new-privileges`. */
  securityOpt: string[];
  /** `--cap-drop` / `--cap-add` values, upper-cased. */
  capDrop: string[];
  capAdd: string[];
  tmpfs: string[];
  pidsLimit?: string;
  memory?: string;
  cpus?: string;
  userns?: string;
  /** `--entrypoint` (MinIO's setup). */
  entrypoint?: string;
  command: string[];
}

const VALUE_FLAGS = new Set([
  '--name', '--cidfile', '--cgroups', '--network', '--ip', '--network-alias', '--hostname', '--publish', '-p', '-v', '--volume',
  '--env', '-e', '--health-cmd', '--health-interval', '--health-timeout', '--health-retries', '--health-start-period', '--user',
  '--group', '--sdnotify', '--add-host', '--hosts-file', '--env-file', '--label', '--annotation', '--mount', '--tmpfs', '--pull', '--log-driver', '--stop-timeout',
  '--security-opt', '--cap-drop', '--cap-add', '--pids-limit', '--memory', '--cpus', '--userns', '--secret', '--entrypoint',
]);

/** The `podman run` of a generated service, with `%h` as /home/user, split into a RunSpec. */
export function podmanRun(service: string): RunSpec {
  const line = service.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error(`no ExecStart= in:\n${service}`);
  const argv = parseExecLine(line.slice('ExecStart='.length), {
    specifiers: { h: '/home/user', t: '/run/user/1000', N: 'unit', n: 'unit.service', p: 'unit', i: '' },
    env: {},
  });
  const runAt = argv.indexOf('run');
  const spec: RunSpec = { envFiles: [], secrets: [], aliases: [], addHost: [], publish: [], volumes: [], env: {}, health: {}, readOnly: false, securityOpt: [], capDrop: [], capAdd: [], tmpfs: [], command: [] };
  let i = runAt + 1;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('-')) break;
    const eq = word.indexOf('=');
    const flag = eq > 0 ? word.slice(0, eq) : word;
    let value = '';
    if (eq > 0) value = word.slice(eq + 1);
    else if (VALUE_FLAGS.has(flag)) value = argv[++i] ?? '';
    switch (flag) {
      case '--name': spec.name = value; break;
      case '--hostname': spec.hostname = value; break;
      case '--network': {
        const [net, opts] = value.split(/:(.*)/s) as [string, string | undefined];
        spec.network = net;
        for (const o of opts ? opts.split(',') : []) {
          const [k, v] = o.split('=') as [string, string];
          if (k === 'ip') spec.ip = v;
          else if (k === 'alias') spec.aliases.push(v);
        }
        break;
      }
      case '--ip': spec.ip = value; break;
      case '--network-alias': spec.aliases.push(value); break;
      case '--add-host': spec.addHost.push(value); break;
      case '--hosts-file': spec.hostsFile = value; break;
      case '--env-file': spec.envFiles.push(value); break;
      case '--secret': spec.secrets.push(value); break;
      case '--publish': case '-p': spec.publish.push(value); break;
      case '-v': case '--volume': spec.volumes.push(value); break;
      case '--env': case '-e': {
        const k = value.indexOf('=');
        spec.env[value.slice(0, k)] = value.slice(k + 1);
        break;
      }
      case '--health-cmd': spec.healthCmd = value; break;
      case '--health-interval': case '--health-timeout': case '--health-retries': case '--health-start-period':
        spec.health[flag.slice('--health-'.length)] = value;
        break;
      case '--user': spec.user = value; break;
      case '--read-only': spec.readOnly = value !== 'false'; break;
      case '--sdnotify': spec.sdnotify = value; break;
      case '--security-opt': spec.securityOpt.push(value); break;
      case '--cap-drop': spec.capDrop.push(value.toUpperCase()); break;
      case '--cap-add': spec.capAdd.push(value.toUpperCase()); break;
      case '--tmpfs': spec.tmpfs.push(value); break;
      case '--pids-limit': spec.pidsLimit = value; break;
      case '--memory': spec.memory = value; break;
      case '--cpus': spec.cpus = value; break;
      case '--userns': spec.userns = value; break;
      case '--entrypoint': spec.entrypoint = value; break;
      default: break;
    }
  }
  spec.image = argv[i];
  spec.command = argv.slice(i + 1);
  return spec;
}
