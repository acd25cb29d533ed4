// Versions as data: renderers build the ideal unit (every typed key of the newest Podman) and
// downgrade() rewrites it, row by row of one table, into what a host's Podman runs, as podlet's
// `downgrade(version)` does. A key without a fallback becomes a problem, never a throw.
import type { Issue } from '../../../constructs/core/errors.ts';
import type { ContainerSection, ContainerUnit, NetworkAttachment, NetworkUnit, QuadletUnit, VolumeUnit } from './units.ts';
import {
  QUADLET_FEATURES,
  checkUnit,
  compareVersions,
  supports,
  tooNew,
  versionGate,
  type ContainerKey,
  type PodmanVersion,
  type QualifiedKey,
  type QuadletFeature,
  type VersionGate,
} from './versions.ts';

/**
 * `podman` options podmesh falls back on whose own version matters (the rest exist since 4.4).
 * @see https://docs.podman.io/en/v4.7.0/markdown/podman-run.1.html#sdnotify-container-conmon-healthy-ignore
 */
export const PODMAN_FLAGS = {
  '--sdnotify=healthy': { since: { major: 4, minor: 7 }, source: 'Podman RELEASE_NOTES.md, v4.7.0 ("--sdnotify=healthy")' },
  // No Quadlet key for it in 5.4 (quadlet 5.4.2 knows AddHost= only): passed with PodmanArgs=.
  '--hosts-file': { since: { major: 5, minor: 4 }, source: 'Podman RELEASE_NOTES.md, v5.4.0 ("a new option, --hosts-file, to define the base file used for /etc/hosts")' },
} as const satisfies Readonly<Record<string, VersionGate>>;

/** Whether a host's `podman` takes an option of {@link PODMAN_FLAGS}. */
export function flagSupported(flag: keyof typeof PODMAN_FLAGS, version: PodmanVersion): boolean {
  return compareVersions(version, PODMAN_FLAGS[flag].since) >= 0;
}

