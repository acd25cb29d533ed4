// Images for running ashchan-dev's Quadlet units unchanged: Quadlet writes the image names and
// commands into `podman run`, and there is no override file as with compose. So local images are
// imported under the very names the units give (Podman's default pull policy, `missing`, then never
// pulls), and each one honours the command its unit runs:
// - the six application images: the Node mTLS sample (examples/mtls-sample/server.mjs) as CMD;
// - postgres: accepts TCP on 5432; `pg_isready` (its generated health check) probes it;
// - redis: `redis-server` refuses to start without a `--requirepass` value (the generated command
//   passes the secret from its env file), then accepts TCP on 6379; `redis-cli … ping` answers PONG;
// - minio: the entrypoint takes the generated `server /data …` and serves HTTPS with the mounted
//   certificate, which the generated curl health check verifies against the mesh CA.
// These are stand-ins (RECIPES.md section 3 image, no real PostgreSQL/Redis/MinIO): the real
// PostgreSQL and Redis images are built on the `images` branch; swap them in here when it lands.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildRootfs } from './image.ts';
import type { Podman54 } from './podman54.ts';

const SHIMS: Readonly<Record<string, string>> = {
  'usr/bin/pg_isready': '#!/bin/sh\nexec /usr/bin/node /app/standin.mjs probe 5432\n',
  'usr/bin/redis-server': [
    '#!/bin/sh',
    '# stand-in: insists on the password the generated command passes, then listens like Redis',
    'pw=',
    'while [ $# -gt 0 ]; do [ "$1" = --requirepass ] && pw=$2; shift; done',
    '[ -n "$pw" ] || { echo "redis-server stand-in: no --requirepass value" >&2; exit 1; }',
    'exec /usr/bin/node /app/standin.mjs tcp 6379',
    '',
  ].join('\n'),
  'usr/bin/redis-cli': '#!/bin/sh\n/usr/bin/node /app/standin.mjs probe 6379 && echo PONG\n',
  'usr/bin/minio': [
    '#!/bin/sh',
    '[ "$1" = server ] || { echo "minio stand-in: usage: minio server DIR ..." >&2; exit 2; }',
    'exec /usr/bin/node /app/standin.mjs https 9000 /root/.minio/certs/public.crt /root/.minio/certs/private.key',
    '',
  ].join('\n'),
};

/** Which kind of image a service of ashchan-dev needs. */
export type ImageRole = 'app' | 'postgres' | 'redis' | 'minio';

const CHANGES: Readonly<Record<ImageRole, readonly string[]>> = {
  app: ['CMD=["/usr/bin/node","/app/server.mjs"]'],
  postgres: ['CMD=["/usr/bin/node","/app/standin.mjs","tcp","5432"]'],
  redis: ['CMD=["/usr/bin/redis-server"]'],
  minio: ['ENTRYPOINT=["/usr/bin/minio"]'],
};

/** Writes the image's files into `dir` (a fresh folder). */
export function buildStandinRootfs(dir: string, busybox: string): void {
  buildRootfs(dir, busybox);
  for (const [path, text] of Object.entries(SHIMS)) {
    writeFileSync(join(dir, path), text);
    chmodSync(join(dir, path), 0o755);
  }
  // Health checks pipe into grep; the data folders the units mount volumes on.
  symlinkSync('busybox', join(dir, 'bin/grep'));
  for (const d of ['data', 'var/lib/postgresql/data']) mkdirSync(join(dir, d), { recursive: true });
}

/** Imports `dir` once per role and tags it with every name in `images`. */
export async function importImages(podman: Podman54, dir: string, images: Readonly<Record<string, ImageRole>>): Promise<void> {
  const env = ['--change', 'ENV=PATH=/usr/bin:/bin'];
  const roles = [...new Set(Object.values(images))];
  for (const role of roles) {
    const base = `localhost/podmesh-quadlet/${role}:1`;
    await podman.importImage(dir, base, [...env, ...CHANGES[role].flatMap((c) => ['--change', c])]);
    for (const [name, r] of Object.entries(images)) {
      if (r !== role) continue;
      const t = await podman.podman(['tag', base, name]);
      if (t.exitCode !== 0) throw new Error(`podman tag ${base} ${name}: ${t.stderr}`);
    }
  }
}
