// Probe certificates for revoked serials. `certs revoke` replaces a revoked certificate and keeps
// only its serial, so verify re-creates one in memory: same serial, issuer and subject, signed by
// the client CA of the state folder, with a fresh key. Servers decide revocation by issuer and
// serial alone, so this exercises exactly their CRL check. The certificate is never written, and
// it is revoked by construction.
import { signingCa } from '../state/pki/issue.ts';
import { parseCertificate } from '../state/pki/certificate.ts';
import { leafKeyOf, parsePrivateKeyPem, SIGNATURE, webCryptoKeySource } from '../state/pki/keys.ts';
import type { InventoryEntry } from '../state/pki/types.ts';
import { x509 } from '../state/pki/x509.ts';

/** A client certificate (leaf plus client CA) and key for a revoked serial, PEM. */
export interface RevokedProbeCert {
  readonly cert: string;
  readonly key: string;
}

/**
 * Signs a short-lived client certificate carrying `entry.serial` for `commonName`.
 * @param clientCa the state's `pki/client-ca.crt` and `pki/client-ca.key`, PEM
 */
export async function revokedProbeCert(
  entry: Pick<InventoryEntry, 'serial'>,
  commonName: string,
  clientCa: { readonly cert: string; readonly key: string },
  now: Date,
): Promise<RevokedProbeCert> {
  const caCert = parseCertificate(clientCa.cert);
  const ca = signingCa(caCert, caCert.pem, parsePrivateKeyPem(clientCa.key));
  const signer = await ca.signer();
  const leaf = leafKeyOf(await webCryptoKeySource.generate('ecdsa-p256'), 'ecdsa-p256');
  const spki = await globalThis.crypto.subtle.exportKey('spki', leaf.pair.publicKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: entry.serial,
    subject: new x509.Name([{ CN: [{ utf8String: commonName }] }]),
    issuer: ca.name,
    notBefore: new Date(now.getTime() - 5 * 60_000),
    notAfter: new Date(now.getTime() + 60 * 60_000),
    publicKey: spki,
    signingKey: signer.key,
    signingAlgorithm: SIGNATURE[ca.keyType],
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: commonName }]),
      await x509.SubjectKeyIdentifierExtension.create(spki),
      new x509.AuthorityKeyIdentifierExtension(signer.keyId),
    ],
  });
  return { cert: `${cert.toString('pem')}\n${caCert.pem}`, key: leaf.pem };
}
