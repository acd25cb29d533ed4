// Where everything goes: paths in out/ and the state folder, a host's install paths (rootful and
// rootless) and every unit name. The one module that spells them; resolution records them on the
// model (placeStack) and renderers, apply and the checks read them from there or from here.
import { compare } from './io/sort.ts';
import type { Install, RenderedFile } from './render/file.ts';
import type { HostInstall, ResolvedHost, ResolvedService, ResolvedStack, ServiceUnits } from './resolve/model.ts';
import { secretPath } from './state/secrets/paths.ts';
import { KIND_FILES, servicePath } from './state/pki/store.ts';
import { hostKeyFile, presharedKeyFile } from './state/wireguard/index.ts';

export { secretPath, servicePath, hostKeyFile, presharedKeyFile };

/** Folder of a stack's output in `out/`, and of its state in the state folder: the stack's name. */
export function stackDir(stack: string): string {
  return stack;
}

/** Folder of one host's files inside `out/<stack>/`: `hosts/<host>`. */
export function hostOutDir(host: string): string {
  return `hosts/${host}`;
}

/** A host's compose file, in its out/ folder and its host root. */
export const COMPOSE_FILE = 'compose.yaml';

/** Name of apply's checksum list in the host root (the daily check reads it without Node). */
export { APPLIED_SHA256 } from './ops/apply-types.ts';

/** Where a host's files live: beside units (Quadlet, systemd), the tunnel's folder, or the host root. */
export type Area = 'quadlet' | 'systemd' | 'wireguard' | 'root';

/** Where an area's files sit inside `out/<stack>/hosts/<host>/` (the host root mirrors the folder itself). */
const OUT_AREA: Readonly<Record<Area, string>> = { quadlet: 'quadlet/', systemd: 'systemd/', wireguard: 'wireguard/', root: '' };

/** Modes of installed files and of podmesh's own folders. */
export const MODE = { file: 0o644, secret: 0o600, privateDir: 0o700, dir: 0o755 } as const;

/**
 * Restart order of units after an apply: the tunnel, networks, volumes, then services (containers,
 * checks); within a stage, by name.
 */
export const STAGE = { tunnel: 0, network: 1, volume: 2, service: 3 } as const;

/** What a file means for the running units of its host. */
export interface Effect {
  /** Units to restart (or reload) when the file changes or goes. @default - none */
  readonly units?: readonly string[];
  /** The units pick the change up on reload. @default false */
  readonly reloadable?: boolean;
  /** @default STAGE.service */
  readonly stage?: number;
  /** Enabled on its own on first install (a timer outside the target). @default false */
  readonly enable?: boolean;
  /** @default MODE.file, or MODE.secret in the WireGuard folder */
  readonly mode?: number;
}

/**
 * How a file the given services mount takes effect: each of them restarts on its change, or all
 * reload when every one of them can (one service for its own file, several for a shared one).
 */
export function mountedBy(services: readonly Pick<ResolvedService, 'unit'>[]): Effect {
  return { units: services.map((s) => s.unit.service), reloadable: services.every((s) => s.unit.reloadable) };
}

/**
 * A file of one host: its path in `out/<stack>/` and, with its content, how it installs.
 * `rel` is the path inside the area (`auth.container`, `config/auth/Policy.php`).
 */
export function hostFile(host: ResolvedHost, area: Area, rel: string, content: string, effect: Effect = {}): [string, RenderedFile] {
  const dir = { quadlet: host.install.quadletDir, systemd: host.install.systemdDir, wireguard: host.install.wireguardDir, root: host.install.root }[area];
  const install: Install = {
    host: host.name,
    path: `${dir}/${rel}`,
    mode: effect.mode ?? (area === 'wireguard' ? MODE.secret : MODE.file),
    units: [...(effect.units ?? [])],
    unitFile: area === 'quadlet' || area === 'systemd',
    reloadable: effect.reloadable ?? false,
    stage: effect.stage ?? STAGE.service,
    enable: effect.enable ?? false,
  };
  return [`${hostOutDir(host.name)}/${OUT_AREA[area]}${rel}`, { content, install }];
}

