// Which Podman version introduced each Quadlet key and value form podmesh writes, with where that
// fact comes from; checkUnit() turns a unit and a host's Podman version into data-carrying issues,
// supports() answers for one key; downgrade.ts turns an ideal unit into one a given host runs.
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import { compareVersions, formatPodmanVersion, parsePodmanVersion, type PodmanVersion } from '../../../constructs/core/podman-version.ts';
import {
  CONTAINER_FIELDS,
  NETWORK_FIELDS,
  POD_FIELDS,
  QUADLET_FIELDS,
  VOLUME_FIELDS,
  type FieldSpec,
  type QuadletUnit,
} from './units.ts';

export { compareVersions, formatPodmanVersion, parsePodmanVersion, type PodmanVersion };

/** Podman 4.4, the first release with Quadlet: the floor of everything here. */
export const QUADLET_FLOOR: PodmanVersion = { major: 4, minor: 4 };

/** The Quadlet podmesh's tests run (`.cache/bin/quadlet`, Debian trixie's podman 5.4.2). */
export const VALIDATED_QUADLET: PodmanVersion = { major: 5, minor: 4 };

function toVersion(v: PodmanVersion | string): PodmanVersion {
  return typeof v === 'string' ? parsePodmanVersion(v) : v;
}

/** When a key or value form became available, and the evidence. */
export interface VersionGate {
  /** First Podman release line that accepts it. */
  readonly since: PodmanVersion;
  /** Where the version was verified. */
  readonly source: string;
  /**
   * How to finish "Raise the host's podmanVersion or …".
   * @default - drop the option
   */
  readonly remedy?: string;
  /**
   * The equivalent `podman` option, for a `PodmanArgs=` fallback on older hosts (the option
   * itself may need a newer Podman than 4.4 too).
   * @default - none
   */
  readonly podmanFlag?: string;
}

const v = (major: number, minor: number): PodmanVersion => ({ major, minor });

// Evidence, abbreviated in the table below.
const SRC = {
  q44: 'quadlet.go of Podman 4.4 (supported*Keys; v4 module, still `--runtime /usr/bin/crun`)',
  rn: (ver: string) => `Podman RELEASE_NOTES.md, v${ver} Quadlet notes`,
  podlet: (file: string) => `containers/podlet src/quadlet/${file} downgrade()`,
  inferred: (pr: string, note: string) => `${pr}; ${note} (inferred from merge date, not in the 5.4 release notes; rejected by quadlet 5.4.2)`,
} as const;

const gate = (since: PodmanVersion, source: string, extra: Omit<VersionGate, 'since' | 'source'> = {}): VersionGate => ({
  since,
  source,
  ...extra,
});

const HEALTH = SRC.rn('4.5.0') + ' ("health check configuration in .container files")';

/**
 * First Podman version of each Quadlet key podmesh models, per section.
 * @see https://docs.podman.io/en/v5.4.2/markdown/podman-systemd.unit.5.html
 */
