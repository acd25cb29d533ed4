// Phase: the stack's certificate authorities and every certificate its workloads need (CN = the
// DNS name, SAN = its names and address), as bindings the PKI reconcile issues.
import type { Stack } from '../../constructs/core/stack.ts';
import type { Service } from '../../constructs/model/service.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import type { AuthoritySpec, CertBinding } from '../state/pki/types.ts';
import type { Unplaced } from '../layout.ts';
import type { ResolvedService } from './model.ts';
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
export function certificateBindings(w: Workload, s: Unplaced<ResolvedService>, spiffe: { readonly trustDomain: string; readonly stack: string }, namespace?: string): CertBinding[] {
  const keyType = w.props.certificate?.keyType ?? 'ecdsa-p256';
  const lifetimeDays = w.props.certificate?.lifetimeDays ?? 365;
  return s.certificates.map((kind): CertBinding => {
    if (kind === 'public') {
      const pub = (w as Service).publicTls!;
      return { service: s.name, kind, commonName: pub.hostnames[0]!, dnsNames: [...pub.hostnames], ipAddresses: [...(pub.ipAddresses ?? [])], keyType, lifetimeDays };
    }
    const cluster = namespace === undefined ? [] : clusterServiceNames(s, namespace).filter((n) => !s.aliases.includes(n));
    const spiffeId = spiffeIdOf(spiffe.trustDomain, spiffe.stack, s.name);
    return { service: s.name, kind, commonName: s.dnsName, dnsNames: [...s.aliases, ...cluster], ipAddresses: [s.ip], spiffeId, keyType, lifetimeDays };
  });
}
