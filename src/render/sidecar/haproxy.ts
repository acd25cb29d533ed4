// The HAProxy configuration of a service's mTLS sidecar (`config/<service>/haproxy.cfg`), written
// for HAProxy 2.6 (Debian bookworm's, the official image's 2.6 line) and the command that starts it.
//
// Inbound: one frontend on the mTLS port terminates TLS 1.3 with the service's server certificate,
// requires a client certificate of the mesh CA that is not on the CRL, admits only the declared
// callers (each by its CN and its SPIFFE ID together), staples the OCSP response found beside the
// certificate, and forwards plain HTTP to the application on 127.0.0.1 with the caller's identity
// in two headers that callers themselves cannot set. Outbound: one listener on 127.0.0.1 per call,
// originating mTLS with the service's client certificate and checking the callee's name and CA.
// @see https://docs.haproxy.org/2.6/configuration.html
import type { ResolvedService, ResolvedSidecar, SidecarPeer } from '../../resolve/model.ts';
import { MTLS_DIR, SIDECAR_IDENTITY_HEADERS } from '../../resolve/environment.ts';
import { MTLS_CIPHERSUITES } from '../openssl.ts';

/**
 * Where the sidecar finds its files. HAProxy 2.6 reads a certificate's key from `<crt>.key` and its
 * OCSP response from `<crt>.ocsp` with its issuer from `<crt>.issuer` (`ssl-load-extra-files`); the
 * state folder keeps `server.key` beside `server.crt`, and the OCSP timer writes `server.crt.ocsp`.
 * So the start command links `tlsDir/server.crt`, `.key`, `.ocsp`, `.issuer` (and the client pair) to the
 * mounted files: no key is copied, and a response the timer writes later is seen on the next start.
 */
export interface HaproxyPaths {
  /** The service's certificate folder (`pki/services/<service>/`), mounted read-only. */
  readonly mtlsDir: string;
  /** A private writable folder (a tmpfs in the container) for the links. */
  readonly tlsDir: string;
}

/** The paths inside the sidecar container. */
export const CONTAINER_PATHS: HaproxyPaths = { mtlsDir: MTLS_DIR, tlsDir: '/run/podmesh-sidecar' };

/** The links the start command makes, `[link, target]`: HAProxy's extra-file names onto the state folder's names. */
export function tlsLinks(paths: HaproxyPaths = CONTAINER_PATHS): [string, string][] {
  const { mtlsDir: m, tlsDir: t } = paths;
  return [
    [`${t}/server.crt`, `${m}/server.crt`],
    [`${t}/server.crt.key`, `${m}/server.key`],
    [`${t}/server.crt.ocsp`, `${m}/server.crt.ocsp`],
    // The OCSP response's certificate ID needs the issuer: the root signs server certificates.
    [`${t}/server.crt.issuer`, `${m}/ca.crt`],
    [`${t}/client.crt`, `${m}/client.crt`],
    [`${t}/client.crt.key`, `${m}/client.key`],
  ];
}

/**
 * The sidecar container's command: make the links, then run HAProxy in the foreground (`-db`) in
 * master-worker mode (`-W`). Paths only: no secret is on the command line.
 */
export function haproxyCommand(configPath: string, paths: HaproxyPaths = CONTAINER_PATHS): string[] {
  const links = tlsLinks(paths).map(([link, target]) => `ln -sf ${target} ${link}`);
  return ['/bin/sh', '-c', [`mkdir -p ${paths.tlsDir}`, ...links, `exec haproxy -W -db -f ${configPath}`].join(' && ')];
}

/**
 * The DER bytes of a certificate's URI SAN entry `id` (a GeneralName, `[6] IA5String`), as HAProxy's
 * `ssl_c_der,hex` prints them (upper-case hex): tag, length, the URI. HAProxy 2.6 has no fetch for
 * a certificate's SANs; this tag-and-length-framed pattern matches that exact URI SAN and no
 * longer or shorter one.
 */
