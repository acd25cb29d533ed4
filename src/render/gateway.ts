// WireGuard in a gateway container (`wireguard.mode: 'container'`): per host, a container on the
// stack's network with a fixed address in the host's slice runs userspace WireGuard (wireguard-go
// and wg), and the network itself routes the other hosts' slices and the tunnel subnet through it
// (netavark network routes, `podman network create --route`, Podman ≥ 4.6). Rootless Podman can run
// all of it: the container needs NET_ADMIN in its own namespaces and /dev/net/tun, nothing else;
// Podman publishes its UDP port. Containers keep their real source addresses across hosts, and the
// declared flows are filtered by an nftables table in the gateway's namespace.
// @see https://docs.podman.io/en/v5.4.2/markdown/podman-network-create.1.html (--route)
// @see https://man7.org/linux/man-pages/man8/wg.8.html (setconf)
import { compare } from '../io/sort.ts';
import { hostFile, podmanSecretName, presharedKeyPath, wireguardKeyPath, STAGE } from '../layout.ts';
import type { ResolvedHost, ResolvedStack, ResolvedTunnelPeer } from '../resolve/model.ts';
import type { RenderedFile } from './file.ts';
import { gatewayFirewall } from './firewall.ts';
import { hashHeader } from './header.ts';
import type { ContainerUnit } from './quadlet/index.ts';
import { unitFileName } from './quadlet/index.ts';

/** Podman where Quadlet runs it. */
const PODMAN = '/usr/bin/podman';
/** Where the gateway finds its config and script inside the container. */
export const GATEWAY_CONFIG_DIR = '/etc/podmesh/wireguard';
/** The gateway's interface on the stack's network: Podman names a container's first network interface eth0. */
export const GATEWAY_LINK = 'eth0';
/** The Containerfile of the default image, under the host's WireGuard folder. */
export const GATEWAY_IMAGE_DIR = 'image';
/** The script the gateway runs. */
export const GATEWAY_SCRIPT = 'gateway.sh';

/** The gateway's container name: `podmesh-<stack>-wireguard`; Quadlet names its unit after the file, the host's wireguard unit. */
export function gatewayContainerName(stack: string): string {
  return `podmesh-${stack}-wireguard`;
}

/** The gateway's Quadlet file stem: its service is the host's `podmesh-<stack>-wireguard.service`, which every container starts after. */
export function gatewayUnitStem(stack: string): string {
  return `podmesh-${stack}-wireguard`;
}

/** The Podman secret holding the host's private key (no dot: a service's secret files always have one). */
export function gatewayKeySecret(stack: string): string {
  return podmanSecretName(stack, 'wireguard-private-key');
}

/** The Podman secret holding the preshared key shared with `peer`. */
export function gatewayPskSecret(stack: string, peer: string): string {
  return podmanSecretName(stack, `wireguard-psk-${peer}`);
}

/** The Podman secrets of a gateway and the host files they are created from (the installed key files). */
export function gatewaySecrets(stack: ResolvedStack, host: ResolvedHost): { name: string; source: string }[] {
  const wg = stack.wireguard;
  const self = wg?.peers.find((p) => p.host === host.name);
  if (!wg || self?.mode !== 'container') return [];
  const peers = wg.peers.filter((p) => p !== self).map((p) => p.host).sort(compare);
  return [
    { name: gatewayKeySecret(stack.name), source: wireguardKeyPath(host) },
    ...(wg.presharedKeys ? peers.map((p) => ({ name: gatewayPskSecret(stack.name, p), source: presharedKeyPath(host, p) })) : []),
  ];
}

/** A peer's `[Peer]` section (after a blank line), the same in wg-quick's form (host mode, render/wireguard.ts) and `wg setconf`'s. */
export function peerSection(wg: Pick<NonNullable<ResolvedStack['wireguard']>, 'persistentKeepalive'>, p: ResolvedTunnelPeer): string[] {
  return [
    '',
    '[Peer]',
    `# ${p.host}`,
    `PublicKey = ${p.publicKey}`,
    `Endpoint = ${p.endpoint}`,
    `AllowedIPs = ${[`${p.address}/32`, ...p.routes].join(', ')}`,
    ...(wg.persistentKeepalive > 0 ? [`PersistentKeepalive = ${wg.persistentKeepalive}`] : []),
  ];
}

/** `wg setconf` form: no private key (a Podman secret) and no wg-quick keys (the script does their work). */
function setconfFile(stack: ResolvedStack, self: ResolvedTunnelPeer, peers: readonly ResolvedTunnelPeer[]): string {
  const wg = stack.wireguard!;
  const lines = [
    `# wg setconf form for the WireGuard gateway container ${gatewayContainerName(stack.name)} of host ${self.host} (wireguard mode 'container').`,
    `# Its private key${wg.presharedKeys ? ' and preshared keys' : ''}: Podman secret${wg.presharedKeys ? 's' : ''} ${gatewayKeySecret(stack.name)}${wg.presharedKeys ? `, ${gatewayPskSecret(stack.name, '<peer>')}` : ''}, never in this file.`,
    '[Interface]',
    `ListenPort = ${self.listenPort}`,
  ];
  for (const p of peers) lines.push(...peerSection(wg, p));
  return `${hashHeader(stack.name)}${lines.join('\n')}\n`;
}

