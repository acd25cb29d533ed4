// The other hosts' services as one shared file per host (`remote-hosts`, `--hosts-file`, Podman 5.4+)
// instead of one AddHost= per entry in every container: what Quadlet makes of the committed
// ashchan-prod units, and what a container on Podman 5.4 then finds in its /etc/hosts and DNS.
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REMOTE_HOSTS_FILE } from '../src/render/systemd.ts';
import { createHosts, netnsReady, type SimNetwork } from './helpers/netns.ts';
import { podman54Ready, podman54Rootfs, startPodman54, type Podman54 } from './helpers/podman54.ts';
import { quadletComplaints, quadletDryRun } from './helpers/quadlet.ts';
import { tempDir } from './helpers/stacks.ts';
import { inCI, repoRoot, tool } from './helpers/tools.ts';

const STACK = 'ashchan-prod';
const app = join(repoRoot, 'out', STACK, 'hosts/app');
const edge = join(repoRoot, 'out', STACK, 'hosts/edge');
const quadlet = tool('quadlet');
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
if (!busybox) {
  if (inCI) throw new Error('busybox-static is required under CI (the test image): run scripts/install-validators.sh');
  console.warn('skipping the Podman 5.4 --hosts-file test: apt-get install busybox-static');
}

/** The `podman …` arguments of a unit's ExecStart= as `quadlet -dryrun` wrote them (no argument here holds a space). */
function execStart(unit: string): string[] {
  const line = unit.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error(`no ExecStart= in:\n${unit}`);
  return line.slice('ExecStart=/usr/bin/podman '.length).split(' ');
}

/** The value of `--flag value` or `--flag=value` in `args` (every one of them). */
function option(args: readonly string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : a.startsWith(`${flag}=`) ? [a.slice(flag.length + 1)] : []));
}

/** The units of host `app` as Quadlet 5.4 turns them into services (rootful, like ashchan-prod). */
function dryRun(): Map<string, string> {
  const dir = tempDir('podmesh-hosts-file-');
  try {
    for (const f of ['ashchan-mesh.network', 'ashchan-auth.container', 'ashchan-boards.container']) copyFileSync(join(app, 'quadlet', f), join(dir.path, f));
    const r = quadletDryRun(quadlet!, dir.path, false);
    expect(quadletComplaints(r.stderr)).toEqual([]);
    expect(r.status, r.stderr).toBe(0);
    return r.services;
  } finally {
    dir.cleanup();
  }
}

