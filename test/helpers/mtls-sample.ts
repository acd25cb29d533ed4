// The Node mTLS sample (examples/mtls-sample/server.mjs) on loopback with a service's generated
// environment from the compose file, its /etc/mtls paths pointed at the service's folder of the
// state: what the SPIFFE and OCSP tests call over real TLS.
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from './tools.ts';

/** A free loopback port. */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the sample as `service` of the compose file, with its certificates from `pki`
 * (`<state>/<stack>/pki`), on a free loopback port; resolves once it logs "listening" (at most
 * 10 s). The caller kills the process. Returns it, its port and the generated environment.
 */
export async function startNodeSample(composeFile: string, service: string, pki: string): Promise<{ server: ResultPromise; port: number; env: Record<string, string> }> {
  const compose = parse(readFileSync(composeFile, 'utf8')) as { services: Record<string, { environment: Record<string, string> }> };
  const env = compose.services[service]!.environment;
  const port = await freePort();
  const local = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/^\/etc\/mtls\//, `${join(pki, 'services', service)}/`)]));
  const server = execa('node', [join(repoRoot, 'examples/mtls-sample/server.mjs')], { env: { ...local, MTLS_PORT: String(port), MTLS_BIND: '127.0.0.1' }, extendEnv: false, reject: false, timeout: 30_000 });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the sample did not start in 10 s')), 10_000);
      server.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('"listening"')) {
          clearTimeout(t);
          resolve();
        }
      });
      void server.then((r) => reject(new Error(`the sample exited: ${r.stderr}`)));
    });
  } catch (e) {
    server.kill('SIGKILL');
    throw e;
  }
  return { server, port, env };
}
