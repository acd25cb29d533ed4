// The Kubernetes export (out/<stack>/kubernetes/): every object validated against the Kubernetes
// schemas by kubernetes-models, the call policy as NetworkPolicies, the cluster names in the
// issued certificates, the secrets script run with the real kubectl, and determinism.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Certificate, Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { App, Host, Network, PodmeshError, Postgres, Stack, synth, Volume } from '../src/index.ts';
import { loadStacks } from '../src/cli/load.ts';
import { cpuQuantity, durationSeconds, memoryQuantity } from '../src/render/kubernetes/units.ts';
import { KUBECTL, recordSecretsScript } from './helpers/kubectl.ts';
import { svc, tempDir } from './helpers/stacks.ts';
import { repoRoot } from './helpers/tools.ts';

/** The real kubectl (client-side only: it renders each Secret; no cluster is contacted). */

/** The kubernetes-models class of every kind the export writes. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  Namespace,
  Issuer,
  Certificate,
  ConfigMap,
  NetworkPolicy,
  Service,
  Deployment,
  StatefulSet,
  Job,
};

/** Every document of every YAML file of a kubernetes/ folder, by file. */
function manifests(dir: string): Map<string, any[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  return new Map(
    files.map((f) => {
      const docs = parseAllDocuments(readFileSync(join(dir, f), 'utf8'));
      for (const d of docs) expect(d.errors, f).toEqual([]);
      return [f, docs.map((d) => d.toJS())];
    }),
  );
}

/** Each object rebuilt with its kubernetes-models class and validated (throws on the first failure). */
function validateAll(byFile: Map<string, any[]>): string[] {
  const seen: string[] = [];
  for (const [file, docs] of byFile) {
    for (const doc of docs) {
      const Model = MODELS[doc.kind];
      expect(Model, `${file}: unexpected kind ${doc.kind}`).toBeDefined();
      new Model!(doc).validate();
      seen.push(`${file} ${doc.kind} ${doc.metadata.name}`);
    }
  }
  return seen;
}

const all = (byFile: Map<string, any[]>) => [...byFile.values()].flat();

/** `from->to:port/proto` of every allow rule, from both sides, and who may be reached from anywhere. */
function policyEdges(policies: readonly any[]): { ingress: string[]; egress: string[]; open: string[] } {
  const ingress: string[] = [];
  const egress: string[] = [];
  const open: string[] = [];
  for (const p of policies) {
    const self = p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'];
    if (!self) continue;
    for (const r of p.spec.ingress ?? []) {
      const ports = r.ports.map((x: any) => `${x.port}/${x.protocol}`);
      if (!r.from) open.push(...ports.map((x: string) => `${self}:${x}`));
      for (const f of r.from ?? []) ingress.push(...ports.map((x: string) => `${f.podSelector.matchLabels['app.kubernetes.io/name']}->${self}:${x}`));
    }
    for (const r of p.spec.egress ?? []) {
      for (const t of r.to) egress.push(...r.ports.map((x: any) => `${self}->${t.podSelector.matchLabels['app.kubernetes.io/name']}:${x.port}/${x.protocol}`));
    }
  }
  return { ingress: ingress.sort(), egress: egress.sort(), open: open.sort() };
}

/**
 * Runs a secrets.sh with the real kubectl rendering each Secret client-side and a recorder in place
 * of `kubectl apply` (no cluster here); the Secrets it applied, each validated.
 */
async function runSecretsScript(script: string, work: string, state: string): Promise<any[]> {
  const secrets = await recordSecretsScript(script, work, state);
  for (const s of secrets) new Secret(s).validate();
  return secrets;
}

/** The Ashchan call policy and dependencies (stacks/lib/ashchan.ts), written out by hand. */
const ASHCHAN_EDGES = [
  ['gateway', 'auth', 8443],
  ['gateway', 'boards', 8443],
  ['gateway', 'media', 8443],
  ['gateway', 'moderation', 8443],
  ['gateway', 'search', 8443],
  ['boards', 'media', 8443],
  ['boards', 'moderation', 8443],
  ['auth', 'postgres', 5432],
  ['auth', 'redis', 6379],
  ['boards', 'postgres', 5432],
  ['boards', 'redis', 6379],
  ['moderation', 'postgres', 5432],
  ['moderation', 'redis', 6379],
  ['search', 'postgres', 5432],
  ['search', 'redis', 6379],
  ['media', 'postgres', 5432],
  ['media', 'minio', 9000],
  ['media', 'minio', 9001],
  ['minio-setup', 'minio', 9000],
  ['minio-setup', 'minio', 9001],
] as const;

