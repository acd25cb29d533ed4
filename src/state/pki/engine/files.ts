// Engine phase 6: the files the PKI state must hold after the run (CAs, inventory, CRLs, each
// service's certificates and keys) and the cache of facts established about them.
import type { ExternalCa } from '../external-ca.ts';
import type { IssuedCert } from '../issue.ts';
import { serializeInventory } from '../inventory.ts';
import { KIND_FILES, MODE, PKI_PATHS, SERVICE_CA_FILE, SERVICE_CRL_FILE, servicePath, type DesiredFile, type PkiSnapshot } from '../store.ts';
import type { CertKind, Inventory } from '../types.ts';
import { verifiedEntry, type VerifiedEntry } from '../verified.ts';
import type { CaOutcome } from './cas.ts';
import { caHash, keyOf, type Decided } from './leaves.ts';

/** What the desired files are made from. */
export interface FileInputs {
  readonly snapshot: PkiSnapshot;
  readonly cas: { readonly root: CaOutcome; readonly clientCa: CaOutcome };
  readonly caFor: (kind: CertKind) => CaOutcome;
  readonly decided: readonly Decided[];
  readonly issued: readonly (IssuedCert | undefined)[];
  readonly inventory: Inventory;
  readonly crlPem: string | null;
  readonly external: ExternalCa | undefined;
  readonly verified: ReadonlyMap<string, VerifiedEntry>;
  readonly prune: boolean;
  readonly dryRun: boolean;
}

/** Every managed file the run wants (content null where a dry run does not compute it), and the next verified cache. */
export function desiredFiles(f: FileInputs): { files: Map<string, DesiredFile>; verified: Map<string, VerifiedEntry> } {
  const { root, clientCa } = f.cas;
  const files = new Map<string, DesiredFile>();
  const put = (path: string, content: string | null, mode: number): void => void files.set(path, { content, mode });
  put(PKI_PATHS.rootKey, root.keyFile, MODE.key);
  put(PKI_PATHS.rootCert, root.certFile, MODE.file);
  put(PKI_PATHS.clientCaKey, clientCa.keyFile, MODE.key);
  put(PKI_PATHS.clientCaCert, clientCa.certFile, MODE.file);
  const anyIssued = f.decided.some((d) => d.decision.action !== 'keep');
  put(PKI_PATHS.inventory, f.dryRun && anyIssued ? null : serializeInventory(f.inventory), MODE.file);
  put(PKI_PATHS.crl, f.crlPem, MODE.file);
  // The cache after this run: reconcile keeps only the services it wants, revoke and rotate the rest too.
  const verified = new Map(f.prune ? [] : f.verified);
  f.decided.forEach((d, i) => serviceFiles(f, d, f.issued[i], put, verified));
  // Every service folder carries the CRLs (MTLS_CRL_FILE), also those outside a scoped run
  // (revoke, rotate --service): a revocation reaches every server with the next deploy.
  const crlHolders = new Set([...f.decided.map((d) => d.req.service), ...(f.prune ? [] : f.snapshot.services)]);
  for (const service of crlHolders) put(servicePath(service, SERVICE_CRL_FILE), f.crlPem, MODE.file);
  return { files, verified };
}

/**
 * `pem + chain`, as the very string read from disk when that holds exactly it: a run with nothing
 * to change then compares each certificate file with itself instead of building and comparing a
 * copy of it.
 */
function joined(pem: string, chain: string, onDisk: string | undefined): string {
  if (onDisk !== undefined && onDisk.length === pem.length + chain.length && onDisk.startsWith(pem) && onDisk.endsWith(chain)) return onDisk;
  return pem + chain;
}

/** One certificate's files (ca.crt, the certificate with its chain, the key) and its cache entry. */
function serviceFiles(
  f: FileInputs,
  { req, existing, decision }: Decided,
  fresh: IssuedCert | undefined,
  put: (path: string, content: string | null, mode: number) => void,
  verified: Map<string, VerifiedEntry>,
): void {
  const names = KIND_FILES[req.kind];
  const rootPem = f.cas.root.ca ? f.cas.root.ca.cert.pem : null;
  const clientCaPem = f.cas.clientCa.ca ? f.cas.clientCa.ca.cert.pem : null;
  put(servicePath(req.service, SERVICE_CA_FILE), f.external ? f.external.bundle : rootPem, MODE.file);
  // client.crt carries its chain (leaf, then the client CA) so that servers trusting only the root accept it.
  const chain = req.kind === 'client' ? clientCaPem : '';
  let certPem: string | null = null;
  let keyPem: string | null = null;
  if (decision.external) {
    certPem = f.snapshot.files.get(servicePath(req.service, names.cert))?.text ?? null;
    keyPem = existing.keyText ?? null;
  } else if (decision.action === 'keep' && existing.cert) {
    certPem = existing.cert.pem;
    keyPem = existing.keyText ?? null;
  } else if (fresh) {
    certPem = fresh.certPem;
    keyPem = fresh.keyPem;
  }
  const onDisk = f.snapshot.files.get(servicePath(req.service, names.cert))?.text;
  const certFile = certPem === null || chain === null ? null : decision.external ? certPem : joined(certPem, chain, onDisk);
  put(servicePath(req.service, names.cert), certFile, MODE.file);
  put(servicePath(req.service, names.key), keyPem, MODE.key);
  // A kept certificate passed decide(): its key matched and its issuer's signature checked out. A new
  // one was just signed by the issuer for this key, from the facts it carries.
  const issuerCa = f.caFor(req.kind).ca;
  const facts = decision.action === 'keep' ? existing.cert : fresh?.cert;
  // Certificates of an external CA are never cached as signed by the local issuer.
  const issuerHash = issuerCa ? caHash(issuerCa) : undefined;
  // A kept pair whose files stay as they were when its cache entry was made keeps that very entry.
    const kept =
    decision.action === 'keep' &&
    !decision.external &&
    existing.cached !== undefined &&
    existing.cached.issuer === issuerHash &&
    certFile === onDisk &&
    keyPem === existing.keyText
      ? existing.cached
      : undefined;
  const entry =
    kept ?? (!decision.external && facts && certFile !== null && keyPem !== null && issuerHash !== undefined ? verifiedEntry(facts, certFile, keyPem, issuerHash) : undefined);
  if (entry) verified.set(keyOf(req.service, req.kind), entry);
  else verified.delete(keyOf(req.service, req.kind));
}
