// Finds the real tools that judge podmesh output. Under CI a missing tool fails the test loudly;
// elsewhere the test is skipped with a message saying how to install it.
import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const LOCAL_BIN = join(ROOT, '.cache/bin');

/** How to get each tool, shown when it is missing. */
const INSTALL: Record<string, string> = {
  kubectl: 'install kubectl (Debian: apt-get install kubectl from the Kubernetes apt repository, or the google-cloud-sdk kubectl component); only its client side runs',
  'docker-compose': 'run `scripts/install-validators.sh` (Docker Compose v2 from Debian trixie, see RECIPES.md)',
  'podman-compose': 'run `scripts/install-validators.sh` (podman-compose 1.3 from Debian trixie)',
  quadlet: 'run `scripts/install-validators.sh` (Quadlet 5.4 from Debian trixie)',
  'systemd-analyze': 'apt-get install systemd',
  openssl: 'apt-get install openssl',
  wg: 'apt-get install wireguard-tools',
  'wg-quick': 'apt-get install wireguard-tools',
  'wireguard-go': 'apt-get install wireguard-go',
  nft: 'apt-get install nftables (or run `scripts/install-validators.sh`)',
  iptables: 'apt-get install iptables',
  podman: 'apt-get install podman runc',
  php: 'apt-get install php-cli',
  curl: 'apt-get install curl',
  chromium: 'apt-get install chromium (or run `scripts/install-validators.sh`)',
  age: 'apt-get install age (or run `scripts/install-validators.sh`)',
  'age-keygen': 'apt-get install age (or run `scripts/install-validators.sh`)',
};

/** Absolute path of a tool from `.cache/bin` or PATH, or undefined. */
export function findTool(name: string): string | undefined {
  for (const dir of [LOCAL_BIN, ...(process.env.PATH ?? '').split(delimiter)]) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/** True when running under CI, where every validator must be present. */
export const inCI = Boolean(process.env.CI);

/**
 * The tool's path. Missing under CI: throws, failing the test. Missing elsewhere: returns
 * undefined after a console note; callers use `describe.skipIf(!tool)`.
 */
export function tool(name: string): string | undefined {
  const path = findTool(name);
  if (path) return path;
  const how = INSTALL[name] ?? `install ${name}`;
  if (inCI) throw new Error(`${name} is required under CI but was not found: ${how}`);
  console.warn(`skipping tests that need ${name}: ${how}`);
  return undefined;
}

/** Repository root. */
export const repoRoot = ROOT;
