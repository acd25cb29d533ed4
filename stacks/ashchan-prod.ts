// Ashchan in production on three hosts joined by WireGuard: the seed's "Production Deployment"
// (systemd, host-to-host networking, DNS across hosts) with plain HTTP switched off (migration step 6).
import { type App, Host, Network, Stack } from 'podmesh';
import { Ashchan } from './lib/ashchan.ts';

/** Options of {@link declareAshchanProd}. */
export interface AshchanProdOptions {
  /**
   * Run every host rootless: each host's WireGuard endpoint is then a gateway container
   * (wireguard mode 'container', the default on rootless hosts).
   * @default false (rootful hosts, wg-quick on each)
   */
  readonly rootless?: boolean;
  /** @default 'ashchan-prod' */
  readonly id?: string;
}

/** Declares ashchan-prod in `app`. */
export function declareAshchanProd(app: App, options: AshchanProdOptions = {}): Stack {
  const rootless = options.rootless ? { rootless: true } : {};
  const stack = new Stack(app, options.id ?? 'ashchan-prod', {
    project: 'ashchan',
    description: 'Ashchan imageboard in production: an edge host with the gateway, an app host, a data host; mTLS only.',
    wireguard: { persistentKeepalive: 25, presharedKeys: true },
    // OCSP (README, "OCSP"): responders on edge; the other hosts fetch staples over the tunnel.
    ocsp: { host: 'edge' },
  });
  // Underlay addresses are from TEST-NET-3 (RFC 5737): replace them with the hosts' real ones.
  const edge = new Host(stack, 'edge', { podmanVersion: '5.4', endpoint: '203.0.113.10:51820', ...rootless });
  const appHost = new Host(stack, 'app', { podmanVersion: '5.4', endpoint: '203.0.113.20:51820', ...rootless });
  // The data host runs Ubuntu 24.04's Podman 4.9: its units use the older Quadlet forms.
  const data = new Host(stack, 'data', { podmanVersion: '4.9', endpoint: '203.0.113.30:51820', ...rootless });
  // Explicit slices keep the seed's addresses (gateway .10, auth .21, boards .22) in production.
  const network = new Network(stack, 'ashchan-mesh', {
    subnet: '10.90.0.0/24',
    bridgeName: 'ashchan-mesh',
    domain: 'ashchan.local',
    slices: { edge: '10.90.0.0/28', app: '10.90.0.16/28', data: '10.90.0.64/26' },
  });
  new Ashchan(stack, 'ashchan', {
    network,
    hosts: { gateway: edge, apps: appHost, media: data, data },
    plainHttp: false,
    publicHostnames: ['ashchan.example.org'],
  });
  return stack;
}

export default (app: App): void => {
  declareAshchanProd(app);
};
