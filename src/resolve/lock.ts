// The allocation lock file (`out/<stack>/podmesh.lock.json`): parsed and rendered, never guessed.
import { z } from 'zod';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { formatCidr, type Cidr } from '../../constructs/core/ip.ts';
import type { AllocationLock } from './model.ts';

/** Name of the lock file inside `out/<stack>/`. */
export const LOCK_FILE = 'podmesh.lock.json';

const schema = z.object({
  version: z.literal(1),
  networks: z.record(
    z.string(),
    z.object({ subnet: z.string(), slices: z.record(z.string(), z.string()).optional(), addresses: z.record(z.string(), z.string()) }),
  ),
  wireguard: z
    .object({
      subnet: z.string(),
      hosts: z.record(z.string(), z.object({ address: z.string(), publicKey: z.string().optional() })),
    })
    .optional(),
});

/** Parses a lock file; a broken one is an error naming the file, not a silent re-allocation. */
export function parseLock(text: string, file: string): AllocationLock {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw PodmeshError.at(file, `is not valid JSON (${(e as Error).message}). Restore it from git (git checkout -- ${file}); deleting it lets addresses that were not given explicitly move.`);
  }
  const r = schema.safeParse(data);
  if (!r.success) {
    const where = r.error.issues[0]!.path.join('.');
    throw PodmeshError.at(file, `is not a podmesh lock file (at "${where}": ${r.error.issues[0]!.message}). Restore it from git.`);
  }
  return r.data as AllocationLock;
}

/** Renders a lock with stable key order. */
export function renderLock(lock: AllocationLock): string {
  const networks = Object.fromEntries(Object.keys(lock.networks).sort().map((k) => [k, lock.networks[k]]));
  return `${JSON.stringify({ version: lock.version, networks, ...(lock.wireguard ? { wireguard: lock.wireguard } : {}) }, null, 2)}\n`;
}

/** A host's WireGuard public key as the lock records it (keys belong to hosts, whatever the tunnel subnet). */
export function lockedPublicKey(lock: AllocationLock | undefined, host: string): { publicKey?: string } {
  const key = lock?.wireguard?.hosts[host]?.publicKey;
  return key === undefined ? {} : { publicKey: key };
}

/**
 * The lock a resolution leaves: the networks' slices and addresses, and, for a tunnel, each
 * host's tunnel address with the public key the previous lock recorded.
 */
export function buildLock(
  networks: AllocationLock['networks'],
  tunnel: { readonly subnet: Cidr; readonly addresses: ReadonlyMap<string, string> } | undefined,
  previous: AllocationLock | undefined,
): AllocationLock {
  if (!tunnel) return { version: 1, networks };
  const hosts = [...tunnel.addresses].sort(([a], [b]) => compare(a, b)).map(([h, address]) => [h, { address, ...lockedPublicKey(previous, h) }]);
  return { version: 1, networks, wireguard: { subnet: formatCidr(tunnel.subnet), hosts: Object.fromEntries(hosts) } };
}
