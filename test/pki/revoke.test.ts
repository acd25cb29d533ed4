// revoke, rotate and the CRLs: inventory states, CRL layout, openssl -crl_check_all, re-signing rules.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { reconcilePki, revoke, rotate, splitCrlPem, type InventoryEntry, type PkiResult } from '../../src/state/pki/index.ts';
import { AUTHORITY, meshBindings, openssl, pemCerts, readState, scratch, tempState, treeState } from './helpers.ts';
import { x509 } from './peculiar.ts';

const DAY = 86_400_000;

describe('revoke, rotate and CRLs', () => {
  let t: ReturnType<typeof tempState>;
  // Near the real time; openssl is told the time to check at with -attime.
  const T0 = new Date(Math.floor(Date.now() / 1000) * 1000);
  const at = (days: number): Date => new Date(T0.getTime() + days * DAY);
  let first: PkiResult;
  const bindings = meshBindings();
  const inventory = (): InventoryEntry[] => (JSON.parse(readState(t.stateDir, 'pki/inventory.json')) as { certificates: InventoryEntry[] }).certificates;
  const serialOf = (r: PkiResult, key: string): string => r.certificates.find((c) => `${c.service}/${c.kind}` === key)?.serial ?? '';
  const crlVerify = (leafPem: string, chainPem?: string, when: Date = T0): { code: number; out: string } =>
    openssl([
      'verify',
      '-attime',
      String(Math.floor(when.getTime() / 1000) + 60),
      '-crl_check_all',
      '-CRLfile',
      join(t.stateDir, 'pki/crl.pem'),
      '-CAfile',
      join(t.stateDir, 'pki/ca.crt'),
      ...(chainPem ? ['-untrusted', scratch(t.root, 'chain.pem', chainPem)] : []),
      scratch(t.root, 'leaf.pem', leafPem),
    ]);

  beforeEach(async () => {
    t = tempState();
    first = await reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now: T0 });
  });
  afterEach(() => t.cleanup());

  it('writes one CRL per issuer into crl.pem, root first, valid 30 days', () => {
    // WHEN
    const crls = splitCrlPem(readState(t.stateDir, 'pki/crl.pem')).map((p) => new x509.X509Crl(p));
    // THEN
    expect(crls.map((c) => c.issuer)).toEqual(['CN=ashchan-ca', 'CN=ashchan.local']);
    for (const c of crls) {
      expect(c.thisUpdate.getTime()).toBe(T0.getTime());
      expect(c.nextUpdate?.getTime()).toBe(T0.getTime() + 30 * DAY);
      expect(c.entries).toHaveLength(0);
    }
    const text = openssl(['crl', '-text', '-noout', '-in', join(t.stateDir, 'pki/crl.pem')]).out;
    expect(text).toContain('Version 2 (0x1)');
    expect(text).toContain('X509v3 CRL Number');
    expect(text).toContain('X509v3 Authority Key Identifier');
  });

  it('openssl -crl_check_all accepts every current certificate with crl.pem', () => {
    for (const s of ['gateway', 'auth', 'boards']) {
      expect(crlVerify(readState(t.stateDir, `pki/services/${s}/server.crt`)).out).toContain(': OK');
      const [leaf, chain] = pemCerts(readState(t.stateDir, `pki/services/${s}/client.crt`));
      expect(crlVerify(leaf as string, chain).out).toContain(': OK');
    }
  });

  it('revokes a client certificate: inventory, reissue, client CA CRL, openssl rejects the old one', async () => {
    // GIVEN the gateway's current client certificate
    const oldPem = readState(t.stateDir, 'pki/services/gateway/client.crt');
    const oldSerial = serialOf(first, 'gateway/client');
    // WHEN it is revoked for key compromise a day later
    const r = await revoke({ stateDir: t.stateDir, service: 'gateway', kind: 'client', now: at(1), reason: 'keyCompromise' });
    // THEN it is reissued
    expect(r.certificates).toHaveLength(1);
    expect(r.certificates[0]).toMatchObject({ service: 'gateway', kind: 'client', action: 'reissue', reason: `serial ${oldSerial} revoked (keyCompromise)` });
    const newSerial = r.certificates[0]?.serial ?? '';
    expect(newSerial).not.toBe(oldSerial);
    // AND the inventory records the revocation
    expect(inventory().find((e) => e.serial === oldSerial)).toMatchObject({ status: 'revoked', revokedAt: at(1).toISOString().replace('.000Z', 'Z'), reason: 'keyCompromise' });
    expect(inventory().find((e) => e.serial === newSerial)?.status).toBe('active');
    // AND the client CA's CRL lists it, the root's does not
    const [rootCrl, clientCrl] = splitCrlPem(readState(t.stateDir, 'pki/crl.pem')).map((p) => new x509.X509Crl(p));
    expect(rootCrl?.entries).toHaveLength(0);
    expect(clientCrl?.entries.map((e) => [e.serialNumber, e.reason])).toEqual([[oldSerial, x509.X509CrlReason.keyCompromise]]);
    expect(clientCrl?.thisUpdate.getTime()).toBe(at(1).getTime());
    // AND openssl refuses the old certificate and accepts the new one
    const [oldLeaf, chain] = pemCerts(oldPem);
    const refused = crlVerify(oldLeaf as string, chain, at(1));
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain('certificate revoked');
    const [newLeaf] = pemCerts(readState(t.stateDir, 'pki/services/gateway/client.crt'));
    expect(crlVerify(newLeaf as string, chain, at(1)).out).toContain(': OK');
    // AND only the files of that certificate, the inventory and the CRL (with its copy in every service folder) changed
    expect(r.files.map((f) => f.path)).toEqual([
      'pki/crl.pem',
      'pki/inventory.json',
      'pki/services/auth/crl.pem',
      'pki/services/boards/crl.pem',
      'pki/services/gateway/client.crt',
      'pki/services/gateway/client.key',
      'pki/services/gateway/crl.pem',
    ]);
  });

  it('revokes a server certificate on the root CRL; a later reconcile changes nothing', async () => {
    const oldPem = readState(t.stateDir, 'pki/services/auth/server.crt');
    await revoke({ stateDir: t.stateDir, service: 'auth', kind: 'server', now: at(1) });
    const [rootCrl] = splitCrlPem(readState(t.stateDir, 'pki/crl.pem')).map((p) => new x509.X509Crl(p));
    expect(rootCrl?.entries.map((e) => e.serialNumber)).toEqual([serialOf(first, 'auth/server')]);
    // 'unspecified' is left out of the entry, as RFC 5280 recommends
    expect(rootCrl?.entries[0]?.reason).toBeUndefined();
    expect(crlVerify(oldPem, undefined, at(1)).out).toContain('certificate revoked');
    // WHEN the stack is reconciled again with unchanged bindings
    const before = treeState(t.stateDir);
    const r = await reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now: at(2) });
    // THEN
    expect(r.files).toEqual([]);
    expect(treeState(t.stateDir)).toEqual(before);
  });

  it('re-signs the CRLs only past half their validity, with a growing CRL number', async () => {
    const number = (): number[] =>
      splitCrlPem(readState(t.stateDir, 'pki/crl.pem')).map((p) => {
        const ext = new x509.X509Crl(p).getExtension('2.5.29.20');
        return new Uint8Array(ext?.value ?? new ArrayBuffer(0)).at(-1) ?? -1;
      });
    expect(number()).toEqual([1, 1]);
    const early = await reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now: at(14) });
    expect(early.crl.action).toBe('keep');
    const late = await reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now: at(15) });
    expect(late.crl).toEqual({
      action: 'resign',
      reason: `root CRL: past half its validity (signed ${T0.toISOString().replace('.000Z', 'Z')}); client CA CRL: past half its validity (signed ${T0.toISOString().replace('.000Z', 'Z')})`,
    });
    expect(late.files.map((f) => f.path)).toEqual([
      'pki/crl.pem',
      'pki/inventory.json',
      'pki/services/auth/crl.pem',
      'pki/services/boards/crl.pem',
      'pki/services/gateway/crl.pem',
    ]);
    expect(number()).toEqual([2, 2]);
  });

  it('re-creates a missing crl.pem and refreshes only its copies', async () => {
    const { unlinkSync } = await import('node:fs');
    unlinkSync(join(t.stateDir, 'pki/crl.pem'));
    const r = await reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now: at(1) });
    expect(r.crl.action).toBe('create');
    expect(r.files).toEqual([
      { path: 'pki/crl.pem', change: 'create' },
      { path: 'pki/inventory.json', change: 'update' },
      // The re-signed CRLs reach the service folders' copies.
      { path: 'pki/services/auth/crl.pem', change: 'update' },
      { path: 'pki/services/boards/crl.pem', change: 'update' },
      { path: 'pki/services/gateway/crl.pem', change: 'update' },
    ]);
  });

  it('rotates every certificate of the chosen services, superseding the old serials', async () => {
    // WHEN only auth is rotated
    const r = await rotate({ stateDir: t.stateDir, services: ['auth'], now: at(1) });
    // THEN
    expect(r.certificates.map((c) => `${c.service}/${c.kind}:${c.action}:${c.reason}`)).toEqual([
      'auth/client:renew:rotation requested',
      'auth/server:renew:rotation requested',
    ]);
    expect(inventory().find((e) => e.serial === serialOf(first, 'auth/server'))?.status).toBe('superseded');
    expect(readState(t.stateDir, 'pki/services/gateway/server.crt')).toContain('BEGIN CERTIFICATE');
    // AND the replacement keeps names and IPs
    const cert = new x509.X509Certificate(readState(t.stateDir, 'pki/services/auth/server.crt'));
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON().map((n) => n.value)).toEqual(['auth.ashchan.local', 'auth', '10.90.0.21']);
    // AND a full rotation renews all seven
    const all = await rotate({ stateDir: t.stateDir, now: at(2) });
    expect(all.certificates).toHaveLength(bindings.length);
    expect(all.certificates.every((c) => c.action === 'renew')).toBe(true);
  });

  it('rebuilds a lost inventory from the certificates in place, and can still revoke', async () => {
    // GIVEN the inventory is gone
    const { unlinkSync } = await import('node:fs');
    unlinkSync(join(t.stateDir, 'pki/inventory.json'));
    // WHEN reconciling
    const r = await reconcilePki({ stateDir: t.stateDir, authority: AUTHORITY, bindings, now: at(1) });
    // THEN it warns and records the serials in place as active, keeping every certificate
    expect(r.warnings).toEqual(['pki/inventory.json was missing: rebuilt from the certificates in place; earlier revocations are no longer known.']);
    expect(r.certificates.every((c) => c.action === 'keep')).toBe(true);
    expect(inventory().map((e) => e.status)).toEqual(Array(bindings.length).fill('active'));
    // AND revoking works on the rebuilt inventory
    await revoke({ stateDir: t.stateDir, service: 'boards', kind: 'server', now: at(2) });
    expect(inventory().find((e) => e.serial === serialOf(first, 'boards/server'))?.status).toBe('revoked');
    const [rootCrl] = splitCrlPem(readState(t.stateDir, 'pki/crl.pem')).map((p) => new x509.X509Crl(p));
    expect(rootCrl?.entries.map((e) => e.serialNumber)).toEqual([serialOf(first, 'boards/server')]);
  });

  it('refuses unknown services and kinds, naming what exists', async () => {
    const e1 = await revoke({ stateDir: t.stateDir, service: 'nope', kind: 'server', now: at(1) }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(PodmeshError);
    expect((e1 as PodmeshError).message).toBe(
      `[${join(t.stateDir, 'pki/services/nope')}] there is no service "nope" in the PKI state (services: auth, boards, gateway). Check the name, or run podmesh synth if it was just added.`,
    );
    const e2 = await revoke({ stateDir: t.stateDir, service: 'auth', kind: 'public', now: at(1) }).catch((e: unknown) => e);
    expect((e2 as PodmeshError).message).toBe(
      `[${join(t.stateDir, 'pki/services/auth/public.crt')}] auth has no public certificate to revoke (it has: server, client). Pick one of those kinds.`,
    );
    const e3 = await rotate({ stateDir: t.stateDir, services: ['auth', 'nope'], now: at(1) }).catch((e: unknown) => e);
    expect((e3 as PodmeshError).issues).toHaveLength(1);
  });
});
