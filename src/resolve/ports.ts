// Phase: each workload's ports (its own, plus the mTLS listener of a Service): unique inside the
// workload, and every published host port unique on its host.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { Service } from '../../constructs/model/service.ts';
import type { PortProps, Workload } from '../../constructs/model/workload.ts';
import type { Inventory } from './inventory.ts';
import type { ResolvedPort } from './model.ts';
import type { Placement } from './placement.ts';

/** Resolves the ports of every workload. */
export function resolvePorts(inv: Inventory, placement: Placement, issues: IssueCollector): Map<Workload, ResolvedPort[]> {
  const portsOf = new Map<Workload, ResolvedPort[]>();
  // Per host, port and protocol: who binds it, and on which address ('*' for all of them).
  const published = new Map<string, { readonly address: string; readonly by: Workload }[]>();
  for (const w of inv.workloads) {
    const ports = workloadPorts(w, issues);
    const host = placement.hostOf.get(w)?.node.id;
    for (const p of ports) {
      if (!p.publish || host === undefined) continue;
      const { hostPort, hostIp } = p.publish;
      const address = hostIp === undefined || hostIp === '0.0.0.0' ? '*' : hostIp;
      const k = `${host}:${hostPort}/${p.protocol}`;
      const binds = published.get(k) ?? [];
      // Linux refuses a bind on one address while another socket holds the port on all of them
      // (0.0.0.0), and the other way round: only two distinct specific addresses can share it.
      const other = binds.find((b) => b.address === address || b.address === '*' || address === '*');
      if (!other) {
        published.set(k, [...binds, { address, by: w }]);
      } else if (other.address === address) {
        issues.add(w.node.path, `host port ${hostPort}/${p.protocol} on host ${host} is already published by ${other.by.node.path}. Publish another host port, e.g. publish: ${hostPort + 1}.`);
      } else {
        const where = (a: string) => (a === '*' ? 'all addresses (0.0.0.0)' : a);
        issues.add(
          w.node.path,
          `host port ${hostPort}/${p.protocol} on host ${host} is published on ${where(address)} here and on ${where(other.address)} by ${other.by.node.path}; Linux refuses the second bind. ` +
            `Publish another host port, e.g. publish: ${hostPort + 1}, or give both a specific hostIp.`,
        );
      }
    }
    portsOf.set(w, ports);
  }
  return portsOf;
}

/** One workload's ports in declaration order, the mTLS listener last; a port declared twice is kept once. */
function workloadPorts(w: Workload, issues: IssueCollector): ResolvedPort[] {
  const entries = Object.entries(w.props.ports ?? {}).map(([name, v]): [string, PortProps] => [name, typeof v === 'number' ? { port: v } : v]);
  if (w instanceof Service) entries.push(['mtls', { port: w.mtlsPort }]);
  const ports: ResolvedPort[] = [];
  const seen = new Map<string, string>();
  for (const [name, p] of entries) {
    const protocol = p.protocol ?? 'tcp';
    const key = `${p.port}/${protocol}`;
    if (seen.has(key)) {
      issues.add(w.node.path, `port ${key} is declared twice (${seen.get(key)} and ${name}). Give each listener its own port.`);
      continue;
    }
    seen.set(key, name);
    const hostPort = p.publish === undefined || p.publish === false ? undefined : p.publish === true ? p.port : p.publish;
    const publish = hostPort === undefined ? undefined : p.hostIp ? { hostPort, hostIp: p.hostIp } : { hostPort };
    ports.push({ name, port: p.port, protocol, ...(publish ? { publish } : {}) });
  }
  return ports;
}
