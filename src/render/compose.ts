// compose.yaml per host, for docker compose v2 and podman-compose 1.1+.
import { remoteHostEntries } from '../resolve/dns.ts';
import { COMPOSE_FILE, hostFile, secretPath, servicePath } from '../layout.ts';
import type { ResolvedMount, ResolvedService, ResolvedSidecar, ResolvedStack } from '../resolve/model.ts';
import { sidecarContainer } from './sidecar/container.ts';
import { tmpfsSpec } from '../resolve/security.ts';
import type { RenderedFile } from './file.ts';
import { hashHeader } from './header.ts';
import { compare } from '../io/sort.ts';
import { WIREGUARD_DIR, hostKeyFile, presharedKeyFile } from '../state/wireguard/index.ts';
import { GATEWAY_CONFIG_DIR, GATEWAY_IMAGE_DIR, GATEWAY_SCRIPT, gatewayContainerName, gatewayRoutes } from './gateway.ts';
import { composeYaml, YamlAlias, YamlAnchor, YamlLazyMap } from './yaml.ts';
import { progress } from './progress.ts';

/**
 * The variable the compose files in out/ find the state folder by (the folder holding
 * `<stack>/pki`, `<stack>/secrets`), as the podmesh commands do: `${PODMESH_STATE_DIR:-default}`.
 */
export const STATE_VARIABLE = 'PODMESH_STATE_DIR';

/**
 * Stands for the state folder in {@link ComposeLocations.stateDir} until the file's own `$` are
 * escaped; then it becomes `${PODMESH_STATE_DIR:-<default>}`. A NUL: no compose value holds one.
 */
export const STATE_TOKEN = '\u0000podmesh-state\u0000';

/** Where a compose file finds what synth keeps outside `out/`. */
export interface ComposeLocations {
  /**
   * The stack's state folder (`.podmesh/<stack>`) relative to the compose file's folder,
   * `/`-separated (compose resolves relative paths against the file's folder), or starting with
   * {@link STATE_TOKEN} (the copy in out/): certificates are mounted from its `pki/services/`,
   * secret files from its `secrets/`.
   */
  readonly stateDir: string;
  /**
   * The default of `${PODMESH_STATE_DIR:-…}` that {@link STATE_TOKEN} becomes: the state folder
   * relative to the compose file's folder when it is `.podmesh` beside `out/`.
   */
  readonly stateDefault?: string;
  /**
   * The folder relative host paths of host `host` resolve in, relative to the compose file's
   * folder: the host root's `data/` where compose.yaml is installed; the state folder's
   * `data/<host>/` for the copy in out/, so that no data ever lands in out/ (synth makes out/
   * hold exactly what it generates).
   */
  readonly folders: (host: string) => string;
  /**
   * Whether the file is the host's installed copy: the WireGuard gateway's keys are then the
   * installed ones beside it (`wireguard/private.key`, `wireguard/psk/<peer>.key`), not the state
   * folder's (`wireguard/<host>.key`, `wireguard/psk/<a>--<b>.key`).
   * @default false
   */
  readonly installed?: boolean;
}

/**
 * Renders `hosts/<host>/compose.yaml` for every host of the stack.
 * @see https://github.com/compose-spec/compose-spec/blob/main/spec.md
 */
export function renderCompose(stack: ResolvedStack, where: ComposeLocations): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  for (const host of stack.hosts) {
    const services = stack.services.filter((s) => s.host === host.name);
    if (services.length === 0) continue;
    // Installed into the host root for `podman-compose`; systemd runs the Quadlet units, so no unit is affected.
    files.set(...hostFile(host, 'root', COMPOSE_FILE, composeFile(stack, host.name, services, where)));
  }
  return files;
}

