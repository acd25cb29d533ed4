// The resolved model: plain data, every default applied and every cross-reference checked.
// Renderers read only this; they never look at constructs or the disk.
import type { PodmanVersion } from '../../constructs/core/podman-version.ts';
import type { WireguardMode } from '../../constructs/core/wireguard-mode.ts';
import type { AuthoritySpec, CertBinding, CertKind } from '../state/pki/types.ts';

export type { PodmanVersion };

/**
 * Where a host keeps a stack and what its units are called, from the layout module
 * (`src/layout.ts`). Paths of rootless hosts start at `%h`, the user's home.
 */
export interface HostInstall {
  /**
   * The host's copy of `out/<stack>/hosts/<host>/` plus `pki/services/` and `secrets/`:
   * `/etc/podmesh/<stack>` or `%h/.config/podmesh/<stack>`.
   */
  readonly root: string;
  /** Where Quadlet reads unit files: `/etc/containers/systemd` or `%h/.config/containers/systemd`. */
  readonly quadletDir: string;
  /** Where plain systemd units go: `/etc/systemd/system` or `%h/.config/systemd/user`. */
  readonly systemdDir: string;
  /** WireGuard config and keys: `/etc/podmesh/<stack>/wireguard`. */
  readonly wireguardDir: string;
  /** `systemctl`, with `--user` on rootless hosts. */
  readonly systemctl: readonly string[];
  /** The target that starts and stops the host's share of the stack: `<stack>.target`. */
  readonly target: string;
  /** What wants the target at boot: `default.target` (rootless) or `multi-user.target`. */
  readonly wantedBy: string;
  /** The unit that brings the tunnel up: `podmesh-<stack>-wireguard.service`. */
  readonly wireguardUnit: string;
  /**
   * The unit that loads the container firewall between the containers of one bridge (rootful
   * hosts): `podmesh-<stack>-firewall.service`.
   */
  readonly firewallUnit: string;
  /**
   * The oneshot unit that creates the host's Podman secrets from the secret files in its host root
   * (`podman secret create --replace`), before the containers that mount them:
   * `podmesh-<stack>-secrets.service`.
   */
  readonly secretsUnit: string;
  /** Stem of the certificate expiry check's `.service` and `.timer`: `podmesh-<stack>-cert-expiry`. */
  readonly certExpiryUnit: string;
}

/** A service's unit names, from the layout module. */
export interface ServiceUnits {
  /** Stem of its `.container` file and systemd service: `<project>-<name>`. */
  readonly stem: string;
  /** The systemd service Quadlet generates: `<stem>.service`. */
  readonly service: string;
  /**
   * Whether the service picks changed config and certificates up on `systemctl reload`
   * (Quadlet `ReloadCmd=`, Podman ≥ 5.5); podmesh sets no reload command yet, so always false.
   */
  readonly reloadable: boolean;
}

/** A host of the stack. */
export interface ResolvedHost {
  readonly name: string;
  readonly path: string;
  readonly podmanVersion: PodmanVersion;
  readonly rootless: boolean;
  /** The packet filter the host's firewall rules are written for (`HostProps.firewall`). */
  readonly firewall: 'iptables' | 'nftables';
  /** Underlay endpoint `address:port`, when given. */
  readonly endpoint?: string;
  /** Install paths and unit names on this host. */
  readonly install: HostInstall;
}

/** The part of a network that lives on one host: its bridge, subnet (slice) and gateway. */
export interface ResolvedSegment {
  readonly host: string;
  /** CIDR of the bridge on that host (the whole subnet on single-host stacks). */
  readonly subnet: string;
  readonly gateway: string;
}

/** The stack's OCSP responders (README, "OCSP"): one per issuing CA, on one host. */
export interface ResolvedOcsp {
  /** The host that runs the responder units. */
  readonly host: string;
  /** TCP port of each issuer's responder. */
  readonly ports: { readonly root: number; readonly 'client-ca': number };
  /** The AIA URL of the leaves each issuer signs. */
  readonly urls: { readonly root: string; readonly 'client-ca': string };
}

/** A mesh network. */
export interface ResolvedNetwork {
  /** Construct id. */
  readonly id: string;
  readonly path: string;
  /** Podman network name. */
  readonly name: string;
  readonly domain: string;
  /** Whole subnet of the mesh. */
  readonly subnet: string;
  /** Linux bridge interface: the network's bridgeName, else its Podman network name. */
  readonly bridgeName: string;
  /**
   * Whether the stack gave bridgeName (something outside podmesh relies on the name) rather than
   * leaving the default.
   */
  readonly bridgeNameGiven: boolean;
  readonly internal: boolean;
  /** One segment per host with services on the network, in host order. */
  readonly segments: readonly ResolvedSegment[];
}

