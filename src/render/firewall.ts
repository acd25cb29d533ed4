// The firewall between hosts: which forwarded connections the WireGuard hooks of each host allow
// (the stack's declared flows that cross hosts, plus the waits of dependents' units), written as
// iptables or nftables commands for wg-quick's PostUp/PostDown.
import { memoized, serviceNamed } from './lookup.ts';
import { compare } from '../io/sort.ts';
import type { ResolvedFlow, ResolvedHost, ResolvedStack } from '../resolve/model.ts';

/**
 * One connection through the tunnel that a host forwards: a declared flow, or a unit's wait run by
 * the host itself (`from` is then `host <name>`, `source` the host's tunnel address).
 */
export type TunnelFlow = Omit<ResolvedFlow, 'via'> & { readonly via: ResolvedFlow['via'] | 'wait' };

/**
 * The stack's flows whose ends are on different hosts, then the waits for dependencies on other
 * hosts: those run on the dependent's host, so they arrive from its tunnel address. Each
 * (source, destination, port, protocol) once, in model order. Computed once per stack: every
 * host's tunnel rules and the topology read it.
 */
export const tunnelFlows: (stack: ResolvedStack) => readonly TunnelFlow[] = memoized((stack) => {
  const wg = stack.wireguard;
  if (!wg) return [];
  const peerOf = new Map(wg.peers.map((p) => [p.host, p]));
  const flows: TunnelFlow[] = stack.flows.filter((f) => f.fromHost !== f.toHost);
  const seen = new Set(flows.map((f) => `${f.source}>${f.destination}:${f.port}/${f.protocol}`));
  for (const s of stack.services) {
    const peer = peerOf.get(s.host);
    if (!peer) continue;
    for (const d of s.dependsOn) {
      if (!d.remote) continue;
      const key = `${peer.address}>${d.remote.ip}:${d.remote.port}/tcp`;
      if (seen.has(key)) continue;
      seen.add(key);
      flows.push({ from: `host ${s.host}`, fromHost: s.host, source: peer.address, to: d.service, toHost: d.remote.host, destination: d.remote.ip, port: d.remote.port, protocol: 'tcp', via: 'wait' });
    }
  }
  return flows;
});

/** A bridge slice of a host, with the flows the host forwards into it and out of it through the tunnel. */
interface SliceFlows {
  readonly bridge: string;
  readonly subnet: string;
  readonly incoming: readonly TunnelFlow[];
  readonly outgoing: readonly TunnelFlow[];
}

/** `bridge`: the interface the slice is reached by, when not the network's bridge (a gateway container's eth0). */
function slicesOf(stack: ResolvedStack, host: ResolvedHost, link?: string): SliceFlows[] {
  const flows = tunnelFlows(stack);
  const networkOf = (service: string) => serviceNamed(stack, service)?.network;
  return stack.networks.flatMap((n) =>
    n.segments
      .filter((g) => g.host === host.name)
      .map((g) => ({
        bridge: link ?? n.bridgeName,
        subnet: g.subnet,
        incoming: flows.filter((f) => f.toHost === host.name && networkOf(f.to) === n.id),
        outgoing: flows.filter((f) => f.fromHost === host.name && f.via !== 'wait' && networkOf(f.from) === n.id),
      })),
  );
}

/** The shell commands of wg-quick's PostUp and PostDown hooks (`%i` is the interface). */
export interface TunnelHooks {
  readonly up: readonly string[];
  readonly down: readonly string[];
}

/**
 * The firewall hooks of a host's tunnel interface, for the host's packet filter. Per slice: replies
 * (conntrack established/related) and the declared flows pass between the tunnel and the bridge,
 * every other forwarded packet between the two is dropped; traffic from the slice into the tunnel
 * keeps its source address (netavark's masquerade is skipped). A repeated `up` leaves the same
 * rules; `down` removes them all.
 */
export function tunnelHooks(stack: ResolvedStack, host: ResolvedHost): TunnelHooks {
  const iface = stack.wireguard!.interfaceName;
  const slices = slicesOf(stack, host);
  return host.firewall === 'nftables' ? nftHooks(iface, slices) : iptablesHooks(iface, slices);
}

/** `-p tcp --dport 5432` */
const matchPort = (f: TunnelFlow) => `-p ${f.protocol} --dport ${f.port}`;

/**
 * iptables: a chain `PODMESH-<iface>` in two tables, each jumped to from the top of its FORWARD for
 * packets in or out of the tunnel, flushed and refilled on every `up`. In `filter` it accepts the
 * replies and the flows (a host whose FORWARD policy drops needs that). In `mangle`, which the
 * kernel runs before `filter`, it lets the same through and drops the rest: netavark's iptables
 * driver inserts its own FORWARD jump at position 1 and accepts everything from its subnet there,
 * which a drop in `filter` below it would never see. The nat RETURN at the top of POSTROUTING keeps
 * netavark's masquerade (appended below) from hiding containers.
 */
