// manifest.json: every generated file of a stack with its sha256 and, for files a host installs,
// where and how (path, mode, units, reload, restart stage), sorted, without timestamps.
import { hash } from 'node:crypto';
import { compare } from '../io/sort.ts';
import type { Install, RenderedFile } from './file.ts';

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
    digest = hash('sha256', file.content);
    digests.set(file, digest);
  }
  return digest;
}

function entry(path: string, file: RenderedFile, byText: Map<string, string>): ManifestEntry {
  // Renderers give one string for identical texts (Crl.php of every Hyperf service): hashed once.
  let sha256 = digests.get(file) ?? byText.get(file.content);
  if (sha256 === undefined) {
    sha256 = fileSha256(file);
    byText.set(file.content, sha256);
  } else digests.set(file, sha256);
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
  const byText = new Map<string, string>();
  const entries = [...files.keys()].sort(compare).map((path) => entry(path, files.get(path)!, byText));
  const manifest: Manifest = { stack, generator: 'podmesh', files: entries };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** The install of a manifest entry, with its mode as a number. */
export function installOf(e: ManifestEntry): Install | undefined {
  return e.install ? { ...e.install, mode: Number.parseInt(e.install.mode, 8) } : undefined;
}
