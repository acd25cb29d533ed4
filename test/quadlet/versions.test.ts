// Version gates: parsing, the support table over the Podman lines podmesh meets, and the
// data-carrying messages checkUnit() gives for keys that are too new.
import { describe, expect, it } from 'vitest';
import { PodmeshError } from '../../constructs/core/errors.ts';
import {
  CONTAINER_FIELDS,
  NETWORK_FIELDS,
  POD_FIELDS,
  QUADLET_FEATURES,
  QUADLET_FIELDS,
  QUADLET_KEYS,
  VOLUME_FIELDS,
  checkUnit,
  compareVersions,
  parsePodmanVersion,
  supports,
  type ContainerKey,
  type ContainerUnit,
  type QualifiedKey,
  type QuadletFeature,
} from '../../src/render/quadlet/index.ts';

describe('parsePodmanVersion', () => {
  it.each([
    ['4.4', 4, 4],
    ['5.4.2', 5, 4],
    ['v5.2.5', 5, 2],
    ['5.6.0-rc1', 5, 6],
    ['5.4.2+ds1', 5, 4],
    [' 4.9.3 ', 4, 9],
  ])('GIVEN %j THEN %i.%i', (input, major, minor) => {
    expect(parsePodmanVersion(input)).toEqual({ major, minor });
  });

  it.each([['5'], ['latest'], ['5.x'], ['']])('GIVEN %j THEN a PodmeshError says how to write it', (input) => {
    expect(() => parsePodmanVersion(input, 'stack/host')).toThrow(PodmeshError);
    expect(() => parsePodmanVersion(input, 'stack/host')).toThrow(/\[stack\/host\] podmanVersion .* e\.g\. "5\.4"/);
  });

  it('GIVEN versions WHEN compared THEN by major, then minor', () => {
    expect(compareVersions({ major: 4, minor: 9 }, { major: 5, minor: 0 })).toBeLessThan(0);
    expect(compareVersions({ major: 5, minor: 10 }, { major: 5, minor: 9 })).toBeGreaterThan(0);
    expect(compareVersions({ major: 5, minor: 2 }, { major: 5, minor: 2 })).toBe(0);
  });
});

describe('supports', () => {
  const HOSTS = ['4.4', '4.9', '5.0', '5.2', '5.4'] as const;
  // Expected support on 4.4, 4.9, 5.0, 5.2, 5.4.
  const TABLE: readonly [ContainerKey | QualifiedKey | QuadletFeature, readonly boolean[]][] = [
    ['Image', [true, true, true, true, true]],
    ['ContainerName', [true, true, true, true, true]],
    ['PodmanArgs', [true, true, true, true, true]],
    ['IP', [false, true, true, true, true]],
    ['HealthCmd', [false, true, true, true, true]],
    ['HealthStartPeriod', [false, true, true, true, true]],
    ['HostName', [false, true, true, true, true]],
    ['Ulimit', [false, true, true, true, true]],
    ['GlobalArgs', [false, true, true, true, true]],
    ['Entrypoint', [false, false, true, true, true]],
    ['Pod', [false, false, true, true, true]],
    ['NetworkAlias', [false, false, false, true, true]],
    ['StopSignal', [false, false, false, true, true]],
    ['AddHost', [false, false, false, false, true]],
    ['ServiceName', [false, false, false, false, true]],
    ['ReloadCmd', [false, false, false, false, false]],
    ['Network.NetworkName', [false, true, true, true, true]],
    ['Network.PodmanArgs', [false, true, true, true, true]],
    ['Network.InterfaceName', [false, false, false, false, false]],
    ['Volume.VolumeName', [false, true, true, true, true]],
    ['Volume.Driver', [false, true, true, true, true]],
    ['Pod.NetworkAlias', [false, false, false, true, true]],
    ['Pod.ShmSize', [false, false, false, false, true]],
    ['Quadlet.DefaultDependencies', [false, false, false, false, true]],
    ['file:network', [true, true, true, true, true]],
    ['file:pod', [false, false, true, true, true]],
    ['Notify=healthy', [false, false, true, true, true]],
    ['Network=NAME:options', [true, true, true, true, true]],
    ['Network=NAME.container', [false, false, false, false, true]],
    ['User=name', [false, true, true, true, true]],
  ];

  it.each(TABLE)('GIVEN %s WHEN asked for Podman 4.4/4.9/5.0/5.2/5.4 THEN %j', (key, expected) => {
    expect(HOSTS.map((host) => supports(key, host))).toEqual(expected);
  });

  it('GIVEN a version below Quadlet (4.3) THEN nothing is supported', () => {
    expect(supports('Image', '4.3.1')).toBe(false);
  });

  it('GIVEN an unknown key THEN it throws instead of answering false', () => {
    expect(() => supports('NetworkAliases' as ContainerKey, '5.4')).toThrow(/Unknown Quadlet key or feature "NetworkAliases"/);
  });
});