/** A named volume. */
export interface ResolvedVolume {
  readonly path: string;
  /** Podman volume name. */
  readonly name: string;
  readonly host: string;
}

/** A container port. */
export interface ResolvedPort {
  readonly name: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  /** Host side, when published. */
  readonly publish?: { readonly hostPort: number; readonly hostIp?: string };
}

/** A mount into a container. */
export interface ResolvedMount {
  /**
   * `volume` a named volume; `folder` a host folder of the stack's (a `hostPath`): absolute, or
   * relative to the host's data folder ({@link hostFolderPath}); `bind` a file podmesh generates
   * into the host folder (Hyperf and OpenSSL configuration); `pki` a file or folder of the state's
   * `pki/services/` (certificates), which each renderer maps to where its deployment keeps them.
   */
  readonly type: 'volume' | 'folder' | 'bind' | 'pki';
  /**
   * Volume name; the host path for folders (relative ones normalized, without `./`) and binds;
   * for `pki`, `<service>` or `<service>/<file>`.
   */
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
  /**
   * A world-readable file of another workload's certificate folder (MinIO's `ca.crt` in its
   * setup): never chowned for this container (`U`), which would take it from its owner.
   * @default false
   */
  readonly foreign?: boolean;
  /**
   * A generated file several services of the host mount (`config/_shared/`): labeled shared
   * (`z`), since a private label (`Z`) would be taken from the other containers by the last one
   * that started.
   * @default false
   */
  readonly shared?: boolean;
}

/** A health check. */
export interface ResolvedHealthcheck {
  /** Exec form (`CMD`) or a shell command (`CMD-SHELL`). */
  readonly command: { readonly exec: readonly string[] } | { readonly shell: string };
  readonly interval: string;
  readonly timeout: string;
  readonly retries: number;
  readonly startPeriod: string;
}

/** A start-up dependency. */
export interface ResolvedDependency {
  readonly service: string;
  /**
   * `completed`: a one-shot container (MinIO's setup) has exited successfully; implied by
   * podmesh, never written in a stack.
   */
  readonly condition: 'healthy' | 'started' | 'completed';
  /**
   * Implied by a call, not listed in dependsOn: where a runtime cannot wait for health (Quadlet
   * before Podman 4.7), it waits for the start instead, with no problem; a dependsOn entry that
   * asks for health there is a problem.
   * @default false
   */
  readonly implied?: boolean;
  /**
   * A dependency on another host: systemd there cannot be asked, so the dependent's unit waits
   * (bounded) until this address and port accept TCP connections through the tunnel.
   * @default - none (a dependency on the same host)
   */
  readonly remote?: RemoteWait;
}

/** Where and how long a unit waits for a dependency on another host. */
export interface RemoteWait {
  readonly host: string;
  readonly ip: string;
  readonly port: number;
  readonly timeoutSeconds: number;
}

/** A tmpfs mount. */
export interface ResolvedTmpfs {
  readonly path: string;
  readonly size?: string;
  readonly mode?: string;
}

/** The controls of the posture check (`src/posture/`), by id. */
export type PostureControlId =
  | 'privileged'
  | 'no-new-privileges'
  | 'capabilities'
  | 'read-only-rootfs'
  | 'memory-limit'
  | 'pids-limit'
  | 'user-namespace'
  | 'run-as-non-root'
  | 'host-namespaces';

/** A relaxed control and why: from the stack (`security.*`) or from the preset's image. */
export interface ResolvedWaiver {
  readonly reason: string;
  /** `stack`: a prop of the stack; `preset`: what the preset's image needs (e.g. its entrypoint's capabilities). */
  readonly by: 'stack' | 'preset';
}

/** How one container is confined. */
export interface ResolvedSecurity {
  /** `no-new-privileges`. */
  readonly noNewPrivileges: boolean;
  /** Every capability is dropped; these (sorted) are added back. */
  readonly capAdd: readonly string[];
  readonly readOnlyRootFilesystem: boolean;
  /** tmpfs mounts, sorted by path. */
  readonly tmpfs: readonly ResolvedTmpfs[];
  /** Memory limit (`512m`), none when waived. */
  readonly memory?: string;
  readonly cpus?: number;
  /** Process limit, none when waived. */
  readonly pids?: number;
  /**
   * `rootless`: a rootless host's Podman maps container root to the user; `auto`: a rootful host
   * gives the container its own range (`UserNS=auto`); `host`: container root is host root.
   */
  readonly userNamespace: 'rootless' | 'auto' | 'host';
  /** The main process: `user` a non-root `user` prop; `image` the image drops root itself; `root` uid 0. */
  readonly runAs: 'user' | 'image' | 'root';
  /** Why the image is known to drop root (runAs `image`). */
  readonly dropsRoot?: string;
  /** Relaxed controls with their reasons. */
  readonly waivers: Readonly<Partial<Record<PostureControlId, ResolvedWaiver>>>;
}

