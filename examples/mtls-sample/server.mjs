// A sample mTLS service for podmesh meshes: reads only the generated environment and /etc/mtls,
// requires a client certificate, lets in only the callers the policy names (and itself, for its
// health check): a certificate carrying a SPIFFE ID (its one spiffe:// URI SAN) by
// MTLS_ALLOWED_SPIFFE_IDS alone, one without (issued before SPIFFE IDs) by MTLS_ALLOWED_CLIENTS;
// and calls the services it may call through <NAME>_SERVICE_URL.
// Plain Node, no dependencies: it stands in for the Ashchan images in the end-to-end test.
//
//   GET /health        200 {"status":"ok"} for an allowed caller or the service itself
//   GET /whoami        the caller's certificate CN and SPIFFE ID as the server saw them
//   GET /call/<name>   GETs <NAME>_SERVICE_URL/health with this service's client certificate
//
// Staples the OCSP response in <MTLS_CERT_FILE>.ocsp to every handshake whose client asks for it.
//
// Every handshake is logged as one JSON line in the seed's format (mtls_handshake_complete /
// mtls_handshake_failed with client_cn, server_cn, tls_version, cipher_suite), with `remote`, the
// peer's address as the server saw it.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const env = process.env;
const CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
const CALL_TIMEOUT_MS = 5_000;

