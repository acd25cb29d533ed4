// The sidecar (issue 19 item 4) from props to files: what resolution makes of `sidecar` (the
// application's environment, mounts, health check, local ports), the problems of a wrong one,
// the compose service judged by `docker compose config`, the Quadlet unit judged by
// `quadlet -dryrun`, and the Envoy bootstrap checked against Envoy's v3 API field names.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { App, Host, Network, Service, Stack, type SidecarProps } from 'podmesh';
import { resolveStack, tryResolveStack } from '../src/resolve/resolve.ts';
import { renderStack } from '../src/render/stack.ts';
import { validateConstructs } from '../src/synth/select.ts';
import { auditStack } from '../src/posture/check.ts';
import { POSTURE_CONTROLS } from '../src/posture/controls.ts';
import { envoyBootstrap } from '../src/render/sidecar/envoy.ts';
import { uriSanHex } from '../src/render/sidecar/haproxy.ts';
import type { ResolvedStack } from '../src/resolve/model.ts';
import { quadletComplaints, quadletDryRun } from './helpers/quadlet.ts';
import { tool } from './helpers/tools.ts';

const dockerCompose = tool('docker-compose');
const quadlet = tool('quadlet');

/** web (with a sidecar) calls api and db-api; gw calls web. */
function stack(sidecar: SidecarProps = { proxy: 'haproxy' }, web: Record<string, unknown> = {}, opts: { podmanVersion?: string; rootless?: boolean } = {}) {
  const app = new App();
  const s = new Stack(app, 'sc', { project: 'sc' });
  new Host(s, 'local', { ...(opts.podmanVersion ? { podmanVersion: opts.podmanVersion } : {}), ...(opts.rootless !== undefined ? { rootless: opts.rootless } : {}) });
  new Network(s, 'mesh', { subnet: '10.91.0.0/24', gateway: '10.91.0.1', domain: 'sc.local' });
  const img = (id: string) => `localhost/test/${id}:1`;
  const api = new Service(s, 'api', { image: img('api'), hyperf: false });
  const dbApi = new Service(s, 'db-api', { image: img('db-api'), hyperf: false, mtls: { port: 9443 } });
  const w = new Service(s, 'web', { image: img('web'), hyperf: false, calls: [api, dbApi], ports: { public: { port: 8080, publish: true } }, sidecar, ...web });
  new Service(s, 'gw', { image: img('gw'), hyperf: false, calls: [w] });
  return s;
}

const service = (r: ResolvedStack, name: string) => r.services.find((s) => s.name === name)!;

