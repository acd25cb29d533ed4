// The stack as Kubernetes manifests (`out/<stack>/kubernetes/`), from the same resolved model as
// compose and Quadlet: one file per kind, numbered in the order `kubectl apply -f` must create
// them, every object plain data typed by kubernetes-models (the tests validate each one against the Kubernetes schemas).
import type { ICertificate, IIssuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import type { IDeployment, IStatefulSet } from 'kubernetes-models/apps/v1';
import type { IJob } from 'kubernetes-models/batch/v1';
import type { INetworkPolicy, INetworkPolicyIngressRule, INetworkPolicyEgressRule } from 'kubernetes-models/networking.k8s.io/v1';
import type { IConfigMap, INamespace, IService } from 'kubernetes-models/v1';
import type { Issue } from '../../../constructs/core/errors.ts';
import { DNS_LABEL } from '../../../constructs/core/names.ts';
import { hostOutDir } from '../../layout.ts';
import type { ResolvedFlow, ResolvedKubernetes, ResolvedService, ResolvedStack } from '../../resolve/model.ts';
import type { RenderedFile, Rendering } from '../file.ts';
import { hashHeader } from '../header.ts';
import { composeYaml } from '../yaml.ts';
import { CA_ISSUER, configKey, configMapName, KUBERNETES_DIR, labelsOf, NAME_LABEL, nameOf, tlsSecretName } from './names.ts';
import { podSecurityOf, podSpec, POD_SECURITY_LEVELS, type PodSecurityLevel } from './pod.ts';
import { renderSecretsScript } from './secrets-script.ts';

export { KUBERNETES_DIR } from './names.ts';

/** The manifest files, in apply order. */
export const KUBERNETES_FILES = {
  namespace: `${KUBERNETES_DIR}/00-namespace.yaml`,
  certificates: `${KUBERNETES_DIR}/10-certificates.yaml`,
  configMaps: `${KUBERNETES_DIR}/20-configmaps.yaml`,
  networkPolicies: `${KUBERNETES_DIR}/30-network-policies.yaml`,
  services: `${KUBERNETES_DIR}/40-services.yaml`,
  workloads: `${KUBERNETES_DIR}/50-workloads.yaml`,
  secretsScript: `${KUBERNETES_DIR}/secrets.sh`,
} as const;

/** Storage each volume claim requests: the mesh's volumes have no size, so one modest default. */
export const CLAIM_SIZE = '1Gi';

/**
 * A Kubernetes object as plain data, typed by kubernetes-models' interfaces. Not its classes: their
 * validator (ajv and every schema) takes about 0.6 s to load, on every synth of such a stack; the
 * tests validate every object with them instead (test/kubernetes.test.ts).
 */
interface Model {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: { readonly name?: string };
}

/** `{ apiVersion, kind, ...body }`, in the order kubernetes-models' classes write them. */
function model<T extends { apiVersion: string; kind: string }>(apiVersion: T['apiVersion'], kind: T['kind'], body: Omit<T, 'apiVersion' | 'kind'>): Model {
  return { apiVersion, kind, ...body } as Model;
}

/** Renders `out/<stack>/kubernetes/` when the stack enables the export; nothing otherwise. */
export function renderKubernetes(stack: ResolvedStack, rendered: ReadonlyMap<string, RenderedFile>): Rendering {
  const k = stack.kubernetes;
  if (!k) return { files: new Map(), problems: [] };
  const problems: Issue[] = [];
  const docs = (file: string, objects: readonly Model[]): [string, RenderedFile] => [file, { content: manifestFile(stack, objects) }];
  const ns = k.namespace;
  const meta = (name: string, s?: ResolvedService) => ({ name, namespace: ns, labels: s ? labelsOf(stack, s) : { 'app.kubernetes.io/part-of': stack.project, 'app.kubernetes.io/managed-by': 'podmesh' } });

  for (const s of stack.services) problems.push(...namingProblems(s), ...volumeProblems(stack, s));
  const workloads: Model[] = [];
  const services: Model[] = [];
  for (const s of stack.services) {
    const { spec, claims } = podSpec(stack, k, s, problems);
    const name = nameOf(s);
    const template = { metadata: { labels: labelsOf(stack, s), ...podAnnotations(s) }, spec };
    const selector = { matchLabels: { [NAME_LABEL]: name } };
    if (s.oneshot) {
      workloads.push(model<IJob>('batch/v1', 'Job', { metadata: meta(name, s), spec: { backoffLimit: 6, template } }));
    } else if (claims.length > 0) {
      workloads.push(
        model<IStatefulSet>('apps/v1', 'StatefulSet', {
          metadata: meta(name, s),
          spec: {
            serviceName: name,
            replicas: 1,
            selector,
            template,
            volumeClaimTemplates: claims.map((c) => ({ metadata: { name: c.name }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: CLAIM_SIZE } } } })),
          },
        }),
      );
    } else {
      workloads.push(model<IDeployment>('apps/v1', 'Deployment', { metadata: meta(name, s), spec: { replicas: 1, selector, template } }));
    }
    if (s.ports.length > 0) {
      // Headless, with the pods' addresses published before they are ready: a health check that
      // calls the service's own name must reach its own pod while it is not ready yet, as on the
      // mesh (a ClusterIP would route only to ready pods).
      services.push(
        model<IService>('v1', 'Service', {
          metadata: meta(name, s),
          spec: {
            clusterIP: 'None',
            publishNotReadyAddresses: true,
            selector: { [NAME_LABEL]: name },
            ports: s.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.port, protocol: protocolOf(p.protocol) })),
          },
        }),
      );
    }
  }

  const files = new Map<string, RenderedFile>([
    docs(KUBERNETES_FILES.namespace, [namespace(stack, k)]),
    ...(k.certificates === 'cert-manager' ? [docs(KUBERNETES_FILES.certificates, certificates(stack, k))] : []),
    docs(KUBERNETES_FILES.configMaps, configMaps(stack, k, rendered, problems)),
    docs(KUBERNETES_FILES.networkPolicies, networkPolicies(stack, k)),
    docs(KUBERNETES_FILES.services, services),
    docs(KUBERNETES_FILES.workloads, workloads),
    [KUBERNETES_FILES.secretsScript, { content: renderSecretsScript(stack, k) }],
  ]);
  return problems.length > 0 ? { files: new Map(), problems } : { files, problems };
}

