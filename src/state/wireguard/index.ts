// Public API of the WireGuard key state: keys in wg's form, the per-stack reconcile, and the step
// that hands the public keys to the resolved model (lock file and renderers).
import type { ResolvedStack } from '../../resolve/model.ts';
import type { TunnelHostKey } from './reconcile.ts';

export { isWireguardKey, nodeKeySource, publicKeyOf, wireguardKeySource, type WireguardKeySource } from './keys.ts';
export {
  WIREGUARD_DIR,
  applyWireguardKeys,
  hostKeyFile,
  planWireguardKeys,
  presharedKeyFile,
  wireguardReconciler,
  type KeyAction,
  type WireguardInput,
  type TunnelHostKey,
  type WireguardKeysOptions,
  type WireguardPlan,
  type WireguardResult,
} from './reconcile.ts';

/** The tunnel's hosts with their construct paths and locked public keys; empty for single-host stacks. */
export function tunnelHosts(stack: ResolvedStack): TunnelHostKey[] {
  return (stack.wireguard?.peers ?? []).map((p) => ({
    host: p.host,
    path: stack.hosts.find((h) => h.name === p.host)?.path ?? `${stack.name}/${p.host}`,
    ...(p.publicKey !== undefined ? { publicKey: p.publicKey } : {}),
  }));
}

/**
 * The stack with every tunnel host's public key set, in the lock and on the peers, so that the
 * lock file records them and renderers read them. A stack without a tunnel is returned as is.
 */
export function withPublicKeys(stack: ResolvedStack, publicKeys: Readonly<Record<string, string>>): ResolvedStack {
  const wg = stack.wireguard;
  const locked = stack.lock.wireguard;
  if (!wg || !locked) return stack;
  const keyOf = (host: string, current: string | undefined) => publicKeys[host] ?? current;
  const withKey = <T extends { readonly publicKey?: string }>(host: string, value: T): T => {
    const key = keyOf(host, value.publicKey);
    return key === undefined ? value : { ...value, publicKey: key };
  };
  return {
    ...stack,
    lock: {
      ...stack.lock,
      wireguard: { ...locked, hosts: Object.fromEntries(Object.entries(locked.hosts).map(([h, v]) => [h, withKey(h, v)])) },
    },
    wireguard: { ...wg, peers: wg.peers.map((p) => withKey(p.host, p)) },
  };
}