function iptablesHooks(iface: string, slices: readonly SliceFlows[]): TunnelHooks {
  const chain = `PODMESH-${iface}`;
  const allowed = (verdict: string) =>
    slices.flatMap((s) => [
      `-i %i -o ${s.bridge} -d ${s.subnet} -m conntrack --ctstate ESTABLISHED,RELATED -j ${verdict}`,
      `-i ${s.bridge} -o %i -s ${s.subnet} -m conntrack --ctstate ESTABLISHED,RELATED -j ${verdict}`,
      ...s.incoming.map((f) => `-i %i -o ${s.bridge} -s ${f.source}/32 -d ${f.destination}/32 ${matchPort(f)} -j ${verdict}`),
      ...s.outgoing.map((f) => `-i ${s.bridge} -o %i -s ${f.source}/32 -d ${f.destination}/32 ${matchPort(f)} -j ${verdict}`),
    ]);
  const drops = slices.flatMap((s) => [`-i %i -o ${s.bridge} -j DROP`, `-i ${s.bridge} -o %i -j DROP`]);
  const tables = [
    { t: '', rules: allowed('ACCEPT') },
    { t: '-t mangle ', rules: [...allowed('RETURN'), ...drops] },
  ];
  const jumps = ['-i %i', '-o %i'].map((m) => `FORWARD ${m} -j ${chain}`);
  const nat = slices.map((s) => `POSTROUTING -s ${s.subnet} -o %i -j RETURN`);
  return {
    up: [
      ...tables.flatMap(({ t, rules }) => [
        `iptables ${t}-N ${chain} 2>/dev/null || iptables ${t}-F ${chain}`,
        ...rules.map((r) => `iptables ${t}-A ${chain} ${r}`),
        ...jumps.map((j) => `iptables ${t}-C ${j} 2>/dev/null || iptables ${t}-I ${j}`),
      ]),
      ...nat.map((r) => `iptables -t nat -C ${r} 2>/dev/null || iptables -t nat -I ${r}`),
    ],
    down: [
      ...tables.flatMap(({ t }) => [
        ...jumps.map((j) => `iptables ${t}-D ${j} 2>/dev/null || true`),
        `iptables ${t}-F ${chain} 2>/dev/null || true`,
        `iptables ${t}-X ${chain} 2>/dev/null || true`,
      ]),
      ...nat.map((r) => `iptables -t nat -D ${r} 2>/dev/null || true`),
    ],
  };
}

/** nft's `ip saddr A ip daddr B tcp dport P` */
const nftMatch = (f: TunnelFlow) => `ip saddr ${f.source} ip daddr ${f.destination} ${f.protocol} dport ${f.port}`;

/**
 * nftables: an own table `inet podmesh_<iface>` (made empty on every `up`, deleted on `down`)
 * with a forward filter chain and a source-NAT chain that runs just before netavark's (priority
 * srcnat - 1) and binds traffic from the slice into the tunnel to its own address, so netavark's
 * masquerade, in its own table, finds the connection already NATed and leaves it. A drop in any
 * table is final, so the drops here hold whatever netavark's table accepts.
 */
function nftHooks(iface: string, slices: readonly SliceFlows[], snat = true): TunnelHooks {
  const table = `inet podmesh_${iface.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const nft = (command: string) => `nft '${command}'`;
  const rule = (chain: string, body: string) => nft(`add rule ${table} ${chain} ${body}`);
  const between = (from: string, to: string) => `iifname "${from}" oifname "${to}"`;
  return {
    up: [
      nft(`add table ${table}`),
      nft(`flush table ${table}`),
      nft(`add chain ${table} forward { type filter hook forward priority filter; policy accept; }`),
      ...(snat ? [nft(`add chain ${table} postrouting { type nat hook postrouting priority srcnat - 1; policy accept; }`)] : []),
      ...slices.flatMap((s) => [
        rule('forward', `${between('%i', s.bridge)} ip daddr ${s.subnet} ct state established,related accept`),
        rule('forward', `${between(s.bridge, '%i')} ip saddr ${s.subnet} ct state established,related accept`),
        ...s.incoming.map((f) => rule('forward', `${between('%i', s.bridge)} ${nftMatch(f)} accept`)),
        ...s.outgoing.map((f) => rule('forward', `${between(s.bridge, '%i')} ${nftMatch(f)} accept`)),
        rule('forward', `${between('%i', s.bridge)} counter drop`),
        rule('forward', `${between(s.bridge, '%i')} counter drop`),
        ...(snat ? [rule('postrouting', `ip saddr ${s.subnet} oifname "%i" snat ip to ip saddr`)] : []),
      ]),
    ],
    down: [`nft 'delete table ${table}' 2>/dev/null || true`],
  };
}

/**
 * The flow filter of a gateway container (`wireguard.mode: 'container'`), as commands of its
 * script: the nftables table of {@link nftHooks} between the tunnel interface and the container's
 * link to the slice, in the gateway's own network namespace. No source NAT: no masquerade runs in
 * that namespace (the host's, or the rootless network namespace's, only sees the tunnel's UDP).
 */
export function gatewayFirewall(stack: ResolvedStack, host: ResolvedHost, link = 'eth0'): string[] {
  const iface = stack.wireguard!.interfaceName;
  return nftHooks(iface, slicesOf(stack, host, link), false).up.map((c) => c.replaceAll('%i', iface));
}

/** Tunnel flows sorted for a table: by destination host, service, port, then source. */
export function sortedTunnelFlows(stack: ResolvedStack): TunnelFlow[] {
  return [...tunnelFlows(stack)].sort((a, b) => compare(a.toHost, b.toHost) || compare(a.to, b.to) || a.port - b.port || compare(a.from, b.from));
}
