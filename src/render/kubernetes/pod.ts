// One workload's pod template: its container (image, command, ports, environment, probes,
// securityContext, limits) and volumes (ConfigMap files, certificates, secrets, claims, tmpfs).
import type { IContainer, IPodSpec, IProbe, ISecurityContext, IVolume, IVolumeMount, IVolumeProjection } from 'kubernetes-models/v1';
import type { Issue } from '../../../constructs/core/errors.ts';
import type { ResolvedKubernetes, ResolvedService, ResolvedStack } from '../../resolve/model.ts';
import { configMapName, configKey, CRL_SECRET, nameOf, secretsName, tlsSecretName } from './names.ts';
import { sidecarContainer, type SidecarContainer } from '../sidecar/container.ts';
import { cpuQuantity, durationSeconds, memoryQuantity } from './units.ts';

/** Capabilities the baseline Pod Security profile allows to add. */
const BASELINE_CAPS = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);

/** The Pod Security Standards levels, strictest first. */
export const POD_SECURITY_LEVELS = ['restricted', 'baseline', 'privileged'] as const;
export type PodSecurityLevel = (typeof POD_SECURITY_LEVELS)[number];

/** The strictest Pod Security level a workload's pod meets, and why not a stricter one. */
export function podSecurityOf(s: ResolvedService): { level: PodSecurityLevel; reasons: string[] } {
  const sec = s.security;
  const beyondBaseline = sec.capAdd.filter((c) => !BASELINE_CAPS.has(c));
  if (beyondBaseline.length > 0) return { level: 'privileged', reasons: [`adds capabilities ${beyondBaseline.join(', ')} (${sec.waivers.capabilities?.reason ?? 'the stack asks for them'})`] };
  const reasons: string[] = [];
  if (sec.runAs !== 'user') reasons.push(sec.runAs === 'image' ? `starts as root: ${sec.dropsRoot ?? 'the image drops root itself'}` : 'runs as root (the image has no non-root user podmesh knows of; give the service a `user`)');
  const beyondRestricted = sec.capAdd.filter((c) => c !== 'NET_BIND_SERVICE');
  if (beyondRestricted.length > 0) reasons.push(`adds capabilities ${beyondRestricted.join(', ')} (${sec.waivers.capabilities?.reason ?? 'the stack asks for them'})`);
  if (!sec.noNewPrivileges) reasons.push(`allows privilege escalation (${sec.waivers['no-new-privileges']?.reason ?? 'waived'})`);
  if (s.sidecar) reasons.push(`its ${s.sidecar.proxy} sidecar runs as root: the proxy's image user cannot read the 0600 keys`);
  return { level: reasons.length > 0 ? 'baseline' : 'restricted', reasons };
}

/** The files of a service's certificate folder (`pki/services/<name>/`) and where each comes from. */
function pkiItems(owner: ResolvedService, k: ResolvedKubernetes): IVolumeProjection[] {
  const kinds = new Set(owner.certificates);
  const mtls = tlsSecretName(owner, 'mtls');
  if (k.certificates === 'secrets') {
    // The exported Secret carries every file of the folder under its own name.
    const files = ['ca.crt', 'crl.pem', ...(kinds.has('server') ? ['server.crt', 'server.key'] : []), ...(kinds.has('client') ? ['client.crt', 'client.key'] : []), ...(kinds.has('public') ? ['public.crt', 'public.key'] : [])];
    return [{ secret: { name: mtls, items: files.map((f) => ({ key: f, path: f })) } }];
  }
  // cert-manager: one certificate with the server and client usages serves as both; the CRL is
  // the state folder's, exported by secrets.sh like the root.
  const items = [{ key: 'ca.crt', path: 'ca.crt' }];
  for (const kind of ['server', 'client'] as const) {
    if (kinds.has(kind)) items.push({ key: 'tls.crt', path: `${kind}.crt` }, { key: 'tls.key', path: `${kind}.key` });
  }
  const sources: IVolumeProjection[] = [{ secret: { name: mtls, items } }, { secret: { name: CRL_SECRET, items: [{ key: 'crl.pem', path: 'crl.pem' }] } }];
  if (kinds.has('public')) sources.push({ secret: { name: tlsSecretName(owner, 'public'), items: [{ key: 'tls.crt', path: 'public.crt' }, { key: 'tls.key', path: 'public.key' }] } });
  return sources;
}

function probe(s: ResolvedService): IProbe | undefined {
  const h = s.healthcheck;
  if (!h) return undefined;
  const command = 'exec' in h.command ? [...h.command.exec] : ['/bin/sh', '-c', h.command.shell];
  return {
    exec: { command },
    initialDelaySeconds: durationSeconds(h.startPeriod, 0),
    periodSeconds: durationSeconds(h.interval),
    timeoutSeconds: durationSeconds(h.timeout),
    failureThreshold: h.retries,
  };
}

