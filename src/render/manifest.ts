// manifest.json: every generated file of a stack with its sha256 and, for files a host installs,
// where and how (path, mode, units, reload, restart stage), sorted, without timestamps.
import { textSha256 } from '../io/text-bytes.ts';
import { compare } from '../io/sort.ts';
import type { Install, RenderedFile } from './file.ts';
import { progress } from './progress.ts';

/** Name of the manifest inside `out/<stack>/`. */
export const MANIFEST = 'manifest.json';

/** An install as the manifest records it: the mode in octal (`"0600"`). */
export type ManifestInstall = Omit<Install, 'mode'> & { readonly mode: string };

/** One file of the manifest. */
export interface ManifestEntry {
  readonly path: string;
  readonly sha256: string;
  readonly install?: ManifestInstall;
}

/** A stack's `manifest.json`. */
export interface Manifest {
  readonly stack: string;
  readonly generator: 'podmesh';
  readonly files: readonly ManifestEntry[];
}

/** The sha256 of each rendered file hashed so far: kept while the file object lives. */
const digests = new WeakMap<RenderedFile, string>();

/**
 * The hex sha256 of a rendered file's UTF-8 bytes (as written to out/), computed once per file
 * object: {@link renderManifest} hashes every file, and later readers of the same files reuse it.
 */
export function fileSha256(file: RenderedFile): string {
  let digest = digests.get(file);
  if (digest === undefined) {
    digest = textSha256(file.content);
    digests.set(file, digest);
  }
  return digest;
}

/**
 * Texts already hashed, by length: a few per length, compared with `===` (the same string object,
 * as renderers give for identical texts such as every service's Crl.php, is equal at once; texts
 * that differ mostly differ early). Keying a map by the texts themselves would hash every one
 * of them twice (once for the map); a short list per length (the oldest giving way) keeps the
 * worst case linear.
 */
type Hashed = Map<number, { readonly text: string; readonly sha256: string }[]>;
const PER_LENGTH = 4;

function entry(path: string, file: RenderedFile, hashed: Hashed): ManifestEntry {
  let sha256 = digests.get(file);
  if (sha256 === undefined) {
    const same = hashed.get(file.content.length);
    sha256 = same?.find((h) => h.text === file.content)?.sha256;
    if (sha256 !== undefined) digests.set(file, sha256);
    else {
      sha256 = fileSha256(file);
      if (!same) hashed.set(file.content.length, [{ text: file.content, sha256 }]);
      else {
        // The oldest gives way: a text repeated through the stack (one per service) stays.
        if (same.length === PER_LENGTH) same.shift();
        same.push({ text: file.content, sha256 });
      }
    }
  }
  const i = file.install;
  if (!i) return { path, sha256 };
  const install: ManifestInstall = {
    host: i.host,
    path: i.path,
    mode: `0${i.mode.toString(8)}`,
    units: [...i.units],
    unitFile: i.unitFile,
    reloadable: i.reloadable,
    stage: i.stage,
    enable: i.enable,
  };
  return { path, sha256, install };
}

/** Renders the manifest of `files` (which must not contain the manifest itself). */
export function renderManifest(stack: string, files: ReadonlyMap<string, RenderedFile>): string {
  const hashed: Hashed = new Map();
  const entries = [...files.keys()].sort(compare).map((path) => {
    progress();
    return entry(path, files.get(path)!, hashed);
  });
  const manifest: Manifest = { stack, generator: 'podmesh', files: entries };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** The install of a manifest entry, with its mode as a number. */
export function installOf(e: ManifestEntry): Install | undefined {
  return e.install ? { ...e.install, mode: Number.parseInt(e.install.mode, 8) } : undefined;
}
