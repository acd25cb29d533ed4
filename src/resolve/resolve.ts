// From constructs to the resolved model: defaults, names, addresses, order, and every graph rule.
import { IssueCollector, PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { formatCidr, formatIp, overlaps, parseCidr, type Cidr } from '../../constructs/core/ip.ts';
import { INTERFACE_NAME, closest } from '../../constructs/core/names.ts';
import type { Stack } from '../../constructs/core/stack.ts';
import { Host } from '../../constructs/model/host.ts';
import { Network } from '../../constructs/model/network.ts';
import { Volume } from '../../constructs/model/volume.ts';
import { Service } from '../../constructs/model/service.ts';
import { Workload, type DependencyProps, type PortProps } from '../../constructs/model/workload.ts';
import { lockedPublicKey } from './lock.ts';
import { placeStack, type Unplaced } from '../layout.ts';
import { parsePodmanVersion } from '../../constructs/core/podman-version.ts';
import { allocateAddresses, type SegmentPlan } from './allocate.ts';
import { allocateTunnel, pickTunnelSubnet, planSlices } from './slices.ts';
import { OPENSSL_CONF_PATH, generatedEnvironment, mtlsUrl, secretEnvironment, type InfraEndpoints } from './environment.ts';
import { resolveCalls } from './policy.ts';
import { Minio, Postgres, Redis } from '../../constructs/model/infra.ts';
import { topologicalOrder } from './graph.ts';
import type { AuthoritySpec, CertBinding } from '../state/pki/types.ts';
import type {
  AllocationLock,
  ResolvedDependency,
  ResolvedHost,
  ResolvedMount,
  ResolvedNetwork,
  ResolvedPort,
  ResolvedService,
  ResolvedStack,
  ResolvedVolume,
} from './model.ts';

/** What resolution reads besides the constructs. */
export interface ResolveInputs {
  /** The stack's previous allocation lock, if any. */
  readonly lock?: AllocationLock;
}

const HEALTH_DEFAULTS = { interval: '10s', timeout: '5s', retries: 5, startPeriod: '10s' } as const;

/** What resolving one stack found: the model when rendering it means something, and every problem. */
export interface ResolveOutcome {
  /** Present when the model is complete enough to render (even with problems, so render-time ones show too). */
  readonly resolved?: ResolvedStack;
  readonly issues: readonly Issue[];
}

/** Resolves one stack without throwing for the stack's own problems. */
export function tryResolveStack(stack: Stack, inputs: ResolveInputs = {}): ResolveOutcome {
  try {
    return { resolved: resolveStack(stack, inputs), issues: [] };
  } catch (e) {
    if (!(e instanceof PodmeshError)) throw e;
    return { issues: e.issues };
  }
}

/**
 * Resolves one stack. Throws a PodmeshError carrying every problem found; returns a model in
 * which every reference is valid.
 */
export function resolveStack(stack: Stack, inputs: ResolveInputs = {}): ResolvedStack {
  const issues = new IssueCollector();
  const all = stack.node.findAll();
  const hosts = all.filter(Host.isHost);
  const networks = all.filter(Network.isNetwork);
  const volumes = all.filter(Volume.isVolume);
  const workloads = all.filter(Workload.isWorkload);
  const stackPath = stack.node.path;

  if (workloads.length === 0) {
    issues.add(stackPath, 'the stack has no services. Add a Service, Postgres, Redis, Minio or InfraService to it, or delete the stack.');
  }
  if (hosts.length === 0) {
    issues.add(stackPath, `the stack has no host. Add one, e.g. new Host(stack, 'local').`);
  }
  if (networks.length === 0) {
    issues.add(stackPath, `the stack has no network. Add one, e.g. new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'example.local' }).`);
  }
  issues.throwIfAny();

  // Placement: which host and network each workload uses.
  const hostOf = new Map<Workload, Host>();
  const networkOf = new Map<Workload, Network>();
  for (const w of workloads) {
    const h = w.props.host ?? (hosts.length === 1 ? hosts[0] : undefined);
    if (!h) issues.add(w.node.path, `the stack has ${hosts.length} hosts (${hosts.map((x) => x.node.id).join(', ')}); say which one runs this service with host: <Host>.`);
    else if (!hosts.includes(h)) issues.add(w.node.path, `host ${h.node.path} belongs to another stack. Place the service on a host of ${stackPath}.`);
    else hostOf.set(w, h);
    const n = w.props.network ?? (networks.length === 1 ? networks[0] : undefined);
    if (!n) issues.add(w.node.path, `the stack has ${networks.length} networks (${networks.map((x) => x.node.id).join(', ')}); say which one this service joins with network: <Network>.`);
    else if (!networks.includes(n)) issues.add(w.node.path, `network ${n.node.path} belongs to another stack. Use a network of ${stackPath}.`);
    else networkOf.set(w, n);
  }

  // Networks: subnets, overlaps, bridge names, segments per host.
  const cidrOf = new Map<Network, Cidr>();
  for (const n of networks) {
    const r = parseCidr(n.subnet);
    if (r.ok) cidrOf.set(n, r.cidr);
  }
  networks.forEach((n, i) => {
    const c = cidrOf.get(n);
    if (!c) return;
    for (const m of networks.slice(0, i)) {
      const d = cidrOf.get(m);
      if (d && overlaps(c, d)) {
        issues.add(n.node.path, `subnet ${n.subnet} overlaps network ${m.networkName} (${m.subnet}). Give each network its own range, e.g. ${suggestFreeSubnet(c, [...cidrOf.values()])}.`);
      }
    }
    for (const m of networks.slice(0, i)) {
      if (m.networkName === n.networkName) issues.add(n.node.path, `network name "${n.networkName}" is already used by ${m.node.path}. Rename one of them.`);
    }
  });
  const bridgeOf = new Map<Network, string>();
  for (const n of networks) {
    const bridge = n.bridgeName ?? n.networkName;
    if (!INTERFACE_NAME.test(bridge)) {
      issues.add(n.node.path, `bridge interface name "${bridge}" is not a valid Linux interface name (at most 15 characters of letters, digits, "_", "." and "-"). Set bridgeName, e.g. "${bridge.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 15)}".`);
    }
    bridgeOf.set(n, bridge);
  }

  const lock = inputs.lock;
  const usedHosts = (n: Network) => hosts.filter((h) => workloads.some((w) => networkOf.get(w) === n && hostOf.get(w) === h)).map((h) => h.node.id);
  const segmentsOf = new Map<Network, SegmentPlan[]>();
  for (const n of networks) {
    const cidr = cidrOf.get(n);
    if (!cidr) continue;
    const previous = lock?.networks[n.node.id];
    const segments = planSlices(
      {
        name: n.networkName,
        path: n.node.path,
        cidr,
        hosts: usedHosts(n),
        knownHosts: hosts.map((h) => h.node.id),
        explicit: n.slices,
        locked: previous && previous.subnet === formatCidr(cidr) ? (previous.slices ?? {}) : {},
        ...(n.gateway !== undefined ? { gateway: n.gateway } : {}),
      },
      issues,
    );
    if (segments) segmentsOf.set(n, segments);
  }

  // Hosts that run services are joined by WireGuard when there is more than one.
  const activeHosts = hosts.filter((h) => workloads.some((w) => hostOf.get(w) === h));
  let tunnel: { subnet: Cidr; addresses: Map<string, string> } | undefined;
  if (activeHosts.length > 1) {
    const endpoints = new Map<string, Host>();
    for (const h of activeHosts) {
      if (!h.endpoint) {
        issues.add(h.node.path, `has no endpoint, but the stack spans ${activeHosts.length} hosts joined by WireGuard. Set endpoint: "<address or name>:<port>", e.g. "198.51.100.10:51820".`);
        continue;
      }
      if (h.rootless === true) {
        issues.add(h.node.path, `is rootless, but the stack spans ${activeHosts.length} hosts joined by WireGuard: a rootless Podman bridge lives in the user's network namespace, where the tunnel's routes to this host's slice cannot reach it. Remove rootless (multi-host hosts default to rootful) or set rootless: false.`);
      }
      const other = endpoints.get(h.endpoint);
      if (other) issues.add(h.node.path, `endpoint ${h.endpoint} is already the endpoint of ${other.node.path}. Each host needs its own address or port.`);
      else endpoints.set(h.endpoint, h);
    }
    const subnet = pickTunnelSubnet(
      stack.wireguard.subnet,
      lock?.wireguard?.subnet,
      networks.flatMap((n) => (cidrOf.has(n) ? [{ name: n.networkName, cidr: cidrOf.get(n)! }] : [])),
      stackPath,
      issues,
    );
    if (subnet) {
      const locked = lock?.wireguard && lock.wireguard.subnet === formatCidr(subnet) ? lock.wireguard.hosts : {};
      const addresses = allocateTunnel(
        subnet,
        activeHosts.map((h) => ({ host: h.node.id, path: h.node.path, ...(h.tunnelAddress ? { explicit: h.tunnelAddress } : {}) })),
        Object.fromEntries(Object.entries(locked).map(([h, v]) => [h, v.address])),
        issues,
      );
      tunnel = { subnet, addresses };
    }
  }

  // Names: DNS names and aliases must be unique in the stack.
  const dnsOf = new Map<Workload, string>();
  const owners = new Map<string, Workload>();
  for (const w of workloads) {
    const n = networkOf.get(w);
    if (!n) continue;
    const dns = `${w.name}.${n.domain}`;
    dnsOf.set(w, dns);
    for (const name of [dns, ...(w.props.aliases ?? [])]) {
      const other = owners.get(name);
      if (other && other !== w) {
        issues.add(w.node.path, other.name === w.name
          ? `service name "${w.name}" is already used by ${other.node.path}. Service names are DNS labels and must be unique in a stack: rename one of them.`
          : `DNS name ${name} is already used by ${other.node.path}. Remove the alias or rename a service.`);
      } else owners.set(name, w);
    }
  }

  const healthOf = (w: Workload) =>
    w.props.healthcheck === false ? undefined : (w.props.healthcheck ?? w.defaultHealthcheck(dnsOf.get(w) ?? w.name));

  // Addresses.
  const ipOf = new Map<Workload, string>();
  const lockOut: Record<string, { subnet: string; slices?: Record<string, string>; addresses: Record<string, string> }> = {};
  for (const n of networks) {
    const cidr = cidrOf.get(n);
    const segments = segmentsOf.get(n);
    if (!cidr || !segments) continue;
    const members = workloads.filter((w) => networkOf.get(w) === n && hostOf.has(w));
    const previous = lock?.networks[n.node.id];
    const allocation = allocateAddresses(
      { name: n.networkName, path: n.node.path, cidr },
      segments,
      members.map((w) => ({ name: w.name, path: w.node.path, host: hostOf.get(w)!.node.id, explicitIp: w.props.ip })),
      previous && previous.subnet === formatCidr(cidr) ? previous.addresses : {},
      issues,
    );
    for (const w of members) {
      const ip = allocation.addresses.get(w.name);
      if (ip) ipOf.set(w, ip);
    }
    lockOut[n.node.id] = {
      subnet: formatCidr(cidr),
      ...(segments.length > 1 || Object.keys(n.slices).length > 0
        ? { slices: Object.fromEntries(segments.map((g) => [g.host, formatCidr(g.cidr)]).sort(([a], [b]) => compare(a!, b!))) }
        : {}),
      addresses: Object.fromEntries([...allocation.addresses].sort(([a], [b]) => compare(a, b))),
    };
  }

  // Ports: unique inside a workload, and published host ports unique per host.
  const portsOf = new Map<Workload, ResolvedPort[]>();
  const published = new Map<string, Workload>();
  for (const w of workloads) {
    const ports: ResolvedPort[] = [];
    const entries = Object.entries(w.props.ports ?? {}).map(([name, v]) => [name, typeof v === 'number' ? { port: v } : v] as const);
    if (w instanceof Service) entries.push(['mtls', { port: w.mtlsPort }]);
    const seen = new Map<string, string>();
    for (const [name, p] of entries as (readonly [string, PortProps])[]) {
      const protocol = p.protocol ?? 'tcp';
      const key = `${p.port}/${protocol}`;
      if (seen.has(key)) {
        issues.add(w.node.path, `port ${key} is declared twice (${seen.get(key)} and ${name}). Give each listener its own port.`);
        continue;
      }
      seen.set(key, name);
      let publish: ResolvedPort['publish'];
      if (p.publish !== undefined && p.publish !== false) {
        const hostPort = p.publish === true ? p.port : p.publish;
        publish = p.hostIp ? { hostPort, hostIp: p.hostIp } : { hostPort };
        const host = hostOf.get(w);
        if (host) {
          const k = `${host.node.id}:${p.hostIp ?? '*'}:${hostPort}/${protocol}`;
          const anyKey = `${host.node.id}:*:${hostPort}/${protocol}`;
          const other = published.get(k) ?? published.get(anyKey);
          if (other) {
            issues.add(w.node.path, `host port ${hostPort}/${protocol} on host ${host.node.id} is already published by ${other.node.path}. Publish another host port, e.g. publish: ${hostPort + 1}.`);
          } else published.set(k, w);
        }
      }
      ports.push({ name, port: p.port, protocol, ...(publish ? { publish } : {}) });
    }
    portsOf.set(w, ports);
  }

  // Dependencies.
  const byName = new Map(workloads.map((w) => [w.name, w]));
  const depsOf = new Map<Workload, ResolvedDependency[]>();
  for (const w of workloads) {
    const deps: ResolvedDependency[] = [];
    for (const d of w.props.dependsOn ?? []) {
      const spec: DependencyProps = typeof d === 'string' || d instanceof Workload ? { service: d } : d;
      const target = typeof spec.service === 'string' ? byName.get(spec.service) : spec.service;
      const label = typeof spec.service === 'string' ? spec.service : spec.service.node.path;
      if (!target || !workloads.includes(target)) {
        const hint = typeof spec.service === 'string' ? closest(spec.service, [...byName.keys()]) : undefined;
        issues.add(w.node.path, `depends on unknown service "${label}"${target ? ' (it belongs to another stack)' : ''}. ${hint ? `Did you mean "${hint}"? ` : ''}Known services: ${[...byName.keys()].join(', ')}.`);
        continue;
      }
      if (target === w) {
        issues.add(w.node.path, 'depends on itself. Remove it from dependsOn.');
        continue;
      }
      const hasHealth = healthOf(target) !== undefined;
      const condition = spec.condition ?? (hasHealth ? 'healthy' : 'started');
      if (condition === 'healthy' && !hasHealth) {
        issues.add(w.node.path, `waits for ${target.name} to be healthy, but ${target.name} has no health check. Give it one, or use condition: 'started'.`);
      }
      if (!deps.some((x) => x.service === target.name)) deps.push({ service: target.name, condition });
    }
    depsOf.set(w, deps);
  }
  const callGraph = resolveCalls(workloads, issues);
  const infraOf = new Map<Workload, ReturnType<typeof infraDependencies>>();
  for (const w of workloads) infraOf.set(w, infraDependencies(w, depsOf.get(w)!, byName, issues));
  const names = workloads.map((w) => w.name);
  const topo = topologicalOrder(names, new Map(workloads.map((w) => [w.name, (depsOf.get(w) ?? []).map((d) => d.service)])));
  if ('cycle' in topo) {
    const first = byName.get(topo.cycle[0]!)!;
    issues.add(first.node.path, `dependency cycle: ${topo.cycle.join(' → ')}. Services cannot wait for each other; remove one of these dependsOn entries.`);
  }

  // Volumes live on the host of the services that mount them.
  const volumeHost = new Map<Volume, { host: string; by: Workload }>();
  for (const w of workloads) {
    for (const m of w.mounts) {
      if (!m.volume) continue;
      if (!volumes.includes(m.volume)) {
        issues.add(w.node.path, `mounts volume ${m.volume.node.path}, which belongs to another stack.`);
        continue;
      }
      const h = hostOf.get(w)?.node.id;
      if (!h) continue;
      const prev = volumeHost.get(m.volume);
      if (prev && prev.host !== h) {
        issues.add(w.node.path, `mounts volume ${m.volume.node.path} on host ${h}, but ${prev.by.node.path} mounts it on host ${prev.host}. A volume lives on one host: give each host its own volume.`);
      } else if (!prev) volumeHost.set(m.volume, { host: h, by: w });
    }
  }
  for (const v of volumes) {
    if (!volumeHost.has(v)) issues.add(v.node.path, 'is not mounted by any service. Mount it (mounts: [{ volume, target }]) or remove it.');
  }
  const volumeName = (v: Volume) => v.explicitName ?? `${stack.project}-${v.node.scopes.slice(2).map((s) => s.node.id).join('-')}`;

  // Container names are unique per host.
  const containerNames = new Map<string, Workload>();
  for (const w of workloads) {
    const cn = w.props.containerName ?? `${stack.project}-${w.name}-1`;
    const key = `${hostOf.get(w)?.node.id}/${cn}`;
    const other = containerNames.get(key);
    if (other) issues.add(w.node.path, `container name "${cn}" is already used by ${other.node.path}. Set another containerName.`);
    else containerNames.set(key, w);
  }

  issues.throwIfAny();

  // Everything checked: build the plain model.
  const portOf = (w: Workload, name: string, fallback: number): number => portsOf.get(w)?.find((p) => p.name === name)?.port ?? fallback;
  const resolvedServices = new Map<Workload, Unplaced<ResolvedService>>();
  for (const w of workloads) {
    const network = networkOf.get(w)!;
    const dnsName = dnsOf.get(w)!;
    const serviceName = w.props.serviceName ?? w.name;
    const deps = infraOf.get(w)!;
    const infra: InfraEndpoints = {
      ...(deps.postgres ? { postgres: { dnsName: dnsOf.get(deps.postgres)!, port: portOf(deps.postgres, 'postgres', 5432), database: deps.postgres.database, user: deps.postgres.user } } : {}),
      ...(deps.redis ? { redis: { dnsName: dnsOf.get(deps.redis)!, port: portOf(deps.redis, 'redis', 6379) } } : {}),
      ...(deps.minio ? { minio: { dnsName: dnsOf.get(deps.minio)!, port: portOf(deps.minio, 'api', 9000), user: deps.minio.rootUser, bucket: deps.minio.bucket ?? stack.project } } : {}),
    };
    const calls = callGraph.calls.get(w.name)!;
    const callers = callGraph.callers.get(w.name)!;
    const generated = generatedEnvironment(w.kind, {
      serviceName,
      dnsName,
      ...(w instanceof Service ? { mtlsPort: w.mtlsPort } : {}),
      calls: calls.map((c) => ({ name: c, url: mtlsUrl(dnsOf.get(byName.get(c)!)!, (byName.get(c) as Service).mtlsPort) })),
      allowedClients: callers.map((c) => dnsOf.get(byName.get(c)!)!).sort(compare),
      infra,
    });
    const secretEnv = secretEnvironment(
      Object.fromEntries(Object.entries(w.secretVariables()).map(([k, name]) => [k, `${w.name}/${name}`])),
      { ...infra, names: { postgres: deps.postgres?.name, redis: deps.redis?.name, minio: deps.minio?.name } },
    ).sort(([a], [b]) => compare(a, b));
    const env = new Map(generated);
    const reserved = new Map([...generated, ...secretEnv.map(([k]): [string, string] => [k, '(a secret in the state folder)'])]);
    for (const { name, value, file } of w.fileEnvironment) {
      if (reserved.has(name)) {
        issues.add(w.node.path, `environment variable ${name} from env file ${file} is generated by podmesh (${name}=${reserved.get(name)}). Remove it from the file.`);
      }
      env.set(name, value);
    }
    for (const [k, v] of Object.entries(w.props.environment ?? {})) {
      if (reserved.has(k)) {
        issues.add(w.node.path, `environment variable ${k} is generated by podmesh (${k}=${reserved.get(k)}). Remove it from environment, or change the model that generates it.`);
      }
      env.set(k, v);
    }
    const health = healthOf(w);
    const hyperf = w instanceof Service ? w.hyperf : undefined;
    const mounts: ResolvedMount[] = [
      ...w.mounts.map((m): ResolvedMount => ({
        type: m.volume ? 'volume' : 'bind',
        source: m.volume ? volumeName(m.volume) : m.hostPath!,
        target: m.target,
        readOnly: m.readOnly ?? false,
      })),
      ...hyperfMounts(w.name, hyperf),
      ...(w instanceof Service ? [opensslMount(w.name)] : []),
      ...w.tlsMounts().map((m): ResolvedMount => ({
        type: 'pki',
        source: m.file ? `${w.name}/${m.file}` : w.name,
        target: m.target,
        readOnly: true,
      })),
    ];
    const targets = new Set<string>();
    for (const m of mounts) {
      if (targets.has(m.target)) issues.add(w.node.path, `two mounts target ${m.target}. Mount each path once${m.type === 'pki' ? ` (podmesh mounts the certificates at ${m.target})` : ''}.`);
      targets.add(m.target);
    }
    resolvedServices.set(w, {
      name: w.name,
      path: w.node.path,
      kind: w.kind,
      serviceName,
      host: hostOf.get(w)!.node.id,
      network: network.node.id,
      image: w.props.image,
      containerName: w.props.containerName ?? `${stack.project}-${w.name}-1`,
      hostname: w.name,
      dnsName,
      aliases: [dnsName, ...(w.props.aliases ?? [])],
      ip: ipOf.get(w)!,
      staticIp: w.props.ip !== undefined,
      ports: portsOf.get(w)!,
      ...(w instanceof Service ? { mtls: { port: w.mtlsPort, url: mtlsUrl(dnsName, w.mtlsPort) } } : {}),
      environment: [...env].sort(([a], [b]) => compare(a, b)),
      secretEnvironment: secretEnv,
      calls,
      callers,
      ...(hyperf ? { hyperf } : {}),
      ...(w instanceof Service && w.publicTls ? { publicTlsPort: publicTlsPort(w, portsOf.get(w)!, issues) } : {}),
      dependsOn: depsOf.get(w)!,
      ...(health
        ? {
            healthcheck: {
              command: typeof health.command === 'string' ? { shell: health.command } : { exec: [...health.command] },
              interval: health.interval ?? HEALTH_DEFAULTS.interval,
              timeout: health.timeout ?? HEALTH_DEFAULTS.timeout,
              retries: health.retries ?? HEALTH_DEFAULTS.retries,
              startPeriod: health.startPeriod ?? HEALTH_DEFAULTS.startPeriod,
            },
          }
        : {}),
      restart: w.props.restart ?? 'unless-stopped',
      mounts,
      ...(w.props.command ? { command: [...w.props.command] } : {}),
      ...(w.props.user ? { user: w.props.user } : {}),
      readOnlyRootFilesystem: w.props.readOnlyRootFilesystem ?? false,
      certificates: w.certificateKinds(),
    });
  }
  issues.throwIfAny();

  const order = 'order' in topo ? topo.order : names;
  const hostList: Unplaced<ResolvedHost>[] = hosts.map((h) => {
    return {
      name: h.node.id,
      path: h.node.path,
      podmanVersion: parsePodmanVersion(h.podmanVersion, h.node.path),
      rootless: h.rootless ?? activeHosts.length <= 1,
      ...(h.endpoint ? { endpoint: h.endpoint } : {}),
    };
  });
  const networkList: ResolvedNetwork[] = networks.map((n) => ({
    id: n.node.id,
    path: n.node.path,
    name: n.networkName,
    domain: n.domain,
    subnet: formatCidr(cidrOf.get(n)!),
    bridgeName: bridgeOf.get(n)!,
    internal: n.internal,
    segments: segmentsOf.get(n)!.map((s) => ({ host: s.host, subnet: formatCidr(s.cidr), gateway: formatIp(s.gateway) })),
  }));
  const volumeList: ResolvedVolume[] = volumes.map((v) => ({ path: v.node.path, name: volumeName(v), host: volumeHost.get(v)!.host }));

  return placeStack({
    name: stack.node.id,
    project: stack.project,
    ...(stack.description ? { description: stack.description } : {}),
    hosts: hostList,
    networks: networkList,
    volumes: volumeList,
    services: order.map((name) => resolvedServices.get(byName.get(name)!)!),
    lock: {
      version: 1,
      networks: lockOut,
      ...(tunnel
        ? { wireguard: { subnet: formatCidr(tunnel.subnet), hosts: Object.fromEntries([...tunnel.addresses].sort(([a], [b]) => compare(a, b)).map(([h, address]) => [h, { address, ...lockedPublicKey(lock, h) }])) } }
        : {}),
    },
    ...(tunnel
      ? {
          wireguard: {
            interfaceName: stack.wireguard.interfaceName ?? 'wg0',
            subnet: formatCidr(tunnel.subnet),
            persistentKeepalive: stack.wireguard.persistentKeepalive ?? 25,
            presharedKeys: stack.wireguard.presharedKeys ?? false,
            ...(stack.wireguard.mtu ? { mtu: stack.wireguard.mtu } : {}),
            peers: activeHosts.map((h) => ({
              host: h.node.id,
              address: tunnel!.addresses.get(h.node.id)!,
              endpoint: h.endpoint!,
              listenPort: Number(h.endpoint!.slice(h.endpoint!.lastIndexOf(':') + 1)),
              routes: networkList.flatMap((n) => n.segments.filter((g) => g.host === h.node.id).map((g) => g.subnet)),
              ...lockedPublicKey(lock, h.node.id),
            })),
          },
        }
      : {}),
    pki: {
      authority: authorityOf(stack, networkList[0]!.domain),
      bindings: workloads.flatMap((w) => certificateBindings(w, resolvedServices.get(w)!)),
    },
  });
}

/** The stack's CA settings with the seed's defaults. */
function authorityOf(stack: Stack, domain: string): AuthoritySpec {
  const p = stack.pki;
  return {
    rootCommonName: p.rootCommonName ?? `${stack.project}-ca`,
    rootLifetimeDays: p.rootLifetimeDays ?? 3650,
    clientCaCommonName: p.clientCaCommonName ?? domain,
    clientCaLifetimeDays: p.clientCaLifetimeDays ?? 1825,
    keyType: p.keyType ?? 'ecdsa-p256',
    ...(p.organization ? { organization: p.organization } : {}),
  };
}

/** The certificates a workload needs: CN = DNS name, SAN = DNS names and its address. */
function certificateBindings(w: Workload, s: Unplaced<ResolvedService>): CertBinding[] {
  const keyType = w.props.certificate?.keyType ?? 'ecdsa-p256';
  const lifetimeDays = w.props.certificate?.lifetimeDays ?? 365;
  return s.certificates.map((kind): CertBinding => {
    if (kind === 'public') {
      const pub = (w as Service).publicTls!;
      return { service: s.name, kind, commonName: pub.hostnames[0]!, dnsNames: [...pub.hostnames], ipAddresses: [...(pub.ipAddresses ?? [])], keyType, lifetimeDays };
    }
    return { service: s.name, kind, commonName: s.dnsName, dnsNames: [...s.aliases], ipAddresses: [s.ip], keyType, lifetimeDays };
  });
}



/** A block of the same size as `c` that overlaps none of `taken`, for error hints. */
function suggestFreeSubnet(c: Cidr, taken: readonly Cidr[]): string {
  const step = 2 ** (32 - c.prefix);
  for (let base = c.base + step, i = 0; i < 256; base += step, i++) {
    const candidate = { base: base >>> 0, prefix: c.prefix };
    if (!taken.some((t) => overlaps(t, candidate))) return formatCidr(candidate);
  }
  return 'another private range';
}

/** The PostgreSQL, Redis and MinIO a workload depends on (one of each at most). */
function infraDependencies(
  w: Workload,
  deps: readonly ResolvedDependency[],
  byName: ReadonlyMap<string, Workload>,
  issues: IssueCollector,
): { postgres?: Postgres; redis?: Redis; minio?: Minio } {
  const found: { postgres?: Postgres; redis?: Redis; minio?: Minio } = {};
  const kinds = [
    ['postgres', Postgres, 'PostgreSQL', 'DB_*'],
    ['redis', Redis, 'Redis', 'REDIS_*'],
    ['minio', Minio, 'MinIO', 'S3_*'],
  ] as const;
  for (const d of deps) {
    const target = byName.get(d.service);
    for (const [key, type, label, vars] of kinds) {
      if (!(target instanceof type)) continue;
      const previous = found[key];
      if (previous) {
        issues.add(w.node.path, `depends on two ${label} services (${previous.name}, ${target.name}); podmesh generates one set of ${vars} settings. Keep one dependency and pass the other's settings in environment.`);
      } else {
        (found as Record<string, Workload>)[key] = target;
      }
    }
  }
  return found;
}

/** Files of a Hyperf service's `config/autoload/`, generated under the host folder's `config/<service>/`. */
export const HYPERF_FILES = ['server.php', 'mtls_client.php', 'mtls_policy.php'] as const;

/** The service's generated OpenSSL configuration, under the host folder's `config/<service>/`. */
export const OPENSSL_CONF_FILE = 'openssl.cnf';

function opensslMount(service: string): ResolvedMount {
  return { type: 'bind', source: `./config/${service}/${OPENSSL_CONF_FILE}`, target: OPENSSL_CONF_PATH, readOnly: true };
}

/** The port that terminates public TLS: it must be declared, over TCP, and not the mTLS listener. */
function publicTlsPort(w: Service, ports: readonly ResolvedPort[], issues: IssueCollector): string {
  const name = w.publicTls!.port ?? 'public';
  const port = ports.find((p) => p.name === name);
  const tcp = ports.filter((p) => p.name !== 'mtls' && p.protocol === 'tcp').map((p) => p.name);
  const choose = tcp.length > 0 ? `Declare it in ports, or set publicTls.port to one of: ${tcp.join(', ')}.` : `Declare it, e.g. ports: { ${name}: { port: 9501, publish: true } }.`;
  if (!port) issues.add(w.node.path, `publicTls is served on port "${name}", which the service does not declare. ${choose}`);
  else if (name === 'mtls') issues.add(w.node.path, 'publicTls cannot be served on the mTLS port: public clients have no client certificate. Declare a port of its own.');
  else if (port.protocol !== 'tcp') issues.add(w.node.path, `publicTls is served on port "${name}", which is ${port.protocol}; TLS needs tcp.`);
  return name;
}

function hyperfMounts(service: string, hyperf: { readonly appRoot: string } | undefined): ResolvedMount[] {
  if (!hyperf) return [];
  return HYPERF_FILES.map((file) => ({
    type: 'bind',
    source: `./config/${service}/autoload/${file}`,
    target: `${hyperf.appRoot}/config/autoload/${file}`,
    readOnly: true,
  }));
}