/** One container of the mesh. */
export interface ResolvedService {
  /** Construct id: the DNS label and compose service name. */
  readonly name: string;
  readonly path: string;
  readonly kind: 'app' | 'infra';
  /** `SERVICE_NAME`, e.g. `auth-accounts`. */
  readonly serviceName: string;
  readonly host: string;
  /** Network id. */
  readonly network: string;
  readonly image: string;
  readonly containerName: string;
  readonly hostname: string;
  /** `<name>.<domain>`. */
  readonly dnsName: string;
  /** DNS aliases on the network, dnsName first. */
  readonly aliases: readonly string[];
  readonly ip: string;
  /** Whether the IP was given in the stack (true) or allocated (false). */
  readonly staticIp: boolean;
  readonly ports: readonly ResolvedPort[];
  /** The mTLS listener, for app services. */
  readonly mtls?: { readonly port: number; /** `https://<dnsName>:<port>`, what callers are given. */ readonly url: string };
  /** Environment, sorted by name. */
  readonly environment: readonly (readonly [string, string])[];
  /**
   * Generated secrets the container reads from files (sorted by variable, then the unnamed ones by
   * id): kept in the state's `secrets/<file>` (0600), mounted read-only at `/run/secrets/<file>`,
   * named by a `*_FILE` variable in `environment` (or read by path, see ResolvedSecret.variable). Their values are in no environment, unit or file under `out/`.
   */
  readonly secrets: readonly ResolvedSecret[];
  /**
   * A PostgreSQL or Redis service, or MinIO's setup: how the server's clients authenticate
   * (TOPOLOGY.md, the roles script, the MinIO users script).
   */
  readonly credentials?: ResolvedCredentials;
  /** Services this one may call over mTLS (the call policy), in stack order. */
  readonly calls: readonly string[];
  /** Services allowed to call this one, in stack order. */
  readonly callers: readonly string[];
  /**
   * A Hyperf application: its config/autoload files are generated and mounted under appRoot;
   * `serverName` is the Hyperf server name of its mTLS listener.
   */
  readonly hyperf?: { readonly appRoot: string; readonly serverName: string };
  /** The port (by name) that terminates public TLS with the `public` certificate. */
  readonly publicTlsPort?: string;
  readonly dependsOn: readonly ResolvedDependency[];
  readonly healthcheck?: ResolvedHealthcheck;
  readonly restart: 'no' | 'always' | 'on-failure' | 'unless-stopped';
  readonly mounts: readonly ResolvedMount[];
  readonly command?: readonly string[];
  /**
   * Runs to completion once per start and is done when it exits 0 (MinIO's setup): compose
   * `restart: "no"`, a Quadlet unit `Type=oneshot` with `RemainAfterExit=yes`.
   */
  readonly oneshot?: boolean;
  /** Replaces the image's entrypoint (MinIO's setup runs its script with `/bin/sh`). */
  readonly entrypoint?: readonly string[];
  readonly user?: string;
  /** How the container is confined: the secure defaults, and each relaxation with its reason. */
  readonly security: ResolvedSecurity;
  /** Certificates issued for the workload, each a file pair in `pki/services/<name>/`. */
  readonly certificates: readonly CertKind[];
  /**
   * The proxy that does the service's mTLS in its network namespace (`sidecar` prop): the
   * container itself then serves plain HTTP on 127.0.0.1 and mounts no certificate.
   */
  readonly sidecar?: ResolvedSidecar;
  /** Its unit names. */
  readonly unit: ServiceUnits;
}

/** A caller the sidecar lets in: the CN and the SPIFFE ID its client certificate must both carry. */
export interface SidecarPeer {
  readonly service: string;
  /** Its certificates' CN: its DNS name. */
  readonly commonName: string;
  readonly spiffeId: string;
}

