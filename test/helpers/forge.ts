// Client certificates with any CN and SPIFFE ID, signed by a stack's real client CA: callers that
// pass the TLS handshake (right CA) and must then be judged by the call policy.
import { createPrivateKey } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificate } from '../../src/state/pki/certificate.ts';
import { issueWith, signingCa, tbsSpec } from '../../src/state/pki/issue.ts';
import { nativeKeySync } from '../../src/state/pki/keys.ts';

/** The chain PEM (leaf, then the client CA) and key of a 30-day client certificate from `pkiDir`'s client CA (`<state>/<stack>/pki`). */
export function forgeClient(pkiDir: string, commonName: string, spiffeId: string): { cert: string; key: string } {
  const caPem = readFileSync(join(pkiDir, 'client-ca.crt'), 'utf8');
  const ca = signingCa(parseCertificate(caPem), caPem, createPrivateKey(readFileSync(join(pkiDir, 'client-ca.key'))));
  const spec = tbsSpec('leaf', { commonName, keyType: 'ecdsa-p256' }, 30, new Date(), '4a3b2c1d', { dnsNames: [commonName], ipAddresses: [], uris: [spiffeId] });
  const issued = issueWith(spec, nativeKeySync('ecdsa-p256'), { spec: ca.spec, key: ca.key });
  return { cert: issued.certPem + caPem, key: issued.keyPem };
}

/** {@link forgeClient} written as `dir/client.crt` and `dir/client.key` (0600); returns `dir`. */
export function forgeClientFiles(pkiDir: string, commonName: string, spiffeId: string, dir: string): string {
  const { cert, key } = forgeClient(pkiDir, commonName, spiffeId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'client.crt'), cert);
  writeFileSync(join(dir, 'client.key'), key, { mode: 0o600 });
  chmodSync(join(dir, 'client.key'), 0o600);
  return dir;
}
