// PEM text of DER bytes, as OpenSSL writes it. Its own module so that key generation (keys.ts)
// uses it without loading the certificate encoder.

/** PEM as OpenSSL writes it: 64-character lines, a final newline. */
export function pemOf(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}
