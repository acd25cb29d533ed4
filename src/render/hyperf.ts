// Hyperf configuration per application service, from the handlebars templates in
// `templates/hyperf/`. What is the service's own (its identity, listeners and call policy) is one
// class, `hosts/<host>/config/<service>/Policy.php`, mounted into its `app/Podmesh/`.
// Everything else is the same for every Hyperf service of a host and is generated once, under
// `hosts/<host>/config/_shared/`, reading that class: the config/autoload files (`server.php`,
// `mtls_client.php`, `mtls_policy.php`, and the middleware list of each mTLS server name,
// `middlewares.<server>.php`) and the mTLS middleware, client factory and CRL classes. See `hyperfFiles`.
import { PodmeshError } from '../../constructs/core/errors.ts';
import { MTLS_DIR } from '../resolve/environment.ts';
import { hostFile, mountedBy } from '../layout.ts';
import type { ResolvedHost, ResolvedService, ResolvedStack } from '../resolve/model.ts';
import { hyperfFiles, type HyperfFile } from '../resolve/resolve.ts';
import { spiffeIdOf } from '../state/pki/spiffe.ts';
import type { RenderedFile } from './file.ts';
import { generatedHeader } from './header.ts';
import { template, TemplateTexts } from './templates.ts';

/** Seconds an outbound call may take before Guzzle gives up. */
const CLIENT_TIMEOUT_SECONDS = 5;

/** The service's client certificate and what it trusts, where every service's container has them. */
const CLIENT = { caFile: `${MTLS_DIR}/ca.crt`, certFile: `${MTLS_DIR}/client.crt`, keyFile: `${MTLS_DIR}/client.key`, timeout: CLIENT_TIMEOUT_SECONDS } as const;

/** The mTLS port's certificate and the CAs it verifies clients against. */
const MTLS_FILES = { certFile: `${MTLS_DIR}/server.crt`, keyFile: `${MTLS_DIR}/server.key`, clientCaFile: `${MTLS_DIR}/ca.crt` } as const;

/** The `public` certificate, served on a public TLS port. */
const PUBLIC_TLS = { certFile: `${MTLS_DIR}/public.crt`, keyFile: `${MTLS_DIR}/public.key` } as const;

/** The stack's CRLs. */
const CRL_FILE = `${MTLS_DIR}/crl.pem`;

/** A listener besides the mTLS one: plain HTTP, or public TLS with the `public` certificate. */
interface Listener {
  readonly name: string;
  readonly portName: string;
  readonly port: number;
  readonly tls: boolean;
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
      tls: p.name === s.publicTlsPort,
    }));
}

/** What the service's own file, Policy.php, sees. */
function context(stack: ResolvedStack, byName: ReadonlyMap<string, ResolvedService>, s: ResolvedService) {
  const dns = (name: string) => byName.get(name)!;
  const mtlsName = s.hyperf!.serverName;
  return {
    header: generatedHeader(stack.name).join(' '),
    service: s.serviceName,
    dnsName: s.dnsName,
    mtls: { name: mtlsName, port: s.mtls!.port },
    listeners: listeners(s, mtlsName),
    calls: s.calls.map((c) => ({ name: c, url: dns(c).mtls!.url })),
    allowedClients: s.callers.map((c) => dns(c).dnsName).sort(),
    spiffeId: spiffeIdOf(stack.pki.trustDomain, stack.name, s.name),
    allowedSpiffeIds: s.callers.map((c) => spiffeIdOf(stack.pki.trustDomain, stack.name, c)).sort(),
    // The callees' origins.
    mesh: s.calls.map((c) => ({ name: c, origin: new URL(dns(c).mtls!.url).origin })),
  };
}

/**
 * What the files every Hyperf service of a host shares read: nothing of a service but the name of
 * its mTLS server, which only the middleware list of that name reads (`mtls.name`). A template of
 * theirs that read a service's value would fail (strict), instead of giving every service the
 * first one's.
 */
function sharedContext(stack: ResolvedStack, serverName: string) {
  return {
    header: generatedHeader(stack.name).join(' '),
    mtls: { name: serverName },
    serverTls: MTLS_FILES,
    publicTls: PUBLIC_TLS,
    client: CLIENT,
    crlFile: CRL_FILE,
  };
}

/** A file the Hyperf services of one host share: the services that mount it, first to last. */
interface SharedFile {
  readonly host: ResolvedHost;
  readonly file: HyperfFile;
  readonly serverName: string;
  readonly services: ResolvedService[];
}

/**
 * Renders the Hyperf config files of every Hyperf service, under its host's folder: its own, then
 * per host the shared ones, whose change restarts (or reloads, when all can) every service that
 * mounts them.
 */
export function renderHyperf(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  // The first service of a name, as a search of the list would find it.
  const byName = new Map<string, ResolvedService>();
  for (const s of stack.services) if (!byName.has(s.name)) byName.set(s.name, s);
  // The shared files read nothing of a host either: each text is rendered once for all hosts.
  const texts = new TemplateTexts();
  const shared = new Map<string, SharedFile>();
  for (const s of stack.services) {
    if (!s.hyperf || !s.mtls) continue;
    const host = stack.hosts.find((h) => h.name === s.host)!;
    let ctx: ReturnType<typeof context> | undefined;
    for (const file of hyperfFiles(s.name, s.hyperf.serverName)) {
      if (file.shared) {
        const key = `${host.name}\u0000${file.source}`;
        const known = shared.get(key);
        if (known) known.services.push(s);
        else shared.set(key, { host, file, serverName: s.hyperf.serverName, services: [s] });
        continue;
      }
      ctx ??= context(stack, byName, s);
      // A service's own file is its own text: no use looking for it among the others.
      files.set(...hostFile(host, 'root', file.source, rendered((t, c) => template(t)(c), file, ctx, s), mountedBy([s])));
    }
  }
  for (const { host, file, serverName, services } of shared.values()) {
    const text = rendered((t, c) => texts.render(t, c), file, sharedContext(stack, serverName), services[0]!);
    files.set(...hostFile(host, 'root', file.source, text, mountedBy(services)));
  }
  return files;
}

/** `file`'s text from `ctx` by `render`; a template failing is a problem of the service `s`. */
function rendered(render: (template: string, ctx: Readonly<Record<string, unknown>>) => string, file: HyperfFile, ctx: Readonly<Record<string, unknown>>, s: ResolvedService): string {
  try {
    return render(`hyperf/${file.template}`, ctx);
  } catch (e) {
    throw PodmeshError.at(s.path, `templates/hyperf/${file.template}.hbs failed: ${(e as Error).message}`);
  }
}
