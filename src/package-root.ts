// Where podmesh's own files are (package.json, templates/). This module sits one folder below the
// package root in both forms podmesh runs in: as source (src/) and as the build's bundles (dist/).

/** A file of the podmesh package, by its path from the package root. */
export function packageFile(path: string): URL {
  return new URL(`../${path}`, import.meta.url);
}