describe('kubernetes export of ashchan-dev', () => {
  const root = tempDir('podmesh-k8s-');
  const out = join(root.path, 'out');
  const state = join(root.path, '.podmesh');
  const dir = join(out, 'ashchan-dev/kubernetes');
  let byFile: Map<string, any[]>;

  beforeAll(async () => {
    const app = await loadStacks(join(repoRoot, 'stacks'));
    await synth(app, { outDir: out, stateDir: state, stacks: ['ashchan-dev'] });
    byFile = manifests(dir);
  });
  afterAll(() => root.cleanup());

  it('writes one file per kind, listed in manifest.json without a host install, and is what out/ holds', () => {
    // GIVEN / WHEN the synth above / THEN
    expect(readdirSync(dir).sort()).toEqual(['00-namespace.yaml', '10-certificates.yaml', '20-configmaps.yaml', '30-network-policies.yaml', '40-services.yaml', '50-workloads.yaml', 'secrets.sh']);
    const manifest = JSON.parse(readFileSync(join(out, 'ashchan-dev/manifest.json'), 'utf8'));
    const listed = manifest.files.filter((f: any) => f.path.startsWith('kubernetes/'));
    expect(listed.map((f: any) => f.path)).toEqual(readdirSync(dir).sort().map((f) => `kubernetes/${f}`));
    expect(listed.every((f: any) => f.install === undefined)).toBe(true);
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8'), f).toBe(readFileSync(join(repoRoot, 'out/ashchan-dev/kubernetes', f), 'utf8'));
  });

  it('validates every object against the Kubernetes schemas, with the expected kinds and names', () => {
    const seen = validateAll(byFile);
    const infra = ['postgres', 'redis', 'minio'];
    const apps = ['auth', 'moderation', 'search', 'media', 'boards', 'gateway'];
    expect(seen).toEqual([
      '00-namespace.yaml Namespace ashchan',
      '10-certificates.yaml Issuer podmesh-ca',
      ...['minio', 'auth', 'moderation', 'search', 'media', 'boards', 'gateway'].map((n) => `10-certificates.yaml Certificate ${n}-mtls`),
      '10-certificates.yaml Certificate gateway-public',
      ...['postgres', 'auth', 'moderation', 'search', 'minio-setup', 'media', 'boards', 'gateway'].map((n) => `20-configmaps.yaml ConfigMap ${n}-config`),
      '30-network-policies.yaml NetworkPolicy default-deny',
      '30-network-policies.yaml NetworkPolicy allow-dns',
      ...[...infra, ...apps.slice(0, 3), 'minio-setup', ...apps.slice(3)].map((n) => `30-network-policies.yaml NetworkPolicy allow-${n}`),
      ...[...infra, ...apps].map((n) => `40-services.yaml Service ${n}`),
      ...infra.map((n) => `50-workloads.yaml StatefulSet ${n}`),
      ...apps.slice(0, 3).map((n) => `50-workloads.yaml Deployment ${n}`),
      '50-workloads.yaml Job minio-setup',
      ...apps.slice(3).map((n) => `50-workloads.yaml Deployment ${n}`),
    ]);
    expect(all(byFile).every((o) => o.kind === 'Namespace' || o.metadata.namespace === 'ashchan')).toBe(true);
  });

  it('names each Service after the first label of the mesh name, with the ports of the model, headless', () => {
    const services = byFile.get('40-services.yaml')!;
    const auth = services.find((s) => s.metadata.name === 'auth');
    expect(auth.spec).toEqual({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: { 'app.kubernetes.io/name': 'auth' },
      ports: [
        { name: 'http', port: 9502, targetPort: 9502, protocol: 'TCP' },
        { name: 'mtls', port: 8443, targetPort: 8443, protocol: 'TCP' },
      ],
    });
    const minio = services.find((s) => s.metadata.name === 'minio');
    expect(minio.spec.ports.map((p: any) => p.port)).toEqual([9000, 9001]);
  });

  it('gives each Certificate the mesh names and the cluster Service names, from the CA issuer', () => {
    const auth = byFile.get('10-certificates.yaml')!.find((c) => c.metadata.name === 'auth-mtls');
    expect(auth.spec.dnsNames).toEqual(['auth.ashchan.local', 'auth.ashchan.svc', 'auth.ashchan.svc.cluster.local']);
    expect(auth.spec.usages).toEqual(['digital signature', 'server auth', 'client auth']);
    expect(auth.spec.issuerRef).toEqual({ name: 'podmesh-ca', kind: 'Issuer', group: 'cert-manager.io' });
    expect(auth.spec.privateKey).toMatchObject({ algorithm: 'ECDSA', size: 256 });
  });

  it('issues the state folder leaves with the cluster Service names besides the mesh names', () => {
    for (const name of ['auth', 'gateway', 'minio']) {
      for (const file of ['server.crt', ...(name === 'minio' ? [] : ['client.crt'])]) {
        const cert = new X509Certificate(readFileSync(join(state, 'ashchan-dev/pki/services', name, file)));
        const dns = cert.subjectAltName!.split(', ').filter((n) => n.startsWith('DNS:'));
        expect(dns, `${name}/${file}`).toEqual([`DNS:${name}.ashchan.local`, `DNS:${name}.ashchan.svc`, `DNS:${name}.ashchan.svc.cluster.local`]);
      }
    }
  });

  it('turns the call policy into NetworkPolicies: default deny, DNS out, one allow per declared edge, nothing else', () => {
    const policies = byFile.get('30-network-policies.yaml')!;
    const deny = policies.find((p) => p.metadata.name === 'default-deny');
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const dns = policies.find((p) => p.metadata.name === 'allow-dns');
    expect(dns.spec.policyTypes).toEqual(['Egress']);
    expect(dns.spec.egress).toHaveLength(1);
    expect(dns.spec.egress[0].ports).toEqual([
      { protocol: 'UDP', port: 53 },
      { protocol: 'TCP', port: 53 },
    ]);
    const expected = ASHCHAN_EDGES.map(([from, to, port]) => `${from}->${to}:${port}/TCP`).sort();
    const edges = policyEdges(policies);
    expect(edges.ingress).toEqual(expected);
    expect(edges.egress).toEqual(expected);
    // The gateway's published port is the one door from outside.
    expect(edges.open).toEqual(['gateway:9501/TCP']);
    // One rule per peer (edge), not per port.
    const media = policies.find((p) => p.metadata.name === 'allow-minio');
    expect(media.spec.ingress.map((r: any) => r.from[0].podSelector.matchLabels['app.kubernetes.io/name'])).toEqual(['minio-setup', 'media']);
  });

  it('carries probes, confinement, limits, config files and secrets into the pods', () => {
    const workloads = byFile.get('50-workloads.yaml')!;
    const pod = (name: string) => workloads.find((w) => w.metadata.name === name).spec.template;
    const auth = pod('auth');
    const c = auth.spec.containers[0];
    expect(auth.spec.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true });
    expect(c.resources).toEqual({ limits: { memory: '1Gi' } });
    expect(c.readinessProbe.exec.command).toContain('https://auth.ashchan.local:8443/health');
    expect(c.readinessProbe).toMatchObject({ periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 5, initialDelaySeconds: 10 });
    expect(c.env).toContainEqual({ name: 'DB_PASSWORD_FILE', value: '/run/secrets/auth.postgres-password' });
    expect(c.volumeMounts).toContainEqual({ name: 'config', mountPath: '/opt/www/config/autoload/server.php', subPath: 'autoload.server.php', readOnly: true });
    expect(c.volumeMounts).toContainEqual({ name: 'pki-auth', mountPath: '/etc/mtls', readOnly: true });
    const pki = auth.spec.volumes.find((v: any) => v.name === 'pki-auth');
    expect(pki.projected.sources.map((x: any) => x.secret.name)).toEqual(['auth-mtls', 'podmesh-crl']);
    expect(pki.projected.sources.flatMap((x: any) => x.secret.items.map((i: any) => i.path))).toEqual(['ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key', 'crl.pem']);
    // A pod gets no key it does not mount: MinIO's setup sees only MinIO's ca.crt.
    const setup = pod('minio-setup').spec.volumes.find((v: any) => v.name === 'pki-minio');
    // One Secret: a plain secret volume, not a projected one.
    expect(setup).toEqual({ name: 'pki-minio', secret: { secretName: 'minio-mtls', items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 0o444 } });
    const secrets = auth.spec.volumes.find((v: any) => v.name === 'secrets');
    expect(secrets.secret.secretName).toBe('auth-secrets');
    // Where the model starts as root, the pod says so and is not held to "restricted".
    expect(auth.metadata.annotations['podmesh.dev/pod-security']).toMatch(/^baseline: runs as root/);
    const postgres = pod('postgres');
    expect(postgres.spec.containers[0].securityContext.capabilities.add).toEqual(['CHOWN', 'DAC_READ_SEARCH', 'FOWNER', 'SETGID', 'SETUID']);
    expect(postgres.metadata.annotations['podmesh.dev/pod-security']).toMatch(/^privileged: adds capabilities DAC_READ_SEARCH/);
    const ns = byFile.get('00-namespace.yaml')![0];
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
    expect(ns.metadata.labels['pod-security.kubernetes.io/warn']).toBe('restricted');
    // The config files are the ones the compose deployment mounts.
    const cm = byFile.get('20-configmaps.yaml')!.find((m) => m.metadata.name === 'auth-config');
    expect(cm.data['autoload.server.php']).toBe(readFileSync(join(out, 'ashchan-dev/hosts/local/config/_shared/autoload/server.php'), 'utf8'));
    expect(cm.data['Policy.php']).toBe(readFileSync(join(out, 'ashchan-dev/hosts/local/config/auth/Policy.php'), 'utf8'));
    expect(cm.data['openssl.cnf']).toBe(readFileSync(join(out, 'ashchan-dev/hosts/local/config/_shared/openssl.cnf'), 'utf8'));
    // The StatefulSet claims the volume it mounts.
    const sts = workloads.find((w) => w.metadata.name === 'postgres');
    expect(sts.spec.volumeClaimTemplates.map((t: any) => t.metadata.name)).toEqual(['ashchan-postgres-data']);
    expect(sts.spec.template.spec.containers[0].volumeMounts).toContainEqual({ name: 'ashchan-postgres-data', mountPath: '/var/lib/postgresql/data' });
  });

  it.skipIf(!KUBECTL)('secrets.sh creates the CA and every generated secret from the state folder with the real kubectl', async () => {
    // GIVEN kubectl that renders client-side, and a stand-in only for `apply` (no cluster here)
    // WHEN
    const secrets = await runSecretsScript(join(dir, 'secrets.sh'), root.path, state);
    // THEN
    expect(secrets.map((s) => s.metadata.name)).toEqual(['podmesh-ca', 'podmesh-crl', 'postgres-secrets', 'redis-secrets', 'minio-secrets', 'auth-secrets', 'moderation-secrets', 'search-secrets', 'minio-setup-secrets', 'media-secrets', 'boards-secrets']);
    const ca = secrets[0];
    expect(ca.type).toBe('kubernetes.io/tls');
    expect(Buffer.from(ca.data['tls.crt'], 'base64').toString()).toBe(readFileSync(join(state, 'ashchan-dev/pki/ca.crt'), 'utf8'));
    expect(Buffer.from(secrets[1].data['crl.pem'], 'base64').toString()).toBe(readFileSync(join(state, 'ashchan-dev/pki/crl.pem'), 'utf8'));
    const auth = secrets.find((s) => s.metadata.name === 'auth-secrets');
    expect(Object.keys(auth.data).sort()).toEqual(['auth.postgres-password', 'auth.redis-password']);
    expect(Buffer.from(auth.data['auth.postgres-password'], 'base64').toString()).toBe(readFileSync(join(state, 'ashchan-dev/secrets/auth.postgres-password'), 'utf8'));
    // No value of the state is in out/.
    const text = readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    expect(text).not.toContain(readFileSync(join(state, 'ashchan-dev/secrets/auth.postgres-password'), 'utf8'));
    expect(text).not.toContain('PRIVATE KEY');
  });

  it('stops when the state folder is missing', () => {
    expect(() => execFileSync('sh', [join(dir, 'secrets.sh')], { cwd: root.path, env: { ...process.env, KUBECTL: 'false', PODMESH_STATE_DIR: join(root.path, 'nowhere') }, stdio: 'pipe' })).toThrow(/no state folder/);
  });

  it('is deterministic: a second synth into another folder gives the same bytes', async () => {
    const again = join(root.path, 'out2');
    await synth(await loadStacks(join(repoRoot, 'stacks')), { outDir: again, stateDir: state, stacks: ['ashchan-dev'] });
    for (const f of readdirSync(dir)) expect(readFileSync(join(again, 'ashchan-dev/kubernetes', f), 'utf8'), f).toBe(readFileSync(join(dir, f), 'utf8'));
  });
});

