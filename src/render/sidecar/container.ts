// The sidecar's container as data, shared by the compose and Quadlet renderers: it joins the
// service container's network namespace (its address, aliases and published ports stay the
// service's), mounts the service's certificate folder and its proxy configuration, and runs
// confined like every container of the mesh.
import type { ResolvedMount, ResolvedService, ResolvedSidecar } from '../../resolve/model.ts';
import { MTLS_DIR } from '../../resolve/environment.ts';
import { haproxyCommand } from './haproxy.ts';

/** The sidecar container of a service. */
export interface SidecarContainer {
  /** Replaces the image's entrypoint: the whole command. */
  readonly entrypoint: readonly string[];
  /** The certificate folder and the proxy configuration, read-only. */
  readonly mounts: readonly ResolvedMount[];
  /**
   * Container root: the proxies' images switch to users (haproxy 99, envoy 101) that cannot read
   * keys mode 0600 owned by the container's root; root in the container is the host user (rootless)
   * or an unprivileged range (rootful, `userns: auto`), with every capability dropped.
   */
  readonly user: string;
}

/** The container of `s`'s sidecar. */
export function sidecarContainer(s: Pick<ResolvedService, 'name'> & { readonly sidecar: ResolvedSidecar }): SidecarContainer {
  const sc = s.sidecar;
  const mounts: ResolvedMount[] = [
    { type: 'pki', source: s.name, target: MTLS_DIR, readOnly: true },
    { type: 'bind', source: `./${sc.config.source}`, target: sc.config.target, readOnly: true },
  ];
  if (sc.proxy === 'haproxy') {
    return { entrypoint: haproxyCommand(sc.config.target), mounts, user: '0:0' };
  }
  return {
    // Directly, not through the image's entrypoint script, which would switch to uid 101.
    entrypoint: ['envoy', '-c', sc.config.target, '--log-level', 'info'],
    mounts,
    user: '0:0',
  };
}
