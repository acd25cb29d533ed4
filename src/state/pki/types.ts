// The plain-data vocabulary of the certificate engine: what the stack asks for, what reconcile answers.
import type { webcrypto } from 'node:crypto';

import type { CertKind, KeyType } from '../../../constructs/model/certificates.ts';

export { KEY_TYPES, type CertKind, type KeyType } from '../../../constructs/model/certificates.ts';

/** The two certificate authorities of a stack, as the stack describes them. */
export interface AuthoritySpec {
  /** Common name of the self-signed root (the seed's `ashchan-ca`). */
  readonly rootCommonName: string;
  /** Validity of a newly created root, in days (the seed's 10 years: 3650). */
  readonly rootLifetimeDays: number;
  /** Common name of the client CA that signs client certificates (the seed's `ashchan.local`). */
  readonly clientCaCommonName: string;
  /** Validity of a newly created client CA, in days. */
  readonly clientCaLifetimeDays: number;
  /** Key algorithm of newly created CA keys. */
  readonly keyType: KeyType;
  /**
   * Organization (`O=`) put into every subject this engine issues.
   * @default - no O= attribute
   */
  readonly organization?: string;
}

/** One certificate a service needs. */
export interface CertBinding {
  /** Service name: the folder under `pki/services/`. */
  readonly service: string;
  /**
   * `server` (root-signed, `server.crt`), `client` (client-CA-signed, `client.crt` with its
   * chain) or `public` (the gateway's public TLS termination certificate, root-signed, `public.crt`).
   */
  readonly kind: CertKind;
  /** Subject CN: the service's DNS name. Also put into the SAN if `dnsNames` lacks it. */
  readonly commonName: string;
  /** SAN DNS names (the CN first by convention; compared as a set). */
  readonly dnsNames: readonly string[];
  /** SAN IP addresses (the service's static IPs; compared as a set). */
  readonly ipAddresses: readonly string[];
  /**
   * The workload's SPIFFE ID (`spiffe://<trust domain>/<stack>/<service>`), the leaf's one URI SAN
   * (X509-SVID).
   * @default - no URI SAN
   */
  readonly spiffeId?: string;
  /**
   * The OCSP responder URL put into the leaf's Authority Information Access extension.
   * @default - no AIA extension (the stack turned OCSP off)
   */
  readonly ocspUrl?: string;
  /** Key algorithm of the leaf key. */
  readonly keyType: KeyType;
  /** Validity in days (the seed's 1 year: 365). */
  readonly lifetimeDays: number;
}

/** WebCrypto key pair, as Node types it. */
export type KeyPair = webcrypto.CryptoKeyPair;

/**
 * Where new key pairs come from. Tests inject a source (pre-generated pools, fixed keys);
 * the default generates extractable WebCrypto keys.
 */
export interface KeySource {
  /** A fresh, extractable key pair of `keyType` usable for signing (ECDSA or RSASSA-PKCS1-v1_5 with SHA-256). */
  generate(keyType: KeyType): Promise<KeyPair>;
}

/** What reconcile does with one CA. */
export type CaAction = 'create' | 'keep';

/** What reconcile does with one leaf certificate. */
export type CertAction = 'create' | 'keep' | 'renew' | 'reissue';

/** Reconcile's decision for one CA. */
export interface CaPlan {
  /** `root` (`pki/ca.*`) or `client-ca` (`pki/client-ca.*`). */
  readonly ca: 'root' | 'client-ca';
  /** `create` only when neither file exists; an existing CA is always kept. */
  readonly action: CaAction;
  /** Why, in words a person reads in `podmesh diff`. */
  readonly reason: string;
  /** Serial in lower-case hex (empty for a CA a dry run would create). */
  readonly serial: string;
  /** End of validity. */
  readonly notAfter: Date;
}

/** Reconcile's decision for one binding. */
export interface CertPlan {
  /** Service folder. */
  readonly service: string;
  /** Which of its certificates. */
  readonly kind: CertKind;
  /** keep (valid and matching), create (none yet), renew (age), reissue (contents or issuer changed). */
  readonly action: CertAction;
  /** Why, in words a person reads in `podmesh diff` (e.g. `SAN IPs changed: +10.90.0.30 -10.90.0.21`). */
  readonly reason: string;
  /** Serial of the certificate in place after reconcile, lower-case hex (empty for one a dry run would issue). */
  readonly serial: string;
  /** End of validity of that certificate (planned, for one a dry run would issue). */
  readonly notAfter: Date;
}

/** One file-system change, relative to the state folder. */
export interface FileChange {
  /** Path relative to `stateDir`, `/`-separated (`pki/services/auth/server.crt`). */
  readonly path: string;
  /** `create`/`update` write a file, `remove` deletes a file or folder, `chmod` repairs a mode. */
  readonly change: 'create' | 'update' | 'remove' | 'chmod';
}

/** The outcome of reconcile, revoke or rotate (or what they would do, with `dryRun`). */
export interface PkiResult {
  /** The root, then the client CA. */
  readonly cas: readonly CaPlan[];
  /** One entry per binding, sorted by service then kind. */
  readonly certificates: readonly CertPlan[];
  /** Service folders removed because no binding needs them any more. */
  readonly removedServices: readonly string[];
  /** Whether `pki/crl.pem` is (re)signed. */
  readonly crl: { readonly action: 'create' | 'keep' | 'resign'; readonly reason: string };
  /** Every file changed (or that would change), sorted by path. Empty when nothing changed. */
  readonly files: readonly FileChange[];
  /** Things a person should know that do not stop the run (e.g. the stack's CA CN differs from the kept CA). */
  readonly warnings: readonly string[];
  /** True when nothing was written because `dryRun` was set. */
  readonly dryRun: boolean;
}

/** Lifecycle of an issued serial in the inventory. */
export type SerialStatus = 'active' | 'superseded' | 'revoked';

/** CRL reason codes podmesh accepts (RFC 5280 §5.3.1, without the CA-only and hold codes). */
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'privilegeWithdrawn';

/** Every accepted revocation reason. */
export const REVOCATION_REASONS: readonly RevocationReason[] = [
  'unspecified',
  'keyCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
];

/** Who signed a serial: the root (server and public certificates, the client CA) or the client CA. */
export type Issuer = 'root' | 'client-ca';

/** One serial in `pki/inventory.json`. */
export interface InventoryEntry {
  /** Service folder it was issued for. */
  readonly service: string;
  /** Which of its certificates. */
  readonly kind: CertKind;
  /** Lower-case hex, no leading zero byte. */
  readonly serial: string;
  /** Which CA signed it, hence which CRL lists it when revoked. */
  readonly issuer: Issuer;
  /** ISO-8601. */
  readonly notBefore: string;
  /** ISO-8601. */
  readonly notAfter: string;
  /** active: in place now; superseded: replaced or no longer needed; revoked: listed in the CRL. */
  readonly status: SerialStatus;
  /** ISO-8601, only when revoked. */
  readonly revokedAt?: string;
  /** Only when revoked. */
  readonly reason?: RevocationReason;
}

/** `pki/inventory.json`: every serial ever issued, and the last CRL number of each issuer. */
export interface Inventory {
  /** File format version. */
  readonly version: 1;
  /** Last CRL number used per issuer; CRL numbers only grow (RFC 5280 §5.2.3). */
  readonly crlNumbers: { readonly root: number; readonly 'client-ca': number };
  /** Sorted by service, kind, notBefore, serial. */
  readonly certificates: readonly InventoryEntry[];
}
