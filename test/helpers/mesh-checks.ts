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
/**
 * ashchan-dev's generated secret ids: the servers' own passwords, and each client's password for
 * the PostgreSQL role, Redis ACL user and MinIO user of its own (media uses no Redis; the gateway neither).
 */
export const ASHCHAN_DEV_SECRET_IDS: readonly string[] = [
  'auth/postgres-password', 'auth/redis-password', 'boards/postgres-password', 'boards/redis-password', 'media/minio-password', 'media/postgres-password', 'minio/password',
  'moderation/postgres-password', 'moderation/redis-password', 'postgres/password', 'redis/password', 'search/postgres-password', 'search/redis-password',
];

export const ASHCHAN_SEED_IPS: Readonly<Record<string, string>> = { gateway: '10.90.0.10', auth: '10.90.0.21', boards: '10.90.0.22' };

/** The JSON lines of `podmesh verify --json` output. */
export function verifyLines(stdout: string): VerifyLine[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as VerifyLine);
}

/**
 * Asserts that every row of a verify run of ashchan-dev passed but the OCSP rows, one per app, each
 * a warning that the server stapled no response: ashchan-dev has OCSP on, and its PHP servers run
 * on Swoole, which cannot staple (README "OCSP").
 */
export function expectOnlyUnstapled(lines: readonly VerifyLine[], stderr: string): void {
  expect(lines.filter((l) => l.result !== 'pass' && l.check !== 'ocsp'), stderr).toEqual([]);
  const ocsp = lines.filter((l) => l.check === 'ocsp');
  expect(ocsp.map((l) => `${l.target}:${l.result}:${l.event}`).sort(), stderr).toEqual(ASHCHAN_APPS.map((a) => `${a}:warn:ocsp_status`).sort());
  for (const l of ocsp) expect(l.detail, l.target).toMatch(/^OCSP not stapled/);
}

/**
 * Asserts a verify run of ashchan-dev with nothing revoked: every probe passes; DNS and the
 * no-certificate refusal for every app; exactly the policy's allowed calls complete over TLS 1.3
 * with a seed suite; a caller outside a callee's policy gets 403; the gateway's public TLS port
 * answers without a client certificate.
 */
export function expectAshchanPolicy(lines: readonly VerifyLine[], exitCode: number, stderr: string): void {
  expectOnlyUnstapled(lines, stderr);
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
  // The gateway's public TLS listener, without a client certificate, with the public certificate.
  expect(lines.filter((l) => l.check === 'public-tls')).toEqual([
    expect.objectContaining({ target: 'gateway', event: 'tls_handshake_complete', client_cn: '', server_cn: 'localhost', tls_version: 'TLSv1.3', result: 'pass' }),
  ]);
}

/** What each app's /health must report it checked, per ashchan-dev: the gateway nothing, media only PostgreSQL. */
export const ASHCHAN_HEALTH_CHECKS: Readonly<Record<(typeof ASHCHAN_APPS)[number], Readonly<Record<string, string>>>> = {
  gateway: {},
  auth: { postgres: 'ok', redis: 'ok' },
  boards: { postgres: 'ok', redis: 'ok' },
  media: { postgres: 'ok' },
  search: { postgres: 'ok', redis: 'ok' },
  moderation: { postgres: 'ok', redis: 'ok' },
};

/** Asserts the body of `curl -w '\n%{http_code}' …/health` from app `app` (the PHP sample). */
export function expectHealthy(app: (typeof ASHCHAN_APPS)[number], curlStdout: string, curlStderr: string): void {
  expect(curlStdout, `${app}: ${curlStderr}`).toMatch(/\n200$/);
  const body = JSON.parse(curlStdout.slice(0, curlStdout.lastIndexOf('\n'))) as { status: string; dns_name: string; checks: Record<string, string> };
  expect(body, app).toMatchObject({ status: 'ok', dns_name: `${app}.ashchan.local`, checks: ASHCHAN_HEALTH_CHECKS[app] });
  expect(Object.keys(body.checks).sort(), app).toEqual(Object.keys(ASHCHAN_HEALTH_CHECKS[app]).sort());
}

/**
 * PHP for `php -r` in an app container: connects to PostgreSQL and Redis with the generated host,
 * port and user settings but a wrong password, and prints what each server said. The health
 * answers mean something only if the servers check passwords.
 */
export const WRONG_PASSWORD_PHP = [
  '$e = getenv();',
  'try { new PDO("pgsql:host={$e[\'DB_HOST\']};port={$e[\'DB_PORT\']};dbname={$e[\'DB_DATABASE\']};connect_timeout=3", $e[\'DB_USERNAME\'], "wrong-password"); echo "postgres: accepted\n"; }',
  'catch (PDOException $x) { echo "postgres: ", $x->getMessage(), "\n"; }',
  '$r = new Redis(); $r->connect($e[\'REDIS_HOST\'], (int) $e[\'REDIS_PORT\'], 3);',
  // As the container's own ACL user when it has one (AUTH <user> <password>).
  'try { echo "redis: ", $r->auth(isset($e[\'REDIS_USERNAME\']) ? [$e[\'REDIS_USERNAME\'], "wrong-password"] : "wrong-password") ? "accepted" : "refused", "\n"; } catch (RedisException $x) { echo "redis: ", $x->getMessage(), "\n"; }',
].join(' ');