export function uriSanHex(id: string): string {
  const uri = Buffer.from(id, 'ascii');
  const n = uri.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([0x86, ...length]), uri]).toString('hex').toUpperCase();
}

/** The lines of `haproxy.cfg` for one service's sidecar. */
export function haproxyConfig(s: Pick<ResolvedService, 'name' | 'dnsName'> & { readonly sidecar: ResolvedSidecar }, header: readonly string[], paths: HaproxyPaths = CONTAINER_PATHS): string {
  const sc = s.sidecar;
  const { mtlsDir: m, tlsDir: t } = paths;
  // The service itself may call itself (as the other mTLS consumers allow), then its callers.
  const peers: SidecarPeer[] = [sc.self, ...sc.callers.filter((c) => c.service !== sc.self.service)];
  const { commonName: cnHeader, spiffeId: idHeader } = SIDECAR_IDENTITY_HEADERS;
  const lines: string[] = [
    ...header.map((l) => `# ${l}`),
    `# mTLS sidecar of ${s.name} (${s.dnsName}): HAProxy 2.6.`,
    'global',
    '    log stdout format raw local0 info',
    '    maxconn 4096',
    // <crt>.key, <crt>.ocsp and the issuer the response is checked against; no .sctl file exists.
    '    ssl-load-extra-files key ocsp issuer',
    `    ssl-default-bind-ciphersuites ${MTLS_CIPHERSUITES}`,
    '    ssl-default-bind-options ssl-min-ver TLSv1.3',
    `    ssl-default-server-ciphersuites ${MTLS_CIPHERSUITES}`,
    '    ssl-default-server-options ssl-min-ver TLSv1.3',
    '',
    'defaults',
    '    mode http',
    '    log global',
    '    option httplog',
    '    timeout connect 5s',
    '    timeout client 60s',
    '    timeout server 60s',
    '    timeout http-request 10s',
    '',
    '# Inbound: mTLS on the service port, the call policy, then plain HTTP to the application.',
    'frontend mtls_in',
    `    bind :${sc.mtlsPort} ssl crt ${t}/server.crt ca-file ${m}/ca.crt crl-file ${m}/crl.pem verify required`,
    // Identity headers come from the sidecar only.
    `    http-request del-header ${cnHeader}`,
    `    http-request del-header ${idHeader}`,
  ];
  peers.forEach((p, i) => {
    lines.push(
      `    # ${p.service}: CN ${p.commonName}, ${p.spiffeId}`,
      `    acl peer${i}_cn ssl_c_s_dn(CN) -m str ${p.commonName}`,
      `    acl peer${i}_id ssl_c_der,hex -m sub ${uriSanHex(p.spiffeId)}`,
    );
  });
  const allowed = peers.map((_, i) => `peer${i}_cn peer${i}_id`).join(' || ');
  lines.push(`    http-request deny deny_status 403 unless ${allowed}`);
  peers.forEach((p, i) => {
    lines.push(
      `    http-request set-header ${cnHeader} ${p.commonName} if peer${i}_cn peer${i}_id`,
      `    http-request set-header ${idHeader} ${p.spiffeId} if peer${i}_cn peer${i}_id`,
    );
  });
  lines.push('    default_backend app', '', 'backend app', `    server app 127.0.0.1:${sc.appPort}`);
  for (const r of sc.routes) {
    lines.push(
      '',
      `# Outbound: http://127.0.0.1:${r.port} → mTLS to ${r.dnsName}:${r.remotePort} (${r.spiffeId}).`,
      `listen call_${r.service.replace(/[^A-Za-z0-9]/g, '_')}`,
      `    bind 127.0.0.1:${r.port}`,
      `    http-request set-header Host ${r.dnsName}:${r.remotePort}`,
      `    server ${r.service} ${r.dnsName}:${r.remotePort} ssl crt ${t}/client.crt ca-file ${m}/ca.crt crl-file ${m}/crl.pem verify required verifyhost ${r.dnsName} sni str(${r.dnsName})`,
    );
  }
  return `${lines.join('\n')}\n`;
}