/** One outbound call through the sidecar: `http://127.0.0.1:<port>` → mTLS to `<dnsName>:<remotePort>`. */
export interface SidecarRoute {
  /** The called service. */
  readonly service: string;
  /** Local port on 127.0.0.1 the application calls. */
  readonly port: number;
  /** The callee's DNS name: where the proxy connects, the name its certificate must carry (SNI). */
  readonly dnsName: string;
  /** The callee's mTLS port. */
  readonly remotePort: number;
  /** The callee's SPIFFE ID, which its server certificate must carry. */
  readonly spiffeId: string;
}

/** A service's mTLS sidecar, resolved. */
export interface ResolvedSidecar {
  readonly proxy: 'haproxy' | 'envoy';
  readonly image: string;
  /** `<service's container name>-sidecar`. */
  readonly containerName: string;
  /** Its `.container` stem and systemd service: `<service stem>-sidecar`. */
  readonly unit: { readonly stem: string; readonly service: string };
  /** Where the application serves plain HTTP: 127.0.0.1:appPort. */
  readonly appPort: number;
  /** The service's mTLS port, where the proxy listens. */
  readonly mtlsPort: number;
  /** The service's own identity (its certificates' CN and SPIFFE ID): it may call itself. */
  readonly self: SidecarPeer;
  /** The services allowed to call it, in `callers` order. */
  readonly callers: readonly SidecarPeer[];
  /** Its outbound calls, in `calls` order. */
  readonly routes: readonly SidecarRoute[];
  /** The proxy's configuration file below the host root, `config/<service>/haproxy.cfg` or `envoy.yaml`, and its target. */
  readonly config: { readonly source: string; readonly target: string };
  /**
   * How the sidecar container is confined: read-only, no capability, its own limits, the
   * service's user namespace; it runs as the container's root (`runAs: 'root'`), since the
   * proxies' images switch to users that cannot read the 0600 keys. The posture check judges it.
   */
  readonly security: ResolvedSecurity;
}

/** The allocation lock: addresses given out, committed so they never move. */
export interface AllocationLock {
  readonly version: 1;
  /** Per network id: per-host slices (multi-host) and addresses by service name, sorted. */
  readonly networks: Readonly<
    Record<
      string,
      {
        readonly subnet: string;
        readonly slices?: Readonly<Record<string, string>>;
        readonly addresses: Readonly<Record<string, string>>;
      }
    >
  >;
  /** Tunnel subnet, and per host its tunnel address and WireGuard public key (public keys are not secret). */
  readonly wireguard?: {
    readonly subnet: string;
    readonly hosts: Readonly<Record<string, { readonly address: string; readonly publicKey?: string }>>;
  };
}

/**
 * The WireGuard gateway container of a `container` mode host: userspace WireGuard on the stack's
 * network, through which that network routes the other hosts' slices.
 */
export interface ResolvedGateway {
  /** Its address on the network, in the host's slice (allocated and locked like a service's). */
  readonly ip: string;
  /** Id of the network it joins. */
  readonly network: string;
  /** Its image (`wireguard.gatewayImage`). */
  readonly image: string;
  /** Whether the image is podmesh's default, built on the host from the Containerfile podmesh writes. */
  readonly buildImage: boolean;
}

/** One host in the WireGuard mesh. */
export interface ResolvedTunnelPeer {
  readonly host: string;
  /** Where its endpoint runs: a wg-quick interface of the host, or a gateway container. */
  readonly mode: WireguardMode;
  /** The gateway container, in `container` mode. */
  readonly gateway?: ResolvedGateway;
  /** Tunnel address. */
  readonly address: string;
  /** Underlay endpoint `address:port`. */
  readonly endpoint: string;
  readonly listenPort: number;
  /** Container slices routed to this host. */
  readonly routes: readonly string[];
  /**
   * WireGuard public key: from the lock file after resolution, from the state folder after
   * the key reconcile of synth.
   * @default - none yet (a host that never had a key)
   */
  readonly publicKey?: string;
}

/** The WireGuard full mesh of a multi-host stack. */
export interface ResolvedWireguard {
  readonly interfaceName: string;
  readonly subnet: string;
  readonly persistentKeepalive: number;
  readonly presharedKeys: boolean;
  readonly mtu?: number;
  /** Every host with services, in host order. */
  readonly peers: readonly ResolvedTunnelPeer[];
}

/**
 * A connection the firewall allows: a caller to its callee's mTLS port, or a dependent to one of
 * its dependency's ports. Everything else between containers is dropped where podmesh filters.
 */