export const QUADLET_KEYS = {
  Container: {
    Image: gate(v(4, 4), SRC.q44),
    ContainerName: gate(v(4, 4), SRC.q44),
    HostName: gate(v(4, 6), SRC.rn('4.6.0'), { podmanFlag: '--hostname' }),
    Pod: gate(v(5, 0), SRC.rn('5.0.0') + ' (.pod units); ' + SRC.podlet('container.rs')),
    Network: gate(v(4, 4), SRC.q44),
    IP: gate(v(4, 5), SRC.rn('4.5.0'), { podmanFlag: '--ip' }),
    IP6: gate(v(4, 5), SRC.rn('4.5.0'), { podmanFlag: '--ip6' }),
    NetworkAlias: gate(v(5, 2), SRC.rn('5.2.0'), { remedy: 'drop the alias', podmanFlag: '--network-alias' }),
    PublishPort: gate(v(4, 4), SRC.q44),
    ExposeHostPort: gate(v(4, 4), SRC.q44),
    AddHost: gate(v(5, 3), SRC.rn('5.3.0'), { remedy: 'drop the host entry', podmanFlag: '--add-host' }),
    DNS: gate(v(4, 7), SRC.rn('4.7.0'), { podmanFlag: '--dns' }),
    DNSSearch: gate(v(4, 7), SRC.rn('4.7.0'), { podmanFlag: '--dns-search' }),
    DNSOption: gate(v(4, 7), SRC.rn('4.7.0'), { podmanFlag: '--dns-option' }),
    Environment: gate(v(4, 4), SRC.q44),
    EnvironmentFile: gate(v(4, 4), SRC.q44),
    EnvironmentHost: gate(v(4, 4), SRC.q44),
    Secret: gate(v(4, 5), SRC.rn('4.5.0'), { podmanFlag: '--secret' }),
    Volume: gate(v(4, 4), SRC.q44),
    Mount: gate(v(4, 5), SRC.rn('4.5.0'), { podmanFlag: '--mount' }),
    Tmpfs: gate(v(4, 5), SRC.rn('4.5.0'), { podmanFlag: '--tmpfs' }),
    User: gate(v(4, 4), SRC.q44),
    Group: gate(v(4, 4), SRC.q44),
    GroupAdd: gate(v(5, 1), SRC.rn('5.1.0'), { podmanFlag: '--group-add' }),
    UserNS: gate(v(4, 5), SRC.podlet('container.rs') + ' (OptionsV4_5)', { podmanFlag: '--userns' }),
    WorkingDir: gate(v(4, 6), SRC.rn('4.6.0'), { podmanFlag: '--workdir' }),
    Entrypoint: gate(v(5, 0), SRC.rn('5.0.0'), { podmanFlag: '--entrypoint' }),
    Exec: gate(v(4, 4), SRC.q44),
    HealthCmd: gate(v(4, 5), HEALTH, { podmanFlag: '--health-cmd' }),
    HealthInterval: gate(v(4, 5), HEALTH, { podmanFlag: '--health-interval' }),
    HealthTimeout: gate(v(4, 5), HEALTH, { podmanFlag: '--health-timeout' }),
    HealthRetries: gate(v(4, 5), HEALTH, { podmanFlag: '--health-retries' }),
    HealthStartPeriod: gate(v(4, 5), HEALTH, { podmanFlag: '--health-start-period' }),
    HealthOnFailure: gate(v(4, 5), HEALTH, { podmanFlag: '--health-on-failure' }),
    HealthStartupCmd: gate(v(4, 5), HEALTH, { podmanFlag: '--health-startup-cmd' }),
    HealthStartupInterval: gate(v(4, 5), HEALTH, { podmanFlag: '--health-startup-interval' }),
    HealthStartupRetries: gate(v(4, 5), HEALTH, { podmanFlag: '--health-startup-retries' }),
    HealthStartupSuccess: gate(v(4, 5), HEALTH, { podmanFlag: '--health-startup-success' }),
    HealthStartupTimeout: gate(v(4, 5), HEALTH, { podmanFlag: '--health-startup-timeout' }),
    Notify: gate(v(4, 4), SRC.q44),
    ReadOnly: gate(v(4, 4), SRC.q44),
    ReadOnlyTmpfs: gate(v(4, 8), SRC.rn('4.8.0'), { podmanFlag: '--read-only-tmpfs' }),
    NoNewPrivileges: gate(v(4, 4), SRC.q44),
    DropCapability: gate(v(4, 4), SRC.q44),
    AddCapability: gate(v(4, 4), SRC.q44),
    AddDevice: gate(v(4, 4), SRC.q44),
    Sysctl: gate(v(4, 6), SRC.rn('4.6.0'), { podmanFlag: '--sysctl' }),
    Ulimit: gate(v(4, 7), SRC.rn('4.7.0'), { podmanFlag: '--ulimit' }),
    PidsLimit: gate(v(4, 7), SRC.rn('4.7.0'), { podmanFlag: '--pids-limit' }),
    ShmSize: gate(v(4, 7), SRC.rn('4.7.0'), { podmanFlag: '--shm-size' }),
    RunInit: gate(v(4, 4), SRC.q44),
    Timezone: gate(v(4, 4), SRC.q44),
    SeccompProfile: gate(v(4, 4), SRC.q44),
    StopSignal: gate(v(5, 2), SRC.rn('5.2.0'), { podmanFlag: '--stop-signal' }),
    StopTimeout: gate(v(5, 0), SRC.rn('5.0.0'), { podmanFlag: '--stop-timeout' }),
    ReloadCmd: gate(
      v(5, 5),
      SRC.inferred('containers/podman#25842 (opened 2025-04-09)', 'v5.5.0 released 2025-05-14'),
      { remedy: 'drop the reload command (or set [Service] ExecReload= yourself)' },
    ),
    ReloadSignal: gate(
      v(5, 5),
      SRC.inferred('containers/podman#25842 (opened 2025-04-09)', 'v5.5.0 released 2025-05-14'),
      { remedy: 'drop the reload signal (or set [Service] ExecReload= yourself)' },
    ),
    Label: gate(v(4, 4), SRC.q44),
    Annotation: gate(v(4, 4), SRC.q44),
    AutoUpdate: gate(v(4, 6), SRC.rn('4.6.0'), { remedy: 'set the label io.containers.autoupdate instead' }),
    LogDriver: gate(v(4, 5), SRC.rn('4.5.0'), { podmanFlag: '--log-driver' }),
    LogOpt: gate(v(5, 2), SRC.rn('5.2.0'), { podmanFlag: '--log-opt' }),
    Pull: gate(v(4, 6), SRC.rn('4.6.0'), { podmanFlag: '--pull' }),
    ServiceName: gate(v(5, 3), SRC.rn('5.3.0'), { remedy: 'name the file after the service instead' }),
    StartWithPod: gate(v(5, 3), SRC.rn('5.3.0')),
    PodmanArgs: gate(v(4, 4), SRC.q44),
    GlobalArgs: gate(v(4, 8), SRC.rn('4.8.0') + ' ("podman level arguments"); ' + SRC.podlet('globals.rs')),
  },
  Network: {
    NetworkName: gate(v(4, 7), SRC.rn('4.7.0'), { remedy: 'drop it (the network is then called systemd-NAME)' }),
    Driver: gate(v(4, 4), SRC.q44),
    Subnet: gate(v(4, 4), SRC.q44),
    Gateway: gate(v(4, 4), SRC.q44),
    IPRange: gate(v(4, 4), SRC.q44),
    IPv6: gate(v(4, 4), SRC.q44),
    Internal: gate(v(4, 4), SRC.q44),
    DisableDNS: gate(v(4, 4), SRC.q44),
    DNS: gate(v(4, 7), SRC.rn('4.7.0') + ' ("DNS field in Network group"); ' + SRC.podlet('network.rs'), { podmanFlag: '--dns' }),
    IPAMDriver: gate(v(4, 4), SRC.q44),
    InterfaceName: gate(
      v(5, 6),
      SRC.inferred('containers/podman#26278 (merged 2025-06-04, after v5.5.0 of 2025-05-14)', 'v5.6.0 released 2025-08-15'),
      { remedy: 'drop the interface name', podmanFlag: '--interface-name' },
    ),
    Options: gate(v(4, 4), SRC.q44),
    Label: gate(v(4, 4), SRC.q44),
    ServiceName: gate(v(5, 3), SRC.rn('5.3.0')),
    PodmanArgs: gate(v(4, 6), SRC.rn('4.6.0') + ' ("supports PodmanArgs field"); ' + SRC.podlet('network.rs')),
    GlobalArgs: gate(v(4, 8), SRC.rn('4.8.0') + '; ' + SRC.podlet('globals.rs')),
  },
  Volume: {
    VolumeName: gate(v(4, 7), SRC.rn('4.7.0')),
    Driver: gate(v(4, 8), SRC.podlet('volume.rs') + ' (V4_8)', { podmanFlag: '--driver' }),
    User: gate(v(4, 4), SRC.q44),
    Group: gate(v(4, 4), SRC.q44),
    Label: gate(v(4, 4), SRC.q44),
    ServiceName: gate(v(5, 3), SRC.rn('5.3.0')),
    PodmanArgs: gate(v(4, 6), SRC.rn('4.6.0') + '; ' + SRC.podlet('volume.rs')),
    GlobalArgs: gate(v(4, 8), SRC.rn('4.8.0') + '; ' + SRC.podlet('globals.rs')),
  },
  Pod: {
    PodName: gate(v(5, 0), SRC.rn('5.0.0') + ' (.pod units); ' + SRC.podlet('pod.rs')),
    Network: gate(v(5, 0), SRC.rn('5.0.0') + '; ' + SRC.podlet('pod.rs')),
    NetworkAlias: gate(v(5, 2), SRC.rn('5.2.0') + ' (".container and .pod files")', { remedy: 'drop the alias', podmanFlag: '--network-alias' }),
    PublishPort: gate(v(5, 0), SRC.rn('5.0.0') + '; ' + SRC.podlet('pod.rs')),
    Volume: gate(v(5, 0), SRC.rn('5.0.0') + '; ' + SRC.podlet('pod.rs')),
    AddHost: gate(v(5, 3), SRC.rn('5.3.0'), { remedy: 'drop the host entry', podmanFlag: '--add-host' }),
    DNS: gate(v(5, 3), SRC.rn('5.3.0'), { podmanFlag: '--dns' }),
    IP: gate(v(5, 3), SRC.rn('5.3.0'), { podmanFlag: '--ip' }),
    IP6: gate(v(5, 3), SRC.rn('5.3.0'), { podmanFlag: '--ip6' }),
    ShmSize: gate(v(5, 4), SRC.rn('5.4.0'), { podmanFlag: '--shm-size' }),
    ServiceName: gate(v(5, 3), SRC.rn('5.3.0')),
    PodmanArgs: gate(v(5, 0), SRC.rn('5.0.0') + '; ' + SRC.podlet('pod.rs')),
    GlobalArgs: gate(v(5, 0), SRC.rn('5.0.0') + '; ' + SRC.podlet('globals.rs')),
  },
  Quadlet: {
    DefaultDependencies: gate(v(5, 3), SRC.rn('5.3.0') + ' ("DefaultDependencies, supported by all Quadlet files")'),
  },
} as const satisfies Readonly<Record<string, Readonly<Record<string, VersionGate>>>>;