/** One JSON log line on stdout, the seed's "Logging" format. */
function log(level, event, fields = {}) {
  const line = { timestamp: new Date().toISOString(), level, service: env.SERVICE_NAME ?? 'unknown', event, ...fields };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function required(name) {
  const value = env[name];
  if (value === undefined || value === '') {
    log('error', 'config_error', { message: `${name} is not set` });
    process.exit(78);
  }
  return value;
}

const read = (name) => readFileSync(required(name));

/** The PEM blocks of a file: Node's `crl` option reads only the first block of a string. */
function pemBlocks(text) {
  return text.match(/-----BEGIN [A-Z0-9 ]+-----[\s\S]+?-----END [A-Z0-9 ]+-----\n?/g) ?? [];
}

const selfCn = required('SERVICE_DNS_NAME');
const list = (value) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const allowed = new Set(list(env.MTLS_ALLOWED_CLIENTS));
const allowedIds = new Set(list(env.MTLS_ALLOWED_SPIFFE_IDS));
// The health check calls with the service's own client certificate.
allowed.add(selfCn);
if (env.SERVICE_SPIFFE_ID) allowedIds.add(env.SERVICE_SPIFFE_ID);

const minVersion = env.MTLS_MIN_TLS_VERSION || 'TLSv1.3';
const verifyClient = env.MTLS_VERIFY_CLIENT !== 'false';
const ca = read('MTLS_CA_FILE');
const crl = env.MTLS_CRL_FILE ? pemBlocks(readFileSync(env.MTLS_CRL_FILE, 'utf8')) : undefined;

// Loaded once, as a real service would at boot: a revoked client certificate stays in use until
// the service is restarted (the end-to-end test relies on this to show the refusal).
const clientTls = {
  ca,
  cert: read('MTLS_CLIENT_CERT_FILE'),
  key: read('MTLS_CLIENT_KEY_FILE'),
  minVersion,
  ciphers: CIPHERS,
};

const peerCn = (socket) => {
  const cert = socket.getPeerCertificate?.();
  return cert && cert.subject ? String(cert.subject.CN ?? '') : '';
};

/** The spiffe:// URI SANs of the peer certificate (an X509-SVID has exactly one). */
const peerSpiffeIds = (socket) => {
  const san = socket.getPeerCertificate?.()?.subjectaltname ?? '';
  return san
    .split(', ')
    .filter((e) => e.startsWith('URI:spiffe://'))
    .map((e) => e.slice(4));
};

/** Whether the policy lets the caller in: by its SPIFFE ID alone when it has one, else by its CN. */
function allowedCaller(cn, ids) {
  return ids.length === 0 ? allowed.has(cn) : ids.length === 1 && allowedIds.has(ids[0]);
}

function send(res, status, body) {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** GET url with the client certificate; resolves to { status, body } or { error }. */
function callUpstream(url) {
  return new Promise((resolve) => {
    const req = https.get(url, { ...clientTls, agent: false, timeout: CALL_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', (e) => resolve({ error: e.code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
  });
}

async function handle(req, res) {
  const clientCn = peerCn(req.socket);
  const clientIds = peerSpiffeIds(req.socket);
  const spiffe = clientIds.length > 0 ? { client_spiffe_id: clientIds.join(',') } : {};
  if (verifyClient && (!req.socket.authorized || !allowedCaller(clientCn, clientIds))) {
    log('warn', 'mtls_authorization_denied', { client_cn: clientCn, ...spiffe, server_cn: selfCn, path: req.url });
    res.setHeader('connection', 'close');
    send(res, 403, { error: 'forbidden', client_cn: clientCn, ...spiffe });
    res.on('finish', () => req.socket.end());
    return;
  }
  const url = new URL(req.url ?? '/', 'https://localhost');
  if (req.method === 'GET' && url.pathname === '/health') return send(res, 200, { status: 'ok', service: env.SERVICE_NAME, dns_name: selfCn });
  if (req.method === 'GET' && url.pathname === '/whoami') return send(res, 200, { client_cn: clientCn, ...spiffe, server_cn: selfCn });
  const call = /^\/call\/([a-z0-9-]+)$/.exec(url.pathname);
  if (req.method === 'GET' && call) {
    const variable = `${call[1].toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_SERVICE_URL`;
    const base = env[variable];
    if (!base) return send(res, 404, { error: `${variable} is not set: this service may not call ${call[1]}` });
    const result = await callUpstream(`${base}/health`);
    log(result.status === 200 ? 'info' : 'error', 'upstream_call', { target: base, ...result });
    return send(res, result.status === 200 ? 200 : 502, { target: base, ...result });
  }
  send(res, 404, { error: 'not found' });
}

const server = https.createServer(
  {
    cert: read('MTLS_CERT_FILE'),
    key: read('MTLS_KEY_FILE'),
    ca,
    ...(crl && crl.length > 0 ? { crl } : {}),
    requestCert: true,
    // Checked in 'secureConnection' instead: Node drops an unverified peer silently when this is
    // true, and the seed wants the reason (e.g. CERT_REVOKED) in an mtls_handshake_failed line.
    rejectUnauthorized: false,
    minVersion,
    ciphers: CIPHERS,
  },
  (req, res) => {
    handle(req, res).catch((e) => {
      log('error', 'request_failed', { message: String(e) });
      if (!res.headersSent) send(res, 500, { error: 'internal' });
    });
  },
);
server.keepAliveTimeout = 1_000;
// OCSP stapling: the host's timer keeps the signed response for our certificate in
// <MTLS_CERT_FILE>.ocsp (DER; podmesh-ocsp-staple.sh); read at each request, so a refreshed file is
// stapled without a restart. A client that asks (status_request) gets it; no file, no staple.
const stapleFile = `${required('MTLS_CERT_FILE')}.ocsp`;
server.on('OCSPRequest', (_cert, _issuer, done) => {
  let response = null;
  try {
    response = readFileSync(stapleFile);
  } catch (e) {
    if (e.code !== 'ENOENT') log('warn', 'ocsp_staple_unreadable', { file: stapleFile, error: e.code ?? e.message });
  }
  done(null, response && response.length > 0 ? response : undefined);
});
server.on('secureConnection', (socket) => {
  const fields = {
    client_cn: peerCn(socket),
    server_cn: selfCn,
    tls_version: socket.getProtocol(),
    cipher_suite: socket.getCipher()?.standardName ?? socket.getCipher()?.name,
  };
  if (verifyClient && !socket.authorized) {
    const reason = String(socket.authorizationError ?? 'no client certificate');
    log('warn', 'mtls_handshake_failed', { ...fields, remote: socket.remoteAddress, error: reason, reason });
    socket.destroy();
    return;
  }
  log('info', 'mtls_handshake_complete', { ...fields, remote: socket.remoteAddress });
});
server.on('tlsClientError', (err, socket) => {
  log('warn', 'mtls_handshake_failed', {
    client_cn: peerCn(socket),
    server_cn: selfCn,
    remote: socket.remoteAddress,
    error: err.code ?? err.message,
    reason: err.reason ?? err.message,
  });
});

const port = Number(env.MTLS_PORT || 8443);
// MTLS_BIND is not part of the generated environment: tests on the machine itself bind to loopback.
server.listen(port, env.MTLS_BIND || '0.0.0.0', () => log('info', 'listening', { port, allowed_clients: [...allowed].sort(), allowed_spiffe_ids: [...allowedIds].sort() }));

if (env.HTTP_PORT) {
  http
    .createServer((req, res) => (req.url === '/health' ? send(res, 200, { status: 'ok', service: env.SERVICE_NAME }) : send(res, 404, { error: 'not found' })))
    .listen(Number(env.HTTP_PORT), '0.0.0.0');
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    log('info', 'stopping', { signal });
    server.close();
    process.exit(0);
  });
}