function composeFile(stack: ResolvedStack, host: string, services: readonly ResolvedService[], where: ComposeLocations): string {
  const local = new Set(services.map((s) => s.name));
  const networks = stack.networks.filter((n) => services.some((s) => s.network === n.id));
  const volumes = stack.volumes.filter((v) => v.host === host);
  const secrets = [...new Set(services.flatMap((s) => s.secrets.map((f) => f.file)))].sort();

  // Other hosts' services as host entries, listed once and shared by every service through a
  // YAML anchor (`extra_hosts: *remote-hosts`).
  const remote = remoteHostEntries(stack, host).map((e) => `${e.name}:${e.ip}`);
  const extraHosts = remote.length > 0 ? { extra_hosts: new YamlAlias(REMOTE_HOSTS_ANCHOR) } : {};
  const gateway = gatewayService(stack, host, where);
  const doc = {
    name: stack.project,
    ...(remote.length > 0 ? { [REMOTE_HOSTS_KEY]: new YamlAnchor(REMOTE_HOSTS_ANCHOR, remote) } : {}),
    // Each service made as it is written (YamlLazyMap), not all of them before the file is.
    services: new YamlLazyMap([
      ...(gateway ? [[GATEWAY_SERVICE, () => gateway.service] as const] : []),
      ...services.flatMap((s) => [
        [
          s.name,
          () => {
            progress();
            return { ...service(stack, s, local, where), ...extraHosts };
          },
        ] as const,
        // The sidecar uses the service's /etc/hosts (and so its host entries) with its network namespace.
        ...(s.sidecar ? [[`${s.name}-sidecar`, () => sidecarService(s, s.sidecar!, where)] as const] : []),
      ]),
    ]),
    networks: Object.fromEntries(
      networks.map((n) => {
        const segment = n.segments.find((g) => g.host === host)!;
        // podman-compose ≥ 1.5 passes these to `podman network create --route`; Docker Compose has no equivalent.
        const routes = gatewayRoutes(stack, host, n.id);
        return [
          n.name,
          {
            name: n.name,
            driver: 'bridge',
            driver_opts: { 'com.docker.network.bridge.name': n.bridgeName },
            ipam: { config: [{ subnet: segment.subnet, gateway: segment.gateway }] },
            ...(n.internal ? { internal: true } : {}),
            ...(routes.length > 0 ? { 'x-podman.routes': routes } : {}),
          },
        ];
      }),
    ),
    ...(volumes.length > 0 ? { volumes: Object.fromEntries(volumes.map((v) => [v.name, { name: v.name }])) } : {}),
    // Generated secrets as file secrets in the state folder (docker compose refuses `external` ones
    // outside swarm); the values never enter this file or any environment.
    ...(secrets.length > 0 || gateway
      ? {
          secrets: {
            ...Object.fromEntries(secrets.map((f) => [f, { file: `${where.stateDir}/${secretPath(f)}` }])),
            ...Object.fromEntries((gateway?.secrets ?? []).map((g) => [g.name, { file: g.file }])),
          },
        }
      : {}),
  };
  return hashHeader(stack.name) + composeYaml(doc, (s) => escapeInterpolation(s, where.stateDefault));
}

/** The compose service of a host's WireGuard gateway (wireguard mode 'container'). */
export const GATEWAY_SERVICE = 'podmesh-wireguard-gateway';

/**
 * The gateway container of a container-mode host in compose's words, and the secrets it reads
 * (from the state folder: the host's key files, never copied into out/). Same confinement as its
 * Quadlet unit: NET_ADMIN and /dev/net/tun only.
 */
