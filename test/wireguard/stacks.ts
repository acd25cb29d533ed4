// A three-host stack joined by WireGuard, for the key, renderer, CLI and tunnel tests.
import { App, Host, Network, Stack, type HostProps, type ServiceProps, type StackProps } from 'podmesh';
import { svc } from '../helpers/stacks.ts';

/** Underlay address of host i (0-based), as test/helpers/netns.ts assigns them. */
export const underlayIp = (i: number): string => `198.51.100.${i + 1}`;

/**
 * Hosts a, b, c on 198.51.100.1-3:51820, one mesh 10.90.0.0/24 split into /26 slices, one service
 * per host of `active` (api on a, auth on b, boards on c); a host without services is not in the tunnel.
 * `apiProps` adds to api's props (e.g. a dependency on boards, across hosts); `more` to the hosts'
 * props (e.g. their firewall) and to auth's and boards'.
 */
export function meshStack(
  id = 'mesh',
  app = new App(),
  wireguard: StackProps['wireguard'] = {},
  active: readonly string[] = ['a', 'b', 'c'],
  apiProps: Partial<ServiceProps> = {},
  more: { readonly hosts?: Partial<Record<'a' | 'b' | 'c', HostProps>>; readonly auth?: Partial<ServiceProps>; readonly boards?: Partial<ServiceProps> } = {},
) {
  const stack = new Stack(app, id, { project: id, wireguard });
  const hosts = (['a', 'b', 'c'] as const).map((name, i) => new Host(stack, name, { endpoint: `${underlayIp(i)}:51820`, ...more.hosts?.[name] }));
  const network = new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: `${id}.local`, bridgeName: 'mesh0' });
  const [a, b, c] = hosts as [Host, Host, Host];
  const api = active.includes('a') ? svc(stack, 'api', { host: a, ports: { http: 9000 }, ...apiProps }) : undefined;
  const auth = active.includes('b') ? svc(stack, 'auth', { host: b, ports: { http: 9001 }, ...more.auth }) : undefined;
  const boards = active.includes('c') ? svc(stack, 'boards', { host: c, ports: { http: 9002 }, ...more.boards }) : undefined;
  return { app, stack, hosts, network, api, auth, boards };
}
