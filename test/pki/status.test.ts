// readPkiStatus and its three formatters (table, JSON, Prometheus text).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PodmeshError } from '../../constructs/core/errors.ts';
import {
  formatStatusJson,
  formatStatusProm,
  formatStatusTable,
  readPkiStatus,
  reconcilePki,
  type StatusRow,
} from '../../src/state/pki/index.ts';
import { AUTHORITY, binding, readState, tempState } from './helpers.ts';

const DAY = 86_400_000;
const T0 = new Date('2026-03-01T12:00:00Z');
const at = (days: number): Date => new Date(T0.getTime() + days * DAY);

describe('readPkiStatus', () => {
  const t = tempState();
  beforeAll(async () => {
    await reconcilePki({
      stateDir: t.stateDir,
      authority: AUTHORITY,
      bindings: [binding('gateway', 'server'), binding('gateway', 'public', { commonName: 'ashchan.example', dnsNames: [] }), binding('auth', 'client')],
      now: T0,
    });
  });
  afterAll(() => t.cleanup());

  it('lists the CAs first, then services by name and kind, with days to expiry', async () => {
    // WHEN
    const rows = await readPkiStatus(t.stateDir, T0);
    // THEN
    expect(rows.map((r) => `${r.service || '-'} ${r.kind} ${r.commonName} ${r.daysToExpiry} ${r.status}`)).toEqual([
      '- root-ca ashchan-ca 3649 valid',
      '- client-ca ashchan.local 1824 valid',
      'auth client auth.ashchan.local 364 valid',
      'gateway server gateway.ashchan.local 364 valid',
      'gateway public ashchan.example 364 valid',
    ]);
    expect(rows[3]?.notAfter.toISOString()).toBe('2027-03-01T11:55:00.000Z');
  });

  it.each([
    [260, 104, 'renew-due'],
    [340, 24, 'expiring'],
    [366, -2, 'expired'],
    [-1, 365, 'not-yet-valid'],
  ])('%i days after T0 the leaves have %i days left and are %s', async (days, left, status) => {
    const rows = await readPkiStatus(t.stateDir, at(days));
    const leaf = rows.find((r) => r.service === 'gateway' && r.kind === 'server');
    expect(leaf?.daysToExpiry).toBe(left);
    expect(leaf?.status).toBe(status);
  });

  it('shows a serial the inventory marks revoked as revoked', async () => {
    const invPath = join(t.stateDir, 'pki/inventory.json');
    const original = readState(t.stateDir, 'pki/inventory.json');
    const inv = JSON.parse(original) as { certificates: { kind: string; service: string; status: string; revokedAt?: string }[] };
    const e = inv.certificates.find((c) => c.service === 'auth' && c.kind === 'client');
    if (e) Object.assign(e, { status: 'revoked', revokedAt: '2026-03-02T00:00:00Z' });
    writeFileSync(invPath, JSON.stringify(inv));
    try {
      const rows = await readPkiStatus(t.stateDir, T0);
      expect(rows.find((r) => r.service === 'auth')?.status).toBe('revoked');
    } finally {
      writeFileSync(invPath, original);
    }
  });

  it('tells the user to run synth when there is no PKI yet', async () => {
    const empty = tempState();
    const e = await readPkiStatus(empty.stateDir, T0).catch((err: unknown) => err);
    empty.cleanup();
    expect(e).toBeInstanceOf(PodmeshError);
    expect((e as PodmeshError).message).toBe(`[${join(empty.stateDir, 'pki/ca.crt')}] there is no CA yet. Run podmesh synth first to create the PKI.`);
  });
});

describe('status formatters', () => {
  const row = (service: string, kind: StatusRow['kind'], days: number, status: StatusRow['status']): StatusRow => ({
    service,
    kind,
    commonName: service ? `${service}.ashchan.local` : kind === 'root-ca' ? 'ashchan-ca' : 'ashchan.local',
    serial: `0a${days}`,
    notBefore: new Date('2026-03-01T11:55:00Z'),
    notAfter: new Date(Date.UTC(2026, 2, 1, 11, 55) + (days + 1) * DAY),
    daysToExpiry: days,
    status,
  });
  // Deliberately unsorted: formatters sort.
  const rows = [row('gateway', 'server', 364, 'valid'), row('auth', 'client', 12, 'expiring'), row('', 'client-ca', 1824, 'valid'), row('', 'root-ca', 3649, 'valid')];

  it('writes Prometheus text, sorted, with the seed metric name', () => {
    expect(formatStatusProm(rows, 'ashchan-dev')).toBe(
      [
        '# HELP mtls_cert_expiry_days Days until the certificate expires (negative once expired).',
        '# TYPE mtls_cert_expiry_days gauge',
        'mtls_cert_expiry_days{stack="ashchan-dev",service="",kind="root-ca"} 3649',
        'mtls_cert_expiry_days{stack="ashchan-dev",service="",kind="client-ca"} 1824',
        'mtls_cert_expiry_days{stack="ashchan-dev",service="auth",kind="client"} 12',
        'mtls_cert_expiry_days{stack="ashchan-dev",service="gateway",kind="server"} 364',
        '',
      ].join('\n'),
    );
    expect(formatStatusProm([row('a"b\\c', 'server', 1, 'valid')], 'x')).toContain('service="a\\"b\\\\c"');
  });

  it('writes an aligned table', () => {
    expect(formatStatusTable(rows)).toBe(
      [
        'SERVICE  KIND       COMMON NAME            SERIAL  NOT AFTER             DAYS  STATUS',
        '-        root-ca    ashchan-ca             0a3649  2036-02-27T11:55:00Z  3649  valid',
        '-        client-ca  ashchan.local          0a1824  2031-02-28T11:55:00Z  1824  valid',
        'auth     client     auth.ashchan.local     0a12    2026-03-14T11:55:00Z    12  expiring',
        'gateway  server     gateway.ashchan.local  0a364   2027-03-01T11:55:00Z   364  valid',
        '',
      ].join('\n'),
    );
  });

  it('writes JSON with ISO dates', () => {
    const parsed = JSON.parse(formatStatusJson(rows)) as Record<string, unknown>[];
    expect(parsed.map((r) => r['kind'])).toEqual(['root-ca', 'client-ca', 'client', 'server']);
    expect(parsed[3]).toEqual({
      service: 'gateway',
      kind: 'server',
      commonName: 'gateway.ashchan.local',
      serial: '0a364',
      notBefore: '2026-03-01T11:55:00Z',
      notAfter: '2027-03-01T11:55:00Z',
      daysToExpiry: 364,
      status: 'valid',
    });
  });
});