function gatewayService(stack: ResolvedStack, host: string, where: ComposeLocations): { service: Record<string, unknown>; secrets: { name: string; file: string }[] } | undefined {
  const wg = stack.wireguard;
  const self = wg?.peers.find((p) => p.host === host);
  if (!wg || !self?.gateway) return undefined;
  const gw = self.gateway;
  const network = stack.networks.find((n) => n.id === gw.network)!;
  const peers = wg.presharedKeys ? wg.peers.filter((p) => p !== self).map((p) => p.host).sort(compare) : [];
  const secrets = where.installed
    ? [
        { name: 'wireguard-private-key', file: `./${WIREGUARD_DIR}/private.key` },
        ...peers.map((p) => ({ name: `wireguard-psk-${p}`, file: `./${WIREGUARD_DIR}/psk/${p}.key` })),
      ]
    : [
        { name: 'wireguard-private-key', file: `${where.stateDir}/${hostKeyFile(host)}` },
        ...peers.map((p) => ({ name: `wireguard-psk-${p}`, file: `${where.stateDir}/${presharedKeyFile(host, p)}` })),
      ];
  return {
    secrets,
    service: {
      image: gw.image,
      ...(gw.buildImage ? { build: { context: `./wireguard/${GATEWAY_IMAGE_DIR}` } } : {}),
      container_name: gatewayContainerName(stack.name),
      command: ['/bin/bash', `${GATEWAY_CONFIG_DIR}/${GATEWAY_SCRIPT}`],
      security_opt: ['no-new-privileges'],
      cap_drop: ['ALL'],
      cap_add: ['NET_ADMIN'],
      devices: ['/dev/net/tun'],
      sysctls: { 'net.ipv4.ip_forward': 1 },
      read_only: true,
      tmpfs: ['/run/secrets:mode=0755'],
      restart: 'unless-stopped',
      secrets: secrets.map((s) => ({ source: s.name, target: s.name, mode: 0o400 })),
      ports: [`${self.listenPort}:${self.listenPort}/udp`],
      volumes: [`${wg.interfaceName}.conf`, GATEWAY_SCRIPT].map((f) => `./wireguard/${f}:${GATEWAY_CONFIG_DIR}/${f}:ro,Z`),
      networks: { [network.name]: { ipv4_address: gw.ip } },
    },
  };
}

/** Top-level extension field (ignored by compose) that holds the shared host entries. */
const REMOTE_HOSTS_KEY = 'x-podmesh-remote-hosts';
/** The anchor of that list. */
const REMOTE_HOSTS_ANCHOR = 'remote-hosts';

/** A dependency's condition in compose's words. */
const COMPOSE_CONDITION = { healthy: 'service_healthy', started: 'service_started', completed: 'service_completed_successfully' } as const;

function service(stack: ResolvedStack, s: ResolvedService, local: ReadonlySet<string>, where: ComposeLocations): Record<string, unknown> {
  const network = stack.networks.find((n) => n.id === s.network)!;
  const deps = s.dependsOn.filter((d) => local.has(d.service));
  const env = Object.fromEntries(s.environment);
  return {
    image: s.image,
    container_name: s.containerName,
    hostname: s.hostname,
    ...(s.entrypoint ? { entrypoint: [...s.entrypoint] } : {}),
    ...(s.command ? { command: [...s.command] } : {}),
    ...(s.user ? { user: s.user } : {}),
    ...securityFields(s),
    restart: s.restart,
    // File secrets: compose mounts each read-only at /run/secrets/<name>.
    ...(s.secrets.length > 0 ? { secrets: [...new Set(s.secrets.map((f) => f.file))].sort() } : {}),
    ...(s.environment.length > 0 ? { environment: env } : {}),
    ...(s.ports.some((p) => p.publish) ? { ports: s.ports.filter((p) => p.publish).map(publishSpec) } : {}),
    ...(s.mounts.length > 0 ? { volumes: s.mounts.map((m) => volumeSpec(m, s.host, where, s.security.userNamespace === 'auto')) } : {}),
    networks: { [network.name]: { ipv4_address: s.ip, aliases: [...s.aliases] } },
    ...(deps.length > 0
      ? { depends_on: Object.fromEntries(deps.map((d) => [d.service, { condition: COMPOSE_CONDITION[d.condition] }])) }
      : {}),
    ...(s.healthcheck
      ? {
          healthcheck: {
            test: 'exec' in s.healthcheck.command ? ['CMD', ...s.healthcheck.command.exec] : ['CMD-SHELL', s.healthcheck.command.shell],
            interval: s.healthcheck.interval,
            timeout: s.healthcheck.timeout,
            retries: s.healthcheck.retries,
            start_period: s.healthcheck.startPeriod,
          },
        }
      : {}),
  };
}

/**
 * A service's sidecar: in the service container's network namespace (`network_mode: service:`), so
 * it listens on the service's address and mTLS port and reaches the application on 127.0.0.1;
 * hostname, networks, aliases and published ports stay on the service, which compose requires.
 */
