// A stack is one environment (ashchan-dev, ashchan-prod): the unit of synth, state and output.
import { Construct } from 'constructs';
import * as z from 'zod';
import { DNS_LABEL, INTERFACE_NAME, WAIT_DURATION_ERROR, isDnsName, isWaitDuration, trustDomainProblem } from './names.ts';
import { parseCidr } from './ip.ts';
import type { KeyType } from '../model/certificates.ts';
import { PodmeshError } from './errors.ts';
import { checkProps } from './props.ts';
import { uniqueId } from './unique.ts';
import { WIREGUARD_MODES, type WireguardMode } from './wireguard-mode.ts';

/** Options of a Stack. */
export interface StackProps {
  /**
   * Project name: the compose project, and the prefix of container, volume and unit names.
   * @default - the stack's id
   * @see https://github.com/compose-spec/compose-spec/blob/main/spec.md#name-top-level-element
   */
  readonly project?: string;
  /**
   * One line saying what the stack is for, shown in TOPOLOGY.md.
   * @default - none
   */
  readonly description?: string;
  /**
   * The stack's certificate authorities.
   * @default - root `<project>-ca` for 10 years, client CA named after the mesh domain, ECDSA P-256
   */
  readonly pki?: PkiProps;
  /**
   * The WireGuard tunnel that joins the hosts of a multi-host stack (full mesh).
   * @default - a /24 that overlaps no network of the stack, port from each host's endpoint
   */
  readonly wireguard?: WireguardProps;
  /**
   * Also render the mesh as Kubernetes manifests into `out/<stack>/kubernetes/` (README,
   * "Exporting to Kubernetes"); the stack's leaf certificates then also name the cluster Services.
   * @default - no Kubernetes export
   */
  readonly kubernetes?: KubernetesProps;
  /**
   * SPIFFE identities: every server and client certificate carries the URI SAN
   * `spiffe://<trustDomain>/<stack>/<service>` (X509-SVID), which call policies may name.
   * @default - trust domain = the DNS domain of the stack's first network, e.g. `ashchan.local`
   * @see https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md
   */
  readonly spiffe?: SpiffeProps;
  /**
   * OCSP: every leaf carries an Authority Information Access OCSP URL, a responder unit per stack
   * answers from the state's index, and each host's timer refreshes the stapled responses
   * (README, "OCSP"). `ocsp: {}` turns it on with the defaults: responder on the stack's first
   * host with services, ports 8880 (root) and 8881 (client CA), URLs `http://ocsp.<domain>:<port>/`
   * (a name the operator's DNS must give the responder host).
   * @default - no OCSP: leaves carry no AIA URL nobody answers
   */
  readonly ocsp?: OcspProps;
}

/** The stack's OCSP responder and the URL its leaves carry. */
export interface OcspProps {
  /**
   * `false` turns OCSP off again: no AIA in leaves (reissued without), no responder, no stapled responses.
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * The host (construct id) that runs the responder units.
   * @default - the stack's first host
   */
  readonly host?: string;
  /**
   * TCP port of the root's responder (server and public leaves); the client CA's listens on the next port.
   * @default 8880
   */
  readonly port?: number;
  /**
   * The URL in the AIA of server and public leaves.
   * @default `http://ocsp.<first network's domain>:<port>/`
   */
  readonly url?: string;
  /**
   * The URL in the AIA of client leaves.
   * @default `http://ocsp.<first network's domain>:<port + 1>/`
   */
  readonly clientCaUrl?: string;
}

/** The SPIFFE trust domain of a stack's workload identities. */
export interface SpiffeProps {
  /**
   * Trust domain name: lower-case DNS-like (letters, digits, '.', '-', '_'), at most 255 characters.
   * @default - the DNS domain of the stack's first network (a stack with several networks has one
   * trust domain: its PKI is one)
   * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md#21-trust-domain
   */
  readonly trustDomain?: string;
}

/** The Kubernetes export of a stack. */
export interface KubernetesProps {
  /**
   * The namespace every object goes into (created by the export): a DNS label.
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
   */
  readonly namespace: string;
  /**
   * Where the pods' mTLS certificates come from: `cert-manager` issues them from a CA `Issuer`
   * holding podmesh's root; `secrets` mounts `kubernetes.io/tls` Secrets that
   * `podmesh kubernetes secrets` exports from the state folder.
   * @default 'cert-manager'
   * @see https://cert-manager.io/docs/configuration/ca/
   */
  readonly certificates?: 'cert-manager' | 'secrets';
}

