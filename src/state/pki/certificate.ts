// Reading certificates with Node's native X509Certificate (OpenSSL): the fields the engine decides on.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { keyTypeOf } from './keys.ts';
import { canonicalIp } from './names.ts';
import type { KeyType } from './types.ts';

/** A certificate read back: the native object and the fields the engine decides on. */
export interface ParsedCertificate {
  /** Node's certificate object (checkIssued, verify, checkPrivateKey, raw DER). */
  readonly x509: X509Certificate;
  /** The certificate alone, PEM with 64-character lines and a final newline, as OpenSSL writes it. */
  readonly pem: string;
  /** Lower-case hex, no leading zero byte. */
  readonly serial: string;
  /** Subject CN, or '' when absent. */
  readonly commonName: string;
  /** Subject O, when present. */
  readonly organization: string | undefined;
  /** Start of validity. */
  readonly notBefore: Date;
  /** End of validity. */
  readonly notAfter: Date;
  /** basicConstraints cA (false when absent). */
  readonly isCa: boolean;
  /** SAN dNSName entries, in certificate order. */
  readonly dnsNames: readonly string[];
  /** SAN iPAddress entries, canonical text, in certificate order. */
  readonly ipAddresses: readonly string[];
  /** SAN uniformResourceIdentifier entries (the SPIFFE ID), in certificate order. */
  readonly uris: readonly string[];
  /** OCSP responder URLs of the Authority Information Access extension, in certificate order. */
  readonly ocspUrls: readonly string[];
  /** Type of the subject public key, or undefined for anything podmesh does not issue. */
  readonly keyType: KeyType | undefined;
}

/**
 * The attributes of a subject as Node prints it: one `TYPE=value` per line (RFC 2253 escapes:
 * `\,` for special characters, `\XX` for control characters), ` + ` between the values of a
 * multi-valued RDN. The last value of a type wins, as for a CN in OpenSSL's host checks.
 */
function nameAttributes(subject: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of subject.split('\n')) {
    for (const ava of line.split(/(?<!\\) \+ /)) {
      const eq = ava.indexOf('=');
      if (eq < 0) continue;
      const value = ava
        .slice(eq + 1)
        .replace(/\\(?:([0-9A-F]{2})|(.))/g, (_m, hex: string | undefined, ch: string | undefined) =>
          hex === undefined ? (ch ?? '') : String.fromCharCode(parseInt(hex, 16)),
        );
      out.set(ava.slice(0, eq), value);
    }
  }
  return out;
}

/**
 * SAN entries as Node prints them: `DNS:a, DNS:b, IP Address:10.0.0.1`; a value holding a comma or
 * quote is printed as a JSON string.
 */
function altNames(san: string | undefined): { dns: string[]; ip: string[]; uri: string[] } {
  const dns: string[] = [];
  const ip: string[] = [];
  const uri: string[] = [];
  if (san === undefined) return { dns, ip, uri };
  for (const m of san.matchAll(/([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g)) {
    const raw = m[2] as string;
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    if (m[1] === 'DNS') dns.push(value);
    else if (m[1] === 'IP Address') ip.push(canonicalIp(value));
    else if (m[1] === 'URI') uri.push(value);
  }
  return { dns, ip, uri };
}

/**
 * The OCSP URLs of an Authority Information Access extension as Node prints it
 * (`OCSP - URI:http://ocsp.example:8880/`, one access description a line; a value holding a
 * comma or quote as a JSON string).
 */
function ocspUrlsOf(infoAccess: string | undefined): string[] {
  if (infoAccess === undefined) return [];
  const out: string[] = [];
  for (const line of infoAccess.split('\n')) {
    const m = /^OCSP - URI:(.*)$/.exec(line);
    if (m) out.push(m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!);
  }
  return out;
}

/**
 * Reads a certificate: PEM text (the first certificate of a chain file) or DER.
 * @throws Error when it is not an X.509 certificate OpenSSL can read.
 */
export function parseCertificate(data: string | Uint8Array): ParsedCertificate {
  const x = new X509Certificate(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  const subject = nameAttributes(x.subject);
  const { dns, ip, uri } = altNames(x.subjectAltName);
  const notBefore = new Date(x.validFrom);
  const notAfter = new Date(x.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new Error(`unreadable validity ${x.validFrom} - ${x.validTo}`);
  return {
    x509: x,
    pem: x.toString(),
    serial: x.serialNumber.toLowerCase(),
    commonName: subject.get('CN') ?? '',
    organization: subject.get('O'),
    notBefore,
    notAfter,
    isCa: x.ca,
    dnsNames: dns,
    ipAddresses: ip,
    uris: uri,
    ocspUrls: ocspUrlsOf(x.infoAccess),
    keyType: keyTypeOf(x.publicKey),
  };
}

/**
 * Whether `cert` was issued by the CA `issuer`: OpenSSL's issuer check (names, key identifiers, the
 * CA's key usage) and a valid signature by the CA's key.
 */
export function isSignedBy(
  cert: ParsedCertificate,
  issuer: { readonly cert: ParsedCertificate; readonly publicKey: KeyObject },
): boolean {
  try {
    return cert.x509.checkIssued(issuer.cert.x509) && cert.x509.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
