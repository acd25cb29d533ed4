// The container firewall on a host: between the containers of one bridge, only the declared flows
// pass. An nftables table of the `bridge` family filters frames the bridge forwards from one
// container's port to another's (no br_netfilter needed); traffic to and from the host itself
// (DNS at the gateway, published ports, the tunnel) is routed, not bridged, and never meets it.
// The rules match addresses of the host's slice and stay stateless (replies: from the flow's port,
// never a bare SYN), so they need neither `meta ibrname` (kernel NFT_BRIDGE_META) nor bridge
// conntrack (NF_CONNTRACK_BRIDGE), which not every kernel has.
// @see https://wiki.nftables.org/wiki-nftables/index.php/Bridge_filtering
// @see https://www.netfilter.org/projects/nftables/manpage.html
import { serviceNamed } from './lookup.ts';
import { STAGE, hostFile, quadletServiceName } from '../layout.ts';
import type { ResolvedHost, ResolvedStack } from '../resolve/model.ts';
import type { RenderedFile } from './file.ts';
import { generatedHeader } from './header.ts';
import { renderUnit, type ServiceUnit } from './quadlet/index.ts';

/** nft as Debian, Ubuntu and Fedora install it. */
const NFT = '/usr/sbin/nft';

/** Where the host keeps its firewall file, inside the host root. */
export const BRIDGE_FIREWALL_FILE = 'firewall/bridge.nft';

/** The table's name: `podmesh_<stack>`, in nft's identifier alphabet. */
export function bridgeTableName(stack: string): string {
  return `podmesh_${stack.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** The `nft -f` file of one host: one table, a forward chain per stack, rules per bridge. */
export function bridgeRuleset(stack: ResolvedStack, host: ResolvedHost): string {
  const table = `bridge ${bridgeTableName(stack.name)}`;
  const rules: string[] = [];
  for (const n of stack.networks) {
    const segment = n.segments.find((g) => g.host === host.name);
    if (!segment) continue;
    const local = stack.flows.filter((f) => f.fromHost === host.name && f.toHost === host.name && network(stack, f.from) === n.id && network(stack, f.to) === n.id);
    const gateway = gatewayOn(stack, host.name, n.id);
    rules.push(
      `\t\t# network ${n.name}, bridge ${n.bridgeName}, containers in ${segment.subnet}: each declared flow and its replies, then nothing else between them`,
      // The WireGuard gateway container (wireguard mode 'container') forwards the other hosts'
      // traffic to this slice with its own source address only in ICMP errors: "fragmentation
      // needed" (wg0's MTU is below the bridge's) must reach the sender, or a large TLS flight
      // across hosts stalls for good (found by test/e2e-gateway.test.ts).
      ...(gateway ? [`\t\tip saddr ${gateway} ip daddr ${segment.subnet} icmp type destination-unreachable accept comment "WireGuard gateway: path MTU and unreachable errors"`] : []),
      ...local.flatMap((f) => [
        `\t\tip saddr ${f.source} ip daddr ${f.destination} ${f.protocol} dport ${f.port} accept comment "${f.from} -> ${f.to} (${f.via})"`,
        `\t\tip saddr ${f.destination} ip daddr ${f.source} ${f.protocol} sport ${f.port}${f.protocol === 'tcp' ? ' tcp flags != syn / syn,ack' : ''} accept comment "${f.to} -> ${f.from}, replies"`,
      ]),
      `\t\tip saddr ${segment.subnet} ip daddr ${segment.subnet} counter drop`,
    );
  }
  return [
    ...generatedHeader(stack.name).map((l) => `# ${l}`),
    `# Host ${host.name}: containers on the stack's bridges reach each other only along the flows the stack declares.`,
    `# Loaded by ${host.install.firewallUnit} before the stack's networks; \`${NFT} list table ${table}\` shows it with its counters.`,
    // Declaring then deleting the table makes the file replace it as a whole, in one transaction.
    `table ${table}`,
    `delete table ${table}`,
    `table ${table} {`,
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    ...rules,
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** The address of the host's WireGuard gateway container on network `id`, when it runs one there. */
function gatewayOn(stack: ResolvedStack, host: string, id: string): string | undefined {
  const gateway = stack.wireguard?.peers.find((p) => p.host === host)?.gateway;
  return gateway?.network === id ? gateway.ip : undefined;
}

function network(stack: ResolvedStack, service: string): string | undefined {
  return serviceNamed(stack, service)?.network;
}

/** The oneshot unit loading the table, before the stack's networks and target. */
function firewallService(stack: ResolvedStack, host: ResolvedHost): string {
  const unit: ServiceUnit = {
    kind: 'service',
    unit: {
      description: `Container firewall of podmesh stack ${stack.name} (nftables bridge table)`,
      documentation: ['man:nft(8)'],
      before: [...stack.networks.filter((n) => n.segments.some((g) => g.host === host.name)).map((n) => quadletServiceName(n.name, 'network')), host.install.target],
    },
    service: {
      type: 'oneshot',
      remainAfterExit: true,
      execStart: [[NFT, '-f', `${host.install.root}/${BRIDGE_FIREWALL_FILE}`]],
      execStop: [[NFT, 'delete', 'table', 'bridge', bridgeTableName(stack.name)]],
    },
    install: { wantedBy: [host.install.wantedBy, host.install.target] },
  };
  return renderUnit(unit, { path: stack.name, comments: generatedHeader(stack.name) });
}

/**
 * For every rootful host with services: `hosts/<host>/firewall/bridge.nft` and
 * `hosts/<host>/systemd/podmesh-<stack>-firewall.service`. Rootless hosts get none: their
 * bridge lives in the user's rootless network namespace, which exists only while containers run
 * (README, "Least connectivity").
 */
export function renderBridgeFirewall(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  for (const host of stack.hosts) {
    if (host.rootless || !stack.services.some((s) => s.host === host.name)) continue;
    const effect = { units: [host.install.firewallUnit], stage: STAGE.tunnel };
    files.set(...hostFile(host, 'root', BRIDGE_FIREWALL_FILE, bridgeRuleset(stack, host), effect));
    files.set(...hostFile(host, 'systemd', host.install.firewallUnit, firewallService(stack, host), effect));
  }
  return files;
}
