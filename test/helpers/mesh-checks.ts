// Checks of a running ashchan-dev mesh that hold whatever runs it (compose, or the commands Quadlet
// generates): what `podmesh verify` must report from inside the mesh, by Ashchan's call policy.
import { expect } from 'vitest';

/** One line of `podmesh verify --json`. */
export interface VerifyLine {
  readonly event: string;
  readonly target: string;
  readonly check: string;
  readonly client: string;
  readonly client_cn: string;
  readonly server_cn: string;
  readonly tls_version: string | null;
  readonly cipher_suite: string | null;
  readonly http_status: number | null;
  readonly result: string;
  readonly detail: string;
}

/** The application services of ashchan-dev (mTLS on 8443). */
export const ASHCHAN_APPS = ['gateway', 'auth', 'boards', 'media', 'search', 'moderation'] as const;
/** Its infrastructure services. */
export const ASHCHAN_INFRA = ['postgres', 'redis', 'minio'] as const;
/** Addresses the seed gives (its "Check Podman DNS" commands). */
export const ASHCHAN_SEED_IPS: Readonly<Record<string, string>> = { gateway: '10.90.0.10', auth: '10.90.0.21', boards: '10.90.0.22' };

/** The JSON lines of `podmesh verify --json` output. */
export function verifyLines(stdout: string): VerifyLine[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as VerifyLine);
}

/**
 * Asserts a verify run of ashchan-dev with nothing revoked: every probe passes; DNS and the
 * no-certificate refusal for every app; exactly the policy's allowed calls complete over TLS 1.3
 * with a seed suite; a caller outside a callee's policy gets 403.
 */
export function expectAshchanPolicy(lines: readonly VerifyLine[], exitCode: number, stderr: string): void {
  expect(lines.filter((l) => l.result !== 'pass'), stderr).toEqual([]);
  expect(exitCode, stderr).toBe(0);
  const find = (target: string, check: string, client = '') => lines.find((l) => l.target === target && l.check === check && l.client === client);
  for (const target of ASHCHAN_APPS) {
    expect(find(target, 'dns'), target).toMatchObject({ event: 'dns_resolution', result: 'pass' });
    expect(find(target, 'no-client-cert'), target).toMatchObject({ event: 'mtls_handshake_failed', result: 'pass' });
  }
  // Ashchan's policy: gateway calls everyone, boards calls media and moderation, nobody calls the gateway.
  const allowed = lines.filter((l) => l.check === 'allowed').map((l) => `${l.client}->${l.target}`).sort();
  expect(allowed).toEqual(['boards->media', 'boards->moderation', 'gateway->auth', 'gateway->boards', 'gateway->media', 'gateway->moderation', 'gateway->search']);
  expect(find('auth', 'allowed', 'gateway')).toMatchObject({
    event: 'mtls_handshake_complete',
    client_cn: 'gateway.ashchan.local',
    server_cn: 'auth.ashchan.local',
    tls_version: 'TLSv1.3',
    http_status: 200,
  });
  expect(['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']).toContain(find('auth', 'allowed', 'gateway')!.cipher_suite);
  expect(find('auth', 'not-allowed', 'boards')).toMatchObject({ event: 'mtls_handshake_failed', http_status: 403, result: 'pass' });
  expect(lines.filter((l) => l.target === 'gateway' && l.check === 'not-allowed')).toHaveLength(5);
  expect(lines.filter((l) => l.check === 'revoked')).toEqual([]);
}