export interface ResolvedFlow {
  /** The connecting service. */
  readonly from: string;
  readonly fromHost: string;
  /** Its address: the flow's source. */
  readonly source: string;
  /** The service connected to. */
  readonly to: string;
  readonly toHost: string;
  /** Its address: the flow's destination. */
  readonly destination: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  /** What declares it: a call (to the mTLS port) or a dependsOn entry (to every port). */
  readonly via: 'calls' | 'dependsOn';
}

/** A stack, resolved. */
export interface ResolvedStack {
  readonly name: string;
  readonly project: string;
  readonly description?: string;
  readonly hosts: readonly ResolvedHost[];
  readonly networks: readonly ResolvedNetwork[];
  readonly volumes: readonly ResolvedVolume[];
  /** Dependencies first; ties in construct order. */
  readonly services: readonly ResolvedService[];
  /**
   * Calls that imply no start order (`[caller, callee]`, in construct order of the caller): a call
   * makes the caller start after its callee, except when the two reach each other through calls
   * and dependencies (two services that call each other, or a longer loop), which would be a cycle.
   */
  readonly unorderedCalls: readonly (readonly [caller: string, callee: string])[];
  /**
   * Every connection between containers the stack declares (calls and dependsOn), in service
   * order, each (source, destination, port, protocol) once; see {@link ResolvedFlow}.
   */
  readonly flows: readonly ResolvedFlow[];
  readonly lock: AllocationLock;
  /** The tunnel joining the hosts, when there is more than one. */
  readonly wireguard?: ResolvedWireguard;
  /** The certificate authorities and every certificate the stack needs. */
  /** `trustDomain`: the SPIFFE trust domain of the stack's workload identities (every leaf's URI SAN). */
  /** `ocsp`: the stack's OCSP responder (absent when the stack turned OCSP off). */
  readonly pki: { readonly authority: AuthoritySpec; readonly trustDomain: string; readonly bindings: readonly CertBinding[]; readonly ocsp?: ResolvedOcsp };
  /** The Kubernetes export (`out/<stack>/kubernetes/`), when the stack enables it. */
  readonly kubernetes?: ResolvedKubernetes;
}

/** The Kubernetes export of a stack. */
export interface ResolvedKubernetes {
  /** The namespace of every object. */
  readonly namespace: string;
  /** Where the pods' mTLS certificates come from. */
  readonly certificates: 'cert-manager' | 'secrets';
}

/** A generated secret file of a service. */
export interface ResolvedSecret {
  /** `<workload>/<name>`: the value's key in the state's `secrets/values.json`. */
  readonly id: string;
  /** What the file holds: the value, or a Redis configuration built from it. */
  readonly format: 'value' | 'redis-conf';
  /**
   * The variable naming the mounted file, e.g. `DB_PASSWORD_FILE`; none for a file the container
   * reads by its path (a client's password PostgreSQL's roles script sets).
   */
  readonly variable?: string;
  /** File name in the state's and the host root's `secrets/`, and below `/run/secrets/`: `postgres.password`. */
  readonly file: string;
  /** Where it is mounted in the container: `/run/secrets/<file>`. */
  readonly target: string;
  /**
   * A Redis configuration's ACL users besides the default one: each client's user name and the id
   * of its password (the file holds only the password's SHA-256), sorted by user.
   */
  readonly acl?: readonly { readonly user: string; readonly id: string }[];
}

/** How the clients of a PostgreSQL, Redis or MinIO service authenticate. */
export interface ResolvedCredentials {
  readonly kind: 'postgres' | 'redis' | 'minio';
  /**
   * MinIO's setup: the MinIO it sets up, its S3 API URL (`https://<dnsName>:<port>`), its root
   * user, the secret id of the root password and the bucket.
   */
  readonly minio?: { readonly name: string; readonly url: string; readonly rootUser: string; readonly rootPasswordId: string; readonly bucket: string };
  /**
   * Every client connects as `user` (PostgreSQL's superuser, Redis' `default`) with the server's
   * password, because of `reason`; undefined: each client has a role or ACL user of its own.
   */
  readonly shared?: { readonly user: string; readonly reason: string };
  /** PostgreSQL's database, where each client's role gets its schema. */
  readonly database?: string;
  /**
   * The clients (the workloads that depend on the server), sorted by name: the role or ACL user
   * name (the client's own, unless shared) and the secret id of the password it connects with
   * (PostgreSQL mounts it at its secretTarget for the roles script; Redis needs only its hash).
   */
  readonly clients: readonly { readonly name: string; readonly secretId: string; /** MinIO: the access key, when not the name. */ readonly user?: string }[];
}
