// Quadlet and systemd units per host: `hosts/<host>/quadlet/*.network|*.volume|*.container` and
// `hosts/<host>/systemd/<stack>.target`, each in the best form the host's Podman supports.
import { PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { namesOf, remoteHostEntries } from '../resolve/dns.ts';
import type { ResolvedHealthcheck, ResolvedHost, ResolvedMount, ResolvedNetwork, ResolvedService, ResolvedStack } from '../resolve/model.ts';
import { publishSpec } from './compose.ts';
import { generatedHeader } from './header.ts';
import { wireguardUnitName } from './wireguard.ts';
import { secretEnvFile } from '../state/secrets/paths.ts';
import {
  checkUnit,
  formatPodmanVersion,
  renderUnit,
  supports,
  unitFileName,
  type AnyUnit,
  type ContainerSection,
  type ContainerUnit,
  type NetworkUnit,
  type PodmanVersion,
  type QuadletUnit,
  type TargetUnit,
  type VolumeUnit,
} from './quadlet/index.ts';

/**
 * Where a host keeps what `podmesh apply` installs for a stack: a mirror of
 * `out/<stack>/hosts/<host>/` plus `pki/services/<service>/` (each service's `/etc/mtls`) and,
 * on multi-host stacks, `wireguard/`. Rootless: `%h/.config/podmesh/<stack>` (systemd expands
 * `%h` to the user's home); rootful: `/etc/podmesh/<stack>`.
 */
export function hostRoot(stack: string, host: Pick<ResolvedHost, 'rootless'>): string {
  return host.rootless ? `%h/.config/podmesh/${stack}` : `/etc/podmesh/${stack}`;
}

/** Where Quadlet reads the host's unit files, and where the target goes. */
export function unitDirs(host: Pick<ResolvedHost, 'rootless'>): { quadlet: string; systemd: string } {
  return host.rootless
    ? { quadlet: '~/.config/containers/systemd', systemd: '~/.config/systemd/user' }
    : { quadlet: '/etc/containers/systemd', systemd: '/etc/systemd/system' };
}

/** The `.target` that starts and stops one host's share of a stack. */
export function targetName(stack: string): string {
  return `${stack}.target`;
}

/** File name stem of a service's `.container` (and so its systemd service): `<project>-<name>`. */
export function containerUnitStem(stack: Pick<ResolvedStack, 'project'>, s: Pick<ResolvedService, 'name'>): string {
  return `${stack.project}-${s.name}`;
}

// Synth renders each stack twice: once while validating (before any state is touched) and once
// for output, from a copy of the model that differs only in WireGuard keys, which units do not
// contain. The services list is shared by both, so it keys the result.
const rendered = new WeakMap<readonly ResolvedService[], Map<string, string>>();

/** Renders the Quadlet and systemd units of every host of the stack. */
export function renderSystemd(stack: ResolvedStack): Map<string, string> {
  const cached = rendered.get(stack.services);
  if (cached) return new Map(cached);
  const files = new Map<string, string>();
  const issues: Issue[] = [];
  for (const host of stack.hosts) {
    const services = stack.services.filter((s) => s.host === host.name);
    if (services.length === 0) continue;
    try {
      for (const [name, text] of hostUnits(stack, host, services)) files.set(`hosts/${host.name}/${name}`, text);
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.push(...e.issues);
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  rendered.set(stack.services, files);
  return new Map(files);
}

/** One unit with its file name and the construct path its problems are reported at. */
interface Planned {
  readonly file: string;
  readonly unit: AnyUnit;
  readonly path: string;
}

function hostUnits(stack: ResolvedStack, host: ResolvedHost, services: readonly ResolvedService[]): Map<string, string> {
  const version = host.podmanVersion;
  const target = targetName(stack.name);
  const networks = stack.networks.filter((n) => services.some((s) => s.network === n.id));
  const volumes = stack.volumes.filter((v) => v.host === host.name);
  const local = new Set(services.map((s) => s.name));
  // Services some local dependent waits for to be healthy: they tell systemd when they are. A wait
  // a call implies becomes a wait for start where this Podman cannot report health.
  const awaitedHealthy = new Set(services.flatMap((s) => s.dependsOn.filter((d) => d.condition === 'healthy' && local.has(d.service) && (!d.implied || canReportHealth(version))).map((d) => d.service)));

  // One list for every container of the host: the serializer escapes a list it has seen once.
  const remote = remoteHostEntries(stack, host.name).map((e) => `${e.name}:${e.ip}`);
  const planned: Planned[] = [
    ...networks.map((n) => ({ file: `quadlet/${unitFileName(n.name, 'network')}`, unit: networkUnit(stack, host, n), path: n.path })),
    ...volumes.map((v) => ({ file: `quadlet/${unitFileName(v.name, 'volume')}`, unit: volumeUnit(stack, host, v.name), path: v.path })),
  ];
  const issues: Issue[] = [];
  for (const s of services) {
    try {
      const network = networks.find((n) => n.id === s.network)!;
      const unit = containerUnit(stack, host, s, network, local, awaitedHealthy.has(s.name), remote);
      planned.push({ file: `quadlet/${unitFileName(containerUnitStem(stack, s), 'container')}`, unit, path: s.path });
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.push(...e.issues);
    }
  }
  planned.push({ file: `systemd/${target}`, unit: targetUnit(stack, host, services), path: host.path });

  // The fallbacks above should leave nothing the host lacks; checkUnit is the safety net.
  for (const p of planned) {
    if (p.unit.kind === 'container' || p.unit.kind === 'network' || p.unit.kind === 'volume' || p.unit.kind === 'pod') {
      issues.push(...checkUnit(p.unit as QuadletUnit, version, p.path).map((i) => ({ ...i, message: `${i.message} (host ${host.name})` })));
    }
  }
  const files = new Map<string, string>();
  for (const p of planned) {
    try {
      files.set(p.file, renderUnit(p.unit, { path: p.path, comments: generatedHeader(stack.name) }));
    } catch (e) {
      if (!(e instanceof PodmeshError)) throw e;
      issues.push(...e.issues);
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  return files;
}

function networkUnit(stack: ResolvedStack, host: ResolvedHost, n: ResolvedNetwork): NetworkUnit {
  const v = host.podmanVersion;
  const segment = n.segments.find((g) => g.host === host.name)!;
  // The bridge name keeps firewall rules and `ip link` readable; older Podman names it podmanN.
  const bridge = supports('Network.InterfaceName', v)
    ? { interfaceName: n.bridgeName }
    : supports('Network.PodmanArgs', v)
      ? { podmanArgs: [`--interface-name=${n.bridgeName}`] }
      : {};
  return {
    kind: 'network',
    unit: { description: `${stack.name}: network ${n.name} (${segment.subnet}) on host ${host.name}` },
    network: {
      // Before 4.7 Quadlet names the network systemd-<file name>; containers refer to the unit, so it still works.
      ...(supports('Network.NetworkName', v) ? { networkName: n.name } : {}),
      driver: 'bridge',
      subnet: [segment.subnet],
      gateway: [segment.gateway],
      ...(n.internal ? { internal: true } : {}),
      ...bridge,
    },
  };
}

function volumeUnit(stack: ResolvedStack, host: ResolvedHost, name: string): VolumeUnit {
  return {
    kind: 'volume',
    unit: { description: `${stack.name}: volume ${name}` },
    // Before 4.7 Quadlet names the volume systemd-<file name>; containers refer to the unit.
    volume: supports('Volume.VolumeName', host.podmanVersion) ? { volumeName: name } : {},
  };
}

function containerUnit(
  stack: ResolvedStack,
  host: ResolvedHost,
  s: ResolvedService,
  network: ResolvedNetwork,
  local: ReadonlySet<string>,
  awaitedHealthy: boolean,
  remote: readonly string[],
): ContainerUnit {
  const v = host.podmanVersion;
  const args: string[] = [];
  const deps = s.dependsOn.filter((d) => local.has(d.service)).map((d) => `${containerUnitStem(stack, { name: d.service })}.service`);
  for (const d of s.dependsOn) {
    if (d.condition === 'healthy' && !d.implied && local.has(d.service) && !canReportHealth(v)) {
      throw PodmeshError.at(
        s.path,
        `waits for ${d.service} to be healthy, but Podman ${formatPodmanVersion(v)} on host ${host.name} cannot tell systemd when a container is healthy (Quadlet Notify=healthy needs v5.0, podman --sdnotify=healthy v4.7). Raise the host's podmanVersion or use condition: 'started'.`,
      );
    }
  }

  const container: { -readonly [K in keyof ContainerSection]: ContainerSection[K] } = {
    image: s.image,
    containerName: s.containerName,
  };
  if (supports('HostName', v)) container.hostName = s.hostname;
  else args.push(`--hostname=${s.hostname}`);

  // Network, address and aliases: typed keys from 5.2, the `NAME.network:ip=…,alias=…` form before.
  // Compose makes the service name an alias by itself; Quadlet is told.
  const networkRef = unitFileName(network.name, 'network');
  const aliases = namesOf(s);
  if (supports('NetworkAlias', v)) {
    container.network = [networkRef];
    container.ip = s.ip;
    container.networkAlias = aliases;
  } else {
    container.network = [{ network: networkRef, ip: s.ip, aliases }];
  }
  // Services of other hosts, reached through the tunnel: host entries, since DNS is per host.
  const entries = remote;
  if (supports('AddHost', v)) container.addHost = entries;
  else args.push(...entries.map((e) => `--add-host=${e}`));
  const published = s.ports.filter((p) => p.publish);
  if (published.length > 0) container.publishPort = published.map(publishSpec);
  if (s.environment.length > 0) container.environment = Object.fromEntries(s.environment);
  if (s.secretEnvironment.length > 0) container.environmentFile = [`${hostRoot(stack.name, host)}/${secretEnvFile(s.name)}`];
  if (s.mounts.length > 0) container.volume = s.mounts.map((m) => volumeSpec(stack.name, host, m));

  if (s.user) {
    const [user, group] = s.user.split(':') as [string, string | undefined];
    const numeric = /^\d+$/.test(user) && (group === undefined || /^\d+$/.test(group));
    if (numeric || supports('User=name', v)) {
      container.user = user;
      if (group !== undefined) container.group = group;
    } else {
      args.push(`--user=${s.user}`);
    }
  }
  if (s.readOnlyRootFilesystem) container.readOnly = true;
  if (s.command) container.exec = [...s.command];

  if (s.healthcheck) {
    const h = s.healthcheck;
    const cmd = healthCmd(h.command);
    if (supports('HealthCmd', v)) {
      Object.assign(container, {
        healthCmd: cmd,
        healthInterval: h.interval,
        healthTimeout: h.timeout,
        healthRetries: h.retries,
        healthStartPeriod: h.startPeriod,
      });
    } else {
      args.push(
        `--health-cmd=${cmd}`,
        `--health-interval=${h.interval}`,
        `--health-timeout=${h.timeout}`,
        `--health-retries=${h.retries}`,
        `--health-start-period=${h.startPeriod}`,
      );
    }
    if (awaitedHealthy) {
      if (supports('Notify=healthy', v)) container.notify = 'healthy';
      else args.push('--sdnotify=healthy');
    }
  }
  if (args.length > 0) container.podmanArgs = args;

  const target = targetName(stack.name);
  return {
    kind: 'container',
    unit: {
      description: `${stack.name}: ${s.name} (${s.serviceName}) on host ${host.name}`,
      partOf: [target],
      ...(deps.length > 0 ? { requires: deps } : {}),
      // On multi-host stacks the other hosts' services are reached through the tunnel.
      ...(deps.length > 0 || stack.wireguard ? { after: [...(stack.wireguard ? [wireguardUnitName(stack.name)] : []), ...deps] } : {}),
    },
    container,
    service: {
      restart: s.restart === 'unless-stopped' ? 'always' : s.restart,
      // The first start pulls the image and, with Notify=healthy, waits for the health check.
      timeoutStartSec: '900',
    },
    install: { wantedBy: [target] },
  };
}

/**
 * `--health-cmd`/`HealthCmd=` as a JSON array, which Podman reads without a shell's help: the
 * exec form bare (Podman prefixes `CMD`; an explicit `"CMD"` first element is misread by Podman
 * 4.3), the shell form as `["CMD-SHELL", …]` (as a bare string, a command ending in a quote would
 * lose it to Quadlet's unquoting).
 */
export function healthCmd(command: ResolvedHealthcheck['command']): string {
  return JSON.stringify('exec' in command ? [...command.exec] : ['CMD-SHELL', command.shell]);
}

/** Whether a container can tell systemd it is healthy: Quadlet's Notify=healthy, or podman --sdnotify=healthy before it. */
function canReportHealth(v: PodmanVersion): boolean {
  return supports('Notify=healthy', v) || sdnotifyHealthy(v);
}

/** `podman --sdnotify=healthy`, the PodmanArgs route to Notify=healthy before Quadlet had the key. */
function sdnotifyHealthy(v: PodmanVersion): boolean {
  return v.major > 4 || (v.major === 4 && v.minor >= 7);
}

function targetUnit(stack: ResolvedStack, host: ResolvedHost, services: readonly ResolvedService[]): TargetUnit {
  return {
    kind: 'target',
    unit: {
      description: `${stack.name} on host ${host.name} (${services.length} container${services.length === 1 ? '' : 's'})`,
      wants: [...(stack.wireguard ? [wireguardUnitName(stack.name)] : []), ...services.map((s) => `${containerUnitStem(stack, s)}.service`)],
    },
    install: { wantedBy: [host.rootless ? 'default.target' : 'multi-user.target'] },
  };
}

/** `Volume=` value: named volumes as Quadlet `.volume` units, certificates from the host root. */
export function volumeSpec(stack: string, host: Pick<ResolvedHost, 'rootless'>, m: ResolvedMount): string {
  const root = hostRoot(stack, host);
  const source =
    m.type === 'volume'
      ? unitFileName(m.source, 'volume')
      : m.type === 'pki'
        ? `${root}/pki/services/${m.source}`
        : m.source.startsWith('/')
          ? m.source
          : `${root}/${m.source.replace(/^\.\//, '')}`;
  const options = [...(m.readOnly ? ['ro'] : []), ...(m.type === 'volume' ? [] : ['Z'])];
  return `${source}:${m.target}${options.length > 0 ? `:${options.join(',')}` : ''}`;
}