/** A Quadlet section with version-gated keys. */
export type QuadletSectionName = keyof typeof QUADLET_KEYS;
/** A key of `[Container]`, usable bare in {@link supports}. */
export type ContainerKey = keyof (typeof QUADLET_KEYS)['Container'];
/** A key qualified by its section, e.g. `Network.InterfaceName`. */
export type QualifiedKey = {
  [S in QuadletSectionName]: `${S}.${keyof (typeof QUADLET_KEYS)[S] & string}`;
}[QuadletSectionName];

/** A value form or file kind with its own version gate. */
export interface FeatureGate extends VersionGate {
  /** How the feature reads in a message, e.g. ``Quadlet option `Notify=healthy` ``. */
  readonly label: string;
}

/**
 * Version gates that belong to values or file kinds rather than to keys.
 * @see https://docs.podman.io/en/v5.4.2/markdown/podman-systemd.unit.5.html
 */
export const QUADLET_FEATURES = {
  'file:container': { label: 'Quadlet `.container` files', ...gate(v(4, 4), SRC.q44 + ' (ConvertContainer)') },
  'file:network': { label: 'Quadlet `.network` files', ...gate(v(4, 4), SRC.q44 + ' (ConvertNetwork)') },
  'file:volume': { label: 'Quadlet `.volume` files', ...gate(v(4, 4), SRC.q44 + ' (ConvertVolume)') },
  'file:pod': {
    label: 'Quadlet `.pod` files',
    ...gate(v(5, 0), SRC.rn('5.0.0') + ' ("creating pods via new .pod unit files")', {
      remedy: 'run the containers without a pod',
    }),
  },
  'Notify=healthy': {
    label: 'Quadlet option `Notify=healthy`',
    ...gate(v(5, 0), SRC.rn('5.0.0') + ' ("setting the Notify key to healthy")', {
      remedy: 'use Notify=false (Podman ≥ 4.7 also takes PodmanArgs=--sdnotify=healthy)',
      podmanFlag: '--sdnotify=healthy',
    }),
  },
  'Network=NAME:options': {
    label: 'Quadlet option `Network=NAME:ip=…,alias=…`',
    ...gate(v(4, 4), SRC.q44 + ' (addNetworks cuts `NAME.network:OPTIONS` at ":" and keeps the options)'),
  },
  'Network=NAME.container': {
    label: 'Quadlet option `Network=NAME.container`',
    ...gate(v(5, 3), SRC.rn('5.3.0') + ' ("use the network of another container")', {
      remedy: 'use Network=container:NAME with the container name',
    }),
  },
  'Ulimit=repeated': {
    label: 'Repeating Quadlet option `Ulimit=`',
    ...gate(v(5, 0), SRC.rn('5.0.0') + ' ("specifying the Ulimit key multiple times")', {
      remedy: 'keep one Ulimit= and pass the others as PodmanArgs=--ulimit',
      podmanFlag: '--ulimit',
    }),
  },
  'User=name': {
    label: 'Quadlet option `User=`/`Group=` with a name or specifier',
    ...gate(
      v(4, 8),
      SRC.rn('4.8.0') + ' ("systemd specifiers in User and Group keys"); ' + SRC.q44 + ' parses User=/Group= as numbers (a name silently becomes 0, root)',
      { remedy: 'use numeric IDs' },
    ),
  },
  'Volume=./relative': {
    label: 'Quadlet option `Volume=` with a relative source path',
    ...gate(v(4, 5), SRC.rn('4.5.0') + ' ("relative paths in the Volume key")', { remedy: 'use an absolute source path' }),
  },
  'Image=NAME.image': {
    label: 'Quadlet option `Image=NAME.image`',
    ...gate(v(4, 8), SRC.rn('4.8.0') + ' ("new unit type, .image")', { remedy: 'use the image reference' }),
  },
  'Image=NAME.build': {
    label: 'Quadlet option `Image=NAME.build`',
    ...gate(v(5, 2), SRC.rn('5.2.0') + ' (".build files")', { remedy: 'build the image beforehand and use its reference' }),
  },
} as const satisfies Readonly<Record<string, FeatureGate>>;

