// The external CA recorded by `podmesh certs import` (`pki/external-ca.crt`), as reconcile consults it.
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import type { Issue } from '../../../constructs/core/errors.ts';
import type { ParsedCertificate } from './certificate.ts';
import { PKI_PATHS, type PkiSnapshot } from './store.ts';

/** The imported external CA bundle. */
export interface ExternalCa {
  /** The bundle as installed in every service's `ca.crt`. */
  readonly bundle: string;
  /** Whether a CA certificate of the bundle signed `cert`. */
  signed(cert: ParsedCertificate): boolean;
}

/** The external CA of a snapshot; undefined when none was imported; an issue when the file is unusable. */
export function loadExternalCa(snapshot: PkiSnapshot, issues: Issue[]): ExternalCa | undefined {
  const f = snapshot.files.get(PKI_PATHS.externalCa);
  if (!f) return undefined;
  const path = join(snapshot.stateDir, PKI_PATHS.externalCa);
  const pems = f.text?.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  let cas: X509Certificate[] = [];
  try {
    cas = pems.map((p) => new X509Certificate(p)).filter((c) => c.ca);
  } catch {
    cas = [];
  }
  if (f.text === undefined || cas.length === 0) {
    issues.push({ path, message: 'the external CA bundle is unreadable or holds no CA certificate. Import the external CA again (podmesh certs import DIR), or delete this file to go back to the local CA (synth then reissues every certificate locally).' });
    return undefined;
  }
  return {
    bundle: cas.map((c) => c.toString()).join(''),
    signed: (cert) =>
      cas.some((ca) => {
        try {
          return cert.x509.checkIssued(ca) && cert.x509.verify(ca.publicKey);
        } catch {
          return false;
        }
      }),
  };
}