/** One row: a key or value form a host may lack, and the unit without it. */
export interface DowngradeRow<U extends QuadletUnit = QuadletUnit> {
  /** The gate (key or feature) of the version table. */
  readonly gate: ContainerKey | QualifiedKey | QuadletFeature;
  readonly kind: U['kind'];
  /** Whether the unit uses the key or form. */
  readonly uses: (unit: U) => boolean;
  /**
   * The same unit for a host whose Podman lacks the gate: the key moved to `PodmanArgs=`, another
   * form, or dropped when Podman then does the same by itself; undefined when nothing can stand in.
   */
  readonly without: (unit: U, version: PodmanVersion) => U | undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A container section with `keys` removed and `args` appended to `PodmanArgs=`. */
function moveToArgs(c: ContainerSection, keys: readonly (keyof ContainerSection)[], args: readonly string[]): ContainerSection {
  const out: Mutable<ContainerSection> = { ...c };
  for (const k of keys) delete out[k];
  const podmanArgs = [...(c.podmanArgs ?? []), ...args];
  if (podmanArgs.length > 0) out.podmanArgs = podmanArgs;
  return out;
}

const container = (u: ContainerUnit, c: ContainerSection): ContainerUnit => ({ ...u, container: c });

/** `Network=NAME:ip=…,alias=…`, the 4.4 form of `IP=` and `NetworkAlias=` (one network only). */
function attach(u: ContainerUnit): ContainerUnit | undefined {
  const c = u.container;
  const [network, ...more] = c.network ?? [];
  if (typeof network !== 'string' || more.length > 0) return undefined;
  const attachment: NetworkAttachment = { network, ...(c.ip ? { ip: c.ip } : {}), ...(c.networkAlias?.length ? { aliases: c.networkAlias } : {}) };
  const out: Mutable<ContainerSection> = { ...c, network: [attachment] };
  delete out.ip;
  delete out.networkAlias;
  return container(u, out);
}

const HEALTH = ['healthCmd', 'healthInterval', 'healthTimeout', 'healthRetries', 'healthStartPeriod'] as const;
const HEALTH_FLAGS: Readonly<Record<(typeof HEALTH)[number], string>> = {
  healthCmd: '--health-cmd',
  healthInterval: '--health-interval',
  healthTimeout: '--health-timeout',
  healthRetries: '--health-retries',
  healthStartPeriod: '--health-start-period',
};

const numeric = (v: string | undefined) => v === undefined || /^\d+$/.test(v);

// Rows apply in order, which is also the order of the `PodmanArgs=` they add.
const CONTAINER_ROWS: readonly DowngradeRow<ContainerUnit>[] = [
  {
    gate: 'HostName',
    kind: 'container',
    uses: (u) => u.container.hostName !== undefined,
    without: (u) => container(u, moveToArgs(u.container, ['hostName'], [`--hostname=${u.container.hostName}`])),
  },
  { gate: 'NetworkAlias', kind: 'container', uses: (u) => (u.container.networkAlias?.length ?? 0) > 0, without: attach },
  { gate: 'IP', kind: 'container', uses: (u) => u.container.ip !== undefined, without: attach },
  {
    gate: 'AddHost',
    kind: 'container',
    uses: (u) => (u.container.addHost?.length ?? 0) > 0,
    without: (u) => container(u, moveToArgs(u.container, ['addHost'], u.container.addHost!.map((e) => `--add-host=${e}`))),
  },
  {
    gate: 'User=name',
    kind: 'container',
    uses: (u) => !numeric(u.container.user) || !numeric(u.container.group),
    without: (u) => {
      const { user, group } = u.container;
      return container(u, moveToArgs(u.container, ['user', 'group'], [`--user=${user}${group !== undefined ? `:${group}` : ''}`]));
    },
  },
  {
    gate: 'Tmpfs',
    kind: 'container',
    uses: (u) => (u.container.tmpfs?.length ?? 0) > 0,
    without: (u) => container(u, moveToArgs(u.container, ['tmpfs'], u.container.tmpfs!.map((t) => `--tmpfs=${t}`))),
  },
  {
    gate: 'UserNS',
    kind: 'container',
    uses: (u) => u.container.userNS !== undefined,
    without: (u) => container(u, moveToArgs(u.container, ['userNS'], [`--userns=${u.container.userNS}`])),
  },
  {
    gate: 'Secret',
    kind: 'container',
    uses: (u) => (u.container.secret?.length ?? 0) > 0,
    without: (u) => container(u, moveToArgs(u.container, ['secret'], u.container.secret!.map((x) => `--secret=${x}`))),
  },
  {
    gate: 'Entrypoint',
    kind: 'container',
    uses: (u) => u.container.entrypoint !== undefined,
    without: (u) => container(u, moveToArgs(u.container, ['entrypoint'], [`--entrypoint=${u.container.entrypoint}`])),
  },
  {
    gate: 'PidsLimit',
    kind: 'container',
    uses: (u) => u.container.pidsLimit !== undefined,
    without: (u) => container(u, moveToArgs(u.container, ['pidsLimit'], [`--pids-limit=${u.container.pidsLimit}`])),
  },
  {
    gate: 'HealthCmd',
    kind: 'container',
    uses: (u) => u.container.healthCmd !== undefined,
    without: (u) => {
      const args = HEALTH.filter((k) => u.container[k] !== undefined).map((k) => `${HEALTH_FLAGS[k]}=${u.container[k]}`);
      return container(u, moveToArgs(u.container, HEALTH, args));
    },
  },
  {
    gate: 'Notify=healthy',
    kind: 'container',
    uses: (u) => u.container.notify === 'healthy',
    without: (u, v) => (flagSupported('--sdnotify=healthy', v) ? container(u, moveToArgs(u.container, ['notify'], ['--sdnotify=healthy'])) : undefined),
  },
];

/**
 * Whether a host's Quadlet can name a network's bridge: `InterfaceName=`, or the
 * `PodmanArgs=--interface-name=` stand-in of the row below. Before 4.6 Podman names it `podmanN`.
 */
export function canNameBridge(version: PodmanVersion): boolean {
  return supports('Network.InterfaceName', version) || supports('Network.PodmanArgs', version);
}

// Dropped keys: Podman then names the network or volume `systemd-<file name>` (before 4.7) or the
// bridge `podmanN` (before 4.6); containers refer to the unit, so it still works. Where something
// relies on the bridge's name (a bridgeName the stack gives, the WireGuard forwarding rules),
// the systemd renderer reports the dropped name as a problem (`bridgeNameProblems`).
const NETWORK_ROWS: readonly DowngradeRow<NetworkUnit>[] = [
  {
    gate: 'Network.InterfaceName',
    kind: 'network',
    uses: (u) => u.network.interfaceName !== undefined,
    without: (u, v) => {
      const { interfaceName, ...rest } = u.network;
      const args = supports('Network.PodmanArgs', v) ? { podmanArgs: [...(rest.podmanArgs ?? []), `--interface-name=${interfaceName}`] } : {};
      return { ...u, network: { ...rest, ...args } };
    },
  },
  {
    gate: 'Network.NetworkName',
    kind: 'network',
    uses: (u) => u.network.networkName !== undefined,
    without: (u) => {
      const { networkName: _, ...rest } = u.network;
      return { ...u, network: rest };
    },
  },
];

const VOLUME_ROWS: readonly DowngradeRow<VolumeUnit>[] = [
  {
    gate: 'Volume.VolumeName',
    kind: 'volume',
    uses: (u) => u.volume.volumeName !== undefined,
    without: (u) => {
      const { volumeName: _, ...rest } = u.volume;
      return { ...u, volume: rest };
    },
  },
];

/** Every row of the table, by unit kind, in the order they apply. */
export const DOWNGRADE_TABLE = { container: CONTAINER_ROWS, network: NETWORK_ROWS, volume: VOLUME_ROWS } as const;

/** A unit for one host, and what it could not keep. */
export interface Downgraded<U extends QuadletUnit> {
  readonly unit: U;
  readonly problems: readonly Issue[];
}

function rowsOf(kind: QuadletUnit['kind']): readonly DowngradeRow[] {
  return ((DOWNGRADE_TABLE as Readonly<Record<string, readonly DowngradeRow[]>>)[kind] ?? []) as readonly DowngradeRow[];
}

/** The message of a row without a stand-in, in the version table's words. */
function noFallback(gate: DowngradeRow['gate'], version: PodmanVersion): string {
  const feature = (QUADLET_FEATURES as Readonly<Record<string, { label: string }>>)[gate];
  const key = gate.includes('.') ? gate.slice(gate.indexOf('.') + 1) : gate;
  const label = feature ? feature.label : `Quadlet option \`${key}=\``;
  return tooNew(label, versionGate(gate), version, `drop \`${key}=\``);
}

/**
 * The unit `version` runs: each row of {@link DOWNGRADE_TABLE} whose gate the host lacks rewrites
 * the unit; then the version table checks the result (the safety net: a key without a row).
 * @param path construct path the problems are reported at
 */
export function downgrade<U extends QuadletUnit>(ideal: U, version: PodmanVersion, path = ''): Downgraded<U> {
  let unit: U = ideal;
  const problems: Issue[] = [];
  for (const row of rowsOf(ideal.kind)) {
    if (supports(row.gate, version) || !row.uses(unit)) continue;
    const next = row.without(unit, version) as U | undefined;
    if (next) unit = next;
    else problems.push({ path, message: noFallback(row.gate, version) });
  }
  // A key a row could not replace is already a problem; the check reports the others once.
  const reported = new Set(problems.map((p) => p.message));
  for (const issue of checkUnit(unit, version, path)) if (!reported.has(issue.message)) problems.push(issue);
  return { unit, problems };
}
