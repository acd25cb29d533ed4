// Public API of the certificate engine: reconcile, revoke/rotate, status, and the vocabulary they speak.
export type {
  AuthoritySpec,
  CaAction,
  CaPlan,
  CertAction,
  CertBinding,
  CertKind,
  CertPlan,
  FileChange,
  Inventory,
  InventoryEntry,
  Issuer,
  KeyPair,
  KeySource,
  KeyType,
  PkiResult,
  RevocationReason,
  SerialStatus,
} from './types.ts';
export { KEY_TYPES, REVOCATION_REASONS } from './types.ts';
export { pkiReconciler, planPki, reconcilePki, type PkiInput, type ReconcileOptions } from './reconcile.ts';
export { applyPkiPlan, type PkiPlan } from './engine.ts';
export { revoke, rotate, type RevokeOptions, type RotateOptions } from './revoke.ts';
export {
  EXPIRY_WARNING_DAYS,
  formatStatusJson,
  formatStatusProm,
  formatStatusTable,
  readPkiStatus,
  type CertStatus,
  type StatusRow,
} from './status.ts';
export { webCryptoKeySource } from './keys.ts';
export { PARALLEL_THRESHOLD, RENEW_AT, type IssueMode } from './engine.ts';
export { KIND_FILES, MODE, PKI_PATHS, SERVICE_CA_FILE, SERVICE_CRL_FILE } from './store.ts';
export { CRL_VALIDITY_DAYS, splitCrlPem } from './crl.ts';
