// X.509 v2 CRLs with @peculiar/x509: one per issuing CA, with AKI, CRL number and reason codes; reading them back.
import type { SigningCa } from './issue.ts';
import { SIGNATURE } from './keys.ts';
import type { RevocationReason } from './types.ts';
import { crlNumberExtension, crlNumberOf, x509 } from './x509.ts';

/** nextUpdate = thisUpdate + 30 days. */
export const CRL_VALIDITY_DAYS = 30;

/** CRLReason codes (RFC 5280 §5.3.1). */
export const REASON_CODES: Readonly<Record<RevocationReason, x509.X509CrlReason>> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
  privilegeWithdrawn: x509.X509CrlReason.privilegeWithdrawn,
};

/** One revoked serial. */
export interface CrlEntry {
  /** Lower-case hex. */
  readonly serial: string;
  /** revocationDate. */
  readonly revokedAt: Date;
  /** Reason code; `unspecified` is left out of the entry. */
  readonly reason: RevocationReason;
}

/** What a CRL says; the issuer and its key come from the signing CA. */
export interface CrlTemplate {
  /** Every revoked serial of this issuer. */
  readonly entries: readonly CrlEntry[];
  /** CRL number: grows with every CRL the issuer signs. */
  readonly number: number;
  /** Signing time; nextUpdate is 30 days later. */
  readonly thisUpdate: Date;
}

/** Sort key of a hex serial that orders by numeric value. */
const serialOrder = (hex: string): string => hex.padStart(64, '0');
const bySerial = (a: string, b: string): number => (serialOrder(a) < serialOrder(b) ? -1 : serialOrder(a) > serialOrder(b) ? 1 : 0);

/** PEM of a CRL as OpenSSL labels it (`X509 CRL`, which Node's tls and openssl require), with a final newline. */
function crlPem(der: ArrayBuffer): string {
  return `${x509.PemConverter.encode(der, 'X509 CRL')}\n`;
}

/** The PEM of a v2 CRL signed by `ca`; entries sorted by serial, so the same input gives the same content. */
export async function buildCrl(t: CrlTemplate, ca: SigningCa): Promise<string> {
  const signer = await ca.signer();
  const entries = [...t.entries].sort((a, b) => bySerial(a.serial, b.serial));
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.name,
    thisUpdate: t.thisUpdate,
    nextUpdate: new Date(t.thisUpdate.getTime() + CRL_VALIDITY_DAYS * 86_400_000),
    entries: entries.map((e) => ({
      serialNumber: e.serial,
      revocationDate: e.revokedAt,
      // RFC 5280 §5.3.1: omit the reason code rather than say "unspecified".
      ...(e.reason === 'unspecified' ? {} : { reason: REASON_CODES[e.reason] }),
    })),
    extensions: [new x509.AuthorityKeyIdentifierExtension(signer.keyId), crlNumberExtension(t.number)],
    signingKey: signer.key,
    signingAlgorithm: SIGNATURE[ca.keyType],
  });
  return crlPem(crl.rawData);
}

/** A CRL read back. */
export interface ParsedCrl {
  /** The CRL alone, PEM. */
  readonly pem: string;
  /** DER of the issuer name. */
  readonly issuer: Uint8Array;
  /** When it was signed. */
  readonly thisUpdate: Date;
  /** When a newer CRL is due; verifiers reject it after that. */
  readonly nextUpdate: Date | undefined;
  /** Revoked serials, lower-case hex, sorted. */
  readonly serials: readonly string[];
  /** CRL number extension, when present. */
  readonly number: number | undefined;
  /** The library's object, which verifies the signature. */
  readonly crl: x509.X509Crl;
}

/**
 * Reads one CRL (PEM or DER) with @peculiar/x509: Node has no CRL parser.
 * @throws Error when it is not a well-formed CRL.
 */
export function parseCrl(data: string | Uint8Array): ParsedCrl {
  const crl = new x509.X509Crl(data);
  return {
    pem: crlPem(crl.rawData),
    issuer: new Uint8Array(crl.issuerName.toArrayBuffer()),
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    serials: crl.entries.map((e) => e.serialNumber.toLowerCase()).sort(bySerial),
    number: crlNumberOf(crl),
    crl,
  };
}

/** Whether `crl` names the CA as its issuer and carries a valid signature by the CA's key. */
export async function isCrlSignedBy(crl: ParsedCrl, ca: Pick<SigningCa, 'subject' | 'publicKeyInfo'>): Promise<boolean> {
  if (!Buffer.from(crl.issuer).equals(ca.subject)) return false;
  try {
    return await crl.crl.verify({ publicKey: ca.publicKeyInfo });
  } catch {
    return false;
  }
}

const CRL_BLOCK = /-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----/g;

/**
 * The CRLs of a `crl.pem` as separate PEM strings (root's first). Node's `tls` `crl` option reads
 * only the first CRL of a string, so pass this array instead of the file's text.
 */
export function splitCrlPem(text: string): string[] {
  return (text.match(CRL_BLOCK) ?? []).map((block) => `${block}\n`);
}
