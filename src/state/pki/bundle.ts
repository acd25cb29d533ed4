// The stack's trust bundle in the SPIFFE bundle format (SPIFFE Trust Domain and Bundle §4: a JWK
// Set whose `x509-svid` keys each carry one X.509 authority in `x5c`), for SPIRE federation.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PodmeshError } from '../../../constructs/core/errors.ts';
import { PKI_PATHS } from './store.ts';

/**
 * Seconds a bundle consumer (a federated SPIRE server) should wait before fetching the bundle again
 * (`spiffe_refresh_hint`): an hour, as podmesh replaces its root only by hand or on import.
 */
export const SPIFFE_REFRESH_HINT = 3600;

/** The X.509 authorities of a state folder: the imported external CA bundle if any, else the root (`pki/ca.crt`). */
async function authorities(stateDir: string): Promise<{ file: string; certs: X509Certificate[] }> {
  for (const rel of [PKI_PATHS.externalCa, PKI_PATHS.rootCert]) {
    const file = join(stateDir, rel);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    let certs: X509Certificate[];
    try {
      certs = pems.map((p) => new X509Certificate(p));
    } catch (e) {
      throw PodmeshError.at(file, `is not a readable certificate (${(e as Error).message}). Run podmesh synth to repair the state folder, or import the external CA again.`);
    }
    const cas = certs.filter((c) => c.ca);
    if (cas.length === 0) throw PodmeshError.at(file, 'holds no CA certificate. Run podmesh synth to repair the state folder, or import the external CA again.');
    return { file, certs: cas };
  }
  throw PodmeshError.at(join(stateDir, PKI_PATHS.rootCert), 'does not exist: the stack has no root CA yet. Run podmesh synth (or podmesh certs issue) first.');
}

/**
 * The SPIFFE bundle (JSON text, a final newline) of the state folder `stateDir`: one `x509-svid`
 * JWK per authority (its public key as RFC 7517 members, `x5c` = its DER, base64), `spiffe_sequence`
 * = the newest authority's notBefore in epoch seconds (it grows whenever an authority is replaced),
 * `spiffe_refresh_hint` = {@link SPIFFE_REFRESH_HINT}. Deterministic for the same files.
 * @throws PodmeshError when the stack has no root CA yet or its file is unreadable.
 */
export async function spiffeBundle(stateDir: string): Promise<{ text: string; source: string; keys: number }> {
  const { file, certs } = await authorities(stateDir);
  const keys = certs.map((c) => ({
    ...(c.publicKey.export({ format: 'jwk' }) as Record<string, unknown>),
    use: 'x509-svid',
    x5c: [c.raw.toString('base64')],
  }));
  const sequence = Math.max(...certs.map((c) => Math.floor(new Date(c.validFrom).getTime() / 1000)));
  const doc = { keys, spiffe_sequence: sequence, spiffe_refresh_hint: SPIFFE_REFRESH_HINT };
  return { text: `${JSON.stringify(doc, null, 2)}\n`, source: file, keys: keys.length };
}