describe('sidecar resolution', () => {
  it('GIVEN web with a HAProxy sidecar WHEN resolved THEN its calls go to local ports, it speaks plain HTTP and mounts no certificate; the sidecar admits gw and web', () => {
    // GIVEN / WHEN: 8080 is web's published port, so the application's port is another
    const r = resolveStack(stack({ proxy: 'haproxy', appPort: 3000 }));
    const web = service(r, 'web');
    const env = Object.fromEntries(web.environment);
    // THEN
    expect(env).toMatchObject({
      MTLS_ENABLED: 'false',
      MTLS_SIDECAR: 'haproxy',
      APP_HOST: '127.0.0.1',
      APP_PORT: '3000',
      API_SERVICE_URL: 'http://127.0.0.1:15001',
      DB_API_SERVICE_URL: 'http://127.0.0.1:15002',
      MTLS_CLIENT_CN_HEADER: 'X-Client-CN',
      MTLS_CLIENT_SPIFFE_ID_HEADER: 'X-Client-SPIFFE-ID',
    });
    expect(env.MTLS_KEY_FILE).toBeUndefined();
    expect(web.mounts.filter((m) => m.type === 'pki')).toEqual([]);
    expect(web.healthcheck?.command).toEqual({ exec: ['curl', '-fsS', '--max-time', '4', 'http://127.0.0.1:3000/health'] });
    expect(web.sidecar).toEqual({
      proxy: 'haproxy',
      image: 'docker.io/library/haproxy:2.6',
      containerName: 'sc-web-1-sidecar',
      unit: { stem: 'sc-web-sidecar', service: 'sc-web-sidecar.service' },
      appPort: 3000,
      mtlsPort: 8443,
      self: { service: 'web', commonName: 'web.sc.local', spiffeId: 'spiffe://sc.local/sc/web' },
      callers: [{ service: 'gw', commonName: 'gw.sc.local', spiffeId: 'spiffe://sc.local/sc/gw' }],
      routes: [
        { service: 'api', port: 15001, dnsName: 'api.sc.local', remotePort: 8443, spiffeId: 'spiffe://sc.local/sc/api' },
        { service: 'db-api', port: 15002, dnsName: 'db-api.sc.local', remotePort: 9443, spiffeId: 'spiffe://sc.local/sc/db-api' },
      ],
      config: { source: 'config/web/haproxy.cfg', target: '/usr/local/etc/haproxy/haproxy.cfg' },
      security: {
        noNewPrivileges: true,
        capAdd: [],
        readOnlyRootFilesystem: true,
        tmpfs: [{ path: '/run/podmesh-sidecar' }, { path: '/tmp' }],
        memory: '128m',
        pids: 256,
        userNamespace: web.security.userNamespace,
        runAs: 'root',
        waivers: {},
      },
    });
    // The posture check judges the sidecar as a container of its own: root in a user namespace passes.
    const rows = auditStack(r).rows.filter((x) => x.service === 'web-sidecar');
    expect(rows.map((x) => [x.control, x.status])).toEqual(POSTURE_CONTROLS.map((c) => [c.id, 'pass']));
    // A caller without a sidecar is unchanged.
    expect(Object.fromEntries(service(r, 'gw').environment).WEB_SERVICE_URL).toBe('https://web.sc.local:8443');
  });

  it('GIVEN an outbound port for one call WHEN resolved THEN the other call takes the first free port from 15001', () => {
    const r = resolveStack(stack({ proxy: 'envoy', appPort: 3000, outbound: { 'db-api': 15001 } }));
    expect(service(r, 'web').sidecar!.routes.map((x) => [x.service, x.port])).toEqual([['api', 15002], ['db-api', 15001]]);
    expect(service(r, 'web').sidecar!.config).toEqual({ source: 'config/web/envoy.yaml', target: '/etc/envoy/envoy.yaml' });
  });

  it.each([
    ['Hyperf left on', { proxy: 'haproxy', appPort: 3000 }, { hyperf: {} }, 'sidecar needs hyperf: false'],
    ['appPort on a declared port', { proxy: 'haproxy' }, {}, 'sidecar.appPort 8080 is also port "public"'],
    ['appPort on the mTLS port', { proxy: 'haproxy', appPort: 8443 }, {}, 'sidecar.appPort 8443 is also the mTLS port'],
    ['a route to a service not called', { proxy: 'haproxy', appPort: 3000, outbound: { apo: 15001 } }, {}, 'sidecar.outbound names "apo", which this service does not call. Did you mean "api"?'],
    ['two routes on one port', { proxy: 'haproxy', appPort: 3000, outbound: { api: 15001, 'db-api': 15001 } }, {}, 'sidecar.outbound port 15001 of "db-api" is also sidecar.outbound port of "api"'],
  ] as const)('GIVEN %s WHEN resolved THEN the problem names web and the fix', (_, sidecar, web, message) => {
    const { issues } = tryResolveStack(stack(sidecar as SidecarProps, web));
    expect(issues.map((i) => `[${i.path}] ${i.message}`)).toContainEqual(expect.stringContaining(`[sc/web] ${message}`));
  });

  it('GIVEN web waived into the host\'s user namespace WHEN resolved THEN its sidecar, root there, fails the posture check at web', () => {
    const { issues } = tryResolveStack(stack({ proxy: 'haproxy', appPort: 3000 }, { security: { hostUserNamespace: { reason: 'test' }, runAsRoot: { reason: 'test' } } }));
    const messages = issues.map((i) => `[${i.path}] ${i.message}`);
    expect(messages).toContainEqual(expect.stringMatching(/^\[sc\/web\] posture: main process does not run as host root .* fails: runs as uid 0, which is host root/));
    expect(messages).toContainEqual(expect.stringMatching(/^\[sc\/web\] posture: container root is not host root/));
  });

  it('GIVEN an unknown proxy WHEN the service is built THEN the props check refuses it', () => {
    const issues = validateConstructs([stack({ proxy: 'nginx', appPort: 3000 } as unknown as SidecarProps)]);
    expect(issues.map((i) => `[${i.path}] ${i.message}`)).toContainEqual(expect.stringMatching(/^\[sc\/web\] .*sidecar\.proxy.*must be "haproxy" or "envoy"/));
  });
});

