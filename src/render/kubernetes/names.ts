// The names of a stack's Kubernetes objects and labels, in one place.
import type { ResolvedService, ResolvedStack } from '../../resolve/model.ts';

/** Where the export goes in `out/<stack>/`. */
export const KUBERNETES_DIR = 'kubernetes';

/** The Issuer that signs with podmesh's root CA (cert-manager), and the Secret holding the root. */
export const CA_ISSUER = 'podmesh-ca';

/** The Secret with the state folder's CRLs (`pki/crl.pem`), with cert-manager certificates. */
export const CRL_SECRET = 'podmesh-crl';

/** The label that selects a workload's pods, as Services and NetworkPolicies do. */
export const NAME_LABEL = 'app.kubernetes.io/name';

/**
 * A workload's object name: the first label of its mesh DNS name, so the Service answers to the
 * same label in the namespace as the container does on the mesh.
 */
export function nameOf(s: Pick<ResolvedService, 'dnsName'>): string {
  return s.dnsName.split('.')[0]!;
}

/** The labels of a workload's objects and pods. */
export function labelsOf(stack: Pick<ResolvedStack, 'project'>, s: Pick<ResolvedService, 'dnsName'>): Record<string, string> {
  return { [NAME_LABEL]: nameOf(s), 'app.kubernetes.io/part-of': stack.project, 'app.kubernetes.io/managed-by': 'podmesh' };
}

/** The ConfigMap with a workload's generated configuration files. */
export function configMapName(s: Pick<ResolvedService, 'dnsName'>): string {
  return `${nameOf(s)}-config`;
}

/**
 * The ConfigMap key of a generated file mounted from the host folder (`./config/<svc>/Policy.php`,
 * `./config/_shared/autoload/server.php`): its path below the service's (or the shared) config
 * folder, `/` as `.` (keys allow `[-._a-zA-Z0-9]`).
 */
export function configKey(source: string): string {
  return source.replace(/^\.\/config\/[^/]+\//, '').replaceAll('/', '.');
}

/** The Secret with a workload's generated secrets (the files of `/run/secrets`). */
export function secretsName(s: Pick<ResolvedService, 'dnsName'>): string {
  return `${nameOf(s)}-secrets`;
}

/** The `kubernetes.io/tls` Secret of a workload's mesh (`mtls`) or public certificate. */
export function tlsSecretName(s: Pick<ResolvedService, 'dnsName'>, which: 'mtls' | 'public'): string {
  return `${nameOf(s)}-${which}`;
}
