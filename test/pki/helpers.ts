// Shared fixtures of the PKI tests: temp state folders, the seed's bindings, openssl, tree hashes, TLS handshakes.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AuthoritySpec, CertBinding, CertKind, KeyType } from '../../src/state/pki/index.ts';

/** The seed's authority. */
export const AUTHORITY: AuthoritySpec = {
  rootCommonName: 'ashchan-ca',
  rootLifetimeDays: 3650,
  clientCaCommonName: 'ashchan.local',
  clientCaLifetimeDays: 1825,
  keyType: 'ecdsa-p256',
};

/** Static IPs of the seed (DESIGN.md). */
const IPS: Record<string, string> = { gateway: '10.90.0.10', auth: '10.90.0.21', boards: '10.90.0.22' };

/** One binding as the resolver would produce it for the seed's service `service`. */
export function binding(service: string, kind: CertKind, over: Partial<CertBinding> = {}): CertBinding {
  const dns = `${service}.ashchan.local`;
  const ip = IPS[service];
  return {
    service,
    kind,
    commonName: dns,
    dnsNames: [dns, service],
    ipAddresses: ip ? [ip] : [],
    keyType: 'ecdsa-p256' as KeyType,
    lifetimeDays: 365,
    ...over,
  };
}

/** gateway, auth, boards with server and client certificates, plus the gateway's public certificate. */
export function meshBindings(): CertBinding[] {
  return [
    ...['gateway', 'auth', 'boards'].flatMap((s) => [binding(s, 'server'), binding(s, 'client')]),
    binding('gateway', 'public', { commonName: 'ashchan.example', dnsNames: ['ashchan.example', 'www.ashchan.example'], ipAddresses: [] }),
  ];
}

/** A fresh `.podmesh/<stack>` path under os.tmpdir() (not created) and its cleanup. */
export function tempState(stack = 'ashchan-dev'): { stateDir: string; root: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'podmesh-pki-'));
  return { stateDir: join(root, '.podmesh', stack), root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Text of a file under the state folder. */
export function readState(stateDir: string, rel: string): string {
  return readFileSync(join(stateDir, rel), 'utf8');
}

/** Writes a scratch file (for openssl arguments) and returns its path. */
export function scratch(dir: string, name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** PEM certificate blocks of a file's text, in order. */
export function pemCerts(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? []);
}

/** Runs the real openssl with a time limit. */
export function openssl(args: readonly string[], input?: string): { code: number; out: string } {
  const r = spawnSync('/usr/bin/openssl', args, { input, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** `openssl x509 -text -noout` of a PEM certificate. */
export function x509Text(dir: string, pem: string): string {
  const r = openssl(['x509', '-text', '-noout', '-in', scratch(dir, 'text.pem', pem)]);
  if (r.code !== 0) throw new Error(r.out);
  return r.out;
}

/** Every file and folder under `dir`: content hash, mode and mtime, by relative path. */
export function treeState(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const abs = join(dir, rel);
    const st = lstatSync(abs);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out.set(`${rel}/`, `dir ${mode}`);
      for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
    } else {
      const sha = createHash('sha256').update(readFileSync(abs)).digest('hex');
      out.set(rel, `${sha} ${mode} ${st.mtimeMs}`);
    }
  };
  walk('');
  return out;
}

/** File modes (octal text) under `dir`, by relative path. */
export function modes(dir: string): Map<string, string> {
  return new Map([...treeState(dir)].map(([p, v]) => [p, v.split(' ')[1] as string]));
}

/** What a TLS attempt produced on both sides. */
export interface HandshakeResult {
  /** The server accepted the client and the client read the server's greeting. */
  readonly ok: boolean;
  /** CN of the client certificate as the server saw it. */
  readonly clientCN: string | undefined;
  /** Protocol the server negotiated. */
  readonly protocol: string | undefined;
  /** Why the server refused the client: OpenSSL's verify code (CERT_HAS_EXPIRED, ...) or the TLS error. */
  readonly serverError: string | undefined;
}

/** Server side of an mTLS handshake (mirrors what services configure). */
export interface ServerSide {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly crl?: string | string[];
}

/** Client side of an mTLS handshake. */
export interface ClientSide {
  readonly cert?: string;
  readonly key?: string;
  readonly ca: string;
  readonly servername: string;
}

/**
 * One TLS 1.3 mTLS handshake on 127.0.0.1 with an ephemeral port: the server requires and verifies a
 * client certificate against `ca` (and `crl`), then sends the client CN back.
 */
export async function handshake(server: ServerSide, client: ClientSide): Promise<HandshakeResult> {
  let serverError: string | undefined;
  let clientCN: string | undefined;
  let protocol: string | undefined;
  const srv = tls.createServer(
    {
      cert: server.cert,
      key: server.key,
      ca: server.ca,
      ...(server.crl === undefined ? {} : { crl: server.crl }),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (socket) => {
      const cn: string | string[] | undefined = socket.getPeerCertificate().subject?.CN;
      clientCN = Array.isArray(cn) ? cn.join(',') : cn;
      protocol = socket.getProtocol() ?? undefined;
      socket.end(`hello ${clientCN ?? ''}`);
    },
  );
  // With rejectUnauthorized Node destroys the socket after setting authorizationError (the verify code).
  srv.on('tlsClientError', (e, socket) => {
    serverError = socket.authorizationError ? String(socket.authorizationError) : e.message;
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  try {
    const greeting = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 10_000);
      const done = (v: string | undefined): void => {
        clearTimeout(timer);
        resolve(v);
      };
      const c = tls.connect({
        host: '127.0.0.1',
        port,
        servername: client.servername,
        ca: client.ca,
        ...(client.cert === undefined ? {} : { cert: client.cert }),
        ...(client.key === undefined ? {} : { key: client.key }),
        minVersion: 'TLSv1.3',
      });
      let data = '';
      c.on('data', (d: Buffer) => void (data += d.toString()));
      c.on('error', () => done(undefined));
      c.on('close', () => done(data || undefined));
    });
    await new Promise((r) => setTimeout(r, 20));
    return { ok: greeting !== undefined && greeting.startsWith('hello'), clientCN, protocol, serverError };
  } finally {
    srv.close();
  }
}