/** A value form or file kind with its own gate, e.g. `Notify=healthy`. */
export type QuadletFeature = keyof typeof QUADLET_FEATURES;

function lookupKey(ref: string): { section: QuadletSectionName; key: string; gate: VersionGate } | undefined {
  const dot = ref.indexOf('.');
  const section = (dot === -1 ? 'Container' : ref.slice(0, dot)) as QuadletSectionName;
  const key = dot === -1 ? ref : ref.slice(dot + 1);
  const table = QUADLET_KEYS[section] as Readonly<Record<string, VersionGate>> | undefined;
  const found = table?.[key];
  return found ? { section, key, gate: found } : undefined;
}

/**
 * The version gate of a key (`NetworkAlias`, meaning `[Container]`, or `Network.InterfaceName`)
 * or a feature (`Notify=healthy`, `file:pod`).
 * @throws PodmeshError for an unknown name (a typo must not read as "unsupported")
 */
export function versionGate(keyOrFeature: ContainerKey | QualifiedKey | QuadletFeature): VersionGate {
  const feature = (QUADLET_FEATURES as Readonly<Record<string, FeatureGate>>)[keyOrFeature];
  if (feature) return feature;
  const key = lookupKey(keyOrFeature);
  if (key) return key.gate;
  throw PodmeshError.at('', `Unknown Quadlet key or feature ${JSON.stringify(keyOrFeature)}. Use a key such as "NetworkAlias" or "Network.InterfaceName", or a feature from QUADLET_FEATURES.`);
}

