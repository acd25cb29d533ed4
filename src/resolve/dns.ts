// Names across hosts: Podman's DNS answers only for containers on the same host (the same
// bridge), so every container gets the other hosts' services as host entries.
import { compare } from '../io/sort.ts';
import type { ResolvedService, ResolvedStack } from './model.ts';

/** One `/etc/hosts` entry: a DNS name (or alias, or service name) and the address it means. */
export interface HostEntry {
  readonly name: string;
  readonly ip: string;
}

/** Every name a service answers to: its DNS name, its aliases, and its bare service name. */
export function namesOf(s: Pick<ResolvedService, 'aliases' | 'name'>): string[] {
  return s.aliases.includes(s.name) ? [...s.aliases] : [...s.aliases, s.name];
}

/**
 * The host entries the containers of `host` need to reach the services of every other host: each
 * one's DNS name and aliases (bare service names resolve on their own host only), sorted by
 * name; empty on single-host stacks.
 */
export function remoteHostEntries(stack: Pick<ResolvedStack, 'services'>, host: string): HostEntry[] {
  return everyHostEntry(stack.services).filter((e) => e.host !== host).map(({ name, ip }) => ({ name, ip }));
}

/** Every service's entries, sorted once per stack (a stable sort, so filtering it per host is the same as sorting each host's part). */
const sortedEntries = new WeakMap<readonly ResolvedService[], readonly (HostEntry & { readonly host: string })[]>();

function everyHostEntry(services: readonly ResolvedService[]): readonly (HostEntry & { readonly host: string })[] {
  let all = sortedEntries.get(services);
  if (!all) {
    all = services
      // A one-shot container (MinIO's setup) serves nothing: no other host needs its name.
      .filter((s) => !s.oneshot)
      .flatMap((s) => s.aliases.map((name) => ({ name, ip: s.ip, host: s.host })))
      .sort((a, b) => compare(a.name, b.name));
    sortedEntries.set(services, all);
  }
  return all;
}
