// The end-to-end test's real service images (RECIPES.md section 8): PostgreSQL 15 and Redis 7 with
// the official images' entrypoints, and PHP 8.2 with the Swoole build and the PHP sample, built from
// Debian packages by scripts/build-test-images.sh into a cache outside the clone and imported here
// with `podman import`, so no registry is involved.
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTool, inCI, repoRoot } from './tools.ts';

export const SERVICE_IMAGES = ['postgres', 'redis', 'php'] as const;
export type ServiceImageName = (typeof SERVICE_IMAGES)[number];

/** A built image: its root filesystem tarball and the Dockerfile lines to replay on import. */
export interface ServiceImage {
  readonly name: ServiceImageName;
  readonly tarball: string;
  /** `podman import --change` values, e.g. `ENTRYPOINT=["docker-entrypoint.sh"]`. */
  readonly changes: readonly string[];
}

const SCRIPT = join(repoRoot, 'scripts/build-test-images.sh');

/** What is missing to build the images, with how to get it; undefined when nothing is. */
export function serviceImagesMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'root (mmdebstrap builds the images in root mode)';
  if (!findTool('mmdebstrap')) return 'mmdebstrap: apt-get install mmdebstrap (or run scripts/install-validators.sh)';
  if (!existsSync(join(repoRoot, '../shared/vendor/docker-library'))) return '../shared/vendor/docker-library (the official images\' entrypoints, beside the project)';
  if (!existsSync(join(repoRoot, '.cache/swoole.so'))) return '.cache/swoole.so: run scripts/install-validators.sh (builds Swoole)';
  if (!existsSync(join(repoRoot, 'examples/php-sample/server.php'))) return 'examples/php-sample/server.php (the PHP sample service)';
  return undefined;
}

/** True when the images can be built. Missing under CI: throws; elsewhere: warns and returns false. */
export function serviceImagesReady(): boolean {
  const missing = serviceImagesMissing();
  if (!missing) return true;
  if (inCI) throw new Error(`the end-to-end service images need ${missing}`);
  console.warn(`skipping the end-to-end test: its service images need ${missing}`);
  return false;
}

/**
 * Builds (or finds in the cache) every service image. A first build takes about two minutes
 * (mostly downloads, the three side by side); a cached one well under a second.
 */
export async function buildServiceImages(timeoutMs = 600_000): Promise<Record<ServiceImageName, ServiceImage>> {
  const r = await execa('bash', [SCRIPT, ...SERVICE_IMAGES], { reject: false, timeout: timeoutMs });
  if (r.exitCode !== 0) throw new Error(`scripts/build-test-images.sh failed (${r.exitCode}):\n${r.stderr}`);
  const images: Partial<Record<ServiceImageName, ServiceImage>> = {};
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [name, tarball, changes] = line.split('\t') as [ServiceImageName, string, string];
    images[name] = { name, tarball, changes: readFileSync(changes, 'utf8').split('\n').filter(Boolean) };
  }
  for (const name of SERVICE_IMAGES) if (!images[name]) throw new Error(`scripts/build-test-images.sh printed no ${name} image:\n${r.stdout}`);
  return images as Record<ServiceImageName, ServiceImage>;
}

/** `podman import` arguments for an image (after `podman … import`): changes, tarball, reference. */
export function importArgs(image: ServiceImage, reference: string): string[] {
  return [...image.changes.flatMap((c) => ['--change', c]), image.tarball, reference];
}
