// Phase helper: a workload's confinement from the secure defaults, the preset's needs and the
// stack's relaxations (each with its reason, recorded as a waiver of the control it relaxes).
import type { IssueCollector } from '../../constructs/core/errors.ts';
import type { Host } from '../../constructs/model/host.ts';
import { DEFAULT_MEMORY, DEFAULT_PIDS, type TmpfsProps } from '../../constructs/model/security.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import { compare } from '../io/sort.ts';
import { SECRETS_DIR } from './environment.ts';
import type { PostureControlId, ResolvedSecurity, ResolvedTmpfs, ResolvedWaiver } from './model.ts';

const ROOT_USER = /^(0|root)(:.*)?$/;

/**
 * A read-only container that mounts secrets gets a tmpfs at /run/secrets (unless the preset or the
 * stack gives one). Podman mounts a Podman secret before the /run tmpfs of a read-only container,
 * so runc would create `/run/secrets/<file>` in the read-only image and fail ("mknod … read-only
 * file system", containers/podman#15541, measured on Podman 5.4); a tmpfs given for /run/secrets
 * is mounted first. compose gets the same one, so that both describe the same container.
 */
const SECRETS_TMPFS: TmpfsProps = { path: SECRETS_DIR, mode: '0755' };

/**
 * The confinement of `w` on `host`; contradictory props are problems at the workload's path.
 * `mountsSecrets`: the container mounts generated secrets under /run/secrets.
 */
export function resolveSecurity(w: Workload, host: Host | undefined, issues: IssueCollector, opts: { readonly mountsSecrets: boolean }): ResolvedSecurity {
  const sec = w.props.security ?? {};
  const needs = w.securityNeeds();
  const waivers: Partial<Record<PostureControlId, ResolvedWaiver>> = {};
  const stack = (reason: string): ResolvedWaiver => ({ reason, by: 'stack' });

  if (sec.allowPrivilegeEscalation) waivers['no-new-privileges'] = stack(sec.allowPrivilegeEscalation.reason);

  const capAdd = [...new Set([...(needs.capabilities?.add ?? []), ...(sec.capabilities?.add ?? [])])].sort(compare);
  // The stack's reason speaks for what it adds, the preset's for the image's own needs: both are kept.
  if (sec.capabilities) {
    const own = needs.capabilities ? `${needs.capabilities.add.join(', ')}: ${needs.capabilities.reason}; ` : '';
    waivers.capabilities = stack(`${own}${sec.capabilities.add.join(', ')}: ${sec.capabilities.reason}`);
  } else if (needs.capabilities) {
    waivers.capabilities = { reason: needs.capabilities.reason, by: 'preset' };
  }

  if (w.props.readOnlyRootFilesystem === false && !sec.writableRootFilesystem) {
    issues.add(w.node.path, 'readOnlyRootFilesystem: false relaxes a secure default without a reason. Remove it, or write security: { writableRootFilesystem: { reason: "…" } } saying why the image must write outside its volumes and tmpfs.');
  }
  if (w.props.readOnlyRootFilesystem === true && sec.writableRootFilesystem) {
    issues.add(w.node.path, 'readOnlyRootFilesystem: true contradicts security.writableRootFilesystem. Keep one of them.');
  }
  if (sec.writableRootFilesystem) waivers['read-only-rootfs'] = stack(sec.writableRootFilesystem.reason);

  const res = w.props.resources ?? {};
  if (sec.unlimitedMemory) {
    waivers['memory-limit'] = stack(sec.unlimitedMemory.reason);
    if (res.memory !== undefined) issues.add(w.node.path, 'resources.memory contradicts security.unlimitedMemory. Keep one of them.');
  }
  if (sec.unlimitedPids) {
    waivers['pids-limit'] = stack(sec.unlimitedPids.reason);
    if (res.pids !== undefined) issues.add(w.node.path, 'resources.pids contradicts security.unlimitedPids. Keep one of them.');
  }

  const rootless = host?.rootless === true;
  if (sec.hostUserNamespace) {
    if (rootless) {
      issues.add(w.node.path, `security.hostUserNamespace has no effect on rootless host ${host!.node.id}: rootless Podman always maps container root to the host user. Remove it.`);
    } else {
      waivers['user-namespace'] = stack(sec.hostUserNamespace.reason);
    }
  }
  const userNamespace = rootless ? 'rootless' : sec.hostUserNamespace ? 'host' : 'auto';

  const user = w.props.user;
  const runAs = user !== undefined && !ROOT_USER.test(user) ? 'user' : user === undefined && needs.dropsRoot ? 'image' : 'root';
  if (sec.runAsRoot) waivers['run-as-non-root'] = stack(sec.runAsRoot.reason);

  return {
    noNewPrivileges: !sec.allowPrivilegeEscalation,
    capAdd,
    readOnlyRootFilesystem: !sec.writableRootFilesystem,
    tmpfs: mergeTmpfs([...(opts.mountsSecrets && !sec.writableRootFilesystem ? [SECRETS_TMPFS] : []), ...needs.tmpfs], w.props.tmpfs ?? []),
    ...(sec.unlimitedMemory ? {} : { memory: res.memory ?? DEFAULT_MEMORY }),
    ...(res.cpus !== undefined ? { cpus: res.cpus } : {}),
    ...(sec.unlimitedPids ? {} : { pids: res.pids ?? DEFAULT_PIDS }),
    userNamespace,
    runAs,
    ...(runAs === 'image' ? { dropsRoot: needs.dropsRoot } : {}),
    waivers,
  };
}

/** The preset's tmpfs, then the stack's (the same path from the stack wins), sorted by path. */
function mergeTmpfs(preset: readonly TmpfsProps[], given: ReadonlyArray<string | TmpfsProps>): ResolvedTmpfs[] {
  const byPath = new Map<string, ResolvedTmpfs>();
  for (const t of [...preset, ...given.map((g) => (typeof g === 'string' ? { path: g } : g))]) {
    const path = t.path.length > 1 ? t.path.replace(/\/+$/, '') : t.path;
    byPath.set(path, { path, ...(t.size ? { size: t.size } : {}), ...(t.mode ? { mode: t.mode } : {}) });
  }
  return [...byPath.values()].sort((a, b) => compare(a.path, b.path));
}

/** `DEST[:size=…,mode=…]`, the form of `podman run --tmpfs`, compose's `tmpfs:` and Quadlet's `Tmpfs=`. */
export function tmpfsSpec(t: ResolvedTmpfs): string {
  const options = [...(t.size ? [`size=${t.size}`] : []), ...(t.mode ? [`mode=${t.mode}`] : [])];
  return options.length > 0 ? `${t.path}:${options.join(',')}` : t.path;
}