/** A service's generated config file inside the host folder (and the host root): `config/<service>/<file>`. */
export function serviceConfigPath(service: string, file: string): string {
  return `config/${service}/${file}`;
}

/**
 * The folder of a host's `config/` with the generated files that are the same for several of its
 * services, one copy that each of them mounts (OpenSSL settings, Hyperf classes). Not a DNS label,
 * so never a workload's own folder.
 */
export const SHARED_CONFIG_DIR = '_shared';

/** A generated config file the services of a host share: `config/_shared/<file>`. */
export function sharedConfigPath(file: string): string {
  return `config/${SHARED_CONFIG_DIR}/${file}`;
}

/** The folder relative host paths (`hostPath: 'uploads'`) resolve in, inside the host root. */
export const DATA_DIR = 'data';

/**
 * Where a host folder of the stack (a `folder` mount's source) is on the host: an absolute path
 * as given, a relative one below the host root's data folder (`/etc/podmesh/<stack>/data/…`,
 * `%h/.config/podmesh/<stack>/data/…` rootless).
 */
export function hostFolderPath(host: Pick<ResolvedHost, 'install'>, source: string): string {
  if (source.startsWith('/')) return source;
  return source === '.' ? inHostRoot(host, DATA_DIR) : inHostRoot(host, `${DATA_DIR}/${source}`);
}

/** A path below the host root as units and scripts on the host name it (`%h/…` on rootless hosts). */
export function inHostRoot(host: Pick<ResolvedHost, 'install'>, rel: string): string {
  return `${host.install.root}/${rel}`;
}

/** A file podmesh installs from the state folder (certificates, secrets, WireGuard keys). */
export interface StateInstall {
  /** Path inside `<state>/<stack>/`: a file, or for `folder` every file below it. */
  readonly state: string;
  readonly folder: boolean;
  /** For a folder, the install of the folder itself (its files go below `path`). */
  readonly install: Install;
}

const KEY_FILES: ReadonlySet<string> = new Set(Object.values(KIND_FILES).map((f) => f.key));

/** Mode of a file in a certificate folder (a service's, or the OCSP responder's): private keys 0600, the rest 0644. */
export function pkiFileMode(file: string): number {
  return KEY_FILES.has(file) || file.endsWith('.key') ? MODE.secret : MODE.file;
}

/** Certificate folders a service mounts: its own (when it has certificates) and any `pki` mount's. */
function pkiFolders(s: ResolvedService): string[] {
  const own = s.certificates.length > 0 ? [s.name] : [];
  return [...new Set([...own, ...s.mounts.filter((m) => m.type === 'pki').map((m) => m.source.split('/')[0]!)])];
}

function stateInstall(host: ResolvedHost, state: string, path: string, mode: number, units: readonly string[], reloadable: boolean, stage: number, folder = false): StateInstall {
  return { state, folder, install: { host: host.name, path, mode, units: [...units], unitFile: false, reloadable, stage, enable: false } };
}

/**
 * What a host installs from the state folder: each certificate folder its services mount (restarting
 * or reloading them), each secret file its services mount (restarting them), and on multi-host
 * stacks its WireGuard keys.
 */
