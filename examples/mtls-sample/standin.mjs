// Small stand-ins for infrastructure images that cannot be pulled in the end-to-end test:
//   standin.mjs tcp PORT...               accept TCP connections (postgres 5432, redis 6379)
//   standin.mjs https PORT CERT KEY       answer 200 over server-only TLS (MinIO's health endpoint)
//   standin.mjs probe PORT                exit 0 when 127.0.0.1:PORT accepts a connection (health check)
//   standin.mjs app                       a plain-HTTP application behind an mTLS sidecar, on
//                                         APP_HOST:APP_PORT: /health; /who answers the caller identity
//                                         the sidecar put in MTLS_CLIENT_CN_HEADER and
//                                         MTLS_CLIENT_SPIFFE_ID_HEADER; /call/<name> GETs
//                                         <NAME>_SERVICE_URL/whoami in plain HTTP (the sidecar's local port)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const log = (event, fields) => process.stdout.write(`${JSON.stringify({ timestamp: new Date().toISOString(), level: 'info', service: process.env.HOSTNAME ?? 'standin', event, ...fields })}\n`);

if (mode === 'tcp') {
  for (const port of args.map(Number)) {
    net.createServer((s) => s.end()).listen(port, '0.0.0.0', () => log('listening', { port, mode }));
  }
} else if (mode === 'https') {
  const [port, cert, key] = args;
  https
    .createServer({ cert: readFileSync(cert), key: readFileSync(key), minVersion: 'TLSv1.3' }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    })
    .listen(Number(port), '0.0.0.0', () => log('listening', { port: Number(port), mode }));
} else if (mode === 'probe') {
  const s = net.connect({ host: '127.0.0.1', port: Number(args[0]), timeout: 2_000 });
  s.on('connect', () => process.exit(0));
  s.on('timeout', () => process.exit(1));
  s.on('error', () => process.exit(1));
} else if (mode === 'app') {
  const env = process.env;
  const header = (req, name) => (env[name] ? (req.headers[env[name].toLowerCase()] ?? null) : null);
  const send = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  http
    .createServer((req, res) => {
      const caller = { cn: header(req, 'MTLS_CLIENT_CN_HEADER'), spiffe_id: header(req, 'MTLS_CLIENT_SPIFFE_ID_HEADER') };
      log('request', { path: req.url, caller });
      const call = /^\/call\/([a-z0-9-]+)$/.exec(req.url ?? '');
      if (req.url === '/health') return send(res, 200, { status: 'ok' });
      if (req.url === '/who') return send(res, 200, caller);
      if (!call) return send(res, 404, { error: 'not found' });
      const target = env[`${call[1].toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_SERVICE_URL`];
      if (!target) return send(res, 404, { error: `no service URL for ${call[1]}` });
      const out = http.get(`${target}/whoami`, { timeout: 5_000 }, (up) => {
        let body = '';
        up.setEncoding('utf8');
        up.on('data', (d) => (body += d));
        up.on('end', () => send(res, up.statusCode === 200 ? 200 : 502, { target, status: up.statusCode, body }));
      });
      out.on('timeout', () => out.destroy(new Error('timeout')));
      out.on('error', (e) => send(res, 502, { target, error: e.message }));
    })
    .listen(Number(env.APP_PORT), env.APP_HOST, () => log('listening', { host: env.APP_HOST, port: Number(env.APP_PORT), mode }));
} else {
  process.stderr.write('usage: standin.mjs tcp PORT... | https PORT CERT KEY | probe PORT | app\n');
  process.exit(2);
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
