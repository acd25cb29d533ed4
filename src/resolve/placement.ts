// Phase: which host runs each workload and which network it joins.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import type { Host } from '../../constructs/model/host.ts';
import type { Network } from '../../constructs/model/network.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import type { Inventory } from './inventory.ts';

/** Where each workload runs; a workload missing from a map could not be placed (reported). */
export interface Placement {
  readonly hostOf: ReadonlyMap<Workload, Host>;
  readonly networkOf: ReadonlyMap<Workload, Network>;
  /** Hosts that run at least one workload, in host order: more than one means a WireGuard mesh. */
  readonly activeHosts: readonly Host[];
}

/** Places every workload: the host and network it names, else the stack's only one. */
export function placeWorkloads(inv: Inventory, issues: IssueCollector): Placement {
  const { hosts, networks, workloads } = inv;
  const stackPath = inv.stack.node.path;
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
  const activeHosts = hosts.filter((h) => workloads.some((w) => hostOf.get(w) === h));
  return { hostOf, networkOf, activeHosts };
}
