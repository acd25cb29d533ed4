// One mTLS probe with Node's tls: handshake (optionally with a client certificate), then `GET path`
// over the same connection, bounded by a timeout. It reports what happened; verify judges it.
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { canonicalIp } from '../state/pki/names.ts';

/** What a probe connects to and presents. */
export interface ProbeRequest {
  /** Address to connect to (an IP, or a name the local resolver answers). */
  readonly host: string;
  readonly port: number;
  /** SNI and the name the server certificate must carry. */
  readonly servername: string;
  /** Trusted root(s), PEM. */
  readonly ca: string;
  /** Client certificate (with its chain) and key, PEM; none to probe without one. */
  readonly client?: { readonly cert: string; readonly key: string };
  /** HTTP path requested once the handshake is done. @default '/health' */
  readonly path?: string;
  /** Bound of the whole probe (connect, handshake, response). @default 5000 */
  readonly timeoutMs?: number;
  /** Ask for the server's stapled OCSP response (status_request). @default false */
  readonly requestOcsp?: boolean;
}

/** The server certificate as the probe saw it. */
export interface PresentedCert {
  readonly commonName: string;
  /** Lower-case hex, no leading zero byte (the inventory's form). */
  readonly serial: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly notAfter: Date;
}

/** How a probe ended, from the client's side. */
export type ProbeVerdict =
  /** Handshake done and an HTTP response read. */
  | 'response'
  /** The server ended the session: a TLS alert, a reset, or a close before any response. */
  | 'refused'
  /** The server's certificate failed verification (chain, name, validity). */
  | 'untrusted'
  /** Nothing answered: connection refused, no route, unknown name. */
  | 'unreachable'
  /** Connected, but the handshake or the response did not finish within the timeout. */
  | 'timeout';

/** What one probe observed. */
export interface ProbeOutcome {
  readonly verdict: ProbeVerdict;
  /** True when the client finished the TLS handshake (in TLS 1.3 the server may still refuse after it). */
  readonly handshake: boolean;
  readonly tlsVersion?: string;
  readonly cipherSuite?: string;
  readonly serverCert?: PresentedCert;
  readonly httpStatus?: number;
  /** Error code or reason when the probe did not end with a response. */
  readonly error?: string;
  /** With requestOcsp and a handshake: the stapled OCSP response (DER), empty when the server sent none. */
  readonly stapled?: Buffer;
  readonly ms: number;
}

// Errors OpenSSL raises when the server's certificate, not the server's policy, is the problem.
const UNTRUSTED = /CERT|SIGNATURE|ISSUER|ALTNAME|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|DEPTH_ZERO|HOSTNAME/i;
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

function presented(cert: PeerCertificate | undefined): PresentedCert | undefined {
  if (!cert || !cert.subject) return undefined;
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const part of (cert.subjectaltname ?? '').split(', ')) {
    if (part.startsWith('DNS:')) dnsNames.push(part.slice(4));
    else if (part.startsWith('IP Address:')) ipAddresses.push(canonicalIp(part.slice(11)));
  }
  return {
    commonName: String(cert.subject.CN ?? ''),
    serial: cert.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''),
    dnsNames,
    ipAddresses,
    notAfter: new Date(cert.valid_to),
  };
}

/** Runs one probe; never throws, never outlives `timeoutMs`. */
export function probe(req: ProbeRequest): Promise<ProbeOutcome> {
  const started = Date.now();
  const timeoutMs = req.timeoutMs ?? 5_000;
  return new Promise((resolve) => {
    let socket: TLSSocket | undefined;
    let tcp = false;
    let handshake = false;
    let tlsVersion: string | undefined;
    let cipherSuite: string | undefined;
    let serverCert: PresentedCert | undefined;
    let data = '';
    let stapled: Buffer | undefined;
    let done = false;
    const finish = (verdict: ProbeVerdict, extra: { httpStatus?: number; error?: string } = {}) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve({
        verdict,
        handshake,
        ...(tlsVersion ? { tlsVersion } : {}),
        ...(cipherSuite ? { cipherSuite } : {}),
        ...(serverCert ? { serverCert } : {}),
        ...(req.requestOcsp && handshake ? { stapled: stapled ?? Buffer.alloc(0) } : {}),
        ...extra,
        ms: Date.now() - started,
      });
    };
    const statusOf = (): number | undefined => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      return m ? Number(m[1]) : undefined;
    };
    const timer = setTimeout(() => {
      const status = statusOf();
      if (status !== undefined) finish('response', { httpStatus: status });
      else if (!tcp) finish('unreachable', { error: `no connection within ${timeoutMs} ms` });
      else finish('timeout', { error: `no ${handshake ? 'response' : 'handshake'} within ${timeoutMs} ms` });
    }, timeoutMs);
    try {
      socket = connect({
        host: req.host,
        port: req.port,
        servername: req.servername,
        ca: req.ca,
        ...(req.client ? { cert: req.client.cert, key: req.client.key } : {}),
        // Accept what the server offers down to 1.2, so that a server allowing less than TLS 1.3 is seen and reported.
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        ...(req.requestOcsp ? { requestOCSP: true } : {}),
      });
    } catch (e) {
      finish('unreachable', { error: (e as Error).message });
      return;
    }
    socket.setEncoding('utf8');
    // Emitted during the handshake, before secureConnect, when the client asked for it.
    socket.on('OCSPResponse', (response: Buffer) => {
      stapled = response;
    });
    socket.on('connect', () => {
      tcp = true;
    });
    socket.on('secureConnect', () => {
      handshake = true;
      tlsVersion = socket!.getProtocol() ?? undefined;
      const c = socket!.getCipher();
      cipherSuite = c?.standardName ?? c?.name;
      serverCert = presented(socket!.getPeerCertificate());
      socket!.write(`GET ${req.path ?? '/health'} HTTP/1.1\r\nHost: ${req.servername}\r\nUser-Agent: podmesh-verify\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
      const status = statusOf();
      // The status line is all a probe needs; a 403 may be followed by a close.
      if (status !== undefined && /\r\n\r\n/.test(data)) finish('response', { httpStatus: status });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? e.message;
      const status = statusOf();
      if (status !== undefined) finish('response', { httpStatus: status });
      else if (!handshake && UNTRUSTED.test(code) && !/ALERT/.test(code)) finish('untrusted', { error: `${code}: ${e.message}` });
      else if (!tcp && UNREACHABLE.has(code)) finish('unreachable', { error: code });
      else finish('refused', { error: code });
    });
    socket.on('close', () => {
      const status = statusOf();
      if (status !== undefined) finish('response', { httpStatus: status });
      else finish(tcp ? 'refused' : 'unreachable', { error: handshake ? 'closed without a response' : tcp ? 'closed during the handshake' : 'connection closed' });
    });
  });
}