describe('sidecar output', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'podmesh-sidecar-out-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const write = (files: ReadonlyMap<string, { content: string }>, dir: string) => {
    for (const [path, f] of files) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), f.content);
    }
  };

  it.skipIf(!dockerCompose)('GIVEN web with a sidecar WHEN compose.yaml is rendered THEN docker compose config accepts it and the sidecar shares web\'s network namespace', () => {
    const { files, issues } = renderStack(resolveStack(stack({ proxy: 'haproxy', appPort: 3000 })), { outDir: join(tmp, 'out') });
    expect(issues).toEqual([]);
    const dir = join(tmp, 'compose');
    write(files, dir);
    const file = join(dir, 'hosts/local/compose.yaml');
    const r = spawnSync(dockerCompose!, ['-f', file, 'config', '--format', 'json'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const model = JSON.parse(r.stdout);
    const sidecar = model.services['web-sidecar'];
    expect(sidecar.network_mode).toBe('service:web');
    expect(sidecar.networks).toBeUndefined();
    expect(sidecar.ports).toBeUndefined();
    expect(sidecar.depends_on).toEqual({ web: { condition: 'service_started', required: true } });
    expect(sidecar.read_only).toBe(true);
    expect(sidecar.cap_drop).toEqual(['ALL']);
    expect(sidecar.volumes.map((v: { target: string; read_only?: boolean }) => [v.target, v.read_only])).toEqual([['/etc/mtls', true], ['/usr/local/etc/haproxy/haproxy.cfg', true]]);
    // The address, aliases and the published port stay web's; web mounts no certificate.
    expect(model.services.web.networks['sc-mesh'] ?? Object.values(model.services.web.networks)[0]).toMatchObject({ aliases: ['web.sc.local'] });
    expect(model.services.web.ports).toHaveLength(1);
    expect((model.services.web.volumes ?? []).map((v: { target: string }) => v.target)).not.toContain('/etc/mtls');
    // The configuration is in the host folder, where the bind mount finds it.
    expect(files.get('hosts/local/config/web/haproxy.cfg')?.content).toContain('bind :8443 ssl crt /run/podmesh-sidecar/server.crt');
    expect(files.get('TOPOLOGY.md')?.content).toContain('8443 mTLS (haproxy sidecar)');
    // No key material in any generated file.
    for (const [path, f] of files) expect(f.content, path).not.toMatch(/PRIVATE KEY/);
  });

  it.skipIf(!quadlet)('GIVEN web with a sidecar on rootless Podman 5.4 and rootful 4.4 WHEN the Quadlet units are rendered THEN quadlet -dryrun generates both services, the sidecar in web\'s network namespace', () => {
    for (const [version, rootless] of [['5.4', true], ['4.4', false]] as const) {
      const { files, issues } = renderStack(resolveStack(stack({ proxy: 'haproxy', appPort: 3000 }, {}, { podmanVersion: version, rootless })), { outDir: join(tmp, 'out') });
      expect(issues).toEqual([]);
      const dir = join(tmp, `quadlet-${version}`);
      mkdirSync(dir, { recursive: true });
      for (const [path, f] of files) if (path.startsWith('hosts/local/quadlet/')) writeFileSync(join(dir, path.slice('hosts/local/quadlet/'.length)), f.content);
      const r = quadletDryRun(quadlet!, dir, rootless);
      expect(quadletComplaints(r.stderr), version).toEqual([]);
      const unit = r.services.get('sc-web-sidecar.service');
      expect(unit, version).toBeDefined();
      expect(unit).toMatch(/--network container:sc-web\b/);
      expect(unit).toMatch(/BindsTo=sc-web\.service/);
      expect(unit).toMatch(/After=.*sc-web\.service/);
      expect(unit).toContain('/etc/mtls:ro');
      expect(unit).toMatch(/--entrypoint[= ]\/bin\/sh/);
      // The sidecar publishes nothing and has no address of its own.
      expect(unit).not.toMatch(/--publish|--ip |:ip=/);
      expect(r.services.get('sc-web.service')).toMatch(/(--ip |:ip=)10\.91\.0\.\d+/);
    }
  });

  it('GIVEN web with an Envoy sidecar WHEN envoy.yaml is rendered THEN every field is one of Envoy v3 API\'s, with the policy, CRL, TLS 1.3 and the routes', () => {
    const r = resolveStack(stack({ proxy: 'envoy', appPort: 3000 }));
    const web = service(r, 'web');
    const { files } = renderStack(r, { outDir: join(tmp, 'out') });
    const text = files.get('hosts/local/config/web/envoy.yaml')!.content;
    const doc = parse(text);
    expect(doc).toEqual(envoyBootstrap({ ...web, sidecar: web.sidecar! }));
    expect(checkMessage(doc, 'Bootstrap', '$')).toEqual([]);
    const inbound = doc.static_resources.listeners[0];
    const tlsCtx = inbound.filter_chains[0].transport_socket.typed_config;
    expect(tlsCtx.require_client_certificate).toBe(true);
    expect(tlsCtx.common_tls_context.validation_context.crl).toEqual({ filename: '/etc/mtls/crl.pem' });
    expect(tlsCtx.common_tls_context.validation_context.match_typed_subject_alt_names.map((m: { matcher: { exact: string } }) => m.matcher.exact)).toEqual(['spiffe://sc.local/sc/web', 'spiffe://sc.local/sc/gw']);
    const rbac = inbound.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules;
    expect(rbac.action).toBe('ALLOW');
    expect(rbac.policies.callers.principals.map((p: { authenticated: { principal_name: { exact: string } } }) => p.authenticated.principal_name.exact)).toEqual(['spiffe://sc.local/sc/web', 'spiffe://sc.local/sc/gw']);
    expect(doc.static_resources.listeners.slice(1).map((l: { address: { socket_address: unknown } }) => l.address.socket_address)).toEqual([
      { address: '127.0.0.1', port_value: 15001 },
      { address: '127.0.0.1', port_value: 15002 },
    ]);
    const upstream = doc.static_resources.clusters[1].transport_socket.typed_config;
    expect(upstream.sni).toBe('api.sc.local');
    expect(upstream.common_tls_context.validation_context.match_typed_subject_alt_names).toEqual([{ san_type: 'DNS', matcher: { exact: 'api.sc.local' } }]);
    expect(text.startsWith('# Generated by podmesh')).toBe(true);
  });

  it('GIVEN web with a HAProxy sidecar WHEN haproxy.cfg and envoy.yaml are rendered THEN they are these files', async () => {
    const haproxy = renderStack(resolveStack(stack({ proxy: 'haproxy', appPort: 3000 })), { outDir: join(tmp, 'out') }).files;
    const envoy = renderStack(resolveStack(stack({ proxy: 'envoy', appPort: 3000 })), { outDir: join(tmp, 'out') }).files;
    await expect(haproxy.get('hosts/local/config/web/haproxy.cfg')!.content).toMatchFileSnapshot('__snapshots__/sidecar/haproxy.cfg');
    await expect(envoy.get('hosts/local/config/web/envoy.yaml')!.content).toMatchFileSnapshot('__snapshots__/sidecar/envoy.yaml');
  });

  it.each([
    // 23 bytes: short form; 136: 0x81 and one length byte; 300: 0x82 and two.
    ['spiffe://sc.local/sc/gw', '17'],
    [`spiffe://sc.local/${'a'.repeat(118)}`, '8188'],
    [`spiffe://sc.local/${'a'.repeat(282)}`, '82012C'],
  ])('GIVEN the SPIFFE ID %# WHEN framed as a DER GeneralName THEN tag 0x86 and the DER length come first', (id, length) => {
    expect(uriSanHex(id)).toBe(`86${length}${Buffer.from(id).toString('hex').toUpperCase()}`);
  });

  it('GIVEN the Envoy field checker WHEN a field is misspelled or an enum value unknown THEN it reports the path (the check can fail)', () => {
    expect(checkMessage({ static_resources: { listeners: [{ name: 'x', adress: {} }] } }, 'Bootstrap', '$')).toEqual(['$.static_resources.listeners[0].adress: no field "adress" in Listener']);
    expect(checkMessage({ type: 'DNS', name: 'c' }, 'Cluster', '$')).toEqual(['$.type: "DNS" is not a value of Cluster.DiscoveryType']);
  });
});

