// The posture check's controls: Kubernetes' Pod Security Standard "restricted" and the CIS Docker
// Benchmark section 5 items that apply to a Podman container, each judged on the resolved model.
import type { PostureControlId, ResolvedService } from '../resolve/model.ts';

/** A control's verdict on one container before waivers: holds, or what is wrong. */
export type Finding = { readonly ok: true; readonly detail: string } | { readonly ok: false; readonly detail: string };

/** One control of the check. */
export interface PostureControl {
  readonly id: PostureControlId;
  /** What it requires, in a line. */
  readonly title: string;
  /** Where the requirement comes from. */
  readonly refs: readonly string[];
  /** Judges a container (waivers are applied by the caller). */
  readonly judge: (s: ResolvedService) => Finding;
  /** The prop that relaxes it with a reason, for the fix in a problem. */
  readonly waiver: string;
  /** How to meet the control instead. */
  readonly fix: string;
}

const PSS = 'PSS restricted';
const ok = (detail: string): Finding => ({ ok: true, detail });
const fail = (detail: string): Finding => ({ ok: false, detail });

/** Capabilities the restricted profile allows a container to add. */
export const PSS_ALLOWED_CAPABILITIES: readonly string[] = ['NET_BIND_SERVICE'];

/**
 * Every control, in the order reports list them.
 * @see https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
 * @see https://www.cisecurity.org/benchmark/docker (CIS Docker Benchmark v1.6.0, section 5 numbering)
 */
export const POSTURE_CONTROLS: readonly PostureControl[] = [
  {
    id: 'privileged',
    title: 'not privileged',
    refs: [`${PSS} (from baseline): Privileged Containers`, 'CIS 5.5'],
    // podmesh has no prop that makes a container privileged.
    judge: () => ok('podmesh never runs a container --privileged'),
    waiver: '(none: podmesh has no privileged containers)',
    fix: 'nothing to do',
  },
  {
    id: 'host-namespaces',
    title: 'host network, PID, IPC and UTS namespaces not shared',
    refs: [`${PSS} (from baseline): Host Namespaces`, 'CIS 5.10', 'CIS 5.16', 'CIS 5.17', 'CIS 5.21'],
    judge: (s) => ok(`own namespaces; network ${s.network} (bridge)`),
    waiver: '(none: podmesh never shares a host namespace)',
    fix: 'nothing to do',
  },
  {
    id: 'no-new-privileges',
    title: 'privilege escalation forbidden (no-new-privileges)',
    refs: [`${PSS}: Privilege Escalation`, 'CIS 5.26'],
    judge: (s) => (s.security.noNewPrivileges ? ok('no-new-privileges') : fail('processes may gain privileges (setuid binaries, file capabilities)')),
    waiver: 'security.allowPrivilegeEscalation',
    fix: 'remove security.allowPrivilegeEscalation',
  },
  {
    id: 'capabilities',
    title: 'every capability dropped; only NET_BIND_SERVICE added back',
    refs: [`${PSS}: Capabilities`, 'CIS 5.4'],
    judge: (s) => {
      const extra = s.security.capAdd.filter((c) => !PSS_ALLOWED_CAPABILITIES.includes(c));
      const added = s.security.capAdd.length > 0 ? `ALL dropped, ${s.security.capAdd.join(', ')} added` : 'ALL dropped';
      return extra.length === 0 ? ok(added) : fail(`${added} (beyond NET_BIND_SERVICE: ${extra.join(', ')})`);
    },
    waiver: 'security.capabilities',
    fix: 'remove the added capabilities, or run the image as a user that needs none',
  },
  {
    id: 'read-only-rootfs',
    title: 'root filesystem read-only',
    refs: ['CIS 5.13'],
    judge: (s) => (s.security.readOnlyRootFilesystem ? ok(`read-only; tmpfs ${s.security.tmpfs.map((t) => t.path).join(', ') || 'none'}`) : fail('the root filesystem is writable')),
    waiver: 'security.writableRootFilesystem',
    fix: 'remove security.writableRootFilesystem and give the paths the image writes as tmpfs or mounts',
  },
  {
    id: 'memory-limit',
    title: 'memory limited',
    refs: ['CIS 5.11'],
    judge: (s) => (s.security.memory ? ok(`memory ${s.security.memory}`) : fail('no memory limit')),
    waiver: 'security.unlimitedMemory',
    fix: 'remove security.unlimitedMemory (default 1g) or set resources.memory',
  },
  {
    id: 'pids-limit',
    title: 'number of processes limited',
    refs: ['CIS 5.29'],
    judge: (s) => (s.security.pids !== undefined ? ok(`pids ${s.security.pids}`) : fail('no pids limit')),
    waiver: 'security.unlimitedPids',
    fix: 'remove security.unlimitedPids (default 1024) or set resources.pids',
  },
  {
    id: 'user-namespace',
    title: 'container root is not host root (user namespace)',
    refs: ['CIS 5.31'],
    judge: (s) =>
      s.security.userNamespace === 'rootless'
        ? ok('rootless Podman: container uids map to the host user\'s subordinate ids')
        : s.security.userNamespace === 'auto'
          ? ok('userns auto: a range of unprivileged host ids of its own')
          : fail('shares the host\'s user namespace: container root is host root'),
    waiver: 'security.hostUserNamespace',
    fix: 'remove security.hostUserNamespace (rootful hosts then use userns auto, which needs a "containers" entry in /etc/subuid and /etc/subgid)',
  },
  {
    id: 'run-as-non-root',
    title: 'main process does not run as host root',
    refs: [`${PSS}: Running as Non-root`],
    judge: (s) => {
      const sec = s.security;
      if (sec.runAs === 'user') return ok(`runs as ${s.user}`);
      if (sec.runAs === 'image') return ok(sec.dropsRoot ?? 'the image drops root');
      if (sec.userNamespace !== 'host') return ok('uid 0 in the container, an unprivileged id on the host (user namespace)');
      return fail('runs as uid 0, which is host root (no user namespace)');
    },
    waiver: 'security.runAsRoot',
    fix: 'set user to a non-root uid the image supports, or remove security.hostUserNamespace',
  },
];
