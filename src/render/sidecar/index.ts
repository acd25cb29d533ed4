// Every service's sidecar configuration (`hosts/<host>/config/<service>/haproxy.cfg` or `envoy.yaml`),
// restarting the sidecar when it changes.
import { hostFile } from '../../layout.ts';
import type { ResolvedStack } from '../../resolve/model.ts';
import type { RenderedFile } from '../file.ts';
import { generatedHeader } from '../header.ts';
import { envoyConfig } from './envoy.ts';
import { haproxyConfig } from './haproxy.ts';

/** Renders the proxy configuration of every service with a sidecar. */
export function renderSidecars(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  for (const s of stack.services) {
    const sidecar = s.sidecar;
    if (!sidecar) continue;
    const host = stack.hosts.find((h) => h.name === s.host)!;
    const header = generatedHeader(stack.name);
    const text = sidecar.proxy === 'haproxy' ? haproxyConfig({ ...s, sidecar }, header) : envoyConfig({ ...s, sidecar }, header);
    files.set(...hostFile(host, 'root', sidecar.config.source, text, { units: [sidecar.unit.service] }));
  }
  return files;
}