function sidecarService(s: ResolvedService, sidecar: ResolvedSidecar, where: ComposeLocations): Record<string, unknown> {
  const c = sidecarContainer({ name: s.name, sidecar });
  const userns = s.security.userNamespace === 'auto';
  return {
    image: sidecar.image,
    container_name: sidecar.containerName,
    entrypoint: [...c.entrypoint],
    user: c.user,
    network_mode: `service:${s.name}`,
    ...securityFields(sidecar),
    restart: s.restart,
    volumes: c.mounts.map((m) => volumeSpec(m, s.host, where, userns)),
    depends_on: { [s.name]: { condition: 'service_started' } },
  };
}

/**
 * The secure defaults in compose's words: `security_opt: [no-new-privileges]`, `cap_drop: [ALL]`
 * and the preset's `cap_add`, `read_only` with `tmpfs`, `mem_limit`/`cpus`/`pids_limit`, and
 * `userns_mode: auto` on rootful hosts.
 * @see https://github.com/compose-spec/compose-spec/blob/main/05-services.md
 */
function securityFields(s: Pick<ResolvedService, 'security'>): Record<string, unknown> {
  const sec = s.security;
  return {
    ...(sec.noNewPrivileges ? { security_opt: ['no-new-privileges'] } : {}),
    cap_drop: ['ALL'],
    ...(sec.capAdd.length > 0 ? { cap_add: [...sec.capAdd] } : {}),
    ...(sec.readOnlyRootFilesystem ? { read_only: true } : {}),
    ...(sec.tmpfs.length > 0 ? { tmpfs: sec.tmpfs.map(tmpfsSpec) } : {}),
    ...(sec.userNamespace === 'auto' ? { userns_mode: 'auto' } : {}),
    ...(sec.memory ? { mem_limit: sec.memory } : {}),
    ...(sec.cpus !== undefined ? { cpus: sec.cpus } : {}),
    ...(sec.pids !== undefined ? { pids_limit: sec.pids } : {}),
  };
}

/**
 * Short volume syntax; host folders get a private SELinux label (`Z`). In a container with its own
 * user namespace (`userns`), certificates and host folders are also chowned to the container's
 * root (`U`), or its root could not read a 0600 key owned by host root.
 */
function volumeSpec(m: ResolvedMount, host: string, where: ComposeLocations, userns: boolean): string {
  // A relative source must start with `.`: compose reads a bare `data/x` as a volume name.
  const source =
    m.type === 'pki'
      ? `${where.stateDir}/${servicePath(m.source)}`
      : m.type === 'folder' && !m.source.startsWith('/')
        ? `${where.folders(host)}${m.source === '.' ? '' : `/${m.source}`}`
        : m.source;
  const options = mountOptions(m, userns);
  return `${source}:${m.target}${options.length > 0 ? `:${options.join(',')}` : ''}`;
}

/**
 * `ro`, `Z` for host paths (`z` for a file other containers mount too), `U` for certificates and
 * host folders in a container's own user namespace.
 */
export function mountOptions(m: ResolvedMount, userns: boolean): string[] {
  return [...(m.readOnly ? ['ro'] : []), ...(m.type === 'volume' ? [] : [m.foreign || m.shared ? 'z' : 'Z']), ...(userns && !m.foreign && (m.type === 'pki' || m.type === 'folder') ? ['U'] : [])];
}

/** A published port in the `podman run -p` / compose short syntax: `[hostIp:]hostPort:port[/udp]`. */
export function publishSpec(p: ResolvedService['ports'][number]): string {
  const pub = p.publish!;
  return `${pub.hostIp ? `${pub.hostIp}:` : ''}${pub.hostPort}:${p.port}${p.protocol === 'udp' ? '/udp' : ''}`;
}

/** Compose interpolates `$VAR` in every value; a literal `$` is written `$$`. */
function escapeInterpolation(value: string, stateDefault: string | undefined): string {
  if (!value.includes('$') && !value.includes(STATE_TOKEN)) return value;
  const escaped = value.replaceAll('$', '$$$$');
  return stateDefault === undefined ? escaped : escaped.replaceAll(STATE_TOKEN, `\${${STATE_VARIABLE}:-${stateDefault}}`);
}