export function stateInstalls(stack: ResolvedStack, host: ResolvedHost): StateInstall[] {
  const services = stack.services.filter((s) => s.host === host.name);
  const folders = new Map<string, ResolvedService[]>();
  for (const s of services) for (const f of pkiFolders(s)) folders.set(f, [...(folders.get(f) ?? []), s]);
  const out: StateInstall[] = [...folders].map(([folder, users]) =>
    // A sidecar holds the service's certificates: it restarts on their change too.
    stateInstall(host, servicePath(folder), inHostRoot(host, servicePath(folder)), MODE.privateDir, users.flatMap((s) => [s.unit.service, ...(s.sidecar ? [s.sidecar.unit.service] : [])]), users.every((s) => s.unit.reloadable && !s.sidecar), STAGE.service, true),
  );
  // Each secret file once (0600, root's), from which the secrets unit creates its Podman secret:
  // a change re-creates the secrets, then restarts every local service that mounts that one.
  for (const [file, users] of secretUsers(services)) {
    out.push(stateInstall(host, secretPath(file), inHostRoot(host, secretPath(file)), MODE.secret, [host.install.secretsUnit, ...users.map((s) => s.unit.service)], false, STAGE.service));
  }
  // The OCSP responder's folder (its delegated keys, the issuers, the index) on the responder host:
  // a change (a revocation's new index, a renewed responder certificate) restarts the responders.
  const ocsp = stack.pki.ocsp;
  if (ocsp && ocsp.host === host.name) {
    const units = (['root', 'client-ca'] as const).map((issuer) => ocspResponderUnit(stack.name, issuer));
    out.push(stateInstall(host, OCSP_STATE_DIR, inHostRoot(host, OCSP_STATE_DIR), MODE.privateDir, units, false, STAGE.service, true));
  }
  const peers = stack.wireguard?.peers ?? [];
  if (!peers.some((p) => p.host === host.name)) return out;
  // In container mode the gateway reads the keys as Podman secrets: the secrets unit re-creates them first.
  const container = peers.find((p) => p.host === host.name)!.mode === 'container';
  const tunnel = [...(container ? [host.install.secretsUnit] : []), host.install.wireguardUnit];
  out.push(stateInstall(host, hostKeyFile(host.name), wireguardKeyPath(host), MODE.secret, tunnel, false, STAGE.tunnel));
  if (stack.wireguard!.presharedKeys) {
    for (const p of peers.filter((x) => x.host !== host.name)) {
      out.push(stateInstall(host, presharedKeyFile(host.name, p.host), presharedKeyPath(host, p.host), MODE.secret, tunnel, false, STAGE.tunnel));
    }
  }
  return out;
}

/** Each secret file the services mount, sorted, with the services that mount it. */
export function secretUsers(services: readonly ResolvedService[]): [string, ResolvedService[]][] {
  const users = new Map<string, ResolvedService[]>();
  for (const s of services) for (const f of new Set(s.secrets.map((x) => x.file))) users.set(f, [...(users.get(f) ?? []), s]);
  return [...users].sort(([a], [b]) => compare(a, b));
}

/**
 * The Podman secret holding secret file `file` of `stack` on a Quadlet host: `<stack>-<file>`
 * (`ashchan-dev-postgres.password`), so that stacks sharing a host keep theirs apart.
 */
export function podmanSecretName(stack: string, file: string): string {
  return `${stack}-${file}`;
}

/** The host's WireGuard private key, installed. */
export function wireguardKeyPath(host: Pick<ResolvedHost, 'install'>): string {
  return `${host.install.wireguardDir}/private.key`;
}

/** The preshared key a host shares with `peer`, installed. */
export function presharedKeyPath(host: Pick<ResolvedHost, 'install'>, peer: string): string {
  return `${host.install.wireguardDir}/psk/${peer}.key`;
}

/** The `.target` that starts and stops one host's share of a stack. */
export function targetName(stack: string): string {
  return `${stack}.target`;
}

/** The systemd unit that brings a stack's tunnel up. */
export function wireguardUnitName(stack: string): string {
  return `podmesh-${stack}-wireguard.service`;
}

/** The unit loading a rootful host's container firewall (nftables bridge table). */
export function firewallUnitName(stack: string): string {
  return `podmesh-${stack}-firewall.service`;
}

/** The oneshot unit creating a host's Podman secrets from the secret files in its host root. */
export function secretsUnitName(stack: string): string {
  return `podmesh-${stack}-secrets.service`;
}

/** The state folder of the OCSP responder (`pki/ocsp`), installed as `<host root>/pki/ocsp` on the responder host. */
export const OCSP_STATE_DIR = 'pki/ocsp';

/** The systemd unit of one issuer's OCSP responder: `podmesh-<stack>-ocsp-root.service`, `…-ocsp-client-ca.service`. */
export function ocspResponderUnit(stack: string, issuer: 'root' | 'client-ca'): string {
  return `podmesh-${stack}-ocsp-${issuer}.service`;
}