// Envoy v3 API messages as far as podmesh writes them: each field's name (proto3 JSON/YAML names
// are the snake_case field names) and type, read from envoyproxy/envoy's api/ tree:
//   config/bootstrap/v3/bootstrap.proto (Bootstrap.node 1, static_resources 2; StaticResources.listeners 1, clusters 2),
//   config/core/v3/base.proto (Node.id 1, cluster 2; DataSource.filename 1; HeaderValueOption.header 1, append_action 3 with
//     HeaderAppendAction APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS; HeaderValue.key 1, value 2;
//     TransportSocket.name 1, typed_config 3),
//   config/core/v3/address.proto (Address.socket_address 1; SocketAddress.address 2, port_value 3),
//   config/listener/v3/listener.proto (Listener.name 1, address 2, filter_chains 3),
//   config/listener/v3/listener_components.proto (FilterChain.filters 3, transport_socket 6; Filter.name 1, typed_config 4),
//   config/cluster/v3/cluster.proto (Cluster.name 1, type 2 (DiscoveryType STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST),
//     connect_timeout 4, dns_lookup_family 17 (AUTO, V4_ONLY, V6_ONLY, V4_PREFERRED, ALL), load_assignment 33, transport_socket 24),
//   config/endpoint/v3/endpoint.proto, endpoint_components.proto (ClusterLoadAssignment.cluster_name 1, endpoints 2;
//     LocalityLbEndpoints.lb_endpoints 2; LbEndpoint.endpoint 1; Endpoint.address 1),
//   config/route/v3/route.proto, route_components.proto (RouteConfiguration.name 1, virtual_hosts 2, request_headers_to_add 6,
//     request_headers_to_remove 8; VirtualHost.name 1, domains 2, routes 3; Route.match 1, route 2; RouteMatch.prefix 1;
//     RouteAction.cluster 1, host_rewrite_literal 6),
//   extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto (stat_prefix 2, route_config 4,
//     http_filters 5, forward_client_cert_details 16: SANITIZE, FORWARD_ONLY, APPEND_FORWARD, SANITIZE_SET, ALWAYS_FORWARD_ONLY;
//     HttpFilter.name 1, typed_config 4),
//   extensions/filters/http/rbac/v3/rbac.proto (RBAC.rules 1), config/rbac/v3/rbac.proto (RBAC.action 1: ALLOW, DENY, LOG;
//     policies 2 (map); Policy.permissions 1, principals 2; Permission.any 3; Principal.authenticated 4;
//     Principal.Authenticated.principal_name 2), type/matcher/v3/string.proto (StringMatcher.exact 1),
//   extensions/transport_sockets/tls/v3/tls.proto (UpstreamTlsContext.common_tls_context 1, sni 2;
//     DownstreamTlsContext.common_tls_context 1, require_client_certificate 2; CommonTlsContext.tls_params 1,
//     tls_certificates 2, validation_context 3),
//   extensions/transport_sockets/tls/v3/common.proto (TlsParameters.tls_minimum_protocol_version 1, tls_maximum_protocol_version 2:
//     TLS_AUTO, TLSv1_0 … TLSv1_3; TlsCertificate.certificate_chain 1, private_key 2; CertificateValidationContext.trusted_ca 1,
//     crl 7, match_typed_subject_alt_names 14; SubjectAltNameMatcher.san_type 1 (SAN_TYPE_UNSPECIFIED, EMAIL, DNS, URI,
//     IP_ADDRESS, OTHER_NAME), matcher 2), extensions/filters/http/router/v3/router.proto (Router).
// A field is a scalar ('s'), an enum ('enum:<name>'), a message (its name), a repeated message ({ list }) or a map ({ map }).
type Field = string | { readonly list: string } | { readonly map: string };
const ENUMS = {
  'Cluster.DiscoveryType': ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'],
  'Cluster.DnsLookupFamily': ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'],
  HeaderAppendAction: ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'],
  ForwardClientCertDetails: ['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY'],
  'RBAC.Action': ['ALLOW', 'DENY', 'LOG'],
  TlsProtocol: ['TLS_AUTO', 'TLSv1_0', 'TLSv1_1', 'TLSv1_2', 'TLSv1_3'],
  SanType: ['SAN_TYPE_UNSPECIFIED', 'EMAIL', 'DNS', 'URI', 'IP_ADDRESS', 'OTHER_NAME'],
} as const;
const MESSAGES: Record<string, Record<string, Field>> = {
  Bootstrap: { node: 'Node', static_resources: 'StaticResources' },
  Node: { id: 's', cluster: 's' },
  StaticResources: { listeners: { list: 'Listener' }, clusters: { list: 'Cluster' } },
  Listener: { name: 's', address: 'Address', filter_chains: { list: 'FilterChain' } },
  Address: { socket_address: 'SocketAddress' },
  SocketAddress: { address: 's', port_value: 's' },
  FilterChain: { filters: { list: 'Filter' }, transport_socket: 'TransportSocket' },
  Filter: { name: 's', typed_config: 'Any' },
  TransportSocket: { name: 's', typed_config: 'Any' },
  Cluster: { name: 's', type: 'enum:Cluster.DiscoveryType', connect_timeout: 's', dns_lookup_family: 'enum:Cluster.DnsLookupFamily', load_assignment: 'ClusterLoadAssignment', transport_socket: 'TransportSocket' },
  ClusterLoadAssignment: { cluster_name: 's', endpoints: { list: 'LocalityLbEndpoints' } },
  LocalityLbEndpoints: { lb_endpoints: { list: 'LbEndpoint' } },
  LbEndpoint: { endpoint: 'Endpoint' },
  Endpoint: { address: 'Address' },
  HttpConnectionManager: { stat_prefix: 's', route_config: 'RouteConfiguration', http_filters: { list: 'HttpFilter' }, forward_client_cert_details: 'enum:ForwardClientCertDetails' },
  HttpFilter: { name: 's', typed_config: 'Any' },
  RouteConfiguration: { name: 's', virtual_hosts: { list: 'VirtualHost' }, request_headers_to_add: { list: 'HeaderValueOption' }, request_headers_to_remove: 's' },
  HeaderValueOption: { header: 'HeaderValue', append_action: 'enum:HeaderAppendAction' },
  HeaderValue: { key: 's', value: 's' },
  VirtualHost: { name: 's', domains: 's', routes: { list: 'Route' } },
  Route: { match: 'RouteMatch', route: 'RouteAction' },
  RouteMatch: { prefix: 's' },
  RouteAction: { cluster: 's', host_rewrite_literal: 's' },
  HttpRbac: { rules: 'RBAC' },
  RBAC: { action: 'enum:RBAC.Action', policies: { map: 'Policy' } },
  Policy: { permissions: { list: 'Permission' }, principals: { list: 'Principal' } },
  Permission: { any: 's' },
  Principal: { authenticated: 'Authenticated' },
  Authenticated: { principal_name: 'StringMatcher' },
  StringMatcher: { exact: 's' },
  Router: {},
  UpstreamTlsContext: { common_tls_context: 'CommonTlsContext', sni: 's' },
  DownstreamTlsContext: { common_tls_context: 'CommonTlsContext', require_client_certificate: 's' },
  CommonTlsContext: { tls_params: 'TlsParameters', tls_certificates: { list: 'TlsCertificate' }, validation_context: 'CertificateValidationContext' },
  TlsParameters: { tls_minimum_protocol_version: 'enum:TlsProtocol', tls_maximum_protocol_version: 'enum:TlsProtocol' },
  TlsCertificate: { certificate_chain: 'DataSource', private_key: 'DataSource' },
  DataSource: { filename: 's' },
  CertificateValidationContext: { trusted_ca: 'DataSource', crl: 'DataSource', match_typed_subject_alt_names: { list: 'SubjectAltNameMatcher' } },
  SubjectAltNameMatcher: { san_type: 'enum:SanType', matcher: 'StringMatcher' },
};
/** The message an `Any`'s `@type` names. */
const ANY_TYPES: Record<string, string> = {
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager': 'HttpConnectionManager',
  'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC': 'HttpRbac',
  'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router': 'Router',
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext': 'DownstreamTlsContext',
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext': 'UpstreamTlsContext',
};

