// What stack files use: the constructs that describe a mesh, their props and their vocabulary.
export { App, type AppProps } from './core/app.ts';
export { Stack, type StackProps, type KubernetesProps } from './core/stack.ts';
export { PodmeshError, formatIssues, type Issue } from './core/errors.ts';
export { checkProps } from './core/props.ts';
export { isDnsName, isHostName } from './core/names.ts';
export { FIREWALLS, Host, type Firewall, type HostProps } from './model/host.ts';
export { WIREGUARD_MODES, type WireguardMode } from './core/wireguard-mode.ts';
export { Network, type NetworkProps } from './model/network.ts';
export { Volume, type VolumeProps } from './model/volume.ts';
export {
  Workload,
  type WorkloadProps,
  type PortProps,
  type HealthcheckProps,
  type DependencyProps,
  type MountProps,
  type RestartPolicy,
  type SecretFileSpec,
} from './model/workload.ts';
export { Service, MTLS_DIR, SIDECAR_IMAGES, type ServiceProps, type MtlsProps, type PublicTlsProps, type HyperfProps, type SidecarProps } from './model/service.ts';
export {
  InfraService,
  Postgres,
  Redis,
  Minio,
  MinioSetup,
  MINIO_MC_IMAGE,
  type InfraServiceProps,
  type PostgresProps,
  type RedisProps,
  type MinioProps,
} from './model/infra.ts';
export {
  CAPABILITIES,
  DEFAULT_MEMORY,
  DEFAULT_PIDS,
  type Capability,
  type CapabilitiesProps,
  type ResourcesProps,
  type SecurityNeeds,
  type SecurityProps,
  type TmpfsProps,
  type WaiverProps,
} from './model/security.ts';
export { KEY_TYPES, type CertKind, type KeyType } from './model/certificates.ts';