function containerPort(p: ResolvedService['ports'][number]): NonNullable<IContainer['ports']>[number] {
  return { name: p.name, containerPort: p.port, protocol: p.protocol === 'udp' ? 'UDP' : 'TCP' };
}

/**
 * The sidecar as a second container of the pod, which shares the pod's network namespace as the
 * compose sidecar shares the service's: the proxy's configuration from the service's ConfigMap,
 * the service's certificate folder, its own tmpfs folders (appended to `volumes`), confined like
 * the compose and Quadlet sidecar.
 */
function sidecarSpec(s: ResolvedService, c: SidecarContainer, volumes: IVolume[]): IContainer {
  const sc = s.sidecar!;
  const mounts: IVolumeMount[] = c.mounts.map((m) =>
    m.type === 'pki' ? { name: `pki-${nameOf(s)}`, mountPath: m.target, readOnly: true } : { name: 'config', mountPath: m.target, subPath: configKey(m.source), readOnly: true },
  );
  sc.security.tmpfs.forEach((t, i) => {
    const name = `sidecar-tmpfs-${i}`;
    volumes.push({ name, emptyDir: { medium: 'Memory', ...(t.size ? { sizeLimit: memoryQuantity(t.size) } : {}) } });
    mounts.push({ name, mountPath: t.path });
  });
  mounts.sort((a, b) => (a.mountPath < b.mountPath ? -1 : a.mountPath > b.mountPath ? 1 : 0));
  const sec = sc.security;
  const limits: Record<string, string> = {};
  if (sec.memory) limits.memory = memoryQuantity(sec.memory);
  if (sec.cpus !== undefined) limits.cpu = cpuQuantity(sec.cpus);
  const mtls = s.ports.filter((p) => p.protocol === 'tcp' && p.port === sc.mtlsPort);
  return {
    name: sc.proxy,
    image: sc.image,
    command: [...c.entrypoint],
    ...(mtls.length > 0 ? { ports: mtls.map(containerPort) } : {}),
    ...(Object.keys(limits).length > 0 ? { resources: { limits } } : {}),
    securityContext: {
      allowPrivilegeEscalation: !sec.noNewPrivileges,
      capabilities: { drop: ['ALL'], ...(sec.capAdd.length > 0 ? { add: [...sec.capAdd] } : {}) },
      readOnlyRootFilesystem: sec.readOnlyRootFilesystem,
      runAsUser: 0,
    },
    volumeMounts: mounts,
  };
}

/** A numeric `uid` or `uid:gid` user prop, as runAsUser/runAsGroup. */
function numericUser(user: string | undefined): { runAsUser?: number; runAsGroup?: number } {
  const m = user === undefined ? null : /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) return {};
  return { runAsUser: Number(m[1]), ...(m[2] !== undefined ? { runAsGroup: Number(m[2]) } : {}) };
}

/**
 * The pod spec of a workload, and the claims its StatefulSet must template (one per named volume
 * it mounts); a mount the export cannot carry is a problem.
 */