/** Every field of `value` that message `type` does not have, or enum value it does not know, by path. */
function checkMessage(value: unknown, type: string, path: string): string[] {
  if (type === 'Any') {
    const v = value as Record<string, unknown>;
    const inner = ANY_TYPES[String(v['@type'])];
    if (!inner) return [`${path}: unknown @type ${String(v['@type'])}`];
    const { ['@type']: _, ...rest } = v;
    return checkMessage(rest, inner, path);
  }
  const fields = MESSAGES[type];
  if (!fields) return [`${path}: no message ${type}`];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${path}: ${type} must be a mapping`];
  return Object.entries(value).flatMap(([k, v]): string[] => {
    const f = fields[k];
    const at = `${path}.${k}`;
    if (f === undefined) return [`${at}: no field "${k}" in ${type}`];
    if (typeof f === 'object' && 'map' in f) return Object.entries(v as object).flatMap(([mk, mv]) => checkMessage(mv, f.map, `${at}.${mk}`));
    if (typeof f === 'object') return Array.isArray(v) ? v.flatMap((x, i) => checkMessage(x, f.list, `${at}[${i}]`)) : [`${at}: must be a list`];
    if (f === 's') return typeof v === 'object' && v !== null && !Array.isArray(v) ? [`${at}: must be a scalar`] : [];
    if (typeof f === 'string' && f.startsWith('enum:')) {
      const e = f.slice(5) as keyof typeof ENUMS;
      return (ENUMS[e] as readonly string[]).includes(String(v)) ? [] : [`${at}: ${JSON.stringify(v)} is not a value of ${e}`];
    }
    return checkMessage(v, f, at);
  });
}
