// Checks of what the stack asks for (authority and bindings), reported together in the project's error style.
import type { Issue } from '../../../constructs/core/errors.ts';
import { isHostname, isIp, isSanDnsName } from './names.ts';
import { spiffeIdProblem } from './spiffe.ts';
import { KEY_TYPES, type AuthoritySpec, type CertBinding } from './types.ts';

/** X.520 upper bound of a CN or O value. */
const MAX_NAME = 64;
const MAX_LIFETIME_DAYS = 36_500;
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const keyTypeHint = `Use ${KEY_TYPES.map((k) => `'${k}'`).join(' or ')}.`;

function lifetimeProblem(field: string, days: number): string | undefined {
  return Number.isInteger(days) && days >= 1 && days <= MAX_LIFETIME_DAYS
    ? undefined
    : `${field} ${String(days)} is not a whole number of days from 1 to ${MAX_LIFETIME_DAYS}. The seed uses 365 for services and 3650 for the root.`;
}

function nameProblem(field: string, value: string): string | undefined {
  if (value.length === 0) return `${field} is empty. Give it a name, e.g. 'ashchan-ca'.`;
  if (value.length > MAX_NAME) return `${field} "${value}" has ${value.length} characters; X.509 allows ${MAX_NAME}. Shorten it.`;
  if (/[\u0000-\u001f\u007f]/.test(value)) return `${field} ${JSON.stringify(value)} contains control characters. Remove them.`;
  return undefined;
}

/** Problems of an authority spec; `path` is the stack (`ashchan-dev`). */
export function validateAuthority(path: string, a: AuthoritySpec): Issue[] {
  const problems = [
    nameProblem('pki rootCommonName', a.rootCommonName),
    nameProblem('pki clientCaCommonName', a.clientCaCommonName),
    a.organization === undefined ? undefined : nameProblem('pki organization', a.organization),
    lifetimeProblem('pki rootLifetimeDays', a.rootLifetimeDays),
    lifetimeProblem('pki clientCaLifetimeDays', a.clientCaLifetimeDays),
    KEY_TYPES.includes(a.keyType) ? undefined : `pki keyType "${String(a.keyType)}" is not supported. ${keyTypeHint}`,
    a.rootCommonName === a.clientCaCommonName && a.rootCommonName !== ''
      ? `pki rootCommonName and clientCaCommonName are both "${a.rootCommonName}"; chain building needs distinct CA names. Use e.g. 'ashchan-ca' and 'ashchan.local'.`
      : undefined,
  ];
  return problems.filter((m): m is string => m !== undefined).map((message) => ({ path, message }));
}

/** Problems of the bindings: names, addresses, key types, lifetimes, duplicates. `stack` prefixes paths. */
export function validateBindings(stack: string, bindings: readonly CertBinding[]): Issue[] {
  const issues: Issue[] = [];
  const seen = new Set<string>();
  for (const b of bindings) {
    if (!SERVICE_NAME.test(b.service)) {
      issues.push({
        path: stack,
        message: `service name ${JSON.stringify(b.service)} cannot be a folder under pki/services/. Use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit.`,
      });
      continue;
    }
    const path = `${stack}/${b.service}`;
    const what = `${String(b.kind)} certificate`;
    const add = (message: string): void => void issues.push({ path, message: `${what}: ${message}` });
    if (!['server', 'client', 'public'].includes(b.kind)) {
      issues.push({ path, message: `certificate kind "${String(b.kind)}" is unknown. Use 'server', 'client' or 'public'.` });
      continue;
    }
    const key = `${b.service}/${b.kind}`;
    if (seen.has(key)) add(`bound twice. Keep one ${what} per service.`);
    seen.add(key);
    if (!isHostname(b.commonName)) {
      add(`commonName ${JSON.stringify(b.commonName)} is not a DNS name. Use the service's DNS name, e.g. '${b.service}.ashchan.local'.`);
    } else if (b.commonName.length > MAX_NAME) {
      add(`commonName "${b.commonName}" has ${b.commonName.length} characters; X.509 allows ${MAX_NAME}. Use a shorter name as CN and keep the long one in dnsNames.`);
    }
    for (const d of b.dnsNames) {
      if (!isSanDnsName(d)) add(`dnsNames entry ${JSON.stringify(d)} is not a DNS name. Use names such as 'auth.ashchan.local' or '*.ashchan.local'.`);
    }
    for (const ip of b.ipAddresses) {
      if (!isIp(ip)) add(`ipAddresses entry ${JSON.stringify(ip)} is not an IPv4 or IPv6 address. Use the service's static IP, e.g. '10.90.0.21', without a prefix length.`);
    }
    if (b.spiffeId !== undefined) {
      const problem = spiffeIdProblem(b.spiffeId);
      if (problem) add(`spiffeId ${JSON.stringify(b.spiffeId)} ${problem}. Use spiffe://<trust domain>/<stack>/<service>, e.g. 'spiffe://ashchan.local/ashchan-dev/auth'.`);
    }
    if (!KEY_TYPES.includes(b.keyType)) add(`keyType "${String(b.keyType)}" is not supported. ${keyTypeHint}`);
    const life = lifetimeProblem('lifetimeDays', b.lifetimeDays);
    if (life) add(life);
  }
  return issues;
}