/** StatefulSet names leave room for the `controller-revision-hash` label of their pods (`<name>-<hash>`). */
const STATEFULSET_NAME_MAX = 52;

/**
 * What Kubernetes refuses at apply time although podmesh accepts it (and the schemas do not say):
 * a Service name must start with a letter, a port name has at most 15 characters.
 */
function namingProblems(s: ResolvedService): Issue[] {
  const problems: Issue[] = [];
  const name = nameOf(s);
  const fix = "or remove the stack's kubernetes prop";
  if (!/^[a-z]/.test(name)) problems.push({ path: s.path, message: `its Kubernetes Service would be named "${name}" (the first label of ${s.dnsName}), but a Service name must start with a letter. Rename the service, ${fix}.` });
  if (!s.oneshot && s.mounts.some((m) => m.type === 'volume') && name.length > STATEFULSET_NAME_MAX) {
    problems.push({ path: s.path, message: `its StatefulSet name "${name}" has ${name.length} characters; Kubernetes takes at most ${STATEFULSET_NAME_MAX} (its pods' revision label adds 11). Shorten the service's name, ${fix}.` });
  }
  for (const p of s.ports) {
    if (p.name.length > 15 || p.name.includes('--') || p.name.endsWith('-')) {
      problems.push({ path: s.path, message: `port name "${p.name}" is not a Kubernetes port name (at most 15 characters, no "--", not ending in "-"). Shorten it, e.g. "${p.name.replace(/-+/g, '-').slice(0, 15).replace(/-$/, '')}", ${fix}.` });
    }
  }
  return problems;
}

/**
 * Named volumes become the claims of a StatefulSet: one per volume (a pod's volume name is a DNS
 * label), owned by that workload alone, never by a one-shot Job.
 */
function volumeProblems(stack: ResolvedStack, s: ResolvedService): Issue[] {
  const problems: Issue[] = [];
  const fix = "or remove the stack's kubernetes prop";
  const seen = new Set<string>();
  for (const m of s.mounts) {
    if (m.type !== 'volume' || seen.has(m.source)) continue;
    seen.add(m.source);
    if (!DNS_LABEL.test(m.source)) problems.push({ path: s.path, message: `volume "${m.source}" would name a claim, which must be a lower-case DNS label of at most 63 characters. Give the volume such a name, ${fix}.` });
    if (s.oneshot) problems.push({ path: s.path, message: `runs once (a Job in Kubernetes) but mounts volume "${m.source}"; only StatefulSets get claims in the export. Mount no volume in the one-shot service, ${fix}.` });
    const others = stack.services.filter((o) => o !== s && o.mounts.some((x) => x.type === 'volume' && x.source === m.source)).map((o) => o.name);
    if (others.length > 0) {
      problems.push({ path: s.path, message: `shares volume "${m.source}" with ${others.join(', ')}; in Kubernetes each StatefulSet's claim belongs to its own pods, so the data would no longer be shared. Give each service its own volume, ${fix}.` });
    }
  }
  return problems;
}

