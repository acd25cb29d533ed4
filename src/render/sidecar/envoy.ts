// The same sidecar as an Envoy v3 bootstrap (`config/<service>/envoy.yaml`). No Envoy binary exists
// on the machine podmesh is built on: this is checked against Envoy's API field names
// (test/sidecar-envoy.test.ts), never run (README "Sidecar").
//
// Inbound: a listener on the mTLS port whose DownstreamTlsContext requires a client certificate of
// the mesh CA, not on the CRL, whose URI SAN is an allowed caller's SPIFFE ID
// (match_typed_subject_alt_names), then the RBAC filter allowing exactly those principals, then
// plain HTTP to the application on 127.0.0.1. Outbound: one listener on 127.0.0.1 per call, to a
// cluster whose UpstreamTlsContext presents the client certificate and checks the callee's DNS
// name and CA.
// @see https://www.envoyproxy.io/docs/envoy/v1.31.0/api-v3/config/bootstrap/v3/bootstrap.proto
import type { ResolvedService, ResolvedSidecar } from '../../resolve/model.ts';
import { MTLS_DIR, SIDECAR_IDENTITY_HEADERS } from '../../resolve/environment.ts';
import { libraryYaml } from '../yaml.ts';

const TYPE = 'type.googleapis.com/envoy.extensions';
const TLS_SOCKET = 'envoy.transport_sockets.tls';

/** TLS 1.3 only. Envoy (BoringSSL) has no TLS 1.3 suite option: its suites are AES-GCM and ChaCha20-Poly1305. */
const TLS_PARAMS = { tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_3' };

const socketAddress = (address: string, port: number) => ({ socket_address: { address, port_value: port } });

function cluster(name: string, type: 'STATIC' | 'STRICT_DNS', address: string, port: number, extra: Record<string, unknown> = {}) {
  return {
    name,
    type,
    connect_timeout: '5s',
    ...(type === 'STRICT_DNS' ? { dns_lookup_family: 'V4_ONLY' } : {}),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address, port) } }] }] },
    ...extra,
  };
}

function httpManager(statPrefix: string, routeConfig: Record<string, unknown>, filters: readonly Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': `${TYPE}.filters.network.http_connection_manager.v3.HttpConnectionManager`,
      stat_prefix: statPrefix,
      ...extra,
      route_config: routeConfig,
      http_filters: [...filters, { name: 'envoy.filters.http.router', typed_config: { '@type': `${TYPE}.filters.http.router.v3.Router` } }],
    },
  };
}

/** The bootstrap as plain data (what {@link envoyConfig} writes as YAML). */
export function envoyBootstrap(s: Pick<ResolvedService, 'name' | 'dnsName'> & { readonly sidecar: ResolvedSidecar }, mtlsDir = MTLS_DIR): Record<string, unknown> {
  const sc = s.sidecar;
  const m = mtlsDir;
  const peers = [sc.self, ...sc.callers.filter((c) => c.service !== sc.self.service)];
  const inbound = {
    name: 'mtls_in',
    address: socketAddress('0.0.0.0', sc.mtlsPort),
    filter_chains: [
      {
        transport_socket: {
          name: TLS_SOCKET,
          typed_config: {
            '@type': `${TYPE}.transport_sockets.tls.v3.DownstreamTlsContext`,
            require_client_certificate: true,
            common_tls_context: {
              tls_params: TLS_PARAMS,
              tls_certificates: [{ certificate_chain: { filename: `${m}/server.crt` }, private_key: { filename: `${m}/server.key` } }],
              validation_context: {
                trusted_ca: { filename: `${m}/ca.crt` },
                crl: { filename: `${m}/crl.pem` },
                match_typed_subject_alt_names: peers.map((p) => ({ san_type: 'URI', matcher: { exact: p.spiffeId } })),
              },
            },
          },
        },
        filters: [
          httpManager(
            'mtls_in',
            {
              name: 'app',
              // Identity headers come from the sidecar only.
              request_headers_to_remove: [SIDECAR_IDENTITY_HEADERS.commonName, SIDECAR_IDENTITY_HEADERS.spiffeId],
              request_headers_to_add: [
                { header: { key: SIDECAR_IDENTITY_HEADERS.spiffeId, value: '%DOWNSTREAM_PEER_URI_SAN%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
                { header: { key: SIDECAR_IDENTITY_HEADERS.commonName, value: '%DOWNSTREAM_PEER_SUBJECT%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
              ],
              virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }],
            },
            [
              {
                name: 'envoy.filters.http.rbac',
                typed_config: {
                  '@type': `${TYPE}.filters.http.rbac.v3.RBAC`,
                  rules: {
                    action: 'ALLOW',
                    policies: {
                      callers: {
                        permissions: [{ any: true }],
                        principals: peers.map((p) => ({ authenticated: { principal_name: { exact: p.spiffeId } } })),
                      },
                    },
                  },
                },
              },
            ],
            { forward_client_cert_details: 'SANITIZE' },
          ),
        ],
      },
    ],
  };
  const outbound = sc.routes.map((r) => ({
    name: `call_${r.service}`,
    address: socketAddress('127.0.0.1', r.port),
    filter_chains: [
      {
        filters: [
          httpManager(`call_${r.service}`, {
            name: `call_${r.service}`,
            virtual_hosts: [{ name: r.service, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: `call_${r.service}`, host_rewrite_literal: `${r.dnsName}:${r.remotePort}` } }] }],
          }, []),
        ],
      },
    ],
  }));
  const clusters = [
    cluster('app', 'STATIC', '127.0.0.1', sc.appPort),
    ...sc.routes.map((r) =>
      cluster(`call_${r.service}`, 'STRICT_DNS', r.dnsName, r.remotePort, {
        transport_socket: {
          name: TLS_SOCKET,
          typed_config: {
            '@type': `${TYPE}.transport_sockets.tls.v3.UpstreamTlsContext`,
            sni: r.dnsName,
            common_tls_context: {
              tls_params: TLS_PARAMS,
              tls_certificates: [{ certificate_chain: { filename: `${m}/client.crt` }, private_key: { filename: `${m}/client.key` } }],
              validation_context: {
                trusted_ca: { filename: `${m}/ca.crt` },
                crl: { filename: `${m}/crl.pem` },
                match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: r.dnsName } }],
              },
            },
          },
        },
      }),
    ),
  ];
  return {
    node: { id: sc.containerName, cluster: s.name },
    static_resources: { listeners: [inbound, ...outbound], clusters },
  };
}

/** `envoy.yaml` for one service's sidecar. */
export function envoyConfig(s: Pick<ResolvedService, 'name' | 'dnsName'> & { readonly sidecar: ResolvedSidecar }, header: readonly string[]): string {
  const comments = [...header, `mTLS sidecar of ${s.name} (${s.dnsName}): Envoy v3 bootstrap, rendered but not run by podmesh's tests.`];
  return comments.map((l) => `# ${l}\n`).join('') + libraryYaml(envoyBootstrap(s));
}
