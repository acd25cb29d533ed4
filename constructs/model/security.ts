// The secure container defaults every workload gets, and the props that relax one of them, each
// with the reason it is written down with (TOPOLOGY.md, `podmesh audit`).
import * as z from 'zod';

/**
 * Linux capabilities by name, without `CAP_`.
 * @see https://man7.org/linux/man-pages/man7/capabilities.7.html
 */
export const CAPABILITIES = [
  'AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF', 'CHECKPOINT_RESTORE', 'CHOWN',
  'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE',
  'LINUX_IMMUTABLE', 'MAC_ADMIN', 'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE',
  'NET_BROADCAST', 'NET_RAW', 'PERFMON', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYSLOG',
  'SYS_ADMIN', 'SYS_BOOT', 'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE',
  'SYS_RAWIO', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'WAKE_ALARM',
] as const;

/** A Linux capability, e.g. `CHOWN`. */
export type Capability = (typeof CAPABILITIES)[number];

/** Why a secure default is relaxed; shown in TOPOLOGY.md and by `podmesh audit`. */
export interface WaiverProps {
  /** Why the default cannot hold for this workload, in a sentence a reviewer can check. */
  readonly reason: string;
}

/** Capabilities added back on top of the preset's, and why. */
export interface CapabilitiesProps extends WaiverProps {
  /** Capability names without `CAP_`, e.g. `['NET_BIND_SERVICE']`. */
  readonly add: readonly Capability[];
}

/**
 * Relaxations of the secure defaults, one prop each, each with its `reason`. Without any, a
 * container runs with no-new-privileges, every capability dropped but the preset's, a read-only
 * root filesystem, memory and pids limits, and (on rootful hosts) its own user namespace.
 */
export interface SecurityProps {
  /**
   * Let processes gain privileges (setuid binaries, file capabilities): no `no-new-privileges`.
   * @default - no-new-privileges is set
   */
  readonly allowPrivilegeEscalation?: WaiverProps;
  /**
   * Capabilities to add besides the preset's own (PostgreSQL's and Redis' entrypoints need a few).
   * @default - only the preset's
   */
  readonly capabilities?: CapabilitiesProps;
  /**
   * A writable root filesystem.
   * @default - read-only, with `tmpfs` where the runtime writes
   */
  readonly writableRootFilesystem?: WaiverProps;
  /**
   * On a rootful host, run in the host's user namespace (container root is host root).
   * @default - `UserNS=auto` / `userns_mode: auto` on rootful hosts; rootless hosts always map
   */
  readonly hostUserNamespace?: WaiverProps;
  /**
   * Accept a main process that runs as uid 0 where container root is host root (only with
   * `hostUserNamespace`): the posture check refuses it otherwise.
   * @default - refused
   */
  readonly runAsRoot?: WaiverProps;
  /**
   * No memory limit.
   * @default - `resources.memory`, 1g unless given
   */
  readonly unlimitedMemory?: WaiverProps;
  /**
   * No limit on the number of processes.
   * @default - `resources.pids`, 1024 unless given
   */
  readonly unlimitedPids?: WaiverProps;
}

/** Limits of one container. */
export interface ResourcesProps {
  /**
   * Memory limit: a number and a unit, `b`, `k`, `m` or `g` (e.g. `'512m'`).
   * @default '1g'
   * @see https://docs.podman.io/en/v5.4.2/markdown/podman-run.1.html#memory-m-number-unit
   */
  readonly memory?: string;
  /**
   * CPUs the container may use (e.g. `1.5`).
   * @default - no CPU limit
   */
  readonly cpus?: number;
  /**
   * Maximum number of processes (and threads).
   * @default 1024
   */
  readonly pids?: number;
}

/** A tmpfs mount: a path, or a path with size and mode. */
export interface TmpfsProps {
  /** Absolute path inside the container. */
  readonly path: string;
  /**
   * Size limit, e.g. `'64m'`.
   * @default - half the RAM (the kernel's default)
   */
  readonly size?: string;
  /**
   * Octal permission bits, e.g. `'1777'`.
   * @default - '1777' (Podman's)
   */
  readonly mode?: string;
}

/** The default memory limit of a container. */
export const DEFAULT_MEMORY = '1g';
/** The default pids limit of a container. */
export const DEFAULT_PIDS = 1024;

const REASON_ERROR = 'every relaxation of a secure default needs a reason: write why, e.g. { reason: "the image\'s entrypoint chowns its data folder" }';
const reason = z.string({ error: REASON_ERROR }).refine((s) => s.trim().length > 0, { error: REASON_ERROR }).refine((s) => !/[\x00-\x1f\x7f]/.test(s), { error: 'must be one line without control characters (it is printed in TOPOLOGY.md and audit tables)' });
/** `{ reason }` of a relaxation: a non-empty line. */
export const waiver = z.object({ reason }, { error: (i) => (i.input === undefined ? undefined : `must be { reason: "…" }: ${REASON_ERROR}`) });

const MEMORY = /^[1-9][0-9]*[bkmg]$/;
const TMPFS_PATH = /^\/[^:,\s\x00-\x1f\x7f]*$/;

/** The schema of `security`. */
export const securitySchema = z.object({
  allowPrivilegeEscalation: waiver.optional(),
  capabilities: z
    .object({
      add: z.array(z.enum(CAPABILITIES)).min(1, { error: 'name at least one capability, e.g. ["NET_BIND_SERVICE"]' }),
      reason,
    })
    .optional(),
  writableRootFilesystem: waiver.optional(),
  hostUserNamespace: waiver.optional(),
  runAsRoot: waiver.optional(),
  unlimitedMemory: waiver.optional(),
  unlimitedPids: waiver.optional(),
});

/** The schema of `resources`. */
export const resourcesSchema = z.object({
  memory: z.string().regex(MEMORY, { error: (i) => `${JSON.stringify(i.input)} is not a memory size: a number and b, k, m or g, e.g. "512m"` }).optional(),
  cpus: z.number().gt(0, { error: 'must be more than 0 CPUs, e.g. 0.5' }).max(1024).optional(),
  pids: z.number().int().min(16, { error: 'must be at least 16 processes (entrypoints fork shells and helpers)' }).max(4_194_304).optional(),
});

/** The schema of one `tmpfs` entry. */
export const tmpfsSchema = z.union([
  z.string().regex(TMPFS_PATH, { error: 'must be an absolute path without ":", "," or spaces' }),
  z.object({
    path: z.string().regex(TMPFS_PATH, { error: 'must be an absolute path without ":", "," or spaces' }),
    size: z.string().regex(MEMORY, { error: (i) => `${JSON.stringify(i.input)} is not a size: a number and b, k, m or g, e.g. "64m"` }).optional(),
    mode: z.string().regex(/^[0-7]{3,4}$/, { error: (i) => `${JSON.stringify(i.input)} is not an octal mode like "1777"` }).optional(),
  }),
], { error: 'must be a path or { path, size, mode }' });

/**
 * What a preset's image needs of the defaults, with why: capabilities its entrypoint uses, where it
 * writes, and whether it drops root by itself.
 */
export interface SecurityNeeds {
  /** Capabilities added back, sorted, with the reason. */
  readonly capabilities?: { readonly add: readonly Capability[]; readonly reason: string };
  /** Where the image writes besides its volumes. */
  readonly tmpfs: readonly TmpfsProps[];
  /** The image's entrypoint switches to an unprivileged user by itself: why that is known. */
  readonly dropsRoot?: string;
}