/** Why a pod is not held to the restricted profile, as an annotation a reviewer sees. */
function podAnnotations(s: ResolvedService): { annotations?: Record<string, string> } {
  const { level, reasons } = podSecurityOf(s);
  return level === 'restricted' ? {} : { annotations: { 'podmesh.dev/pod-security': `${level}: ${reasons.join('; ')}` } };
}

/**
 * The namespace, labelled with the strictest Pod Security level every pod meets (enforced), and
 * warnings and audit entries against `restricted` where that is not it.
 */
function namespace(stack: ResolvedStack, k: ResolvedKubernetes): Model {
  const level = stack.services.map((s) => podSecurityOf(s).level).reduce<PodSecurityLevel>((a, b) => (POD_SECURITY_LEVELS.indexOf(b) > POD_SECURITY_LEVELS.indexOf(a) ? b : a), 'restricted');
  return model<INamespace>('v1', 'Namespace', {
    metadata: {
      name: k.namespace,
      labels: {
        'app.kubernetes.io/part-of': stack.project,
        'app.kubernetes.io/managed-by': 'podmesh',
        'pod-security.kubernetes.io/enforce': level,
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/audit': 'restricted',
      },
    },
  });
}

/** An x509 usage as cert-manager names it. */
type Usage = NonNullable<ICertificate['spec']['usages']>[number];