/** threeTier's shape (db, api depending on db, web calling api and publishing 8080), with the export on. */
function tinyStack(kubernetes: { namespace: string; certificates?: 'cert-manager' | 'secrets' } | undefined, app = new App()) {
  const stack = new Stack(app, 'tiny', { project: 'tiny', ...(kubernetes ? { kubernetes } : {}) });
  new Host(stack, 'local');
  new Network(stack, 'mesh', { subnet: '10.91.0.0/24', domain: 'tiny.local' });
  const db = new Postgres(stack, 'db');
  const api = svc(stack, 'api', { dependsOn: [db], ports: { http: 9000 } });
  svc(stack, 'web', { dependsOn: [api], calls: [api], ports: { public: { port: 8080, publish: true } } });
  return app;
}

describe('kubernetes export of a small stack with exported certificate Secrets', () => {
  const root = tempDir('podmesh-k8s-small-');
  const out = join(root.path, 'out');
  const state = join(root.path, 'state');
  afterAll(() => root.cleanup());

  it.skipIf(!KUBECTL)('validates, mounts the exported Secret files with the CRL, writes no Certificate', async () => {
    // GIVEN / WHEN
    await synth(tinyStack({ namespace: 'tiny', certificates: 'secrets' }), { outDir: out, stateDir: state });
    // THEN
    const dir = join(out, 'tiny/kubernetes');
    const byFile = manifests(dir);
    expect([...byFile.keys()]).toEqual(['00-namespace.yaml', '20-configmaps.yaml', '30-network-policies.yaml', '40-services.yaml', '50-workloads.yaml']);
    const seen = validateAll(byFile);
    expect(seen.filter((x) => x.includes('50-workloads'))).toEqual(['50-workloads.yaml StatefulSet db', '50-workloads.yaml Deployment api', '50-workloads.yaml Deployment web']);
    const web = byFile.get('50-workloads.yaml')!.find((w) => w.metadata.name === 'web').spec.template.spec;
    const pki = web.volumes.find((v: any) => v.name === 'pki-web');
    // Its one Secret as a plain secret volume (Podman's kube play reads no projected volumes).
    expect(pki).toEqual({ name: 'pki-web', secret: { secretName: 'web-mtls', items: ['ca.crt', 'crl.pem', 'server.crt', 'server.key', 'client.crt', 'client.key'].map((f) => ({ key: f, path: f })), defaultMode: 0o444 } });
    expect(policyEdges(byFile.get('30-network-policies.yaml')!)).toEqual({
      // web depends on api (every port) and calls it (mTLS).
      ingress: ['api->db:5432/TCP', 'web->api:8443/TCP', 'web->api:9000/TCP'],
      egress: ['api->db:5432/TCP', 'web->api:8443/TCP', 'web->api:9000/TCP'],
      open: ['web:8080/TCP'],
    });
    // The script exports the certificate folders as kubernetes.io/tls Secrets instead of the CA.
    const script = readFileSync(join(dir, 'secrets.sh'), 'utf8');
    expect(script).toContain('create secret generic web-mtls --type=kubernetes.io/tls');
    expect(script).not.toContain('podmesh-ca');
    expect(script).not.toContain('podmesh-crl');
    const secrets = await runSecretsScript(join(dir, 'secrets.sh'), root.path, state);
    expect(secrets.map((x) => x.metadata.name)).toEqual(['api-mtls', 'web-mtls', 'db-secrets', 'api-secrets']);
    const mtls = secrets[1];
    expect(mtls.type).toBe('kubernetes.io/tls');
    expect(Object.keys(mtls.data).sort()).toEqual(['ca.crt', 'client.crt', 'client.key', 'crl.pem', 'server.crt', 'server.key', 'tls.crt', 'tls.key']);
    const pem = (key: string) => Buffer.from(mtls.data[key], 'base64').toString();
    expect(pem('tls.crt')).toBe(readFileSync(join(state, 'tiny/pki/services/web/server.crt'), 'utf8'));
    expect(pem('client.key')).toBe(readFileSync(join(state, 'tiny/pki/services/web/client.key'), 'utf8'));
    const cert = new X509Certificate(readFileSync(join(state, 'tiny/pki/services/api/server.crt')));
    expect(cert.subjectAltName).toContain('DNS:api.tiny.svc.cluster.local');
  });

  it('GIVEN a service with a HAProxy sidecar WHEN exported THEN the proxy is a second container of its pod: the mTLS port, the certificate folder, its configuration from the ConfigMap, confined', async () => {
    // GIVEN api served by a sidecar (the application speaks plain HTTP on 127.0.0.1:8080)
    const app = new App();
    const stack = new Stack(app, 'tiny', { project: 'tiny', kubernetes: { namespace: 'tiny' } });
    new Host(stack, 'local');
    new Network(stack, 'mesh', { subnet: '10.91.0.0/24', domain: 'tiny.local' });
    const api = svc(stack, 'api', { hyperf: false, sidecar: { proxy: 'haproxy' } });
    svc(stack, 'web', { calls: [api] });
    // WHEN
    await synth(app, { outDir: join(root.path, 'sidecar'), stateDir: join(root.path, 'sidecar-state') });
    // THEN every object validates
    const byFile = manifests(join(root.path, 'sidecar/tiny/kubernetes'));
    validateAll(byFile);
    const pod = byFile.get('50-workloads.yaml')!.find((w) => w.metadata.name === 'api').spec.template;
    expect(pod.spec.containers.map((c: any) => c.name)).toEqual(['api', 'haproxy']);
    const [main, proxy] = pod.spec.containers;
    // The application keeps no mTLS port and mounts no certificate; the proxy has both.
    expect(main.ports ?? []).not.toContainEqual(expect.objectContaining({ containerPort: 8443 }));
    expect((main.volumeMounts ?? []).map((m: any) => m.name)).not.toContain('pki-api');
    expect(proxy.ports).toEqual([{ name: 'mtls', containerPort: 8443, protocol: 'TCP' }]);
    // The command and image of the compose sidecar (which the HAProxy test runs for real).
    const compose = parse(readFileSync(join(root.path, 'sidecar/tiny/hosts/local/compose.yaml'), 'utf8')) as { services: Record<string, { entrypoint: string[]; image: string }> };
    expect(proxy.command).toEqual(compose.services['api-sidecar']!.entrypoint);
    expect(proxy.image).toBe(compose.services['api-sidecar']!.image);
    expect(proxy.volumeMounts).toEqual([
      { name: 'pki-api', mountPath: '/etc/mtls', readOnly: true },
      { name: 'sidecar-tmpfs-0', mountPath: '/run/podmesh-sidecar' },
      { name: 'sidecar-tmpfs-1', mountPath: '/tmp' },
      { name: 'config', mountPath: '/usr/local/etc/haproxy/haproxy.cfg', subPath: 'haproxy.cfg', readOnly: true },
    ].sort((a, b) => (a.mountPath < b.mountPath ? -1 : 1)));
    expect(proxy.securityContext).toEqual({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true, runAsUser: 0 });
    expect(proxy.resources).toEqual({ limits: { memory: '128Mi' } });
    // The ConfigMap carries the very haproxy.cfg compose and Quadlet mount.
    const cm = byFile.get('20-configmaps.yaml')!.find((c) => c.metadata.name === 'api-config');
    expect(cm.data['haproxy.cfg']).toBe(readFileSync(join(root.path, 'sidecar/tiny/hosts/local/config/api/haproxy.cfg'), 'utf8'));
    // Root in the proxy keeps the pod at baseline, and the annotation says why.
    expect(pod.metadata.annotations['podmesh.dev/pod-security']).toContain('its haproxy sidecar runs as root');
  });

  it('leaves stacks without the prop alone: no kubernetes/ folder, no cluster names in their leaves', async () => {
    await synth(tinyStack(undefined), { outDir: join(root.path, 'plain'), stateDir: join(root.path, 'plain-state') });
    expect(existsSync(join(root.path, 'plain/tiny/kubernetes'))).toBe(false);
    const cert = new X509Certificate(readFileSync(join(root.path, 'plain-state/tiny/pki/services/api/server.crt')));
    expect(cert.subjectAltName).toBe('DNS:api.tiny.local, IP Address:10.91.0.3, URI:spiffe://tiny.local/tiny/api');
  });

  it.each([
    ['a namespace that is no DNS label', { namespace: 'Tiny_NS' }, 'kubernetes.namespace: must be a lower-case DNS label'],
    ['a kube- namespace', { namespace: 'kube-tiny' }, 'the kube- prefix is reserved'],
    ['an unknown certificate source', { namespace: 'tiny', certificates: 'vault' }, 'kubernetes.certificates'],
  ])('refuses %s', async (_, kubernetes, fragment) => {
    const e = await synth(tinyStack(kubernetes as never), { outDir: join(root.path, 'bad'), stateDir: join(root.path, 'bad-state') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PodmeshError);
    expect((e as PodmeshError).message).toContain(fragment);
    expect(existsSync(join(root.path, 'bad'))).toBe(false);
  });

  it('refuses names Kubernetes would refuse at apply time, with the construct path and a fix', async () => {
    const app = tinyStack({ namespace: 'tiny' });
    const stack = app.node.children[0]!;
    svc(stack, '9lives', { ports: { http: 80 } });
    svc(stack, 'admin', { ports: { 'administration-console': 9090 } });
    const e = await synth(app, { outDir: join(root.path, 'bad3'), stateDir: join(root.path, 'bad3-state') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PodmeshError);
    expect((e as PodmeshError).issues).toEqual(
      expect.arrayContaining([
        { path: 'tiny/9lives', message: expect.stringContaining('its Kubernetes Service would be named "9lives" (the first label of 9lives.tiny.local), but a Service name must start with a letter') },
        { path: 'tiny/admin', message: expect.stringContaining('port name "administration-console" is not a Kubernetes port name (at most 15 characters') },
      ]),
    );
    expect(existsSync(join(root.path, 'bad3'))).toBe(false);
  });

  it('refuses a volume two services share, which two StatefulSets cannot', async () => {
    const app = tinyStack({ namespace: 'tiny' });
    const stack = app.node.children[0]!;
    const shared = new Volume(stack, 'shared');
    svc(stack, 'one', { mounts: [{ volume: shared, target: '/data' }] });
    svc(stack, 'two', { mounts: [{ volume: shared, target: '/data' }] });
    const e = await synth(app, { outDir: join(root.path, 'bad4'), stateDir: join(root.path, 'bad4-state') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PodmeshError);
    expect((e as PodmeshError).issues).toContainEqual({ path: 'tiny/one', message: expect.stringMatching(/^shares volume "tiny-shared" with two; in Kubernetes each StatefulSet's claim/) });
    expect(existsSync(join(root.path, 'bad4'))).toBe(false);
  });

  it('refuses a host folder mount, which a pod cannot carry, and writes nothing', async () => {
    const app = tinyStack({ namespace: 'tiny' });
    svc(app.node.children[0]!, 'files', { mounts: [{ hostPath: '/srv/files', target: '/files' }] });
    const e = await synth(app, { outDir: join(root.path, 'bad2'), stateDir: join(root.path, 'bad2-state') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PodmeshError);
    expect((e as PodmeshError).issues).toContainEqual({ path: 'tiny/files', message: expect.stringContaining('mounts the host folder /srv/files at /files, which the Kubernetes export cannot carry') });
    expect(existsSync(join(root.path, 'bad2'))).toBe(false);
  });
});

describe('kubernetes units', () => {
  it.each([
    ['10s', 10],
    ['1m30s', 90],
    ['500ms', 1],
    ['2h', 7200],
  ])('duration %s is %d s', (d, s) => expect(durationSeconds(d)).toBe(s));
  it.each([
    ['512m', '512Mi'],
    ['1g', '1Gi'],
    ['64k', '64Ki'],
    ['1048576', '1048576'],
  ])('memory %s is %s', (m, q) => expect(memoryQuantity(m)).toBe(q));
  it.each([
    [0.5, '500m'],
    [2, '2'],
    [1.25, '1250m'],
  ])('cpus %d is %s', (c, q) => expect(cpuQuantity(c)).toBe(q));
  it('refuses what is no duration', () => expect(() => durationSeconds('10 s')).toThrow(/not a duration/));
});
