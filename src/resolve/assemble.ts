// The last step: the facts every phase found, put together as one plain ResolvedStack.
import { formatCidr, formatIp } from '../../constructs/core/ip.ts';
import type { Volume } from '../../constructs/model/volume.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import type { AddressPlan } from './addresses.ts';
import type { ServiceGraph } from './dependencies.ts';
import type { Inventory } from './inventory.ts';
import { buildLock, lockedPublicKey } from './lock.ts';
import { parsePodmanVersion } from '../../constructs/core/podman-version.ts';
import type { Unplaced, UnplacedStack } from '../layout.ts';
import type { AllocationLock, ResolvedGateway, ResolvedHost, ResolvedNetwork, ResolvedService, ResolvedWireguard } from './model.ts';
import type { Names } from './naming.ts';
import type { NetworkPlan } from './networks.ts';
import { resolveFlows } from './flows.ts';
import { authorityOf, certificateBindings, ocspOf, trustDomainOf } from './pki.ts';
import type { Placement } from './placement.ts';
import type { TunnelPlan } from './tunnel.ts';

/** Everything the phases found about a stack whose model is complete. */
export interface StackFacts {
  readonly inv: Inventory;
  readonly placement: Placement;
  readonly nets: NetworkPlan;
  readonly tunnel: TunnelPlan | undefined;
  readonly names: Names;
  readonly addresses: AddressPlan;
  readonly graph: ServiceGraph;
  readonly volumeHostOf: ReadonlyMap<Volume, string>;
  readonly services: ReadonlyMap<Workload, Unplaced<ResolvedService>>;
  /** The lock the stack was resolved against. */
  readonly previousLock: AllocationLock | undefined;
}

/** The resolved model. Call only when every workload has a service and every network its segments. */
export function assembleStack(f: StackFacts): UnplacedStack {
  const { inv } = f;
  const stack = inv.stack;
  const networks = resolvedNetworks(f);
  const services = f.graph.order.map((w) => f.services.get(w)!);
  const spiffe = { trustDomain: trustDomainOf(stack, networks[0]!.domain), stack: stack.node.id };
  const hosts = resolvedHosts(f);
  // Default responder host: the first host that runs a service.
  const ocsp = ocspOf(stack, networks[0]!.domain, hosts.find((h) => services.some((s) => s.host === h.name))?.name ?? hosts[0]!.name);
  return {
    name: stack.node.id,
    project: stack.project,
    ...(stack.description ? { description: stack.description } : {}),
    hosts,
    networks,
    // An unmounted volume has no host and no use (reported): it is left out.
    volumes: inv.volumes.filter((v) => f.volumeHostOf.has(v)).map((v) => ({ path: v.node.path, name: f.names.volumeNameOf.get(v)!, host: f.volumeHostOf.get(v)! })),
    services,
    unorderedCalls: f.graph.unorderedCalls,
    flows: resolveFlows(services),
    lock: buildLock(f.addresses.lock, f.tunnel, f.previousLock),
    ...(f.tunnel ? { wireguard: resolvedWireguard(f, f.tunnel, networks) } : {}),
    pki: {
      authority: authorityOf(stack, networks[0]!.domain),
      trustDomain: spiffe.trustDomain,
      bindings: inv.workloads.flatMap((w) => certificateBindings(w, f.services.get(w)!, spiffe, stack.kubernetes?.namespace, ocsp)),
      ...(ocsp ? { ocsp } : {}),
    },
    ...(stack.kubernetes ? { kubernetes: { namespace: stack.kubernetes.namespace, certificates: stack.kubernetes.certificates ?? 'cert-manager' } } : {}),
  };
}

function resolvedHosts(f: StackFacts): Unplaced<ResolvedHost>[] {
  return f.inv.hosts.map((h) => {
    return {
      name: h.node.id,
      path: h.node.path,
      podmanVersion: parsePodmanVersion(h.podmanVersion, h.node.path),
      rootless: h.rootless ?? f.placement.activeHosts.length <= 1,
      firewall: h.firewall,
      ...(h.endpoint ? { endpoint: h.endpoint } : {}),
    };
  });
}

function resolvedNetworks(f: StackFacts): ResolvedNetwork[] {
  return f.inv.networks.map((n) => ({
    id: n.node.id,
    path: n.node.path,
    name: n.networkName,
    domain: n.domain,
    subnet: formatCidr(f.nets.cidrOf.get(n)!),
    bridgeName: f.nets.bridgeOf.get(n)!,
    bridgeNameGiven: n.bridgeName !== undefined,
    internal: n.internal,
    segments: f.nets.segmentsOf.get(n)!.map((s) => ({ host: s.host, subnet: formatCidr(s.cidr), gateway: formatIp(s.gateway) })),
  }));
}

/** Podman builds this image from the Containerfile podmesh writes beside the gateway's config. */
export const DEFAULT_GATEWAY_IMAGE = 'localhost/podmesh-wireguard-gateway:trixie';

function gatewayOf(f: StackFacts, host: string): { gateway?: ResolvedGateway } {
  const at = f.addresses.gatewayOf.get(host);
  if (!at) return {};
  const image = f.inv.stack.wireguard.gatewayImage ?? DEFAULT_GATEWAY_IMAGE;
  return { gateway: { ip: at.ip, network: at.network, image, buildImage: image === DEFAULT_GATEWAY_IMAGE } };
}

function resolvedWireguard(f: StackFacts, tunnel: TunnelPlan, networks: readonly ResolvedNetwork[]): ResolvedWireguard {
  const wg = f.inv.stack.wireguard;
  return {
    interfaceName: wg.interfaceName ?? 'wg0',
    subnet: formatCidr(tunnel.subnet),
    persistentKeepalive: wg.persistentKeepalive ?? 25,
    presharedKeys: wg.presharedKeys ?? false,
    ...(wg.mtu ? { mtu: wg.mtu } : {}),
    peers: f.placement.activeHosts.map((h) => ({
      host: h.node.id,
      mode: tunnel.modes.get(h.node.id)!,
      ...gatewayOf(f, h.node.id),
      address: tunnel.addresses.get(h.node.id)!,
      endpoint: h.endpoint!,
      listenPort: Number(h.endpoint!.slice(h.endpoint!.lastIndexOf(':') + 1)),
      routes: networks.flatMap((n) => n.segments.filter((g) => g.host === h.node.id).map((g) => g.subnet)),
      ...lockedPublicKey(f.previousLock, h.node.id),
    })),
  };
}