/** The WireGuard mesh between hosts. */
export interface WireguardProps {
  /**
   * Subnet of the hosts' tunnel addresses.
   * @default - the first of 10.255.0.0/24, 10.255.1.0/24, … that overlaps no network of the stack
   */
  readonly subnet?: string;
  /**
   * Interface name on every host.
   * @default 'wg0'
   */
  readonly interfaceName?: string;
  /**
   * Seconds between keepalives (keeps NAT mappings open); 0 turns them off.
   * @default 25
   * @see https://www.wireguard.com/quickstart/#nat-and-firewall-traversal-persistence
   */
  readonly persistentKeepalive?: number;
  /**
   * A preshared key for every pair of hosts (post-quantum resistance layer).
   * @default false
   */
  readonly presharedKeys?: boolean;
  /**
   * MTU of the tunnel interface.
   * @default - wg-quick's choice (endpoint MTU - 80)
   */
  readonly mtu?: number;
  /**
   * How long a unit waits, at most, for a dependency on another host (a `dependsOn` entry or a
   * call) to accept connections through the tunnel before it fails; a dependency's
   * `crossHostWait` overrides it.
   * @default '300s'
   */
  readonly dependencyWait?: string;
  /**
   * Where each host's WireGuard endpoint runs, unless the host says otherwise
   * (`new Host(…, { wireguard: { mode } })`): `host` is a wg-quick interface of the host itself
   * (rootful hosts only); `container` is a gateway container on the stack's network running
   * userspace WireGuard (wireguard-go), which rootless Podman can run: the network routes the
   * other hosts' slices through it.
   * @default - 'container' on rootless hosts, 'host' on rootful ones
   */
  readonly mode?: WireguardMode;
  /**
   * Image of the gateway container of `container` mode hosts. It needs `wireguard-go`, `wg`, `ip`,
   * `nft`, `bash` and `timeout`; the default is built on the host from the Containerfile podmesh
   * writes beside the gateway's config (Debian 13 with wireguard-go, wireguard-tools, iproute2, nftables).
   * @default 'localhost/podmesh-wireguard-gateway:trixie'
   */
  readonly gatewayImage?: string;
}

/** The two certificate authorities of a stack (the seed's `ashchan-ca` and `ashchan.local`). */
export interface PkiProps {
  /**
   * Common name of the self-signed root CA.
   * @default - `<project>-ca`, e.g. `ashchan-ca`
   */
  readonly rootCommonName?: string;
  /**
   * Validity of a new root CA, in days.
   * @default 3650
   */
  readonly rootLifetimeDays?: number;
  /**
   * Common name of the client CA, signed by the root, that signs client certificates.
   * @default - the DNS domain of the stack's first network, e.g. `ashchan.local`
   */
  readonly clientCaCommonName?: string;
  /**
   * Validity of a new client CA, in days.
   * @default 1825
   */
  readonly clientCaLifetimeDays?: number;
  /**
   * Key algorithm of new CA keys.
   * @default 'ecdsa-p256'
   */
  readonly keyType?: KeyType;
  /**
   * Organization (`O=`) in every subject.
   * @default - none
   */
  readonly organization?: string;
}

