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
  const published = new Map<string, Workload>();
  for (const w of inv.workloads) {
    const ports = workloadPorts(w, issues);
    const host = placement.hostOf.get(w)?.node.id;
    for (const p of ports) {
      if (!p.publish || host === undefined) continue;
      const { hostPort, hostIp } = p.publish;
      const k = `${host}:${hostIp ?? '*'}:${hostPort}/${p.protocol}`;
      const other = published.get(k) ?? published.get(`${host}:*:${hostPort}/${p.protocol}`);
      if (other) {
        issues.add(w.node.path, `host port ${hostPort}/${p.protocol} on host ${host} is already published by ${other.node.path}. Publish another host port, e.g. publish: ${hostPort + 1}.`);
      } else published.set(k, w);
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
