// SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md): the workload
// identity every podmesh leaf carries as its one URI SAN (X509-SVID), and their checks.
import { trustDomainProblem } from '../../../constructs/core/names.ts';

export { trustDomainProblem };

/** Characters of a path segment (SPIFFE-ID §2.2: letters, digits, '.', '-', '_'). */
const SEGMENT = /^[A-Za-z0-9._-]+$/;
/** Upper bound of a SPIFFE ID as a URI SAN (SPIFFE-ID §2.3, in bytes; IDs are ASCII). */
export const MAX_SPIFFE_ID = 2048;
/** The SPIFFE ID of a service of a stack: `spiffe://<trust domain>/<stack>/<service>`. */
export function spiffeIdOf(trustDomain: string, stack: string, service: string): string {
  return `spiffe://${trustDomain}/${stack}/${service}`;
}

/** Why `id` is not a SPIFFE ID an X509-SVID may carry (undefined when it is): scheme, trust domain, path, no query or fragment. */
export function spiffeIdProblem(id: string): string | undefined {
  if (id.length > MAX_SPIFFE_ID) return `has ${id.length} characters; SPIFFE allows ${MAX_SPIFFE_ID}`;
  const m = /^spiffe:\/\/([^/]*)(\/.*)?$/.exec(id);
  if (!m) return 'does not start with spiffe:// (the scheme is lower case)';
  if (/[?#]/.test(id)) return 'has a query or fragment, which a SPIFFE ID must not';
  if (/[@:]/.test(m[1] ?? '')) return 'has a user or port in its trust domain, which a SPIFFE ID must not';
  const td = trustDomainProblem(m[1] ?? '');
  if (td) return `trust domain ${JSON.stringify(m[1])} ${td}`;
  const path = m[2];
  if (path === undefined) return 'names only a trust domain; an X509-SVID names a workload (a path such as /ashchan-dev/auth)';
  for (const seg of path.slice(1).split('/')) {
    if (seg === '') return 'has an empty path segment or a trailing /';
    if (seg === '.' || seg === '..') return `has a relative path segment "${seg}"`;
    if (!SEGMENT.test(seg)) return `path segment ${JSON.stringify(seg)} may hold only letters, digits, ".", "-" and "_"`;
  }
  return undefined;
}
