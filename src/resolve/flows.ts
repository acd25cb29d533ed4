// The connections between containers that the stack declares, which the generated firewalls allow:
// each call to the callee's mTLS port, each dependsOn entry to every port of the dependency.
import type { ResolvedFlow, ResolvedService } from './model.ts';

type FlowFacts = Pick<ResolvedService, 'name' | 'host' | 'ip' | 'ports' | 'mtls' | 'calls' | 'dependsOn'>;

/**
 * The flows of a stack, in service order (each service's calls, then its dependencies), each
 * (source, destination, port, protocol) once: a call that is also a dependency keeps `calls`.
 * A dependency implied by a call adds no port beyond the call's.
 */
export function resolveFlows(services: readonly FlowFacts[]): ResolvedFlow[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const flows: ResolvedFlow[] = [];
  const seen = new Set<string>();
  const add = (from: FlowFacts, to: FlowFacts, port: number, protocol: 'tcp' | 'udp', via: ResolvedFlow['via']) => {
    const key = `${from.ip}>${to.ip}:${port}/${protocol}`;
    if (seen.has(key)) return;
    seen.add(key);
    flows.push({ from: from.name, fromHost: from.host, source: from.ip, to: to.name, toHost: to.host, destination: to.ip, port, protocol, via });
  };
  for (const s of services) {
    for (const callee of s.calls) {
      const c = byName.get(callee);
      if (c?.mtls) add(s, c, c.mtls.port, 'tcp', 'calls');
    }
    for (const d of s.dependsOn) {
      if (d.implied) continue;
      const dep = byName.get(d.service);
      if (!dep) continue;
      for (const p of dep.ports) add(s, dep, p.port, p.protocol, 'dependsOn');
    }
  }
  return flows;
}
