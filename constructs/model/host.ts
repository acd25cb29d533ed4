// A machine that runs part of a stack with Podman.
import { Construct } from 'constructs';
import * as z from 'zod';
import { checkProps } from '../core/props.ts';
import { uniqueId } from '../core/unique.ts';
import { DNS_LABEL } from '../core/names.ts';
import { parseIp } from '../core/ip.ts';
import { compareVersions, readPodmanVersion } from '../core/podman-version.ts';
import { WIREGUARD_MODES, type WireguardMode } from '../core/wireguard-mode.ts';

/** Podman 4.4, the first release with Quadlet. */
const QUADLET_FLOOR = { major: 4, minor: 4 };

/** Options of a Host. */
export interface HostProps {
  /**
   * Podman version the host runs; output uses only what that version supports. 4.4 is the floor
   * (the first release with Quadlet).
   * @default '5.4'
   */
  readonly podmanVersion?: string;
  /**
   * Run the mesh as an unprivileged user (units in `~/.config/containers/systemd/`) rather than
   * as root (`/etc/containers/systemd/`). A rootless host of a multi-host stack runs its WireGuard
   * endpoint in a gateway container (`wireguard: { mode: 'container' }`, its default there).
   * @default - true on single-host stacks, false on multi-host stacks
   */
  readonly rootless?: boolean;
  /**
   * Where other hosts reach this one over the underlay, `address:port` or `name:port`
   * (the WireGuard endpoint of multi-host stacks).
   * @default - none; required when the stack has more than one host
   */
  readonly endpoint?: string;
  /**
   * The host's address in the WireGuard tunnel subnet.
   * @default - allocated from the stack's tunnel subnet and kept in the lock file
   */
  readonly tunnelAddress?: string;
  /**
   * The packet filter the host's generated firewall rules are written for: `iptables` (the
   * `iptables` command, legacy or nft-based, as netavark's iptables driver uses) or `nftables`
   * (an own `nft` table, for hosts whose netavark uses its nftables driver, as Debian 13's
   * netavark 1.14 does by default). Pick the one netavark uses on the host (`firewall_driver` in
   * containers.conf, else netavark's built-in default): only rules of the same kind keep the
   * containers' real source addresses, because a masquerade in netavark's table cannot be
   * skipped from another.
   * @default 'iptables'
   * @see https://github.com/containers/netavark/blob/main/docs/netavark.1.md
   */
  readonly firewall?: Firewall;
  /**
   * Where this host's WireGuard endpoint runs (multi-host stacks): overrides the stack's
   * `wireguard.mode`. `container` (a userspace WireGuard gateway container on the stack's network)
   * works rootless and needs Podman 4.6 or later (network routes); `host` (wg-quick on the host)
   * needs a rootful host.
   * @default - the stack's `wireguard.mode`, else 'container' on rootless hosts and 'host' on rootful ones
   */
  readonly wireguard?: { readonly mode?: WireguardMode };
}

/** The packet filters podmesh writes host firewall rules for. */
export const FIREWALLS = ['iptables', 'nftables'] as const;
/** A host's packet filter: see {@link HostProps.firewall}. */
export type Firewall = (typeof FIREWALLS)[number];

const ENDPOINT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** What is wrong with a well-formed endpoint's port or IPv4 address (`99999` would reach wg as 34463). */
function endpointProblem(endpoint: string): string | undefined {
  if (!ENDPOINT.test(endpoint)) return undefined; // the format check says what is wrong
  const colon = endpoint.lastIndexOf(':');
  const address = endpoint.slice(0, colon);
  const port = Number(endpoint.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `port ${endpoint.slice(colon + 1)} is outside 1-65535; WireGuard's default is 51820`;
  if (/^[0-9.]+$/.test(address) && parseIp(address) === undefined) return `"${address}" is not an IPv4 address (four numbers 0-255, e.g. 198.51.100.10)`;
  return undefined;
}

const schema = z.object({
  podmanVersion: z
    .string()
    .refine((v) => readPodmanVersion(v) !== undefined, { error: 'must look like "5.4" or "4.9.3"' })
    .refine(
      (v) => {
        const version = readPodmanVersion(v);
        return version === undefined || compareVersions(version, QUADLET_FLOOR) >= 0; // undefined: reported above
      },
      { error: 'must be 4.4 or later: Quadlet first shipped with Podman 4.4' },
    )
    .optional(),
  rootless: z.boolean().optional(),
  endpoint: z
    .string()
    .regex(ENDPOINT, {
      error: 'must be "address:port" or "name:port", e.g. "198.51.100.10:51820"',
    })
    .refine((v) => endpointProblem(v) === undefined, { error: (i) => endpointProblem(String(i.input)) ?? '' })
    .optional(),
  tunnelAddress: z.string().refine((v) => parseIp(v) !== undefined, { error: (i) => `${JSON.stringify(String(i.input))} is not an IPv4 address` }).optional(),
  firewall: z.enum(FIREWALLS).optional(),
  wireguard: z.object({ mode: z.enum(WIREGUARD_MODES).optional() }).strict().optional(),
});

/** A machine running Podman, on which services are placed. */
export class Host extends Construct {
  /** Podman version string as given. */
  public readonly podmanVersion: string;
  /** Rootless (user units) or rootful (system units), as given; the resolver applies the default. */
  public readonly rootless?: boolean;
  /** Underlay endpoint, `address:port`. */
  public readonly endpoint?: string;
  /** Tunnel address as given. */
  public readonly tunnelAddress?: string;
  /** The packet filter its firewall rules are written for. */
  public readonly firewall: Firewall;
  /** Where its WireGuard endpoint runs, as given; the resolver applies the default. */
  public readonly wireguardMode?: WireguardMode;

  constructor(scope: Construct, id: string, props: HostProps = {}) {
    super(scope, uniqueId(scope, id));
    const p = checkProps(this, schema, props);
    if (!DNS_LABEL.test(id)) {
      this.node.addValidation({ validate: () => [`host name "${id}" must be a lower-case DNS label`] });
    }
    this.podmanVersion = p.podmanVersion ?? '5.4';
    this.rootless = p.rootless;
    this.endpoint = p.endpoint;
    this.tunnelAddress = p.tunnelAddress;
    this.firewall = p.firewall ?? 'iptables';
    this.wireguardMode = p.wireguard?.mode;
  }

  /** Whether a construct is a Host. */
  static isHost(x: unknown): x is Host {
    return x instanceof Host;
  }
}
