// A container image without a registry (RECIPES.md section 3): node, curl, getent and a static
// busybox with the libraries they link, plus the sample mTLS service, imported with `podman import`.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from './tools.ts';

/** Binaries copied into the image (source on this machine, place in the image), with every library `ldd` lists. */
const BINARIES: readonly (readonly [string, string])[] = [
  // The node running the tests, wherever it is installed (NodeSource, nvm, Debian).
  [process.execPath, '/usr/bin/node'],
  ['/usr/bin/curl', '/usr/bin/curl'],
  ['/usr/bin/getent', '/usr/bin/getent'],
];
/** NSS modules: `hosts: files dns` needs them at run time (ldd does not list them). */
const NSS = ['libnss_files.so.2', 'libnss_dns.so.2', 'libresolv.so.2'];

function libsOf(binary: string): string[] {
  const text = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return [...text.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
}

function copy(root: string, file: string, place = file): void {
  const target = join(root, place);
  if (existsSync(target)) return;
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(realpathSync(file), target);
  chmodSync(target, 0o755);
}

/** Fills `root` with the image's files. */
export function buildRootfs(root: string, busybox: string): void {
  for (const [source, place] of BINARIES) {
    copy(root, source, place);
    for (const lib of libsOf(source)) copy(root, lib);
  }
  const libDir = dirname(libsOf('/usr/bin/getent').find((l) => l.includes('libc.so'))!);
  for (const lib of NSS) if (existsSync(join(libDir, lib))) copy(root, join(libDir, lib));
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(busybox, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'ls', 'sleep', 'nc', 'env', 'true', 'false', 'mkdir', 'cp']) symlinkSync('busybox', join(root, 'bin', applet));
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/nsswitch.conf'), 'hosts: files dns\npasswd: files\ngroup: files\n');
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  for (const d of ['tmp', 'root', 'app']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  for (const f of ['server.mjs', 'standin.mjs']) copyFileSync(join(repoRoot, 'examples/mtls-sample', f), join(root, 'app', f));
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  writeFileSync(join(root, 'usr/bin/mc'), MC);
  chmodSync(join(root, 'usr/bin/mc'), 0o755);
}

/**
 * A stand-in for MinIO's client (in no Debian archive), for MinIO's setup container, which runs
 * the generated script unchanged: it takes the calls the script makes, reads the secret keys the
 * script sends on stdin, and checks that mc's configuration folder trusts the mesh CA. MinIO's
 * stand-in keeps no users: test/minio-users.test.ts checks the script's calls in detail.
 */
const MC = [
  '#!/bin/sh',
  'case "$1 $2" in',
  '"alias set") IFS= read -r secret && [ -n "$secret" ] && [ -s "$MC_CONFIG_DIR/certs/CAs/podmesh-ca.crt" ] || { echo "mc stand-in: no secret key on stdin or no CA" >&2; exit 1; } ;;',
  '"admin user") IFS= read -r secret && [ -n "$secret" ] || { echo "mc stand-in: no secret key on stdin" >&2; exit 1; } ;;',
  'esac',
  'echo "mc stand-in: $*"',
  '',
].join('\n');

/** `podman import` arguments that give the image a PATH and node as its command. */
export const IMPORT_CHANGES = ['--change', 'ENV=PATH=/usr/bin:/bin', '--change', 'CMD=["/usr/bin/node"]'];

/**
 * A root filesystem of this machine's own programs: each binary (source, place in the image) with
 * every library `ldd` lists, a static busybox as `/bin/busybox` with the given applets beside it,
 * and the given empty folders. The image then runs the very programs the loopback tests run.
 */
export function binariesRootfs(root: string, binaries: readonly (readonly [string, string])[], busybox: string, applets: readonly string[], folders: readonly string[] = []): void {
  for (const [source, place] of binaries) {
    copy(root, source, place);
    for (const lib of libsOf(source)) copy(root, lib);
  }
  copy(root, busybox, '/bin/busybox');
  for (const applet of applets) symlinkSync('busybox', join(root, 'bin', applet));
  for (const d of ['tmp', 'run', 'etc', ...folders]) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
}
