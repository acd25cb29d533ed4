// The allocation lock file (`out/<stack>/podmesh.lock.json`): parsed and rendered, never guessed.
import * as z from 'zod';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { formatCidr, type Cidr } from '../../constructs/core/ip.ts';
import type { AllocationLock } from './model.ts';

/** Name of the lock file inside `out/<stack>/`. */
export const LOCK_FILE = 'podmesh.lock.json';

/** The lock file's schema (zod strips keys it does not name). */
export const LOCK_SCHEMA = z.object({
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
  const plain = wellFormedLock(data);
  if (plain) return plain;
  const r = LOCK_SCHEMA.safeParse(data);
  if (!r.success) {
    const where = r.error.issues[0]!.path.join('.');
    throw PodmeshError.at(file, `is not a podmesh lock file (at "${where}": ${r.error.issues[0]!.message}). Restore it from git.`);
  }
  return r.data as AllocationLock;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A record of strings copied as zod's record gives it (own keys in order), or undefined when it is not one. */
function strings(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, string> = {};
  for (const k of Object.keys(v)) {
    const x = v[k];
    if (typeof x !== 'string' || k === '__proto__') return undefined;
    out[k] = x;
  }
  return out;
}

/** A record of objects, each read by `one`, or undefined when any is not one. */
function records<T>(v: unknown, one: (x: Json) => T | undefined): Record<string, T> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, T> = {};
  for (const k of Object.keys(v)) {
    const x = v[k];
    const r = isObject(x) && k !== '__proto__' ? one(x) : undefined;
    if (r === undefined) return undefined;
    out[k] = r;
  }
  return out;
}

/**
 * The lock `schema` gives for parsed JSON of the usual shape, built the way zod builds it (known
 * keys in the schema's order, unknown ones dropped), without zod's generic walk (about 16 ms of
 * CPU for a 1,000-service lock, most of it before the JIT warms up); undefined for anything else,
 * which zod then parses and, when it is wrong, words.
 */
function wellFormedLock(data: unknown): AllocationLock | undefined {
  if (!isObject(data) || data.version !== 1) return undefined;
  const networks = records(data.networks, (n) => {
    if (typeof n.subnet !== 'string') return undefined;
    const slices = n.slices === undefined ? undefined : strings(n.slices);
    const addresses = strings(n.addresses);
    if ((n.slices !== undefined && !slices) || !addresses) return undefined;
    return { subnet: n.subnet, ...(slices ? { slices } : {}), addresses };
  });
  if (!networks) return undefined;
  if (data.wireguard === undefined) return { version: 1, networks };
  const wg = data.wireguard;
  if (!isObject(wg) || typeof wg.subnet !== 'string') return undefined;
  const hosts = records(wg.hosts, (h) => {
    if (typeof h.address !== 'string' || (h.publicKey !== undefined && typeof h.publicKey !== 'string')) return undefined;
    return { address: h.address, ...(h.publicKey !== undefined ? { publicKey: h.publicKey as string } : {}) };
  });
  return hosts ? { version: 1, networks, wireguard: { subnet: wg.subnet, hosts } } : undefined;
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