describe.skipIf(!quadlet)('remote-hosts: one file per host instead of AddHost= per container (quadlet -dryrun)', () => {
  it('GIVEN ashchan-prod (hosts app and edge on Podman 5.4) WHEN Quadlet reads a container unit THEN podman run gets --hosts-file with the host file and no --add-host', () => {
    const auth = execStart(dryRun().get('ashchan-auth.service')!);
    expect(option(auth, '--hosts-file')).toEqual([`/etc/podmesh/${STACK}/${REMOTE_HOSTS_FILE}`]);
    expect(option(auth, '--add-host')).toEqual([]);
    // One line per service of the other hosts (edge and data), none of its own host's.
    const entries = readFileSync(join(app, REMOTE_HOSTS_FILE), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    expect(entries).toEqual(['10.90.0.10\tgateway.ashchan.local', '10.90.0.69\tmedia.ashchan.local', '10.90.0.68\tminio.ashchan.local', '10.90.0.66\tpostgres.ashchan.local', '10.90.0.67\tredis.ashchan.local']);
    expect(readFileSync(join(edge, REMOTE_HOSTS_FILE), 'utf8')).toContain('10.90.0.21\tauth.ashchan.local\n');
    // The data host declares Podman 4.9: its containers keep one --add-host per entry.
    const data = readFileSync(join(repoRoot, 'out', STACK, 'hosts/data/quadlet/ashchan-postgres.container'), 'utf8');
    expect(data).toContain('--add-host=auth.ashchan.local:10.90.0.21');
    expect(data).not.toContain('--hosts-file');
    expect(existsSync(join(repoRoot, 'out', STACK, 'hosts/data', REMOTE_HOSTS_FILE))).toBe(false);
  });
});

const runnable = !!quadlet && !!busybox && netnsReady() && podman54Ready();

describe.skipIf(!runnable)('remote-hosts on Podman 5.4: what a container sees', () => {
  const IMAGE = 'localhost/podmesh-hosts-file:1';
  let net: SimNetwork | undefined;
  let podman: Podman54 | undefined;
  let services = new Map<string, string>();

  beforeAll(async () => {
    services = dryRun();
    net = await createHosts(['app']);
    // A busybox image (cat, nslookup, sleep) and the host root of ashchan-prod as apply installs it.
    const image = join(net.workDir, 'image');
    mkdirSync(join(image, 'bin'), { recursive: true });
    copyFileSync(busybox!, join(image, 'bin/busybox'));
    for (const applet of ['sh', 'cat', 'sleep', 'nslookup']) symlinkSync('busybox', join(image, 'bin', applet));
    const etc = join(net.workDir, 'etc-podmesh');
    mkdirSync(join(etc, STACK), { recursive: true });
    copyFileSync(join(app, REMOTE_HOSTS_FILE), join(etc, STACK, REMOTE_HOSTS_FILE));
    podman = await startPodman54(net.host('app'), podman54Rootfs(), {
      workDir: net.workDir,
      binds: [
        { source: image, target: '/mnt/image', readOnly: true },
        { source: etc, target: '/etc/podmesh', readOnly: true },
      ],
    });
    await podman.importImage('/mnt/image', IMAGE, ['--change', 'ENV=PATH=/bin']);
    // The network exactly as the generated .network unit creates it.
    const created = await podman.podman(execStart(services.get('ashchan-mesh-network.service')!));
    expect(created.exitCode, created.stderr).toBe(0);
  }, 300_000);

  afterAll(async () => {
    const errors: string[] = [];
    await podman?.teardown().catch((e: unknown) => errors.push(String(e)));
    await net?.teardown().catch((e: unknown) => errors.push(String(e)));
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }, 120_000);

  /** The naming and network options of a generated service, with the generated --hosts-file: `podman run` arguments before the image. */
  const runArgs = (service: string): string[] => {
    const args = execStart(services.get(service)!);
    const keep = ['--name', '--hostname', '--ip', '--network', '--network-alias'];
    return [...keep.flatMap((f) => option(args, f).map((v) => `${f}=${v}`)), ...option(args, '--hosts-file').map((v) => `--hosts-file=${v}`)];
  };

  it('GIVEN auth with the generated --hosts-file and boards running beside it WHEN auth reads /etc/hosts and asks DNS THEN it has the other hosts\' services, its own and Podman\'s entries, and aardvark still answers for boards', async () => {
    const p = podman!;
    const boards = await p.podman(['run', '-d', ...runArgs('ashchan-boards.service'), IMAGE, 'sleep', '60']);
    expect(boards.exitCode, boards.stderr).toBe(0);
    const r = await p.podman(['run', '--rm', ...runArgs('ashchan-auth.service'), IMAGE, 'sh', '-c', 'cat /etc/hosts; echo ---; nslookup boards.ashchan.local'], { timeoutMs: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const [hosts, dns] = r.stdout.split('---\n') as [string, string];
    const lines = hosts.split('\n').map((l) => l.trim().split(/\s+/)).filter((l) => l.length > 1 && !l[0]!.startsWith('#'));
    const namesOf = (ip: string) => lines.filter((l) => l[0] === ip).flatMap((l) => l.slice(1));
    // The shared file's entries: the services of hosts edge and data.
    for (const l of readFileSync(join(app, REMOTE_HOSTS_FILE), 'utf8').split('\n').filter((x) => x && !x.startsWith('#'))) {
      const [ip, name] = l.split('\t') as [string, string];
      expect(namesOf(ip), hosts).toContain(name);
    }
    // Podman's own: the container's address with its host name and container name, localhost, host.containers.internal.
    expect(namesOf('10.90.0.21'), hosts).toEqual(expect.arrayContaining(['auth', 'ashchan-auth-1']));
    expect(namesOf('127.0.0.1'), hosts).toContain('localhost');
    expect(lines.some((l) => l.includes('host.containers.internal')), hosts).toBe(true);
    // aardvark-dns answers for a container of the same host, as without the file.
    expect(dns, r.stderr).toMatch(/Address:\s*10\.90\.0\.22/);
  }, 120_000);
});
