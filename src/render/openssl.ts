// The OpenSSL configuration of every application service (`hosts/<host>/config/<service>/openssl.cnf`),
// mounted read-only at OPENSSL_CONF_PATH: the mesh's TLS 1.3 policy where the runtime has no option
// for it (Swoole cannot choose TLS 1.3 suites).
import { OPENSSL_CONF_FILE } from '../resolve/resolve.ts';
import { hostFile, serviceConfigPath } from '../layout.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import type { RenderedFile } from './file.ts';
import { generatedHeader } from './header.ts';
import { template } from './templates.ts';

/** The seed's TLS 1.3 cipher suites, in OpenSSL's names. */
export const MTLS_CIPHERSUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/** Renders `openssl.cnf` for every service with an mTLS listener. */
export function renderOpenssl(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  for (const s of stack.services) {
    if (!s.mtls) continue;
    const host = stack.hosts.find((h) => h.name === s.host)!;
    const text = template('openssl/openssl.cnf')({
        header: generatedHeader(stack.name).join(' '),
        service: s.name,
        dnsName: s.dnsName,
        minProtocol: 'TLSv1.3',
        ciphersuites: MTLS_CIPHERSUITES,
      });
    files.set(...hostFile(host, 'root', serviceConfigPath(s.name, OPENSSL_CONF_FILE), text, { units: [s.unit.service], reloadable: s.unit.reloadable }));
  }
  return files;
}
