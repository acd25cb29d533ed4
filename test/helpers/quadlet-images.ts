// Images for running ashchan-dev's Quadlet units unchanged: Quadlet writes the image names and
// commands into `podman run`, and there is no override file as with compose. So local images are
// imported under the very names the units give (Podman's default pull policy, `missing`, then never
// pulls), and each one honours the command its unit runs:
// - postgres, redis: the real PostgreSQL 15 and Redis 7 images of scripts/build-test-images.sh
//   (the official entrypoints), with the generated env files, volumes, `Exec=` and health checks;
// - the six application images: the PHP 8.2 + Swoole image with the PHP sample
//   (examples/php-sample/server.php) as its CMD: the units give no command for them, as Ashchan's
//   own images start Hyperf by themselves;
// - minio (in no Debian archive): the Node stand-in of RECIPES.md section 3, whose entrypoint takes
//   the generated `server /data …` and serves HTTPS with the mounted certificate, which the
//   generated curl health check verifies against the mesh CA.
import { chmodSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildRootfs, IMPORT_CHANGES } from './image.ts';
import type { Podman54 } from './podman54.ts';
import { importArgs, type ServiceImage, type ServiceImageName } from './service-images.ts';

const MINIO = [
  '#!/bin/sh',
  '# stand-in for MinIO: takes the generated arguments, serves its health endpoint over TLS',
  '[ "$1" = server ] || { echo "minio stand-in: usage: minio server DIR ..." >&2; exit 2; }',
  'exec /usr/bin/node /app/standin.mjs https 9000 /root/.minio/certs/public.crt /root/.minio/certs/private.key',
  '',
].join('\n');

/** Which kind of image a service of ashchan-dev needs. */
export type ImageRole = 'app' | 'postgres' | 'redis' | 'minio' | 'mc';

/** The Node image (verify runs in it; MinIO's stand-in), by this name. */
export const NODE_IMAGE = 'localhost/podmesh-quadlet/node:1';

/** Writes the Node image's files into `dir` (a fresh folder). */
export function buildNodeRootfs(dir: string, busybox: string): void {
  buildRootfs(dir, busybox);
  writeFileSync(join(dir, 'usr/bin/minio'), MINIO);
  chmodSync(join(dir, 'usr/bin/minio'), 0o755);
}

/** Where the inputs are, as seen inside the Podman root. */
export interface ImageSources {
  /** The Node image's root folder. */
  readonly nodeDir: string;
  /** The folder holding the service image tarballs. */
  readonly serviceDir: string;
  readonly service: Readonly<Record<ServiceImageName, ServiceImage>>;
}

/** Imports every image once and tags it with each name in `images` of its role. */
export async function importImages(podman: Podman54, src: ImageSources, images: Readonly<Record<string, ImageRole>>): Promise<void> {
  const fromTar = async (image: ServiceImage, name: string, extra: readonly string[] = []) => {
    const changes = [...image.changes.filter((c) => !extra.some((e) => e.split('=')[0] === c.split('=')[0])), ...extra].map(compactJson);
    const r = await podman.podman(['import', ...importArgs({ ...image, tarball: join(src.serviceDir, basename(image.tarball)), changes }, name)], { timeoutMs: 180_000 });
    if (r.exitCode !== 0) throw new Error(`podman import ${name}: ${r.stderr}`);
  };
  const base: Record<ImageRole, string> = {
    app: 'localhost/podmesh-quadlet/php-sample:8.2',
    postgres: 'localhost/podmesh-quadlet/postgres:15',
    redis: 'localhost/podmesh-quadlet/redis:7',
    minio: 'localhost/podmesh-quadlet/minio-standin:1',
    // MinIO's setup: the Node image (busybox sh, the stand-in mc); the unit's Entrypoint= runs the script.
    mc: NODE_IMAGE,
  };
  await podman.importImage(src.nodeDir, NODE_IMAGE, IMPORT_CHANGES);
  await podman.importImage(src.nodeDir, base.minio, ['--change', 'ENV=PATH=/usr/bin:/bin', '--change', 'ENTRYPOINT=["/usr/bin/minio"]']);
  await fromTar(src.service.php, base.app, ['CMD=["php","/opt/www/server.php"]']);
  await fromTar(src.service.postgres, base.postgres);
  await fromTar(src.service.redis, base.redis);
  for (const [name, role] of Object.entries(images)) {
    const t = await podman.podman(['tag', base[role], name]);
    if (t.exitCode !== 0) throw new Error(`podman tag ${base[role]} ${name}: ${t.stderr}`);
  }
}

/**
 * `CMD=["php", "-a"]` as `CMD=["php","-a"]`: Podman 5.4's `import --change` splits at whitespace
 * before reading the JSON form (`invalid instruction CMD=["PHP",`); Podman 4.3 does not.
 */
function compactJson(change: string): string {
  const eq = change.indexOf('=');
  const v = change.slice(eq + 1);
  return v.startsWith('[') ? `${change.slice(0, eq)}=${JSON.stringify(JSON.parse(v))}` : change;
}
