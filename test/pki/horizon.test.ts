// The clock horizon of a state folder (src/state/pki/horizon.ts): the first moment a PKI decision can
// change with the clock alone. Only the PKI folder is read: the engine reads nothing elsewhere.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clockBoundaries, clockHorizon } from '../../src/state/pki/horizon.ts';
import { openssl } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'podmesh-horizon-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed P-256 certificate valid from now for `days`, by the openssl CLI. */
function cert(name: string, days: number): string {
  const out = join(dir, `${name}.crt`);
  const r = openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', out, '-days', String(days), '-subj', `/CN=${name}`]);
  if (r.code !== 0) throw new Error(r.out);
  return readFileSync(out, 'utf8');
}

describe('clockHorizon', () => {
  it('reads the certificates of pki/ only, not PEM text among the secrets or elsewhere in the state folder', () => {
    const state = join(dir, 'state');
    mkdirSync(join(state, 'pki/services/api'), { recursive: true });
    mkdirSync(join(state, 'secrets/api'), { recursive: true });
    const now = Date.now();
    writeFileSync(join(state, 'pki/services/api/server.crt'), cert('server', 10));
    // A secret whose value happens to be a certificate, renewed (were it the engine's) within a day.
    writeFileSync(join(state, 'secrets/api/tls-upstream'), cert('upstream', 1));
    writeFileSync(join(state, 'stray.pem'), cert('stray', 1));
    const h = clockHorizon(state, now);
    // 70% of ten days after now, give or take the seconds the certificate's dates round to.
    expect(h).toBeGreaterThan(now + 6.9 * 86_400_000);
    expect(h).toBeLessThan(now + 7.1 * 86_400_000);
    const b = clockBoundaries(state);
    expect(b === 'unreadable' ? -1 : b.length).toBe(3);
  });

  it('a damaged certificate in pki/ leaves no horizon ahead; no pki/ at all, none to reach', () => {
    const state = join(dir, 'damaged');
    mkdirSync(join(state, 'pki'), { recursive: true });
    writeFileSync(join(state, 'pki/ca.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(clockHorizon(state, 1000)).toBe(1000);
    expect(clockHorizon(join(dir, 'none'), 1000)).toBe(Infinity);
  });
});