/**
 * Whether a host's Podman accepts a key or feature; for renderers choosing fallbacks, e.g.
 * `supports('NetworkAlias', host.podmanVersion) ? {networkAlias} : {podmanArgs: ['--network-alias', a]}`.
 * Versions below Quadlet's floor (4.4) support nothing.
 * @throws PodmeshError for an unknown key or an unparsable version
 */
export function supports(
  keyOrFeature: ContainerKey | QualifiedKey | QuadletFeature,
  version: PodmanVersion | string,
): boolean {
  const host = toVersion(version);
  return compareVersions(host, QUADLET_FLOOR) >= 0 && compareVersions(host, versionGate(keyOrFeature).since) >= 0;
}

/** ``<label> was not supported until Podman vX (host runs Y). Raise the host's podmanVersion or <remedy>.`` */
export function tooNew(label: string, gate: VersionGate, host: PodmanVersion, remedy: string, plural = false): string {
  return `${label} ${plural ? 'were' : 'was'} not supported until Podman v${formatPodmanVersion(gate.since)} (host runs ${formatPodmanVersion(host)}). Raise the host's podmanVersion or ${gate.remedy ?? remedy}.`;
}

function present(value: unknown): boolean {
  if (value === undefined) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length > 0;
  return true;
}

function resourceSection(unit: QuadletUnit): { name: QuadletSectionName; fields: Readonly<Record<string, FieldSpec>>; values: object } {
  switch (unit.kind) {
    case 'container':
      return { name: 'Container', fields: CONTAINER_FIELDS, values: unit.container };
    case 'network':
      return { name: 'Network', fields: NETWORK_FIELDS, values: unit.network };
    case 'volume':
      return { name: 'Volume', fields: VOLUME_FIELDS, values: unit.volume };
    case 'pod':
      return { name: 'Pod', fields: POD_FIELDS, values: unit.pod };
  }
}