export function podSpec(stack: ResolvedStack, k: ResolvedKubernetes, s: ResolvedService, problems: Issue[]): { spec: IPodSpec; claims: { name: string; mount: string }[] } {
  const byName = new Map(stack.services.map((v) => [v.name, v]));
  const volumes: IVolume[] = [];
  const mounts: IVolumeMount[] = [];
  const claims: { name: string; mount: string }[] = [];
  // Per certificate folder, the files the container mounts from it (undefined: the whole folder):
  // a pod gets no key it does not mount (MinIO's setup mounts only MinIO's ca.crt).
  const pkiFiles = new Map<string, Set<string> | undefined>();
  for (const m of s.mounts) {
    if (m.type !== 'pki') continue;
    const [owner, file] = m.source.split('/') as [string, string | undefined];
    const known = pkiFiles.get(owner);
    if (file === undefined || (pkiFiles.has(owner) && known === undefined)) pkiFiles.set(owner, undefined);
    else pkiFiles.set(owner, new Set([...(known ?? []), file]));
  }
  const sidecar = s.sidecar ? sidecarContainer({ name: s.name, sidecar: s.sidecar }) : undefined;
  for (const m of sidecar?.mounts ?? []) if (m.type === 'pki') pkiFiles.set(m.source, undefined);
  for (const [owner, files] of pkiFiles) {
    const sources = pkiItems(byName.get(owner)!, k)
      .map((p) => ({ secret: { ...p.secret!, items: p.secret!.items!.filter((i) => files === undefined || files.has(i.path)) } }))
      .filter((p) => p.secret.items.length > 0);
    // One Secret (certificates: 'secrets') is a plain secret volume, which every consumer reads
    // (Podman 5.4's kube play has no projected volumes); cert-manager's certificate and the CRL
    // are two Secrets in one folder, which only a projected volume gives.
    const name = `pki-${nameOf(byName.get(owner)!)}`;
    const [only] = sources;
    volumes.push(sources.length === 1 ? { name, secret: { secretName: only!.secret.name!, items: only!.secret.items, defaultMode: 0o444 } } : { name, projected: { sources, defaultMode: 0o444 } });
  }
  const binds = s.mounts.filter((m) => m.type === 'bind');
  if (binds.length > 0 || sidecar) volumes.push({ name: 'config', configMap: { name: configMapName(s), defaultMode: 0o555 } });
  for (const m of s.mounts) {
    switch (m.type) {
      case 'volume':
        if (!claims.some((c) => c.name === m.source)) claims.push({ name: m.source, mount: m.target });
        mounts.push({ name: m.source, mountPath: m.target, ...(m.readOnly ? { readOnly: true } : {}) });
        break;
      case 'bind':
        mounts.push({ name: 'config', mountPath: m.target, subPath: configKey(m.source), readOnly: true });
        break;
      case 'pki': {
        const [owner, file] = m.source.split('/') as [string, string | undefined];
        mounts.push({ name: `pki-${nameOf(byName.get(owner)!)}`, mountPath: m.target, ...(file !== undefined ? { subPath: file } : {}), readOnly: true });
        break;
      }
      case 'folder':
        problems.push({
          path: s.path,
          message: `mounts the host folder ${m.source} at ${m.target}, which the Kubernetes export cannot carry (a hostPath breaks the Pod Security profiles and ties the pod to a node). Use a Volume for it, or remove the stack's kubernetes prop.`,
        });
        break;
    }
  }
  if (s.secrets.length > 0) {
    volumes.push({ name: 'secrets', secret: { secretName: secretsName(s), defaultMode: 0o444, items: s.secrets.map((f) => ({ key: f.file, path: f.file })) } });
    mounts.push({ name: 'secrets', mountPath: '/run/secrets', readOnly: true });
  }
  // tmpfs mounts become memory-backed emptyDirs, except where a volume already sits (the secrets).
  const taken = new Set(mounts.map((m) => m.mountPath));
  s.security.tmpfs.forEach((t, i) => {
    if (taken.has(t.path)) return;
    const name = `tmpfs-${i}`;
    volumes.push({ name, emptyDir: { medium: 'Memory', ...(t.size ? { sizeLimit: memoryQuantity(t.size) } : {}) } });
    mounts.push({ name, mountPath: t.path });
  });
  mounts.sort((a, b) => (a.mountPath < b.mountPath ? -1 : a.mountPath > b.mountPath ? 1 : 0));

  const sec = s.security;
  const nonRoot = sec.runAs === 'user';
  const securityContext: ISecurityContext = {
    allowPrivilegeEscalation: !sec.noNewPrivileges,
    capabilities: { drop: ['ALL'], ...(sec.capAdd.length > 0 ? { add: [...sec.capAdd] } : {}) },
    readOnlyRootFilesystem: sec.readOnlyRootFilesystem,
    ...(nonRoot ? { runAsNonRoot: true, ...numericUser(s.user) } : {}),
  };
  const limits: Record<string, string> = {};
  if (sec.memory) limits.memory = memoryQuantity(sec.memory);
  if (sec.cpus !== undefined) limits.cpu = cpuQuantity(sec.cpus);
  const health = probe(s);
  // With a sidecar the proxy listens on the mTLS port; the application keeps the others.
  const appPorts = s.ports.filter((p) => !(s.sidecar && p.protocol === 'tcp' && p.port === s.sidecar.mtlsPort));
  const container: IContainer = {
    name: nameOf(s),
    image: s.image,
    ...(s.entrypoint ? { command: [...s.entrypoint] } : {}),
    ...(s.command ? { args: [...s.command] } : {}),
    ...(appPorts.length > 0 ? { ports: appPorts.map(containerPort) } : {}),
    ...(s.environment.length > 0 ? { env: s.environment.map(([name, value]) => ({ name, value })) } : {}),
    ...(Object.keys(limits).length > 0 ? { resources: { limits } } : {}),
    ...(health ? { readinessProbe: health, livenessProbe: health } : {}),
    securityContext,
    ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
  };
  const spec: IPodSpec = {
    hostname: s.hostname,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: { seccompProfile: { type: 'RuntimeDefault' }, ...(nonRoot ? { runAsNonRoot: true } : {}) },
    containers: [container, ...(sidecar ? [sidecarSpec(s, sidecar, volumes)] : [])],
    ...(s.oneshot ? { restartPolicy: 'OnFailure' } : {}),
    ...(volumes.length > 0 ? { volumes } : {}),
  };
  return { spec, claims };
}
