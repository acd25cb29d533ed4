// The mesh network: a bridge with a subnet and a DNS domain, sliced per host in multi-host stacks.
import { Construct } from 'constructs';
import * as z from 'zod';
import { checkProps } from '../core/props.ts';
import { uniqueId } from '../core/unique.ts';
import { INTERFACE_NAME, isDnsName } from '../core/names.ts';
import { parseCidr, parseIp } from '../core/ip.ts';

/** Options of a Network. */
export interface NetworkProps {
  /**
   * IPv4 subnet of the mesh, e.g. `10.90.0.0/24`.
   * @see https://docs.podman.io/en/latest/markdown/podman-network-create.1.html
   */
  readonly subnet: string;
  /**
   * Gateway address of the bridge (aardvark-dns answers there).
   * @default - the first address of the subnet (of the host's slice in multi-host stacks)
   */
  readonly gateway?: string;
  /** DNS domain of the services: each service is `<name>.<domain>`, e.g. `ashchan.local`. */
  readonly domain: string;
  /**
   * Name of the Linux bridge interface (at most 15 characters). Quadlet sets it from Podman 4.6 on
   * (`PodmanArgs=--interface-name`, `InterfaceName=` from 5.6); a host on 4.4-4.5 cannot, so
   * giving it there is an error rather than a bridge quietly called `podmanN`.
   * @default - the network's name, when it fits in 15 characters
   * @see https://docs.podman.io/en/latest/markdown/podman-network-create.1.html#interface-name-name
   */
  readonly bridgeName?: string;
  /**
   * Name of the Podman network.
   * @default - the construct id
   */
  readonly name?: string;
  /**
   * Keep containers of this network off the outside world (`internal: true`).
   * @default false
   */
  readonly internal?: boolean;
  /**
   * Per-host slices of the subnet in multi-host stacks, by host id, e.g.
   * `{ edge: '10.90.0.0/26', app: '10.90.0.64/26' }`. Each host's bridge uses its slice, so
   * routes between hosts are plain L3 over WireGuard.
   * @default - equal slices in host order, kept in the lock file once given out
   */
  readonly slices?: Readonly<Record<string, string>>;
}

const ip = z.string().refine((v) => parseIp(v) !== undefined, { error: (i) => `${JSON.stringify(String(i.input))} is not an IPv4 address` });

const schema = z.object({
  subnet: z.string().superRefine((v, ctx) => {
    const r = parseCidr(v);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.reason });
  }),
  gateway: ip.optional(),
  domain: z.string().refine(isDnsName, {
    error: (i) => `${JSON.stringify(String(i.input))} is not a DNS domain (lower-case labels separated by dots, e.g. "ashchan.local")`,
  }),
  bridgeName: z
    .string()
    .regex(INTERFACE_NAME, { error: 'must be 1-15 characters of letters, digits, "_", "." or "-" (a Linux interface name)' })
    .optional(),
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, { error: 'must start with a letter or digit and hold only letters, digits, "_", "." and "-"' }).optional(),
  internal: z.boolean().optional(),
  slices: z
    .record(z.string(), z.string())
    .superRefine((slices, ctx) => {
      for (const [host, cidr] of Object.entries(slices)) {
        const r = parseCidr(cidr);
        if (!r.ok) ctx.addIssue({ code: 'custom', path: [host], message: r.reason });
      }
    })
    .optional(),
});

/** A bridge network with a subnet and a DNS domain. */
export class Network extends Construct {
  /** Subnet as given. */
  public readonly subnet: string;
  /** Gateway as given, if any. */
  public readonly gateway?: string;
  /** DNS domain of the services on this network. */
  public readonly domain: string;
  /** Bridge interface name, if given. */
  public readonly bridgeName?: string;
  /** Podman network name. */
  public readonly networkName: string;
  /** Whether the network is internal. */
  public readonly internal: boolean;
  /** Explicit per-host slices. */
  public readonly slices: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, uniqueId(scope, id));
    const p = checkProps(this, schema, props);
    this.subnet = p.subnet;
    this.gateway = p.gateway;
    this.domain = p.domain;
    this.bridgeName = p.bridgeName;
    this.networkName = p.name ?? id;
    this.internal = p.internal ?? false;
    this.slices = p.slices ?? {};
  }

  /** Whether a construct is a Network. */
  static isNetwork(x: unknown): x is Network {
    return x instanceof Network;
  }
}
