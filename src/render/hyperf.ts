// Hyperf configuration per application service, from the handlebars templates in
// `templates/hyperf/`: `hosts/<host>/config/<service>/autoload/{server,mtls_client,mtls_policy,
// middlewares.<server>}.php`, mounted read-only into the container's `config/autoload/`, and the
// mTLS middleware and client factory classes `hosts/<host>/config/<service>/app/Podmesh/*.php`,
// mounted into its `app/Podmesh/` (see `hyperfFiles`).
import { PodmeshError } from '../../constructs/core/errors.ts';
import { MTLS_DIR } from '../resolve/environment.ts';
import { hostFile, serviceConfigPath } from '../layout.ts';
import type { ResolvedService, ResolvedStack } from '../resolve/model.ts';
import { hyperfFiles } from '../resolve/resolve.ts';
import { spiffeIdOf } from '../state/pki/spiffe.ts';
import type { RenderedFile } from './file.ts';
import { generatedHeader } from './header.ts';
import { TemplateTexts } from './templates.ts';

/** Seconds an outbound call may take before Guzzle gives up. */
const CLIENT_TIMEOUT_SECONDS = 5;

/** A listener besides the mTLS one: plain HTTP, or public TLS with the `public` certificate. */
interface Listener {
  readonly name: string;
  readonly portName: string;
  readonly port: number;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | false;
}

/**
 * Every TCP port the service declares besides mTLS. Hyperf keys servers by name, so a port named
 * like the mTLS server gets its number appended.
 */
function listeners(s: ResolvedService, mtlsName: string): Listener[] {
  return s.ports
    .filter((p) => p.name !== 'mtls' && p.protocol === 'tcp')
    .map((p) => ({
      name: p.name === mtlsName ? `${p.name}-${p.port}` : p.name,
      portName: p.name,
      port: p.port,
      tls: p.name === s.publicTlsPort ? { certFile: `${MTLS_DIR}/public.crt`, keyFile: `${MTLS_DIR}/public.key` } : false,
    }));
}

/** What the templates see for one service. */
function context(stack: ResolvedStack, byName: ReadonlyMap<string, ResolvedService>, s: ResolvedService) {
  const dns = (name: string) => byName.get(name)!;
  const mtlsName = s.hyperf!.serverName;
  const others = listeners(s, mtlsName);
  return {
    header: generatedHeader(stack.name).join(' '),
    service: s.serviceName,
    dnsName: s.dnsName,
    mtls: {
      name: mtlsName,
      port: s.mtls!.port,
      certFile: `${MTLS_DIR}/server.crt`,
      keyFile: `${MTLS_DIR}/server.key`,
      clientCaFile: `${MTLS_DIR}/ca.crt`,
    },
    listeners: others.length > 0 ? others : false,
    client: { caFile: `${MTLS_DIR}/ca.crt`, certFile: `${MTLS_DIR}/client.crt`, keyFile: `${MTLS_DIR}/client.key`, timeout: CLIENT_TIMEOUT_SECONDS },
    calls: s.calls.map((c) => ({ name: c, url: dns(c).mtls!.url })),
    allowedClients: s.callers.map((c) => dns(c).dnsName).sort(),
    spiffeId: spiffeIdOf(stack.pki.trustDomain, stack.name, s.name),
    allowedSpiffeIds: s.callers.map((c) => spiffeIdOf(stack.pki.trustDomain, stack.name, c)).sort(),
    crlFile: `${MTLS_DIR}/crl.pem`,
    // For app/Podmesh/*.php: the callees' origins, and the CAs that sign CRLs (ca.crt's, and the
    // client CA that travels in the client certificate's chain).
    mesh: s.calls.map((c) => ({ name: c, origin: new URL(dns(c).mtls!.url).origin })),
  };
}

/** Renders the Hyperf config files of every Hyperf service, under its host's folder. */
export function renderHyperf(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  // The first service of a name, as a search of the list would find it.
  const byName = new Map<string, ResolvedService>();
  for (const s of stack.services) if (!byName.has(s.name)) byName.set(s.name, s);
  // Texts that read nothing of the service (Crl.php, the middleware list of one server name) are rendered once.
  const texts = new TemplateTexts();
  for (const s of stack.services) {
    if (!s.hyperf || !s.mtls) continue;
    const ctx = context(stack, byName, s);
    const host = stack.hosts.find((h) => h.name === s.host)!;
    for (const file of hyperfFiles(s.hyperf.serverName)) {
      try {
        const text = texts.render(`hyperf/${file.template}`, ctx);
        files.set(...hostFile(host, 'root', serviceConfigPath(s.name, file.source), text, { units: [s.unit.service], reloadable: s.unit.reloadable }));
      } catch (e) {
        throw PodmeshError.at(s.path, `templates/hyperf/${file.template}.hbs failed: ${(e as Error).message}`);
      }
    }
  }
  return files;
}