describe('the version table', () => {
  it('GIVEN every modelled Quadlet key THEN it has a version gate with a source', () => {
    const tables = { Container: CONTAINER_FIELDS, Network: NETWORK_FIELDS, Volume: VOLUME_FIELDS, Pod: POD_FIELDS, Quadlet: QUADLET_FIELDS };
    for (const [section, fields] of Object.entries(tables)) {
      const gates = QUADLET_KEYS[section as keyof typeof QUADLET_KEYS] as Record<string, { source: string }>;
      const modelled = Object.values(fields).map((f) => f.key).sort();
      expect(Object.keys(gates).sort(), section).toEqual(modelled);
      for (const key of modelled) expect(gates[key]?.source.length, `${section}.${key}`).toBeGreaterThan(10);
    }
  });

  it('GIVEN every gate THEN none is older than Quadlet itself', () => {
    const all = [...Object.values(QUADLET_KEYS).flatMap((t) => Object.values(t)), ...Object.values(QUADLET_FEATURES)];
    for (const g of all) expect(compareVersions(g.since, { major: 4, minor: 4 })).toBeGreaterThanOrEqual(0);
  });
});

describe('checkUnit', () => {
  const auth: ContainerUnit = {
    kind: 'container',
    container: {
      image: 'docker.io/library/alpine:3',
      network: [{ network: 'mesh.network', ip: '10.90.0.21' }],
      networkAlias: ['auth.ashchan.local'],
      addHost: ['db.ashchan.local:10.90.0.30'],
      healthCmd: '/bin/true',
      notify: 'healthy',
    },
  };

  it('GIVEN a unit with a key too new WHEN checked for 4.9 THEN the message carries key, versions and fix', () => {
    // WHEN
    const issues = checkUnit(auth, '4.9.3', 'ashchan-dev/auth');
    // THEN
    expect(issues).toEqual([
      {
        path: 'ashchan-dev/auth',
        message: "Quadlet option `NetworkAlias=` was not supported until Podman v5.2 (host runs 4.9). Raise the host's podmanVersion or drop the alias.",
      },
      {
        path: 'ashchan-dev/auth',
        message: "Quadlet option `AddHost=` was not supported until Podman v5.3 (host runs 4.9). Raise the host's podmanVersion or drop the host entry.",
      },
      {
        path: 'ashchan-dev/auth',
        message:
          "Quadlet option `Notify=healthy` was not supported until Podman v5.0 (host runs 4.9). Raise the host's podmanVersion or use Notify=false (Podman ≥ 4.7 also takes PodmanArgs=--sdnotify=healthy).",
      },
    ]);
  });

  it.each([
    ['4.4', ['NetworkAlias=', 'AddHost=', 'HealthCmd=', 'Notify=healthy']],
    ['4.9', ['NetworkAlias=', 'AddHost=', 'Notify=healthy']],
    ['5.0', ['NetworkAlias=', 'AddHost=']],
    ['5.2', ['AddHost=']],
    ['5.4', []],
  ])('GIVEN the same unit WHEN checked for %s THEN exactly %j are flagged', (host, flagged) => {
    const found = checkUnit(auth, host).map((i) => /`([^`]+)`/.exec(i.message)?.[1]);
    expect(found).toEqual(flagged);
  });

  it('GIVEN a .pod on 4.9 THEN the file kind itself is flagged', () => {
    expect(checkUnit({ kind: 'pod', pod: { podName: 'web' } }, '4.9').map((i) => i.message)).toEqual([
      "Quadlet `.pod` files were not supported until Podman v5.0 (host runs 4.9). Raise the host's podmanVersion or run the containers without a pod.",
      "Quadlet option `PodName=` was not supported until Podman v5.0 (host runs 4.9). Raise the host's podmanVersion or drop `PodName=`.",
    ]);
  });

  it('GIVEN value forms with their own gates THEN they are flagged', () => {
    const unit: ContainerUnit = {
      kind: 'container',
      container: { image: 'app.image', user: 'www-data', ulimit: ['nofile=1:1', 'nproc=2:2'], network: ['db.container'] },
    };
    const labels = checkUnit(unit, '4.7').map((i) => i.message.split(' was')[0]);
    expect(labels).toEqual([
      'Quadlet option `Network=NAME.container`',
      'Repeating Quadlet option `Ulimit=`',
      'Quadlet option `User=`/`Group=` with a name or specifier',
      'Quadlet option `Image=NAME.image`',
    ]);
  });

  it('GIVEN a network with InterfaceName on 5.4 THEN it is flagged with the 5.6 gate', () => {
    expect(checkUnit({ kind: 'network', network: { interfaceName: 'ashchan-mesh' } }, '5.4.2')[0]?.message).toBe(
      "Quadlet option `InterfaceName=` was not supported until Podman v5.6 (host runs 5.4). Raise the host's podmanVersion or drop the interface name.",
    );
  });

  it('GIVEN Podman below 4.4 THEN one issue says Quadlet is missing altogether', () => {
    expect(checkUnit(auth, '4.3.1', 'stack/h')).toEqual([
      { path: 'stack/h', message: "Quadlet needs Podman ≥ v4.4 (host runs 4.3). Raise the host's podmanVersion or deploy with compose instead." },
    ]);
  });

  it('GIVEN a check failure WHEN thrown as PodmeshError THEN the usual [path] message format', () => {
    const e = new PodmeshError(checkUnit(auth, '5.0', 'ashchan-dev/auth'));
    expect(e.message.split('\n')[0]).toBe(
      "[ashchan-dev/auth] Quadlet option `NetworkAlias=` was not supported until Podman v5.2 (host runs 5.0). Raise the host's podmanVersion or drop the alias.",
    );
  });
});
