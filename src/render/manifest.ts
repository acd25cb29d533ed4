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

function entry(path: string, file: RenderedFile): ManifestEntry {
  const sha256 = hash('sha256', file.content);
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
  const entries = [...files.keys()].sort(compare).map((path) => entry(path, files.get(path)!));
  const manifest: Manifest = { stack, generator: 'podmesh', files: entries };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** The install of a manifest entry, with its mode as a number. */
export function installOf(e: ManifestEntry): Install | undefined {
  return e.install ? { ...e.install, mode: Number.parseInt(e.install.mode, 8) } : undefined;
}
