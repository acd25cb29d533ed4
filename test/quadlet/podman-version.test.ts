// The one Podman version parser: what it reads, what it refuses and how it says so, and that the
// Host props check and resolution read a version the way it does.
import { describe, expect, it } from 'vitest';
import { propIssues } from '../../constructs/core/props.ts';
import { parsePodmanVersion, readPodmanVersion } from '../../constructs/core/podman-version.ts';
import { parsePodmanVersion as fromVersionTable } from '../../src/render/quadlet/index.ts';
import { App, Host, Network, Stack } from '../../src/index.ts';
import { resolveStack } from '../../src/resolve/resolve.ts';
import { podmeshError } from '../helpers/errors.ts';
import { svc } from '../helpers/stacks.ts';

const GOOD: readonly [string, number, number][] = [
  ['4.4', 4, 4],
  ['5.4.2', 5, 4],
  ['v5.4.2', 5, 4],
  ['5.6.0-rc1', 5, 6],
  ['5.4.2+ds1', 5, 4],
  ['4.10', 4, 10],
];

const BAD: readonly string[] = ['5', 'latest', '5.x', '', '5.4.2.1', 'five.four'];

describe('parsePodmanVersion', () => {
  it.each(GOOD)('GIVEN %j THEN %i.%i', (input, major, minor) => {
    expect(parsePodmanVersion(input)).toEqual({ major, minor });
    expect(readPodmanVersion(input)).toEqual({ major, minor });
  });

  it.each(BAD)('GIVEN %j THEN an error at the construct saying how to write a version', (input) => {
    const e = podmeshError(() => parsePodmanVersion(input, 'stack/h'));
    expect(e.message).toBe(`[stack/h] podmanVersion ${JSON.stringify(input)} is not a Podman version. Write it as MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. "5.4" or "5.4.2".`);
    expect(readPodmanVersion(input)).toBeUndefined();
  });

  it('GIVEN the version table THEN it uses the same parser', () => {
    expect(fromVersionTable).toBe(parsePodmanVersion);
  });
});

describe('a host\'s podmanVersion, read by the one parser', () => {
  const hostWith = (podmanVersion: string) => {
    const stack = new Stack(new App(), 's', { project: 's' });
    const host = new Host(stack, 'h', { podmanVersion });
    new Network(stack, 'mesh', { subnet: '10.96.0.0/24', domain: 's.local' });
    svc(stack, 'api');
    return { stack, host };
  };

  it.each(GOOD)('GIVEN %j THEN the Host accepts it and resolution records %i.%i', (input, major, minor) => {
    const { stack, host } = hostWith(input);
    expect(propIssues(host)).toEqual([]);
    expect(resolveStack(stack).hosts[0]!.podmanVersion).toEqual({ major, minor });
  });

  it.each(BAD)('GIVEN %j THEN the Host refuses it', (input) => {
    expect(propIssues(hostWith(input).host).map((i) => i.message)).toEqual(['podmanVersion: must look like "5.4" or "4.9.3"']);
  });

  it('GIVEN a version before Quadlet THEN the Host refuses it with the floor', () => {
    expect(propIssues(hostWith('4.3.2').host).map((i) => i.message)).toEqual(['podmanVersion: must be 4.4 or later: Quadlet first shipped with Podman 4.4']);
  });
});
