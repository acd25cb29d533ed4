// The WireGuard full mesh of a multi-host stack: per host a wg-quick config (no private key in it)
// and the systemd unit that brings it up.
// @see https://man7.org/linux/man-pages/man8/wg-quick.8.html
// @see https://man7.org/linux/man-pages/man8/wg.8.html
import type { Issue } from '../../constructs/core/errors.ts';
import { compare } from '../io/sort.ts';
import { STAGE, hostFile, presharedKeyPath, wireguardKeyPath } from '../layout.ts';
import type { ResolvedHost, ResolvedStack, ResolvedTunnelPeer } from '../resolve/model.ts';
import type { Rendering, RenderedFile } from './file.ts';
import { tunnelHooks } from './firewall.ts';
import { peerSection, renderGatewayFiles } from './gateway.ts';
import { generatedHeader, hashHeader } from './header.ts';
import { renderUnit, type ServiceUnit } from './quadlet/index.ts';

/** wg-quick as Debian, Ubuntu and Fedora install it. */
const WG_QUICK = '/usr/bin/wg-quick';

/** One `hosts/<host>/wireguard/<iface>.conf`. */
function renderConfig(stack: ResolvedStack, host: ResolvedHost, self: ResolvedTunnelPeer, peers: readonly ResolvedTunnelPeer[]): string {
  const wg = stack.wireguard!;
  const dir = host.install.wireguardDir;
  const prefix = wg.subnet.slice(wg.subnet.indexOf('/'));
  const hooks = tunnelHooks(stack, host);
  const up = [
    `wg set %i private-key ${wireguardKeyPath(host)}`,
    ...(wg.presharedKeys ? peers.map((p) => `wg set %i peer ${p.publicKey} preshared-key ${presharedKeyPath(host, p.host)}`) : []),
    ...hooks.up,
  ];
  const down = hooks.down;
  const lines = [
    `# Install as ${dir}/${wg.interfaceName}.conf, with this host's private key in ${wireguardKeyPath(host)} (0600)${wg.presharedKeys ? ` and the preshared key shared with each peer in ${presharedKeyPath(host, '<peer>')}` : ''}.`,
    `# Brought up by ${host.install.wireguardUnit}; host ${self.host}. Forwarded traffic between the tunnel and the host's bridges: only the declared flows (${host.firewall}).`,
    '[Interface]',
    `Address = ${self.address}${prefix}`,
    `ListenPort = ${self.listenPort}`,
    ...(wg.mtu !== undefined ? [`MTU = ${wg.mtu}`] : []),
    ...up.map((c) => `PostUp = ${c}`),
    ...down.map((c) => `PostDown = ${c}`),
  ];
  for (const p of peers) lines.push(...peerSection(wg, p));
  return `${hashHeader(stack.name)}${lines.join('\n')}\n`;
}

/** The oneshot unit running `wg-quick up/down` on the installed config, before the mesh's target. */
function renderService(stack: ResolvedStack, host: ResolvedHost): string {
  const wg = stack.wireguard!;
  const conf = `${host.install.wireguardDir}/${wg.interfaceName}.conf`;
  const target = host.install.target;
  const unit: ServiceUnit = {
    kind: 'service',
    unit: {
      description: `WireGuard mesh ${wg.interfaceName} of podmesh stack ${stack.name}`,
      documentation: ['man:wg-quick(8)'],
      wants: ['network-online.target'],
      after: ['network-online.target'],
      before: [target],
    },
    service: {
      type: 'oneshot',
      remainAfterExit: true,
      execStart: [[WG_QUICK, 'up', conf]],
      execStop: [[WG_QUICK, 'down', conf]],
    },
    install: { wantedBy: [host.install.wantedBy, target] },
  };
  return renderUnit(unit, { path: stack.name, comments: generatedHeader(stack.name) });
}

/**
 * `hosts/<host>/wireguard/<iface>.conf` and `hosts/<host>/systemd/podmesh-<stack>-wireguard.service`
 * for every host of a multi-host stack (in `container` mode the gateway's files instead, see
 * gateway.ts); nothing for a single host. Peers are sorted by host name.
 * Pure: public keys come from the resolved model (the lock file or the state's reconcile); a host
 * without one yet (a `--check` before the first synth) is a problem.
 */
export function renderWireguard(stack: ResolvedStack): Rendering {
  const files = new Map<string, RenderedFile>();
  const wg = stack.wireguard;
  if (!wg) return { files, problems: [] };
  const problems: Issue[] = [];
  for (const p of wg.peers) {
    if (p.publicKey === undefined) {
      const path = stack.hosts.find((h) => h.name === p.host)?.path ?? `${stack.name}/${p.host}`;
      problems.push({ path, message: `has no WireGuard public key in podmesh.lock.json yet. Run \`podmesh synth --stack ${stack.name}\` (without --check) to create the host's key.` });
    }
  }
  if (problems.length > 0) return { files, problems };
  const sorted = [...wg.peers].sort((a, b) => compare(a.host, b.host));
  for (const self of sorted) {
    const host = stack.hosts.find((h) => h.name === self.host)!;
    if (self.mode === 'container') {
      // The gateway's unit is a Quadlet .container, planned with the host's other units (systemd.ts).
      for (const [path, file] of renderGatewayFiles(stack, host, self, sorted.filter((p) => p !== self))) files.set(path, file);
      continue;
    }
    const effect = { units: [host.install.wireguardUnit], stage: STAGE.tunnel };
    files.set(...hostFile(host, 'wireguard', `${wg.interfaceName}.conf`, renderConfig(stack, host, self, sorted.filter((p) => p !== self)), effect));
    files.set(...hostFile(host, 'systemd', host.install.wireguardUnit, renderService(stack, host), effect));
  }
  return { files, problems };
}
