// Quadlet and systemd units per host: `hosts/<host>/quadlet/*.network|*.volume|*.container` and
// `hosts/<host>/systemd/<stack>.target`. Each unit is planned in its ideal form (every typed key),
// then downgraded to what the host's Podman runs by the version table; problems are collected.
import { PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { namesOf, remoteHostEntries, type HostEntry } from '../resolve/dns.ts';
import type { ResolvedHealthcheck, ResolvedHost, ResolvedMount, ResolvedNetwork, ResolvedService, ResolvedSidecar, ResolvedStack } from '../resolve/model.ts';
import { progress } from './progress.ts';
import { sidecarContainer } from './sidecar/container.ts';
import { STAGE, hostFile, hostFolderPath, inHostRoot, podmanSecretName, quadletServiceName, servicePath, type Area, type Effect } from '../layout.ts';
import { tmpfsSpec } from '../resolve/security.ts';
import { mountOptions, publishSpec } from './compose.ts';
import type { Rendering, RenderedFile } from './file.ts';
import { generatedHeader, hashHeader } from './header.ts';
import { remoteDependencies, remoteWaitCommand, remoteWaitSeconds } from './remote-wait.ts';
import { gatewayRoutes, gatewayUnit, gatewayUnitStem, inGateway } from './gateway.ts';
import {
  PODMAN_FLAGS,
  QUADLET_FEATURES,
  QUADLET_KEYS,
  canNameBridge,
  downgrade,
  flagSupported,
  formatPodmanVersion,
  renderUnit,
  supports,
  unitFileName,
  type AnyUnit,
  type ContainerSection,
  type ContainerUnit,
  type NetworkUnit,
  type PodmanVersion,
  type TargetUnit,
  type VolumeUnit,
} from './quadlet/index.ts';

/**
 * The host file of the other hosts' services (`/etc/hosts` format), in the host root: with Podman
 * 5.4 or later every container of the host reads it as the base of its `/etc/hosts`
 * (`--hosts-file`), so a host's units grow with its own services, not with services × remote ones.
 */
export const REMOTE_HOSTS_FILE = 'remote-hosts';

/** Whether a host's containers take the other hosts' services from {@link REMOTE_HOSTS_FILE} instead of one `AddHost=` per entry. */
export function sharesHostsFile(host: Pick<ResolvedHost, 'podmanVersion'>): boolean {
  return flagSupported('--hosts-file', host.podmanVersion);
}

/**
 * {@link REMOTE_HOSTS_FILE}'s text: one `address name` line per entry, in the order `AddHost=`
 * lists them. Podman copies the base file's entries and still adds its own (localhost, the
 * container's name and host name, host.containers.internal): test/hosts-file.test.ts.
 */
export function remoteHostsFile(stack: string, entries: readonly HostEntry[]): string {
  return `${hashHeader(stack)}${entries.map((e) => `${e.ip}\t${e.name}\n`).join('')}`;
}

/** Renders the Quadlet and systemd units of every host of the stack, with every problem found. */
export function renderSystemd(stack: ResolvedStack): Rendering {
  const files = new Map<string, RenderedFile>();
  const problems: Issue[] = [];
  for (const host of stack.hosts) {
    const services = stack.services.filter((s) => s.host === host.name);
    if (services.length === 0) continue;
    // Each unit is written as soon as it is planned: a thousand typed units kept until all are
    // planned outlive the young generation and become old garbage, fresh memory for the heap.
    const texts: [string, RenderedFile][] = [];
    const unwritable: Issue[] = [];
    const plan = planHost(stack, host, services, (p) => {
      progress();
      try {
        texts.push(hostFile(host, p.area, p.file, renderUnit(p.unit, { path: p.path, comments: generatedHeader(stack.name) }), p.effect));
      } catch (e) {
        if (!(e instanceof PodmeshError)) throw e;
        unwritable.push(...e.issues);
      }
    });
    problems.push(...plan.problems, ...unwritable);
    if (plan.hostsFile) files.set(...hostFile(host, 'root', REMOTE_HOSTS_FILE, plan.hostsFile.content, { units: plan.hostsFile.units }));
    for (const [path, file] of texts) files.set(path, file);
  }
  return { files, problems };
}

/** One unit of a host, planned as data: where it goes, what it affects, and its construct path. */
export interface PlannedUnit {
  readonly area: Area;
  readonly file: string;
  readonly unit: AnyUnit;
  readonly path: string;
  readonly effect: Effect;
}

/** The units of one host, downgraded to its Podman, each given to `onUnit` as it is planned, and the problems planning them found. */
export function planHost(
  stack: ResolvedStack,
  host: ResolvedHost,
  services: readonly ResolvedService[],
  onUnit: (unit: PlannedUnit) => void,
): { problems: Issue[]; hostsFile?: { readonly content: string; readonly units: readonly string[] } } {
  const version = host.podmanVersion;
  const networks = stack.networks.filter((n) => services.some((s) => s.network === n.id));
  const volumes = stack.volumes.filter((v) => v.host === host.name);
  const problems = [...healthWaitProblems(host, services), ...bridgeNameProblems(stack, host, networks)];
  // Services some local dependent waits for to be healthy tell systemd when they are, if the host can.
  const local = new Set(services.map((s) => s.name));
  // A wait a call implies becomes a wait for start where this Podman cannot report health.
  const signals = canSignalHealthy(version);
  const awaited = new Set(services.flatMap((s) => s.dependsOn.filter((d) => d.condition === 'healthy' && local.has(d.service) && (signals || !d.implied)).map((d) => d.service)));
  // The other hosts' services: one shared file where the host's Podman takes --hosts-file (5.4),
  // else one list for every container of the host (the serializer escapes a list it has seen once).
  const entries = remoteHostEntries(stack, host.name);
  const shared = entries.length > 0 && sharesHostsFile(host);
  const remote: RemoteHosts = shared ? { hostsFile: inHostRoot(host, REMOTE_HOSTS_FILE) } : { addHost: entries.map((e) => `${e.name}:${e.ip}`) };
  // Built once per host, not per container: a per-container map made the units quadratic in services.
  const unitOf = new Map(stack.services.map((x) => [x.name, x.unit.service]));
  const add = (area: Area, file: string, ideal: AnyUnit, path: string, effect: Effect) => {
    if (ideal.kind !== 'container' && ideal.kind !== 'network' && ideal.kind !== 'volume') return onUnit({ area, file, unit: ideal, path, effect });
    const { unit, problems: lacking } = downgrade(ideal, version, path);
    problems.push(...lacking.map((i) => ({ ...i, message: `${i.message} (host ${host.name})` })));
    return onUnit({ area, file, unit, path, effect });
  };
  for (const n of networks) {
    add('quadlet', unitFileName(n.name, 'network'), networkUnit(stack, host, n), n.path, { units: [quadletServiceName(n.name, 'network')], stage: STAGE.network });
  }
  for (const v of volumes) {
    add('quadlet', unitFileName(v.name, 'volume'), volumeUnit(stack, v.name), v.path, { units: [quadletServiceName(v.name, 'volume')], stage: STAGE.volume });
  }
  const gateway = stack.wireguard?.peers.find((p) => p.host === host.name && p.mode === 'container');
  if (gateway) {
    add('quadlet', unitFileName(gatewayUnitStem(stack.name), 'container'), gatewayUnit(stack, host), host.path, { units: [host.install.wireguardUnit], stage: STAGE.tunnel });
  }
  for (const s of services) {
    progress();
    const network = networks.find((n) => n.id === s.network)!;
    const unit = containerUnit(stack, host, s, network, local, unitOf, signals && awaited.has(s.name), remote);
    add('quadlet', unitFileName(s.unit.stem, 'container'), unit, s.path, { units: [s.unit.service], stage: STAGE.service });
    if (s.sidecar) add('quadlet', unitFileName(s.sidecar.unit.stem, 'container'), sidecarUnit(stack, host, s, s.sidecar), s.path, { units: [s.sidecar.unit.service], stage: STAGE.service });
  }
  add('systemd', host.install.target, targetUnit(stack, host, services), host.path, {});
  if (!shared) return { problems };
  // Podman reads the file when it creates a container: a change restarts them all.
  return { problems, hostsFile: { content: remoteHostsFile(stack.name, entries), units: services.map((s) => s.unit.service) } };
}

/** How a host's containers get the other hosts' services: a shared base file, or `AddHost=` entries. */
type RemoteHosts = { readonly hostsFile: string } | { readonly addHost: readonly string[] };

/** A command run where the host's tunnel is: on the host, or in its gateway container. */
function inTunnel(stack: ResolvedStack, host: ResolvedHost, command: string[]): string[] {
  const mode = stack.wireguard?.peers.find((p) => p.host === host.name)?.mode;
  return mode === 'container' ? inGateway(stack, command) : command;
}

/** `Notify=healthy` (Quadlet) or `--sdnotify=healthy` (podman): whether a host's containers can say they are healthy. */
function canSignalHealthy(v: PodmanVersion): boolean {
  return supports('Notify=healthy', v) || flagSupported('--sdnotify=healthy', v);
}

/** A service waiting for a local one to be healthy, on a host whose containers cannot say so. */
function healthWaitProblems(host: ResolvedHost, services: readonly ResolvedService[]): Issue[] {
  const v = host.podmanVersion;
  if (canSignalHealthy(v)) return [];
  const local = new Set(services.map((s) => s.name));
  const quadlet = formatPodmanVersion(QUADLET_FEATURES['Notify=healthy'].since);
  const flag = formatPodmanVersion(PODMAN_FLAGS['--sdnotify=healthy'].since);
  return services.flatMap((s) =>
    s.dependsOn
      // MinIO's setup (a one-shot) starts after MinIO's start there and its script waits, bounded, until MinIO answers.
      .filter((d) => d.condition === 'healthy' && !d.implied && !s.oneshot && local.has(d.service))
      .map((d) => ({
        path: s.path,
        message: `waits for ${d.service} to be healthy, but Podman ${formatPodmanVersion(v)} on host ${host.name} cannot tell systemd when a container is healthy (Quadlet Notify=healthy needs v${quadlet}, podman --sdnotify=healthy v${flag}). Raise the host's podmanVersion or use condition: 'started'.`,
      })),
  );
}

/**
 * A bridge name this host's Podman cannot set (before 4.6 it names the bridge `podmanN`), where the
 * name matters. A user who wrote bridgeName has firewall rules or monitoring keyed on it, and the
 * compose file and TOPOLOGY.md still promise it: a unit that quietly brings up `podman3` instead is
 * worse than a refusal. Likewise the WireGuard forwarding rules of a multi-host stack match the
 * bridge by name and would match nothing. A default name on a single host is only cosmetic: the
 * unit leaves it out and TOPOLOGY.md says Podman names that bridge.
 */
function bridgeNameProblems(stack: ResolvedStack, host: ResolvedHost, networks: readonly ResolvedNetwork[]): Issue[] {
  const v = host.podmanVersion;
  if (canNameBridge(v)) return [];
  const why = `Podman ${formatPodmanVersion(v)} on host ${host.name} names the bridge itself (podmanN): Quadlet InterfaceName= needs v${formatPodmanVersion(QUADLET_KEYS.Network.InterfaceName.since)}, a .network's PodmanArgs=--interface-name v${formatPodmanVersion(QUADLET_KEYS.Network.PodmanArgs.since)}`;
  return networks.flatMap((n): Issue[] => {
    if (n.bridgeNameGiven) {
      return [{ path: n.path, message: `bridgeName "${n.bridgeName}" cannot be set: ${why}. Raise host ${host.name}'s podmanVersion to ${formatPodmanVersion(QUADLET_KEYS.Network.PodmanArgs.since)} or later, or remove bridgeName.` }];
    }
    if (stack.wireguard && n.segments.some((g) => g.host === host.name)) {
      return [{ path: n.path, message: `the WireGuard forwarding rules of host ${host.name} match bridge "${n.bridgeName}" by name, but ${why}. Raise host ${host.name}'s podmanVersion to ${formatPodmanVersion(QUADLET_KEYS.Network.PodmanArgs.since)} or later.` }];
    }
    return [];
  });
}

function networkUnit(stack: ResolvedStack, host: ResolvedHost, n: ResolvedNetwork): NetworkUnit {
  const segment = n.segments.find((g) => g.host === host.name)!;
  // In wireguard mode 'container', the other hosts' slices are routed through the gateway container.
  const routes = gatewayRoutes(stack, host.name, n.id);
  return {
    kind: 'network',
    unit: { description: `${stack.name}: network ${n.name} (${segment.subnet}) on host ${host.name}` },
    network: {
      networkName: n.name,
      driver: 'bridge',
      subnet: [segment.subnet],
      gateway: [segment.gateway],
      ...(n.internal ? { internal: true } : {}),
      // The bridge name keeps firewall rules and `ip link` readable.
      interfaceName: n.bridgeName,
      ...(routes.length > 0 ? { podmanArgs: routes.map((r) => `--route=${r}`) } : {}),
    },
  };
}

function volumeUnit(stack: ResolvedStack, name: string): VolumeUnit {
  return { kind: 'volume', unit: { description: `${stack.name}: volume ${name}` }, volume: { volumeName: name } };
}

/** The ideal `.container` of a service: every typed key; downgrade() fits it to the host. */
function containerUnit(
  stack: ResolvedStack,
  host: ResolvedHost,
  s: ResolvedService,
  network: ResolvedNetwork,
  local: ReadonlySet<string>,
  unitOf: ReadonlyMap<string, string>,
  notifyHealthy: boolean,
  remoteHosts: RemoteHosts,
): ContainerUnit {
  // A one-shot dependency (MinIO's setup) is waited for (After=) and pulled in (Wants=): with
  // Requires=, restarting it to apply a rotated password would restart its clients too.
  const deps = s.dependsOn.filter((d) => local.has(d.service) && d.condition !== 'completed').map((d) => unitOf.get(d.service)!);
  const jobs = s.dependsOn.filter((d) => local.has(d.service) && d.condition === 'completed').map((d) => unitOf.get(d.service)!);
  const waits = remoteDependencies(s.dependsOn);
  const tunnel = stack.wireguard ? [host.install.wireguardUnit] : [];
  const target = host.install.target;
  // Its Podman secrets exist once the secrets unit ran. Wants=, not Requires=: restarting that unit
  // (a secret changed) must not restart every container, only those apply names.
  const secrets = s.secrets.length > 0 ? [host.install.secretsUnit] : [];
  const after = [...tunnel, ...secrets, ...deps, ...jobs];
  const wants = [...secrets, ...jobs];
  return {
    kind: 'container',
    unit: {
      description: `${stack.name}: ${s.name} (${s.serviceName}) on host ${host.name}`,
      partOf: [target],
      ...(deps.length > 0 ? { requires: deps } : {}),
      ...(wants.length > 0 ? { wants } : {}),
      // On multi-host stacks the other hosts' services are reached through the tunnel.
      ...(after.length > 0 ? { after } : {}),
    },
    container: containerSection(stack, host, s, network, notifyHealthy, remoteHosts),
    service: {
      // MinIO's setup runs once per start of its unit and stays active: its clients are ordered
      // after its exit, and a restart of the unit (a rotated password) runs it again.
      ...(s.oneshot ? { type: 'oneshot' as const, remainAfterExit: true } : {}),
      // Dependencies on other hosts: systemd orders this host's units only, so wait (bounded) for them.
      // In wireguard mode 'container' only the gateway's namespace reaches the tunnel: the wait runs there.
      ...(waits.length > 0 ? { execStartPre: [inTunnel(stack, host, remoteWaitCommand(waits))] } : {}),
      restart: s.restart === 'unless-stopped' ? 'always' : s.restart,
      // The first start pulls the image and, with Notify=healthy, waits for the health check;
      // the waits for other hosts come on top.
      timeoutStartSec: String(900 + remoteWaitSeconds(waits)),
    },
    install: { wantedBy: [target] },
  };
}

function containerSection(stack: ResolvedStack, host: ResolvedHost, s: ResolvedService, network: ResolvedNetwork, notifyHealthy: boolean, remote: RemoteHosts): ContainerSection {
  const [user, group] = s.user ? (s.user.split(':') as [string, string | undefined]) : [undefined, undefined];
  const published = s.ports.filter((p) => p.publish);
  const h = s.healthcheck;
  const security = securityKeys(s);
  // Quadlet 5.4 has no key for --hosts-file: PodmanArgs=, after the limits; the path as a word of
  // its own, so a rootless host's `%h/` stays a specifier systemd expands.
  const podmanArgs = [...(security.podmanArgs ?? []), ...('hostsFile' in remote ? ['--hosts-file', remote.hostsFile] : [])];
  return {
    image: s.image,
    containerName: s.containerName,
    hostName: s.hostname,
    // Compose makes the service name an alias by itself; Quadlet is told.
    network: [unitFileName(network.name, 'network')],
    ip: s.ip,
    networkAlias: namesOf(s),
    // Services of other hosts, reached through the tunnel: host entries, since DNS is per host.
    ...('addHost' in remote ? { addHost: remote.addHost } : {}),
    ...(published.length > 0 ? { publishPort: published.map(publishSpec) } : {}),
    ...(s.environment.length > 0 ? { environment: Object.fromEntries(s.environment) } : {}),
    ...(s.mounts.length > 0 ? { volume: s.mounts.map((m) => volumeSpec(host, m, s.security.userNamespace === 'auto')) } : {}),
    ...(s.secrets.length > 0 ? { secret: podmanSecrets(stack, s) } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(group !== undefined ? { group } : {}),
    ...security,
    ...(podmanArgs.length > 0 ? { podmanArgs } : {}),
    ...(s.entrypoint ? { entrypoint: s.entrypoint.join(' ') } : {}),
    ...(s.command ? { exec: [...s.command] } : {}),
    ...(h
      ? { healthCmd: healthCmd(h.command), healthInterval: h.interval, healthTimeout: h.timeout, healthRetries: h.retries, healthStartPeriod: h.startPeriod }
      : {}),
    ...(h && notifyHealthy ? { notify: 'healthy' as const } : {}),
  };
}

/**
 * A service's sidecar: `Network=container:<service's container>` joins the service container's
 * network namespace (`podman run --network container:`, which every Podman with Quadlet passes
 * through), so the address, aliases, host entries and published ports stay on the service's unit;
 * systemd starts it after the service's unit and stops it with it (BindsTo=).
 */
function sidecarUnit(stack: ResolvedStack, host: ResolvedHost, s: ResolvedService, sidecar: ResolvedSidecar): ContainerUnit {
  const c = sidecarContainer({ name: s.name, sidecar });
  const userns = s.security.userNamespace === 'auto';
  const [user, group] = c.user.split(':') as [string, string];
  const [entrypoint, ...args] = c.entrypoint;
  return {
    kind: 'container',
    unit: {
      description: `${stack.name}: ${s.name}'s ${sidecar.proxy} sidecar (mTLS on port ${sidecar.mtlsPort}) on host ${host.name}`,
      partOf: [host.install.target],
      bindsTo: [s.unit.service],
      after: [s.unit.service],
    },
    container: {
      image: sidecar.image,
      containerName: sidecar.containerName,
      network: [`container:${s.containerName}`],
      volume: c.mounts.map((m) => volumeSpec(host, m, userns)),
      user,
      group,
      ...securityKeys(sidecar),
      entrypoint: entrypoint!,
      exec: args,
    },
    service: { restart: s.restart === 'unless-stopped' ? 'always' : s.restart, timeoutStartSec: '900' },
    install: { wantedBy: [host.install.target] },
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

function targetUnit(stack: ResolvedStack, host: ResolvedHost, services: readonly ResolvedService[]): TargetUnit {
  return {
    kind: 'target',
    unit: {
      description: `${stack.name} on host ${host.name} (${services.length} container${services.length === 1 ? '' : 's'})`,
      wants: [...(stack.wireguard ? [host.install.wireguardUnit] : []), ...services.flatMap((s) => [s.unit.service, ...(s.sidecar ? [s.sidecar.unit.service] : [])])],
    },
    install: { wantedBy: [host.install.wantedBy] },
  };
}

/**
 * The secure defaults as Quadlet keys (downgrade() moves the ones a host's Podman lacks to
 * `PodmanArgs=`). Quadlet 5.4 has no memory or CPU key: those are `PodmanArgs=` everywhere.
 * @see https://docs.podman.io/en/v5.4.2/markdown/podman-systemd.unit.5.html
 */
function securityKeys(s: Pick<ResolvedService, 'security'>): Partial<ContainerSection> {
  const sec = s.security;
  const limits = [...(sec.memory ? [`--memory=${sec.memory}`] : []), ...(sec.cpus !== undefined ? [`--cpus=${sec.cpus}`] : [])];
  return {
    ...(sec.noNewPrivileges ? { noNewPrivileges: true } : {}),
    dropCapability: ['all'],
    ...(sec.capAdd.length > 0 ? { addCapability: [...sec.capAdd] } : {}),
    ...(sec.readOnlyRootFilesystem ? { readOnly: true } : {}),
    ...(sec.tmpfs.length > 0 ? { tmpfs: sec.tmpfs.map(tmpfsSpec) } : {}),
    ...(sec.userNamespace === 'auto' ? { userNS: 'auto' } : {}),
    ...(sec.pids !== undefined ? { pidsLimit: sec.pids } : {}),
    ...(limits.length > 0 ? { podmanArgs: limits } : {}),
  };
}

/**
 * The service's secret files as Podman secrets (`Secret=`, `--secret` before Podman 4.5), which
 * the host's secrets unit creates from the host root's `secrets/` before the container starts.
 * Podman copies each into the container at `/run/secrets/<file>` (a relative target), mode 0444
 * owned by the container's root, mapped into its user namespace: compose's file secrets land at
 * the same place. `podman inspect` shows the secret's name, never its value.
 */
function podmanSecrets(stack: ResolvedStack, s: ResolvedService): string[] {
  return [...new Set(s.secrets.map((f) => f.file))].sort().map((file) => `${podmanSecretName(stack.name, file)},type=mount,target=${file}`);
}

/** `Volume=` value: named volumes as Quadlet `.volume` units; certificates, generated files and relative host folders from the host root. */
export function volumeSpec(host: Pick<ResolvedHost, 'install'>, m: ResolvedMount, userns = false): string {
  const source =
    m.type === 'volume'
      ? unitFileName(m.source, 'volume')
      : m.type === 'pki'
        ? inHostRoot(host, servicePath(m.source))
        : m.type === 'folder'
          ? hostFolderPath(host, m.source)
          : inHostRoot(host, m.source.replace(/^\.\//, ''));
  const options = mountOptions(m, userns);
  return `${source}:${m.target}${options.length > 0 ? `:${options.join(',')}` : ''}`;
}
