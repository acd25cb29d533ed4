// Small stand-ins for infrastructure images that cannot be pulled in the end-to-end test:
//   standin.mjs tcp PORT...               accept TCP connections (postgres 5432, redis 6379)
//   standin.mjs https PORT CERT KEY       answer 200 over server-only TLS (MinIO's health endpoint)
//   standin.mjs probe PORT                exit 0 when 127.0.0.1:PORT accepts a connection (health check)
import { readFileSync } from 'node:fs';
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
} else {
  process.stderr.write('usage: standin.mjs tcp PORT... | https PORT CERT KEY | probe PORT\n');
  process.exit(2);
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
