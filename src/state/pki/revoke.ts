// revoke and rotate: act on certificates already in the state folder, reissuing them from their own contents.
import { join } from 'node:path';
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import { parseCertificate } from './certificate.ts';
import { certKeyType, lifetimeDays, runEngine, type Forced, type Revocation } from './engine.ts';
import type { LeafRequest } from './issue.ts';
import { webCryptoKeySource } from './keys.ts';
import { KIND_FILES, readPkiSnapshot, servicePath, type PkiSnapshot } from './store.ts';
import { REVOCATION_REASONS, type CertKind, type KeySource, type PkiResult, type RevocationReason } from './types.ts';

const KINDS = Object.keys(KIND_FILES) as CertKind[];

/** Input of {@link revoke}. */
export interface RevokeOptions {
  /** The stack's state folder, `.podmesh/<stack>`. */
  readonly stateDir: string;
  /** Service folder under `pki/services/`. */
  readonly service: string;
  /** Which of its certificates to revoke. */
  readonly kind: CertKind;
  /** Revocation time, CRL thisUpdate and the clock for the replacement certificate. */
  readonly now: Date;
  /**
   * CRL reason code.
   * @default 'unspecified' (omitted from the CRL entry, as RFC 5280 recommends)
   */
  readonly reason?: RevocationReason;
  /**
   * Decide without writing.
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Where new keys come from.
   * @default - WebCrypto
   */
  readonly keys?: KeySource;
}

/** Input of {@link rotate}. */
export interface RotateOptions {
  /** The stack's state folder, `.podmesh/<stack>`. */
  readonly stateDir: string;
  /**
   * Services whose certificates (every kind present) are renewed.
   * @default - every service in the state folder
   */
  readonly services?: readonly string[];
  /** The clock for the new certificates (and CRL freshness). */
  readonly now: Date;
  /**
   * Decide without writing.
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * Where new keys come from.
   * @default - WebCrypto
   */
  readonly keys?: KeySource;
}

/** The request that reproduces a certificate in place (same names, IPs, key type, lifetime, organization). */
function requestFromDisk(snapshot: PkiSnapshot, service: string, kind: CertKind, issues: Issue[]): { req: LeafRequest; serial: string } | undefined {
  const rel = servicePath(service, KIND_FILES[kind].cert);
  const path = join(snapshot.stateDir, rel);
  const file = snapshot.files.get(rel);
  let cert;
  try {
    cert = file?.text === undefined ? undefined : parseCertificate(file.text);
  } catch {
    cert = undefined;
  }
  const keyType = cert && certKeyType(cert);
  if (!cert || !keyType) {
    issues.push({
      path,
      message: `cannot ${file?.text === undefined ? 'read' : 'parse'} the ${kind} certificate of ${service}, so it cannot be reproduced. Run podmesh synth to reissue it from the stack.`,
    });
    return undefined;
  }
  return {
    serial: cert.serial,
    req: {
      service,
      kind,
      commonName: cert.commonName,
      dnsNames: cert.dnsNames,
      ipAddresses: cert.ipAddresses,
      ...(cert.uris[0] === undefined ? {} : { spiffeId: cert.uris[0] }),
      ...(cert.ocspUrls[0] === undefined ? {} : { ocspUrl: cert.ocspUrls[0] }),
      keyType,
      lifetimeDays: lifetimeDays(cert),
      ...(cert.organization === undefined ? {} : { organization: cert.organization }),
    },
  };
}

function unknownService(snapshot: PkiSnapshot, service: string): Issue {
  const known = snapshot.services.length > 0 ? snapshot.services.join(', ') : 'none';
  return {
    path: join(snapshot.stateDir, servicePath(service)),
    message: `there is no service "${service}" in the PKI state (services: ${known}). Check the name, or run podmesh synth if it was just added.`,
  };
}

const kindsPresent = (snapshot: PkiSnapshot, service: string): CertKind[] =>
  KINDS.filter((k) => snapshot.files.has(servicePath(service, KIND_FILES[k].cert)));

/**
 * Revokes the current certificate of one service and kind: marks its serial revoked in the
 * inventory, issues a replacement with the same contents, and re-signs the issuer's CRL.
 * @throws PodmeshError (having written nothing) when there is no such certificate or the CAs are unusable.
 */
export async function revoke(options: RevokeOptions): Promise<PkiResult> {
  const reason = options.reason ?? 'unspecified';
  const snapshot = await readPkiSnapshot(options.stateDir);
  const issues: Issue[] = [];
  const at = join(snapshot.stateDir, servicePath(options.service));
  if (!REVOCATION_REASONS.includes(reason)) {
    issues.push({ path: at, message: `revocation reason "${String(reason)}" is unknown. Use one of: ${REVOCATION_REASONS.join(', ')}.` });
  }
  if (!KINDS.includes(options.kind)) {
    issues.push({ path: at, message: `certificate kind "${String(options.kind)}" is unknown. Use 'server', 'client' or 'public'.` });
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  if (!snapshot.services.includes(options.service)) throw new PodmeshError([unknownService(snapshot, options.service)]);
  const present = kindsPresent(snapshot, options.service);
  if (!present.includes(options.kind)) {
    throw PodmeshError.at(
      join(snapshot.stateDir, servicePath(options.service, KIND_FILES[options.kind].cert)),
      `${options.service} has no ${options.kind} certificate to revoke (it has: ${present.join(', ') || 'none'}). Pick one of those kinds.`,
    );
  }
  const found = requestFromDisk(snapshot, options.service, options.kind, issues);
  if (!found) throw new PodmeshError(issues);
  const revocation: Revocation = { service: options.service, kind: options.kind, serial: found.serial, reason };
  const forced: Forced = { action: 'reissue', reason: `serial ${found.serial} revoked (${reason})` };
  return runEngine({
    snapshot,
    authority: undefined,
    requests: [found.req],
    prune: false,
    forced: new Map([[`${options.service}/${options.kind}`, forced]]),
    revocations: [revocation],
    now: options.now,
    keys: options.keys ?? webCryptoKeySource,
    dryRun: options.dryRun ?? false,
  });
}

/**
 * Renews now, whatever their age, every certificate of the given services (default: all), with
 * the same contents. The old serials are superseded, not revoked.
 * @throws PodmeshError (having written nothing) for unknown services, unreadable certificates or unusable CAs.
 */
export async function rotate(options: RotateOptions): Promise<PkiResult> {
  const snapshot = await readPkiSnapshot(options.stateDir);
  const services = options.services ?? snapshot.services;
  const issues: Issue[] = [];
  const requests: LeafRequest[] = [];
  for (const service of [...new Set(services)]) {
    if (!snapshot.services.includes(service)) {
      issues.push(unknownService(snapshot, service));
      continue;
    }
    for (const kind of kindsPresent(snapshot, service)) {
      const found = requestFromDisk(snapshot, service, kind, issues);
      if (found) requests.push(found.req);
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  const forced: Forced = { action: 'renew', reason: 'rotation requested' };
  return runEngine({
    snapshot,
    authority: undefined,
    requests,
    prune: false,
    forced: new Map(requests.map((r) => [`${r.service}/${r.kind}`, forced])),
    revocations: [],
    now: options.now,
    keys: options.keys ?? webCryptoKeySource,
    dryRun: options.dryRun ?? false,
  });
}
