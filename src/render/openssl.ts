// The OpenSSL configuration of the mTLS services of a host (`hosts/<host>/config/_shared/openssl.cnf`,
// one copy each of them mounts), read-only at OPENSSL_CONF_PATH: the mesh's TLS 1.3 policy where the
// runtime has no option for it (Swoole cannot choose TLS 1.3 suites).
import { OPENSSL_CONF_FILE } from '../resolve/resolve.ts';
import { hostFile, mountedBy, sharedConfigPath } from '../layout.ts';
import type { ResolvedService, ResolvedStack } from '../resolve/model.ts';
import type { RenderedFile } from './file.ts';
import { generatedHeader } from './header.ts';
import { template } from './templates.ts';

/** The seed's TLS 1.3 cipher suites, in OpenSSL's names. */
export const MTLS_CIPHERSUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/** Renders `openssl.cnf` once for each host with a service with an mTLS listener; its change restarts (or reloads, when all can) every one of them. */
export function renderOpenssl(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  const byHost = new Map<string, ResolvedService[]>();
  for (const s of stack.services) {
    if (!s.mtls) continue;
    const mine = byHost.get(s.host);
    if (mine) mine.push(s);
    else byHost.set(s.host, [s]);
  }
  if (byHost.size === 0) return files;
  const text = template('openssl/openssl.cnf')({ header: generatedHeader(stack.name).join(' '), minProtocol: 'TLSv1.3', ciphersuites: MTLS_CIPHERSUITES });
  for (const [name, services] of byHost) {
    const host = stack.hosts.find((h) => h.name === name)!;
    files.set(...hostFile(host, 'root', sharedConfigPath(OPENSSL_CONF_FILE), text, mountedBy(services)));
  }
  return files;
}
