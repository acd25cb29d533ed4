// The step that hands the tunnel's public keys (src/state/wireguard: generated or kept with the
// state) to the resolved model: the lock file records them and the renderers read them.
import type { ResolvedStack } from './model.ts';

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
