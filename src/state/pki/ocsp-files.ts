// Where the OCSP responder's files live in the state folder (engine/ocsp.ts writes them): names
// only, in a module of their own, so that the renderers that install them load none of the PKI
// engine (and its X.509 library).
import type { Issuer } from './types.ts';

/** The folder of the responder's files in the state folder (installed on the responder host as `<host root>/pki/ocsp`). */
export const OCSP_DIR = 'pki/ocsp';

/** File names inside {@link OCSP_DIR}. */
export const OCSP_FILES = {
  /** The OpenSSL CA database of every serial the stack's CAs issued. */
  index: 'index.txt',
  /** Its attribute file: `unique_subject = no` (a renewed certificate keeps its subject). */
  attr: 'index.txt.attr',
  /** The responder certificate delegated by an issuer, and its key (0600). */
  responderCert: (issuer: Issuer): string => `responder-${issuer}.crt`,
  responderKey: (issuer: Issuer): string => `responder-${issuer}.key`,
  /** The issuer's certificate, the responder's `-CA` (`ca.crt` is the root, `client-ca.crt` the client CA). */
  issuerCert: (issuer: Issuer): string => (issuer === 'root' ? 'ca.crt' : 'client-ca.crt'),
} as const;

/** Path of a file of the responder's folder, relative to the state folder. */
export const ocspPath = (file: string): string => `${OCSP_DIR}/${file}`;

/** The issuers, each with its own delegated responder (root: server and public leaves; client CA: client leaves). */
export const OCSP_ISSUERS: readonly Issuer[] = ['root', 'client-ca'];

/** Every file of {@link OCSP_DIR}, in a fixed order. */
export const OCSP_FILE_NAMES: readonly string[] = [
  OCSP_FILES.index,
  OCSP_FILES.attr,
  ...OCSP_ISSUERS.map(OCSP_FILES.issuerCert),
  ...OCSP_ISSUERS.flatMap((issuer) => [OCSP_FILES.responderCert(issuer), OCSP_FILES.responderKey(issuer)]),
];
