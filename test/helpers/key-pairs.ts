// Key/certificate pairs of a state folder, judged by Node's crypto (OpenSSL): each private key must
// have its certificate beside it, holding the same public key.
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Problems with the pairs below `dir`: a key without its certificate, or one another key signed for. Dot-folders (temporaries) are skipped. */
export function keyPairProblems(dir: string): string[] {
  const keys: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.key')) keys.push(join(d, e.name));
    }
  };
  if (existsSync(dir)) walk(dir);
  const problems: string[] = [];
  for (const key of keys) {
    const crt = key.replace(/\.key$/, '.crt');
    const rel = relative(dir, key);
    if (!existsSync(crt)) {
      problems.push(`${rel} has no certificate`);
      continue;
    }
    const fromKey = createPublicKey(createPrivateKey(readFileSync(key))).export({ type: 'spki', format: 'der' });
    const fromCert = new X509Certificate(readFileSync(crt)).publicKey.export({ type: 'spki', format: 'der' });
    if (!fromKey.equals(fromCert)) problems.push(`${rel} does not match its certificate`);
  }
  return problems;
}
