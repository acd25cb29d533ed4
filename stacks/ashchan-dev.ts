// Ashchan on one development machine: the seed's mesh with podman-compose or Quadlet.
import { type App, Host, Network, Stack } from 'podmesh';
import { Ashchan } from './lib/ashchan.ts';

export default (app: App): void => {
  const stack = new Stack(app, 'ashchan-dev', {
    project: 'ashchan',
    description: 'Ashchan imageboard on one development host: six services behind mTLS, PostgreSQL, Redis and MinIO.',
    // Also out/ashchan-dev/kubernetes/: the same mesh for a cluster (README, "Exporting to Kubernetes").
    kubernetes: { namespace: 'ashchan' },
    // OCSP (README, "OCSP"): AIA URLs http://ocsp.ashchan.local:8880/ and :8881/, responders on local.
    ocsp: {},
  });
  new Host(stack, 'local', { podmanVersion: '5.4', rootless: true });
  new Network(stack, 'ashchan-mesh', {
    subnet: '10.90.0.0/24',
    gateway: '10.90.0.1',
    bridgeName: 'ashchan-mesh',
    domain: 'ashchan.local',
  });
  // One host and one network: every service runs on them.
  new Ashchan(stack, 'ashchan', { plainHttp: true, publicHostnames: ['localhost', 'ashchan.localhost'] });
};