const schema = z.object({
  project: z
    .string()
    .regex(DNS_LABEL, {
      error: 'must be a lower-case DNS label (letters, digits, inner hyphens), e.g. "ashchan"',
    })
    .optional(),
  description: z.string().regex(/^[^\x00-\x1f\x7f]*$/, { error: 'must be one line without control characters: it becomes a heading line of TOPOLOGY.md and a comment in every generated file' }).optional(),
  pki: z
    .object({
      rootCommonName: z.string().min(1).max(64, { error: 'a CN is at most 64 characters' }).optional(),
      rootLifetimeDays: z.number().int().min(30, { error: 'a CA should live at least 30 days' }).max(36500).optional(),
      clientCaCommonName: z.string().refine(isDnsName, { error: 'must be a DNS name, e.g. "ashchan.local"' }).optional(),
      clientCaLifetimeDays: z.number().int().min(30, { error: 'a CA should live at least 30 days' }).max(36500).optional(),
      keyType: z.enum(['ecdsa-p256', 'rsa-2048']).optional(),
      organization: z.string().min(1).max(64).optional(),
    })
    .optional(),
  wireguard: z
    .object({
      subnet: z
        .string()
        .superRefine((v, ctx) => {
          const r = parseCidr(v);
          if (!r.ok) ctx.addIssue({ code: 'custom', message: r.reason });
        })
        .optional(),
      interfaceName: z.string().regex(INTERFACE_NAME, { error: 'must be a Linux interface name of at most 15 characters' }).optional(),
      persistentKeepalive: z.number().int().min(0).max(65535).optional(),
      presharedKeys: z.boolean().optional(),
      mtu: z.number().int().min(1280, { error: 'WireGuard needs an MTU of at least 1280' }).max(9000).optional(),
      dependencyWait: z.string().refine(isWaitDuration, { error: WAIT_DURATION_ERROR }).optional(),
      mode: z.enum(WIREGUARD_MODES).optional(),
      gatewayImage: z.string().regex(/^[^\s]+$/, { error: 'must be an image reference without spaces, e.g. "registry.example.com/wireguard-gateway:1"' }).optional(),
    })
    .optional(),
  spiffe: z
    .object({
      trustDomain: z
        .string()
        .superRefine((v, ctx) => {
          const problem = trustDomainProblem(v);
          if (problem) ctx.addIssue({ code: 'custom', message: `SPIFFE trust domain ${JSON.stringify(v)} ${problem}, e.g. "ashchan.local"` });
        })
        .optional(),
    })
    .optional(),
  ocsp: z
    .object({
      enabled: z.boolean().optional(),
      host: z.string().min(1).optional(),
      port: z.number().int().min(1, { error: 'a TCP port is 1-65534 (the client CA responder takes port + 1)' }).max(65534, { error: 'a TCP port is 1-65534 (the client CA responder takes port + 1)' }).optional(),
      url: z.url({ protocol: /^http$/, error: 'must be an http:// URL (OCSP over HTTP, RFC 6960 appendix A), e.g. "http://ocsp.ashchan.local:8880/"' }).optional(),
      clientCaUrl: z.url({ protocol: /^http$/, error: 'must be an http:// URL (OCSP over HTTP, RFC 6960 appendix A), e.g. "http://ocsp.ashchan.local:8881/"' }).optional(),
    })
    .strict()
    .optional(),
  kubernetes: z
    .object({
      namespace: z
        .string()
        .regex(DNS_LABEL, { error: 'must be a lower-case DNS label (letters, digits, inner hyphens), e.g. "ashchan"' })
        .max(63, { error: 'a namespace is at most 63 characters' })
        .refine((v) => !v.startsWith('kube-'), { error: 'the kube- prefix is reserved for Kubernetes system namespaces: pick another, e.g. "ashchan"' }),
      certificates: z.enum(['cert-manager', 'secrets']).optional(),
    })
    .optional(),
});

/**
 * One environment. Holds hosts, networks, volumes and services; synthesized into
 * `out/<stack>/` with its state in `.podmesh/<stack>/`.
 */
export class Stack extends Construct {
  /** Compose project and name prefix. */
  public readonly project: string;
  /** What the stack is for. */
  public readonly description?: string;
  /** Certificate authority settings as given. */
  public readonly pki: PkiProps;
  /** WireGuard settings as given. */
  public readonly wireguard: WireguardProps;
  /** The Kubernetes export, when enabled. */
  public readonly kubernetes?: KubernetesProps;
  /** SPIFFE settings as given. */
  public readonly spiffe: SpiffeProps;
  /** OCSP settings as given; undefined when the stack does not use OCSP. */
  public readonly ocsp?: OcspProps;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, uniqueId(scope, id));
    const p = checkProps(this, schema, props);
    if (!DNS_LABEL.test(id)) {
      this.node.addValidation({
        validate: () => [`stack name "${id}" must be a lower-case DNS label, it names a folder and units`],
      });
    }
    this.project = p.project ?? id;
    this.description = p.description;
    this.pki = p.pki ?? {};
    this.wireguard = p.wireguard ?? {};
    this.kubernetes = p.kubernetes;
    this.spiffe = p.spiffe ?? {};
    this.ocsp = p.ocsp;
  }

  /**
   * The stack a construct belongs to.
   * @throws PodmeshError when the construct is not inside a Stack
   */
  static of(c: Construct): Stack {
    for (let s: Construct | undefined = c; s; s = s.node.scope) {
      if (s instanceof Stack) return s;
    }
    throw PodmeshError.at(c.node.path || '(app)', 'is not inside a Stack. Create hosts, networks and services in a stack, e.g. new Service(stack, …).');
  }

  /** Whether a construct is a Stack. */
  static isStack(x: unknown): x is Stack {
    return x instanceof Stack;
  }
}
