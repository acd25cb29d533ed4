// Where a host's WireGuard endpoint runs (stack `wireguard.mode`, host `wireguard.mode`).

/** Every {@link WireguardMode}. */
export const WIREGUARD_MODES = ['host', 'container'] as const;

/**
 * `host`: a wg-quick interface of the host itself (rootful hosts); `container`: a userspace
 * WireGuard gateway container on the stack's network, which rootless Podman can run.
 */
export type WireguardMode = (typeof WIREGUARD_MODES)[number];