/** Stem of the `.service` and `.timer` that refresh a host's stapled OCSP responses. */
export function ocspStapleUnitStem(stack: string): string {
  return `podmesh-${stack}-ocsp-staple`;
}

/** Stem of the `.service` and `.timer` of a stack's certificate expiry check. */
export function certExpiryUnitStem(stack: string): string {
  return `podmesh-${stack}-cert-expiry`;
}

/** File name stem of a service's `.container` (and so its systemd service): `<project>-<name>`. */
export function containerUnitStem(stack: Pick<ResolvedStack, 'project'>, s: Pick<ResolvedService, 'name'>): string {
  return `${stack.project}-${s.name}`;
}

/** File name stem of a service's sidecar `.container`: `<project>-<name>-sidecar`. */
export function sidecarUnitStem(project: string, service: string): string {
  return `${project}-${service}-sidecar`;
}

/** The systemd service Quadlet generates from a `.network`/`.volume` file: `<stem>-<kind>.service`. */
export function quadletServiceName(stem: string, kind: 'container' | 'network' | 'volume' | 'pod'): string {
  return kind === 'container' ? `${stem}.service` : `${stem}-${kind}.service`;
}

/** Install paths and unit names of a host, rootless under `%h`, rootful under `/etc`. */
export function hostInstall(stack: string, host: Pick<ResolvedHost, 'rootless'>): HostInstall {
  const home = host.rootless;
  return {
    root: home ? `%h/.config/podmesh/${stack}` : `/etc/podmesh/${stack}`,
    quadletDir: home ? '%h/.config/containers/systemd' : '/etc/containers/systemd',
    systemdDir: home ? '%h/.config/systemd/user' : '/etc/systemd/system',
    // A rootless host's tunnel runs in a gateway container (wireguard mode 'container'): its keys are the user's.
    wireguardDir: home ? `%h/.config/podmesh/${stack}/wireguard` : `/etc/podmesh/${stack}/wireguard`,
    systemctl: home ? ['systemctl', '--user'] : ['systemctl'],
    target: targetName(stack),
    wantedBy: home ? 'default.target' : 'multi-user.target',
    wireguardUnit: wireguardUnitName(stack),
    firewallUnit: firewallUnitName(stack),
    secretsUnit: secretsUnitName(stack),
    certExpiryUnit: certExpiryUnitStem(stack),
  };
}

/** A service's unit names. */
export function serviceUnits(stack: Pick<ResolvedStack, 'project'>, s: Pick<ResolvedService, 'name'>): ServiceUnits {
  const stem = containerUnitStem(stack, s);
  return { stem, service: quadletServiceName(stem, 'container'), reloadable: false };
}

/**
 * Where the certificate expiry check writes its metric unless `PODMESH_TEXTFILE_DIR` says otherwise:
 * node-exporter's Debian default when rootful, a folder of the user's when rootless.
 */
export function defaultTextfileDir(host: Pick<ResolvedHost, 'rootless'>): string {
  return host.rootless ? '$HOME/.local/share/podmesh/metrics' : '/var/lib/prometheus/node-exporter';
}

/** A host path of a host's layout with `%h` (the user's home) replaced by `home`. */
export function expandHome(path: string, home: string): string {
  return path.replace(/^%h(?=\/|$)/, home);
}

/** A host or service as resolution builds it, before the layout is recorded on it. */
export type Unplaced<T> = Omit<T, 'install' | 'unit'>;

/** The model as resolution builds it, before the layout is recorded on it. */
export type UnplacedStack = Omit<ResolvedStack, 'hosts' | 'services'> & {
  readonly hosts: readonly Unplaced<ResolvedHost>[];
  readonly services: readonly Unplaced<ResolvedService>[];
};

/** Records install paths and unit names on every host and service of a resolved stack. */
export function placeStack(stack: UnplacedStack): ResolvedStack {
  return {
    ...stack,
    hosts: stack.hosts.map((h) => ({ ...h, install: hostInstall(stack.name, h) })),
    services: stack.services.map((s) => ({ ...s, unit: serviceUnits(stack, s) })),
  };
}
