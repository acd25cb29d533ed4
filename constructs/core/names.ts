// Naming rules shared by every construct: DNS labels, domains, environment names, durations.

/** RFC 1123 label: lower-case letters, digits and inner hyphens, at most 63 characters. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A DNS name of one or more labels, at most 253 characters. */
export function isDnsName(name: string): boolean {
  return name.length <= 253 && name.split('.').every((l) => DNS_LABEL.test(l));
}

/** A host name a public certificate may name: a DNS name, or `*.` and one (a wildcard). */
export function isHostName(v: string): boolean {
  return isDnsName(v.replace(/^\*\./, ''));
}

/** Suggests a valid label for an invalid one: `Auth_Service` → `auth-service`. */
export function suggestLabel(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return s || 'service';
}

/** POSIX shell identifier, the portable form of an environment variable name. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Linux interface names are at most 15 bytes (IFNAMSIZ - 1) and have no '/', ':' or spaces. */
export const INTERFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Compose and Podman durations: `30s`, `1m30s`, `500ms`. */
export const DURATION = /^(\d+(ms|s|m|h))+$/;

/** A bound on a wait across hosts: a DURATION of 1 s to 1 h. */
export function isWaitDuration(d: string): boolean {
  return DURATION.test(d) && durationSeconds(d) >= 1 && durationSeconds(d) <= 3600;
}
export const WAIT_DURATION_ERROR = 'must be a duration between "1s" and "1h", like "300s" or "5m"';

/** Converts a duration to whole seconds, rounding up (systemd wants seconds for some keys). */
export function durationSeconds(d: string): number {
  let ms = 0;
  for (const [, n, unit] of d.matchAll(/(\d+)(ms|s|m|h)/g)) {
    const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
    ms += Number(n) * factor;
  }
  return Math.ceil(ms / 1000);
}

/**
 * OCI image reference: `[registry[:port]/]path[:tag][@digest]`, no whitespace or upper-case path.
 * Permissive on purpose beyond that; the runtime has the final word.
 */
export const IMAGE_REF =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** The candidate with the smallest edit distance, when it is close enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

// SPIFFE trust domain names (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md#21-trust-domain).
/** Characters of a trust domain name (SPIFFE-ID §2.1: lower-case letters, digits, '.', '-', '_'). */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
/** Upper bound of a trust domain name (SPIFFE-ID §2.1). */
const MAX_TRUST_DOMAIN = 255;

/** Why `td` is not a trust domain name (undefined when it is). */
export function trustDomainProblem(td: string): string | undefined {
  if (td.length === 0) return 'is empty';
  if (td.length > MAX_TRUST_DOMAIN) return `has ${td.length} characters; SPIFFE allows ${MAX_TRUST_DOMAIN}`;
  if (!TRUST_DOMAIN.test(td)) return 'may hold only lower-case letters, digits, ".", "-" and "_"';
  return undefined;
}