/**
 * The gateway's script: starts wireguard-go in the foreground, configures it (keys from the Podman
 * secrets under /run/secrets), gives it the tunnel address and the routes to the other hosts'
 * slices, loads the flow filter, then waits for wireguard-go: the container lives as long as the
 * tunnel does, and stopping the container stops both.
 */
function scriptFile(stack: ResolvedStack, host: ResolvedHost, self: ResolvedTunnelPeer, peers: readonly ResolvedTunnelPeer[]): string {
  const wg = stack.wireguard!;
  const iface = wg.interfaceName;
  const prefix = wg.subnet.slice(wg.subnet.indexOf('/'));
  const lines = [
    '#!/bin/bash',
    `# WireGuard gateway of host ${host.name} (stack ${stack.name}): userspace WireGuard on ${iface}, routing the other hosts' slices;`,
    `# forwarded traffic between ${iface} and ${GATEWAY_LINK}: only the declared flows (nftables, this container's namespace).`,
    'set -euo pipefail',
    `export WG_PROCESS_FOREGROUND=1`,
    `wireguard-go ${iface} &`,
    'pid=$!',
    `trap 'kill "$pid" 2>/dev/null || true' TERM INT`,
    // wireguard-go creates the interface and its control socket within milliseconds; bounded wait.
    `for _ in $(seq 100); do [ -S /var/run/wireguard/${iface}.sock ] && break; kill -0 "$pid" || exit 1; sleep 0.1; done`,
    `wg setconf ${iface} ${GATEWAY_CONFIG_DIR}/${iface}.conf`,
    `wg set ${iface} private-key /run/secrets/wireguard-private-key`,
    ...(wg.presharedKeys ? peers.map((p) => `wg set ${iface} peer ${p.publicKey} preshared-key /run/secrets/wireguard-psk-${p.host}`) : []),
    `ip address add ${self.address}${prefix} dev ${iface}`,
    `ip link set ${iface}${wg.mtu !== undefined ? ` mtu ${wg.mtu}` : ''} up`,
    // The network routes these through this container too (to itself): they go into the tunnel here.
    ...[wg.subnet, ...peers.flatMap((p) => p.routes)].map((r) => `ip route replace ${r} dev ${iface}`),
    ...gatewayFirewall(stack, host),
    'echo "podmesh: WireGuard gateway up" >&2',
    'wait "$pid"',
  ];
  return `${lines[0]}\n${hashHeader(stack.name)}${lines.slice(1).join('\n')}\n`;
}

/** The default image: Debian 13 with userspace WireGuard, nftables and iproute2 (bash and coreutils come with it). */
function containerfile(stack: ResolvedStack): string {
  return (
    hashHeader(stack.name) +
    [
      '# The WireGuard gateway image (wireguard mode \'container\'); Podman builds it on the host before the gateway first starts.',
      'FROM docker.io/library/debian:trixie-slim',
      'RUN apt-get update \\',
      ' && apt-get install -y --no-install-recommends wireguard-go wireguard-tools iproute2 nftables \\',
      ' && rm -rf /var/lib/apt/lists/*',
    ].join('\n') +
    '\n'
  );
}

/**
 * The files of a container-mode host's gateway: `wireguard/<iface>.conf` (setconf form),
 * `wireguard/gateway.sh`, and with the default image `wireguard/image/Containerfile`.
 */
export function renderGatewayFiles(stack: ResolvedStack, host: ResolvedHost, self: ResolvedTunnelPeer, peers: readonly ResolvedTunnelPeer[]): [string, RenderedFile][] {
  const wg = stack.wireguard!;
  const effect = { units: [host.install.wireguardUnit], stage: STAGE.tunnel };
  // Config, not secrets: readable by the container's (mapped) root, like every other mounted config.
  const readable = { ...effect, mode: 0o644 };
  return [
    hostFile(host, 'wireguard', `${wg.interfaceName}.conf`, setconfFile(stack, self, peers), readable),
    hostFile(host, 'wireguard', GATEWAY_SCRIPT, scriptFile(stack, host, self, peers), readable),
    ...(self.gateway!.buildImage ? [hostFile(host, 'wireguard', `${GATEWAY_IMAGE_DIR}/Containerfile`, containerfile(stack), readable)] : []),
  ];
}

/**
 * The network's routes through the gateway, `<destination>,<gateway>` (podman network create
 * --route): every other host's slice, and the tunnel subnet (replies to the other hosts' own
 * connections, such as their units' start-up waits).
 */
export function gatewayRoutes(stack: ResolvedStack, host: string, network: string): string[] {
  const wg = stack.wireguard;
  const self = wg?.peers.find((p) => p.host === host);
  if (!wg || !self?.gateway || self.gateway.network !== network) return [];
  const others = wg.peers.filter((p) => p !== self).flatMap((p) => p.routes);
  return [wg.subnet, ...others].map((r) => `${r},${self.gateway!.ip}`);
}

