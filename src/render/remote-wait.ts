// The wait a unit runs before it starts when it depends on services of other hosts: systemd cannot
// order units across hosts, so the dependent polls each dependency's address and port through the
// tunnel until a TCP connection is accepted, each within its own bound counted from the unit's
// start, and fails with the reason when one is not.
import type { RemoteWait, ResolvedDependency } from '../resolve/model.ts';

/**
 * bash's /dev/tcp opens the connections (every systemd host podmesh targets has bash and
 * coreutils' `timeout`); each attempt is bounded to 3 s, so a tunnel that drops packets cannot
 * hold one attempt for the kernel's two minutes of SYN retries. Its arguments, never spliced into
 * the script, come in fives: service, host, address, port, seconds at most since the unit started.
 */
const SCRIPT =
  'while (($# >= 5)); do ' +
  'echo "podmesh: waiting up to $5 s for $1 on host $2 at $3:$4 through the tunnel" >&2; ' +
  `until timeout 3 bash -c ': <>"/dev/tcp/$0/$1"' "$3" "$4" 2>/dev/null; do ` +
  'if ((SECONDS >= $5)); then echo "podmesh: $1 on host $2 ($3:$4) did not accept connections within $5 s: check that the tunnel to host $2 is up and that $1 runs there" >&2; exit 1; fi; ' +
  'sleep 2; done; shift 5; done';

/** Seconds a wait may run past its bound: the last attempt and the pause before it. */
export const WAIT_SLACK_SECONDS = 5;

/** A dependency on another host, with its wait. */
export type RemoteDependency = ResolvedDependency & { readonly remote: RemoteWait };

/** The dependencies of a service that are on other hosts. */
export function remoteDependencies(deps: readonly ResolvedDependency[]): RemoteDependency[] {
  return deps.filter((d): d is RemoteDependency => d.remote !== undefined);
}

/** The one command that waits for every dependency in `waits` (at least one). */
export function remoteWaitCommand(waits: readonly RemoteDependency[]): string[] {
  return ['/bin/bash', '-c', SCRIPT, 'podmesh-wait', ...waits.flatMap((d) => [d.service, d.remote.host, d.remote.ip, String(d.remote.port), String(d.remote.timeoutSeconds)])];
}

/** Seconds the wait of `waits` may take at most: the longest bound, plus slack. */
export function remoteWaitSeconds(waits: readonly RemoteDependency[]): number {
  return waits.length === 0 ? 0 : Math.max(...waits.map((d) => d.remote.timeoutSeconds)) + WAIT_SLACK_SECONDS;
}
