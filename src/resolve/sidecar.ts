// Phase: a service's mTLS sidecar (`sidecar` prop): the callers it admits, the outbound routes and
// their local ports, where its configuration goes; and the checks that make the shared network
// namespace work (no port taken twice, no Hyperf listener of its own, calls only to declared services).
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { closest } from '../../constructs/core/names.ts';
import { SIDECAR_IMAGES, type Service } from '../../constructs/model/service.ts';
import { quadletServiceName, serviceConfigPath, sidecarUnitStem } from '../layout.ts';
import type { ResolvedPort, ResolvedSecurity, ResolvedSidecar, SidecarPeer } from './model.ts';

/** File name of each proxy's generated configuration under `config/<service>/`, and where the proxy's image reads it. */
export const SIDECAR_CONFIG = {
  haproxy: { file: 'haproxy.cfg', target: '/usr/local/etc/haproxy/haproxy.cfg' },
  envoy: { file: 'envoy.yaml', target: '/etc/envoy/envoy.yaml' },
} as const;

/** Writable places of each proxy on its read-only root (HAProxy's links, see render/sidecar/haproxy.ts), and its limits. */
const CONTAINER = {
  haproxy: { tmpfs: ['/run/podmesh-sidecar', '/tmp'], memory: '128m', pids: 256 },
  envoy: { tmpfs: ['/tmp'], memory: '256m', pids: 512 },
} as const;

/** The sidecar's confinement, in the service's user namespace mode. */
export function sidecarSecurity(proxy: ResolvedSidecar['proxy'], userNamespace: ResolvedSecurity['userNamespace']): ResolvedSecurity {
  const c = CONTAINER[proxy];
  return { noNewPrivileges: true, capAdd: [], readOnlyRootFilesystem: true, tmpfs: c.tmpfs.map((path) => ({ path })), memory: c.memory, pids: c.pids, userNamespace, runAs: 'root', waivers: {} };
}

/** The first local port handed to calls not listed in `sidecar.outbound`. */
export const FIRST_OUTBOUND_PORT = 15001;

/** What the sidecar phase needs to know about the service and its peers. */
export interface SidecarFacts {
  /** The stack's project: the unit stem's prefix. */
  readonly project: string;
  readonly containerName: string;
  /** The service's ports (its mTLS listener included): the application's and the routes' ports may not take them. */
  readonly ports: readonly ResolvedPort[];
  /** The service's identity. */
  readonly self: SidecarPeer;
  /** Allowed callers, in `callers` order. */
  readonly callers: readonly SidecarPeer[];
  /** Declared calls, in `calls` order: the callee's identity, DNS name and mTLS port. */
  readonly calls: readonly (SidecarPeer & { readonly port: number })[];
}

/** The resolved sidecar of `w`, or undefined when it has none (or its props are wrong, reported). */
export function resolveSidecar(w: Service, facts: SidecarFacts, issues: IssueCollector): Omit<ResolvedSidecar, 'security'> | undefined {
  const props = w.sidecar;
  if (!props) return undefined;
  const path = w.node.path;
  let ok = true;
  const problem = (message: string) => {
    issues.add(path, message);
    ok = false;
  };
  if (w.hyperf) problem(`sidecar needs hyperf: false: podmesh's Hyperf configuration makes the application listen for mTLS itself on port ${w.mtlsPort}, where the sidecar listens. Set hyperf: false (the application serves plain HTTP on 127.0.0.1:${props.appPort ?? 8080}), or remove sidecar.`);
  if (w.publicTls) problem('sidecar cannot be combined with publicTls: the sidecar terminates mTLS only, and the application has no certificates to serve public TLS with. Remove publicTls, or remove sidecar and let the application speak mTLS.');
  const appPort = props.appPort ?? 8080;
  // Everything below binds in one network namespace: each port once.
  const taken = new Map<number, string>(facts.ports.filter((p) => p.protocol === 'tcp').map((p) => [p.port, p.name === 'mtls' ? 'the mTLS port (the sidecar listens there)' : `port "${p.name}"`]));
  if (taken.has(appPort)) problem(`sidecar.appPort ${appPort} is also ${taken.get(appPort)}; the application and the sidecar share one network namespace. Pick another appPort.`);
  taken.set(appPort, 'sidecar.appPort');
  const declared = new Map(facts.calls.map((c) => [c.service, c]));
  const given = props.outbound ?? {};
  for (const [name, port] of Object.entries(given)) {
    if (!declared.has(name)) {
      const hint = closest(name, [...declared.keys()]);
      problem(`sidecar.outbound names "${name}", which this service does not call. ${hint ? `Did you mean "${hint}"? ` : ''}Add it to calls, or remove it from outbound (calls: ${[...declared.keys()].join(', ') || 'none'}).`);
      continue;
    }
    if (taken.has(port)) problem(`sidecar.outbound port ${port} of "${name}" is also ${taken.get(port)}. Give each call its own local port.`);
    taken.set(port, `sidecar.outbound port of "${name}"`);
  }
  let next = FIRST_OUTBOUND_PORT;
  const routes = facts.calls.map((c) => {
    let port = given[c.service];
    if (port === undefined) {
      while (taken.has(next)) next++;
      port = next;
      taken.set(port, `sidecar.outbound port of "${c.service}"`);
    }
    return { service: c.service, port, dnsName: c.commonName, remotePort: c.port, spiffeId: c.spiffeId };
  });
  if (!ok) return undefined;
  const stem = sidecarUnitStem(facts.project, w.name);
  const config = SIDECAR_CONFIG[props.proxy];
  return {
    proxy: props.proxy,
    image: props.image ?? SIDECAR_IMAGES[props.proxy],
    containerName: `${facts.containerName}-sidecar`,
    unit: { stem, service: quadletServiceName(stem, 'container') },
    appPort,
    mtlsPort: w.mtlsPort,
    self: facts.self,
    callers: facts.callers,
    routes,
    config: { source: serviceConfigPath(w.name, config.file), target: config.target },
  };
}
