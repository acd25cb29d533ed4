// Public API of the WireGuard key state: keys in wg's form, the per-stack reconcile, and the step
// that hands the public keys to the resolved model (lock file and renderers).
import type { ResolvedStack } from '../../resolve/model.ts';
import type { TunnelHostKey } from './reconcile.ts';

export { withPublicKeys } from '../../resolve/public-keys.ts';

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