/** Where a host path starting at `%h` goes in a shell: `$HOME`. */
const inShell = (path: string) => path.replace(/^%h\//, '$HOME/');

/**
 * Rootless hosts: where br_netfilter is loaded, bridged frames in the user's rootless network
 * namespace (a new namespace starts with `bridge-nf-call-iptables=1`) pass netavark's masquerade,
 * which rewrites a container's packets to the gateway to the bridge's address, so the flow filter
 * drops them. The gateway's start turns it off there (it is the first container of the stack, so
 * the namespace exists; only the user's own bridges live in it); a no-op without br_netfilter.
 * Rootful hosts' bridges are in the host's namespace, a host-wide setting left to the admin (README).
 */
const rootlessBridgeNetfilterOff = [
  PODMAN,
  'unshare',
  '--rootless-netns',
  '/bin/sh',
  '-c',
  'f=/proc/sys/net/bridge/bridge-nf-call-iptables; [ ! -e "$f" ] || echo 0 > "$f"',
];

/** The gateway's `.container` (ideal form: downgrade() fits it to the host's Podman). */
export function gatewayUnit(stack: ResolvedStack, host: ResolvedHost): ContainerUnit {
  const wg = stack.wireguard!;
  const self = wg.peers.find((p) => p.host === host.name)!;
  const gw = self.gateway!;
  const network = stack.networks.find((n) => n.id === gw.network)!;
  const dir = host.install.wireguardDir;
  const secrets = gatewaySecrets(stack, host);
  const userns = !host.rootless;
  const build = gw.buildImage
    ? [['/bin/sh', '-c', `${PODMAN} image exists ${gw.image} || exec ${PODMAN} build --pull=missing -t ${gw.image} "${inShell(`${dir}/${GATEWAY_IMAGE_DIR}`)}"`]]
    : [];
  return {
    kind: 'container',
    unit: {
      description: `${stack.name}: WireGuard gateway (${wg.interfaceName}, userspace) on host ${host.name}`,
      documentation: ['man:wg(8)'],
      wants: [host.install.secretsUnit],
      after: [host.install.secretsUnit],
      before: [host.install.target],
      partOf: [host.install.target],
    },
    container: {
      image: gw.image,
      containerName: gatewayContainerName(stack.name),
      network: [unitFileName(network.name, 'network')],
      ip: gw.ip,
      publishPort: [`${self.listenPort}:${self.listenPort}/udp`],
      // The files are 0600 (the wireguard folder's mode): in a user namespace of its own the
      // container's root owns them only through `U` (Podman chowns them to it at each start).
      volume: [`${dir}/${wg.interfaceName}.conf`, `${dir}/${GATEWAY_SCRIPT}`].map((f) => `${f}:${GATEWAY_CONFIG_DIR}/${f.slice(dir.length + 1)}:ro,Z${userns ? ',U' : ''}`),
      secret: secrets.map((s) => `${s.name},type=mount,target=${s.name === gatewayKeySecret(stack.name) ? 'wireguard-private-key' : `wireguard-psk-${s.name.slice(gatewayPskSecret(stack.name, '').length)}`},mode=0400`),
      noNewPrivileges: true,
      dropCapability: ['all'],
      addCapability: ['NET_ADMIN'],
      addDevice: ['/dev/net/tun'],
      sysctl: ['net.ipv4.ip_forward=1'],
      readOnly: true,
      // The secrets' mount points on a read-only root, as for the services: without it runc cannot
      // create /run/secrets/<key> (read-only file system). /run itself (wireguard-go's control
      // socket) is Podman's read-only-tmpfs default.
      tmpfs: ['/run/secrets:mode=0755'],
      // On rootful hosts UserNS=auto, as for every container of the mesh: the gateway's root (with
      // its NET_ADMIN) is an unprivileged host id. wireguard-go then opens /dev/net/tun as that id,
      // which needs the node open to everyone (0666, the distributions' default; on a host where it
      // is 0600 it fails with "Failed to create TUN device: permission denied"). Rootless hosts'
      // containers are always in the user's namespace and need the same.
      ...(userns ? { userNS: 'auto' } : {}),
      exec: ['/bin/bash', `${GATEWAY_CONFIG_DIR}/${GATEWAY_SCRIPT}`],
    },
    service: {
      ...(build.length > 0 ? { execStartPre: build } : {}),
      ...(userns ? {} : { execStartPost: [rootlessBridgeNetfilterOff] }),
      restart: 'always',
      // The first start may build the image.
      timeoutStartSec: '900',
    },
    install: { wantedBy: [host.install.target] },
  };
}

/** A unit's wait for other hosts, run inside the gateway (the host itself has no route into the tunnel in container mode). */
export function inGateway(stack: ResolvedStack, command: readonly string[]): string[] {
  return [PODMAN, 'exec', gatewayContainerName(stack.name), ...command];
}