/** The CA Issuer holding podmesh's root, and per workload its mesh (and public) certificate. */
function certificates(stack: ResolvedStack, k: ResolvedKubernetes): Model[] {
  const out: Model[] = [model<IIssuer>('cert-manager.io/v1', 'Issuer', { metadata: { name: CA_ISSUER, namespace: k.namespace, labels: { 'app.kubernetes.io/part-of': stack.project, 'app.kubernetes.io/managed-by': 'podmesh' } }, spec: { ca: { secretName: CA_ISSUER } } })];
  const org = stack.pki.authority.organization;
  for (const s of stack.services) {
    const bindings = stack.pki.bindings.filter((b) => b.service === s.name);
    const mesh = bindings.find((b) => b.kind === 'server') ?? bindings.find((b) => b.kind === 'client');
    const pub = bindings.find((b) => b.kind === 'public');
    for (const [which, b] of [['mtls', mesh], ['public', pub]] as const) {
      if (!b) continue;
      const rsa = b.keyType === 'rsa-2048';
      const hours = b.lifetimeDays * 24;
      const usages: Usage[] = [
        'digital signature',
        ...(rsa ? (['key encipherment'] as const) : []),
        ...(which === 'public' || bindings.some((x) => x.kind === 'server') ? (['server auth'] as const) : []),
        ...(which === 'mtls' && bindings.some((x) => x.kind === 'client') ? (['client auth'] as const) : []),
      ];
      out.push(
        model<ICertificate>('cert-manager.io/v1', 'Certificate', {
          metadata: { name: tlsSecretName(s, which), namespace: k.namespace, labels: labelsOf(stack, s) },
          spec: {
            secretName: tlsSecretName(s, which),
            commonName: b.commonName,
            dnsNames: [...b.dnsNames],
            ...(which === 'public' && b.ipAddresses.length > 0 ? { ipAddresses: [...b.ipAddresses] } : {}),
            // The SPIFFE ID the call policy (MTLS_ALLOWED_SPIFFE_IDS) judges a caller by, as in the state folder's leaves.
            ...(which === 'mtls' && b.spiffeId ? { uris: [b.spiffeId] } : {}),
            ...(org ? { subject: { organizations: [org] } } : {}),
            duration: `${hours}h`,
            // podmesh reissues at 70% of the lifetime; cert-manager is told the same.
            renewBefore: `${Math.round(hours * 0.3)}h`,
            privateKey: rsa ? { algorithm: 'RSA', size: 2048, rotationPolicy: 'Always' } : { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
            usages,
            issuerRef: { name: CA_ISSUER, kind: 'Issuer', group: 'cert-manager.io' },
          },
        }),
      );
    }
  }
  return out;
}

/** Per workload with generated files (Hyperf, openssl.cnf, scripts) a ConfigMap of them, from the files the other renderers made (`rendered`). */
function configMaps(stack: ResolvedStack, k: ResolvedKubernetes, rendered: ReadonlyMap<string, RenderedFile>, problems: Issue[]): Model[] {
  const out: Model[] = [];
  for (const s of stack.services) {
    // The files the service bind-mounts, and its sidecar's configuration.
    const binds = [...s.mounts.filter((m) => m.type === 'bind'), ...(s.sidecar ? [{ source: `./${s.sidecar.config.source}` }] : [])];
    if (binds.length === 0) continue;
    const data: Record<string, string> = {};
    for (const m of binds) {
      const file = rendered.get(`${hostOutDir(s.host)}/${m.source.replace(/^\.\//, '')}`);
      if (!file) {
        problems.push({ path: s.path, message: `mounts ${m.source}, which no renderer generated: a podmesh bug, please report it.` });
        continue;
      }
      data[configKey(m.source)] = file.content;
    }
    out.push(model<IConfigMap>('v1', 'ConfigMap', { metadata: { name: configMapName(s), namespace: k.namespace, labels: labelsOf(stack, s) }, data: Object.fromEntries(Object.entries(data).sort(([a], [b]) => (a < b ? -1 : 1))) }));
  }
  return out;
}

/**
 * The call policy: every pod denied in and out, DNS allowed out, then per workload one ingress
 * rule per peer that calls it or depends on it and one egress rule per peer it calls or depends
 * on (exactly the stack's flows), plus its published ports open to anyone.
 */
export function networkPolicies(stack: ResolvedStack, k: ResolvedKubernetes): Model[] {
  const labels = { 'app.kubernetes.io/part-of': stack.project, 'app.kubernetes.io/managed-by': 'podmesh' };
  const byName = new Map(stack.services.map((s) => [s.name, s]));
  const out: Model[] = [
    model<INetworkPolicy>('networking.k8s.io/v1', 'NetworkPolicy', { metadata: { name: 'default-deny', namespace: k.namespace, labels }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } }),
    model<INetworkPolicy>('networking.k8s.io/v1', 'NetworkPolicy', {
      metadata: { name: 'allow-dns', namespace: k.namespace, labels },
      spec: {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
            ports: [
              { protocol: 'UDP', port: 53 },
              { protocol: 'TCP', port: 53 },
            ],
          },
        ],
      },
    }),
  ];
  const peer = (name: string) => ({ podSelector: { matchLabels: { [NAME_LABEL]: nameOf(byName.get(name)!) } } });
  const ports = (flows: readonly ResolvedFlow[]) => flows.map((f) => ({ protocol: protocolOf(f.protocol), port: f.port }));
  /** Flows grouped by the other end, in flow order. */
  const byPeer = (flows: readonly ResolvedFlow[], end: 'from' | 'to') => {
    const m = new Map<string, ResolvedFlow[]>();
    for (const f of flows) m.set(f[end], [...(m.get(f[end]) ?? []), f]);
    return [...m];
  };
  for (const s of stack.services) {
    const ingress: INetworkPolicyIngressRule[] = byPeer(stack.flows.filter((f) => f.to === s.name), 'from').map(([from, fs]) => ({ from: [peer(from)], ports: ports(fs) }));
    const published = s.ports.filter((p) => p.publish);
    if (published.length > 0) ingress.push({ ports: published.map((p) => ({ protocol: protocolOf(p.protocol), port: p.port })) });
    const egress: INetworkPolicyEgressRule[] = byPeer(stack.flows.filter((f) => f.from === s.name), 'to').map(([to, fs]) => ({ to: [peer(to)], ports: ports(fs) }));
    if (ingress.length === 0 && egress.length === 0) continue;
    out.push(
      model<INetworkPolicy>('networking.k8s.io/v1', 'NetworkPolicy', {
        metadata: { name: `allow-${nameOf(s)}`, namespace: k.namespace, labels: labelsOf(stack, s) },
        spec: {
          podSelector: { matchLabels: { [NAME_LABEL]: nameOf(s) } },
          policyTypes: [...(ingress.length > 0 ? (['Ingress'] as const) : []), ...(egress.length > 0 ? (['Egress'] as const) : [])],
          ...(ingress.length > 0 ? { ingress } : {}),
          ...(egress.length > 0 ? { egress } : {}),
        },
      }),
    );
  }
  return out;
}

/** A port protocol as Kubernetes spells it. */
function protocolOf(p: 'tcp' | 'udp'): 'TCP' | 'UDP' {
  return p === 'udp' ? 'UDP' : 'TCP';
}

/** One YAML file of documents, each laid out as compose files are (the yaml library's bytes). */
function manifestFile(stack: ResolvedStack, objects: readonly Model[]): string {
  const docs = objects.map((o) => composeYaml(JSON.parse(JSON.stringify(o)) as Record<string, unknown>));
  return hashHeader(stack.name) + docs.map((d) => `---\n${d}`).join('');
}