/** Value forms of a unit that have their own gate. */
function featuresUsed(unit: QuadletUnit): QuadletFeature[] {
  const used: QuadletFeature[] = [];
  const networks = unit.kind === 'container' ? unit.container.network : unit.kind === 'pod' ? unit.pod.network : undefined;
  for (const n of networks ?? []) {
    const name = typeof n === 'string' ? n.split(':')[0] ?? n : n.network;
    const hasOptions = typeof n === 'string' ? n.includes(':') && !/^(container|ns|slirp4netns|pasta):/.test(n) : Object.keys(n).length > 1;
    if (hasOptions) used.push('Network=NAME:options');
    if (name.endsWith('.container')) used.push('Network=NAME.container');
  }
  if (unit.kind === 'container') {
    const c = unit.container;
    if (c.notify === 'healthy') used.push('Notify=healthy');
    if ((c.ulimit?.length ?? 0) > 1) used.push('Ulimit=repeated');
    if ((c.user !== undefined && !/^\d+$/.test(c.user)) || (c.group !== undefined && !/^\d+$/.test(c.group))) {
      used.push('User=name');
    }
    if (c.volume?.some((vol) => vol.startsWith('.'))) used.push('Volume=./relative');
    if (c.image.endsWith('.image')) used.push('Image=NAME.image');
    if (c.image.endsWith('.build')) used.push('Image=NAME.build');
  }
  return [...new Set(used)];
}

/** A field of a section that a Podman version lacks (its gate), or that has no version data (no gate: a podmesh bug). */
interface FieldTooNew {
  readonly prop: string;
  readonly key: string;
  readonly gate?: VersionGate;
}

