// The one import of @peculiar/x509 (issuing certificates and CRLs, reading CRLs); its DI container needs Reflect metadata first.
// The CRL number extension has no class in @peculiar/x509, so it comes from the ASN.1 modules the library is built on.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';

export { x509 };

/** cRLNumber (RFC 5280 §5.2.3), not critical. */
export function crlNumberExtension(n: number): x509.Extension {
  return new x509.Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(n)));
}

/** The CRL number of a CRL, when it has one. */
export function crlNumberOf(crl: x509.X509Crl): number | undefined {
  const ext = crl.getExtension(id_ce_cRLNumber);
  return ext ? AsnConvert.parse(ext.value, CRLNumber).value : undefined;
}