/** Asserts the output of {@link WRONG_PASSWORD_PHP}: both servers refused `role` (boards' own, by default). */
export function expectWrongPasswordRefused(stdout: string, stderr: string, role = 'boards'): void {
  expect(stdout, stderr).toMatch(new RegExp(`^postgres: .*password authentication failed for user "${role}"`, 'm'));
  // phpredis throws (its message prefixed "redis: " by some versions) or returns false.
  expect(stdout).toMatch(/^redis: (refused|(redis: )?WRONGPASS invalid username-password pair or user is disabled\.)$/m);
  expect(stdout).not.toContain('accepted');
}

/** Command for `podman exec CTR …`: the name and uids of the container's PID 1. */
export const PID1_STATUS = ['sh', '-c', 'grep -E "^(Name|Uid):" /proc/1/status'] as const;

/**
 * What {@link PID1_STATUS} must print for the infrastructure: the official entrypoints switch to
 * their users (gosu) before starting the server, with the generated commands as well.
 */
export const INFRA_PID1: Readonly<Record<'postgres' | 'redis', string>> = {
  postgres: 'Name: postgres Uid: 999 999 999 999',
  redis: 'Name: redis-server Uid: 999 999 999 999',
};

/** {@link PID1_STATUS} output on one line. */
export function pid1(stdout: string): string {
  return stdout.replace(/\s+/g, ' ').trim();
}

/** Command for `podman exec CTR …`: PID 1's no_new_privs flag and effective and bounding capabilities. */
// Shell builtins only: the MinIO stand-in's image has busybox sh and cat, no grep.
export const PID1_CONFINEMENT = ['sh', '-c', 'while IFS= read -r l; do case "$l" in NoNewPrivs:*|CapEff:*|CapBnd:*) echo "$l";; esac; done </proc/1/status'] as const;

/** Bit numbers of the capabilities podmesh's presets add (linux/capability.h). */
const CAP_BITS: Readonly<Record<string, number>> = { CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, SETGID: 6, SETUID: 7, NET_BIND_SERVICE: 10 };

/** `/proc/PID/status` hex form of a capability set, e.g. `00000000000000cd`. */
export function capMask(caps: readonly string[]): string {
  let mask = 0n;
  for (const c of caps) {
    const bit = CAP_BITS[c.toUpperCase()];
    if (bit === undefined) throw new Error(`no bit number for capability ${c}`);
    mask |= 1n << BigInt(bit);
  }
  return mask.toString(16).padStart(16, '0');
}

/** {@link PID1_CONFINEMENT} output as `{ NoNewPrivs, CapEff, CapBnd }`. */
export function confinement(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.split('\n').filter(Boolean).map((l) => l.split(/:\s*/) as [string, string]));
}

/**
 * Asserts a container's confinement from inside it: no_new_privs, the bounding set is exactly the
 * declared capabilities, and PID 1 holds them (root) or none (an entrypoint that dropped root); a
 * write to / fails (read-only root) while /tmp (tmpfs) takes one.
 */
export async function expectConfined(
  name: string,
  exec: (argv: readonly string[]) => Promise<{ stdout: string; stderr: string; exitCode?: number }>,
  declared: readonly string[],
  pid1DropsRoot: boolean,
): Promise<void> {
  const status = await exec(PID1_CONFINEMENT);
  expect(confinement(status.stdout), `${name}: ${status.stderr}`).toEqual({
    NoNewPrivs: '1',
    CapBnd: capMask(declared),
    CapEff: pid1DropsRoot ? capMask([]) : capMask(declared),
  });
  const root = await exec(['sh', '-c', '(: >/podmesh-write-probe) 2>&1; echo "rc=$?"; : >/tmp/podmesh-write-probe && echo tmp-ok']);
  expect(root.stdout, `${name}: ${root.stderr}`).toMatch(/Read-only file system\s*\nrc=[1-9]\d*\ntmp-ok\n?$/);
}

/**
 * The containers a test's health-check loop runs `podman healthcheck run` for in this round, from
 * `podman ps --format '{{.Names}} {{.Status}}'`: those not healthy (yet) every round, all of them
 * every fifth round, so a healthy container that turns sick is still seen within seconds.
 */
export function healthCheckDue(psOutput: string, round: number): string[] {
  return psOutput
    .split('\n')
    .filter((line) => line.trim() !== '' && (round % 5 === 0 || !line.includes('(healthy)')))
    .map((line) => line.split(' ')[0]!);
}
