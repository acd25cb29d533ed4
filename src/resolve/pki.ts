// Phase: the stack's certificate authorities and every certificate its workloads need (CN = the
// DNS name, SAN = its names and address), as bindings the PKI reconcile issues.
import type { Stack } from '../../constructs/core/stack.ts';
import type { Service } from '../../constructs/model/service.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import type { AuthoritySpec, CertBinding } from '../state/pki/types.ts';
import type { Unplaced } from '../layout.ts';
import type { ResolvedOcsp, ResolvedService } from './model.ts';
import { spiffeIdOf } from '../state/pki/spiffe.ts';

/** The stack's CA settings with the seed's defaults; `domain` names the client CA unless given. */
export function authorityOf(stack: Stack, domain: string): AuthoritySpec {
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

/** Default port of the root's OCSP responder; the client CA's is the next. */
export const OCSP_PORT = 8880;

/**
 * The stack's OCSP responders: on `ocsp.host` (else `firstHost`), ports `ocsp.port` and the next,
 * AIA URLs `http://ocsp.<domain>:<port>/` unless given; undefined when the stack turned OCSP off.
 */
export function ocspOf(stack: Stack, domain: string, firstHost: string): ResolvedOcsp | undefined {
  const p = stack.ocsp;
  if (p === undefined || p.enabled === false) return undefined;
  const port = p.port ?? OCSP_PORT;
  const ports = { root: port, 'client-ca': port + 1 };
  return {
    host: p.host ?? firstHost,
    ports,
    urls: { root: p.url ?? `http://ocsp.${domain}:${ports.root}/`, 'client-ca': p.clientCaUrl ?? `http://ocsp.${domain}:${ports['client-ca']}/` },
  };
}

/** Why the stack's `ocsp.host` cannot run the responder (undefined when it can). */
export function ocspHostProblem(stack: Stack, hosts: readonly string[]): string | undefined {
  const h = stack.ocsp?.enabled === false ? undefined : stack.ocsp?.host;
  if (h === undefined || hosts.includes(h)) return undefined;
  return `ocsp.host "${h}" is not a host of the stack (hosts: ${hosts.join(', ')}). Name one of them, or leave ocsp.host unset for the first.`;
}

/**
 * The DNS names of a workload's Kubernetes Service in `namespace` (the export names the Service
 * after the first label of its mesh name): `<svc>.<ns>.svc`, `<svc>.<ns>.svc.cluster.local`.
 */
export function clusterServiceNames(s: Pick<ResolvedService, 'dnsName'>, namespace: string): string[] {
  const label = s.dnsName.split('.')[0]!;
  return [`${label}.${namespace}.svc`, `${label}.${namespace}.svc.cluster.local`];
}

/**
 * The stack's SPIFFE trust domain: `spiffe.trustDomain`, else `domain` (the first network's DNS
 * domain; one trust domain per stack, as there is one PKI per stack).
 */
export function trustDomainOf(stack: Stack, domain: string): string {
  return stack.spiffe.trustDomain ?? domain;
}

/**
 * The certificates a workload needs: CN = DNS name, SAN = DNS names and its address (and, when the
 * stack is exported to Kubernetes in `namespace`, its cluster Service names) and the SPIFFE ID
 * `spiffe://<trustDomain>/<stack>/<service>`; the public one from publicTls (browser-facing: no
 * SPIFFE ID).
 */
export function certificateBindings(
  w: Workload,
  s: Unplaced<ResolvedService>,
  spiffe: { readonly trustDomain: string; readonly stack: string },
  namespace?: string,
  ocsp?: Pick<ResolvedOcsp, 'urls'>,
): CertBinding[] {
  const keyType = w.props.certificate?.keyType ?? 'ecdsa-p256';
  const lifetimeDays = w.props.certificate?.lifetimeDays ?? 365;
  return s.certificates.map((kind): CertBinding => {
    if (kind === 'public') {
      const pub = (w as Service).publicTls!;
      return { service: s.name, kind, commonName: pub.hostnames[0]!, dnsNames: [...pub.hostnames], ipAddresses: [...(pub.ipAddresses ?? [])], ...aia(ocsp, kind), keyType, lifetimeDays };
    }
    const cluster = namespace === undefined ? [] : clusterServiceNames(s, namespace).filter((n) => !s.aliases.includes(n));
    const spiffeId = spiffeIdOf(spiffe.trustDomain, spiffe.stack, s.name);
    return { service: s.name, kind, commonName: s.dnsName, dnsNames: [...s.aliases, ...cluster], ipAddresses: [s.ip], spiffeId, ...aia(ocsp, kind), keyType, lifetimeDays };
  });
}

/** The AIA OCSP URL of a leaf of `kind`: the client CA's responder for client leaves, the root's for the rest. */
function aia(ocsp: Pick<ResolvedOcsp, 'urls'> | undefined, kind: CertBinding['kind']): { ocspUrl?: string } {
  return ocsp === undefined ? {} : { ocspUrl: kind === 'client' ? ocsp.urls['client-ca'] : ocsp.urls.root };
}