/** {@link fieldsTooNew}, by field table and version: the tables are constants, and a host's thousand units ask the same. */
const tooNewFields = new WeakMap<object, Map<string, readonly FieldTooNew[]>>();

/**
 * The fields of a section's table, in table order, that `host` does not support yet or that have
 * no version data: the only ones a unit's values need to be looked at for (a host as new as every
 * gate has none, where every field of every unit was looked at).
 */
function fieldsTooNew(name: QuadletSectionName, fields: Readonly<Record<string, FieldSpec>>, host: PodmanVersion): readonly FieldTooNew[] {
  let byVersion = tooNewFields.get(fields);
  if (!byVersion) tooNewFields.set(fields, (byVersion = new Map()));
  const v = `${name}\0${host.major}.${host.minor}`;
  let list = byVersion.get(v);
  if (!list) {
    const gates = QUADLET_KEYS[name] as Readonly<Record<string, VersionGate>>;
    list = fieldEntriesOf(fields).flatMap(([prop, spec]): FieldTooNew[] => {
      const gate = gates[spec.key];
      return !gate ? [{ prop, key: spec.key }] : compareVersions(host, gate.since) < 0 ? [{ prop, key: spec.key, gate }] : [];
    });
    byVersion.set(v, list);
  }
  return list;
}

/** The entries of each field table (constants), listed once: every unit of a host is checked. */
const fieldTables = new WeakMap<object, readonly (readonly [string, { readonly key: string }])[]>();
function fieldEntriesOf<T extends { readonly key: string }>(fields: Readonly<Record<string, T>>): readonly (readonly [string, T])[] {
  let list = fieldTables.get(fields) as readonly (readonly [string, T])[] | undefined;
  if (!list) fieldTables.set(fields, (list = Object.entries(fields)));
  return list;
}

/**
 * Every key and value form of a Quadlet unit that the host's Podman does not support yet, as
 * issues such as ``Quadlet option `NetworkAlias=` was not supported until Podman v5.2 (host runs
 * 4.9). Raise the host's podmanVersion or drop the alias.`` Plain systemd sections are not
 * checked (they depend on systemd, not Podman).
 * @throws PodmeshError for an unparsable version string
 * @see https://docs.podman.io/en/v5.4.2/markdown/podman-systemd.unit.5.html
 */
export function checkUnit(unit: QuadletUnit, version: PodmanVersion | string, path = ''): Issue[] {
  const host = toVersion(version);
  if (compareVersions(host, QUADLET_FLOOR) < 0) {
    return [
      {
        path,
        message: `Quadlet needs Podman ≥ v${formatPodmanVersion(QUADLET_FLOOR)} (host runs ${formatPodmanVersion(host)}). Raise the host's podmanVersion or deploy with compose instead.`,
      },
    ];
  }
  const issues: Issue[] = [];
  const fileGate: FeatureGate = QUADLET_FEATURES[`file:${unit.kind}`];
  if (compareVersions(host, fileGate.since) < 0) issues.push({ path, message: tooNew(fileGate.label, fileGate, host, 'use another unit kind', true) });

  const sections = [resourceSection(unit)];
  if (unit.quadlet) sections.push({ name: 'Quadlet', fields: QUADLET_FIELDS, values: unit.quadlet });
  for (const { name, fields, values } of sections) {
    const record = values as Readonly<Record<string, unknown>>;
    for (const { prop, key, gate } of fieldsTooNew(name, fields, host)) {
      if (!present(record[prop])) continue;
      if (!gate) throw PodmeshError.at(path, `No version data for Quadlet key ${name}.${key} (a podmesh bug).`);
      issues.push({ path, message: tooNew(`Quadlet option \`${key}=\``, gate, host, `drop \`${key}=\``) });
    }
  }
  for (const feature of featuresUsed(unit)) {
    const g: FeatureGate = QUADLET_FEATURES[feature];
    if (compareVersions(host, g.since) < 0) issues.push({ path, message: tooNew(g.label, g, host, 'drop it') });
  }
  return issues;
}
