// The one reader of Podman version strings (a host's `podmanVersion`), shared by the Host props
// check, resolution and the Quadlet version table.
import { PodmeshError } from './errors.ts';

/** A Podman release line; patch releases add no Quadlet keys, so only major.minor matter. */
export interface PodmanVersion {
  /** Major version, e.g. 5. */
  readonly major: number;
  /** Minor version, e.g. 4. */
  readonly minor: number;
}

/**
 * `4.4`, `5.4.2`, `v5.4.2`, `5.6.0-rc1`, `5.4.2+ds1`: major and minor, an optional patch and suffix.
 * A bare `5` is refused: Quadlet keys come with minor releases, so the minor must be said.
 */
const VERSION = /^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+~][0-9A-Za-z.+~-]*)?$/;

/** The version a string names, or undefined when it names none. */
export function readPodmanVersion(input: string): PodmanVersion | undefined {
  const m = VERSION.exec(input.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/**
 * Parses `4.4`, `5.4.2`, `v5.4.2`, `5.6.0-rc1`, `5.4.2+ds1` into `{ major, minor }`.
 * @param path construct path the error is reported at
 * @throws PodmeshError for anything else, saying how to write a version
 */
export function parsePodmanVersion(input: string, path = ''): PodmanVersion {
  const version = readPodmanVersion(input);
  if (!version) {
    throw PodmeshError.at(
      path,
      `podmanVersion ${JSON.stringify(input)} is not a Podman version. Write it as MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. "5.4" or "5.4.2".`,
    );
  }
  return version;
}

/** `{5, 2}` → `5.2`. */
export function formatPodmanVersion(v: PodmanVersion): string {
  return `${v.major}.${v.minor}`;
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`. */
export function compareVersions(a: PodmanVersion, b: PodmanVersion): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}
