// An external CA (Vault, a corporate CA) signs the service certificates: CSRs out, signed certificates in.
//
// `writeCsrs` makes one PKCS#10 request per binding with the key already in the state folder (or a
// new one), so keys never leave it. `importSigned` checks every signed certificate against its key,
// its binding and the CA chain in `ca.crt`, and only when all pass installs them, records the CA in
// `pki/external-ca.crt` (which makes reconcile keep them: see engine.ts), and updates the inventory.
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { PodmeshError, type Issue } from '../../../constructs/core/errors.ts';
import { writeAtomic } from '../../io/atomic.ts';
import { parseCertificate, type ParsedCertificate } from './certificate.ts';
import { EMPTY_INVENTORY, issuerOf, parseInventory, serializeInventory } from './inventory.ts';
import { LEAF_EKU, LEAF_USAGE, nameOf, sanDnsNames, sanUris, subjectAltName } from './issue.ts';
import { keyAlgorithm, keyTypeOf, leafKeyOf, parsePrivateKeyPem, SIGNATURE, signingKeyOf, webCryptoKeySource } from './keys.ts';
import { canonicalIp } from './names.ts';
import { applyChanges, KIND_FILES, MODE, PKI_PATHS, planChanges, readPkiSnapshot, SERVICE_CA_FILE, servicePath, type DesiredFile } from './store.ts';
import type { CertBinding, CertKind, Inventory, InventoryEntry, KeySource } from './types.ts';
import { x509 } from './x509.ts';

/** OIDs of the extended key usages every podmesh leaf carries. */
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** File name of a binding's CSR and of its signed certificate: `<service>-<kind>.csr|.crt`. */
export function externalFileName(b: Pick<CertBinding, 'service' | 'kind'>, ext: 'csr' | 'crt'): string {
  return `${b.service}-${b.kind}.${ext}`;
}

/** The CA bundle file an import reads from its folder and installs as every service's `ca.crt`. */
export const EXTERNAL_CA_FILE = 'ca.crt';

/** One CSR written. */
export interface CsrFile {
  readonly binding: CertBinding;
  /** Absolute or cwd-relative path of the `.csr`. */
  readonly path: string;
  /** True when the key did not exist and was created in the state folder. */
  readonly keyCreated: boolean;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const sorted = (bs: readonly CertBinding[]): CertBinding[] => [...bs].sort((a, b) => cmp(a.service, b.service) || cmp(a.kind, b.kind));

/** The PEM of a PKCS#10 request for a binding, signed with `key`: subject, SAN, key usage and EKU as requested extensions. */
export async function buildCsr(b: CertBinding, key: KeyObject, organization?: string): Promise<string> {
  const keyType = keyTypeOf(key);
  if (!keyType) throw new Error('unsupported key type');
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const publicKey = await globalThis.crypto.subtle.importKey('spki', spki, keyAlgorithm(keyType), true, ['verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: nameOf(b.commonName, organization),
    keys: { privateKey: await signingKeyOf(key, keyType), publicKey },
    signingAlgorithm: SIGNATURE[keyType],
    extensions: [LEAF_USAGE[keyType], LEAF_EKU, subjectAltName(sanDnsNames(b), b.ipAddresses, sanUris(b))],
  });
  return `${csr.toString('pem')}\n`;
}

/**
 * Writes `outDir/<service>-<kind>.csr` for every binding, with the binding's key from
 * `stateDir/pki/services/<service>/<kind>.key`, creating (0600) the keys that are missing.
 * @throws PodmeshError (before writing anything) for a key that cannot be read or is of the wrong type.
 */
export async function writeCsrs(options: {
  readonly stateDir: string;
  readonly bindings: readonly CertBinding[];
  readonly organization?: string;
  readonly outDir: string;
  readonly keys?: KeySource;
}): Promise<CsrFile[]> {
  const { stateDir, outDir } = options;
  const issues: Issue[] = [];
  const planned: { binding: CertBinding; key: KeyObject | undefined; keyPath: string }[] = [];
  for (const b of sorted(options.bindings)) {
    const keyPath = join(stateDir, servicePath(b.service, KIND_FILES[b.kind].key));
    let text: string | undefined;
    try {
      text = await readFile(keyPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        issues.push({ path: keyPath, message: `cannot read this key (${(e as NodeJS.ErrnoException).code ?? String(e)}). Give the owner read access.` });
        continue;
      }
    }
    if (text === undefined) {
      planned.push({ binding: b, key: undefined, keyPath });
      continue;
    }
    try {
      const key = parsePrivateKeyPem(text);
      const type = keyTypeOf(key);
      if (type !== b.keyType) {
        issues.push({ path: keyPath, message: `is a ${type ?? 'unsupported'} key; the binding asks for ${b.keyType}. Run podmesh synth (it reissues with a new key), then podmesh certs csr again.` });
        continue;
      }
      planned.push({ binding: b, key, keyPath });
    } catch {
      issues.push({ path: keyPath, message: 'is not a PEM PKCS#8 private key. Delete it to have a new key created, or restore it from backup.' });
    }
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  await mkdir(outDir, { recursive: true });
  const written: CsrFile[] = [];
  for (const p of planned) {
    let key = p.key;
    if (!key) {
      const pem = leafKeyOf(await (options.keys ?? webCryptoKeySource).generate(p.binding.keyType), p.binding.keyType).pem;
      for (const dir of [join(stateDir, PKI_PATHS.dir), join(stateDir, PKI_PATHS.services), join(stateDir, servicePath(p.binding.service))]) {
        await mkdir(dir, { recursive: true, mode: MODE.dir });
        await chmod(dir, MODE.dir);
      }
      await writeAtomic(p.keyPath, pem, MODE.key);
      key = parsePrivateKeyPem(pem);
    }
    const path = join(outDir, externalFileName(p.binding, 'csr'));
    await writeAtomic(path, await buildCsr(p.binding, key, options.organization), MODE.file);
    written.push({ binding: p.binding, path, keyCreated: !p.key });
  }
  return written;
}

/** Every certificate of a PEM bundle, in order. */
function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

const selfSigned = (c: X509Certificate): boolean => {
  try {
    return c.checkIssued(c) && c.verify(c.publicKey);
  } catch {
    return false;
  }
};
const issuedBy = (c: X509Certificate, ca: X509Certificate): boolean => {
  try {
    return ca.ca && c.checkIssued(ca) && c.verify(ca.publicKey);
  } catch {
    return false;
  }
};

/**
 * The CA certificates of a bundle a leaf chains through, issuing CA first, up to and including a
 * self-signed root; or a reason why there is no such chain.
 */
export function chainOf(leaf: X509Certificate, bundle: readonly X509Certificate[]): X509Certificate[] | string {
  const chain: X509Certificate[] = [];
  let current = leaf;
  for (let depth = 0; depth <= bundle.length; depth++) {
    const issuer = bundle.find((ca) => !chain.includes(ca) && issuedBy(current, ca));
    if (!issuer) {
      return depth === 0
        ? `is not signed by a CA certificate in ${EXTERNAL_CA_FILE} (issuer: ${leaf.issuer.replace(/\n/g, ', ')})`
        : `chains to "${current.subject.replace(/\n/g, ', ')}", whose issuer is not in ${EXTERNAL_CA_FILE}: put the whole chain up to the root into ${EXTERNAL_CA_FILE}`;
    }
    chain.push(issuer);
    if (selfSigned(issuer)) return chain;
    current = issuer;
  }
  return `has a chain that loops in ${EXTERNAL_CA_FILE}`;
}

function setProblem(label: string, have: readonly string[], want: readonly string[]): string | undefined {
  const h = new Set(have);
  const w = new Set(want);
  const missing = [...w].filter((x) => !h.has(x)).sort();
  const extra = [...h].filter((x) => !w.has(x)).sort();
  if (missing.length === 0 && extra.length === 0) return undefined;
  return `${label} ${[...missing.map((x) => `missing ${x}`), ...extra.map((x) => `unexpected ${x}`)].join(', ')}`;
}

/** What an import installed. */
export interface ImportResult {
  /** Service/kind with the new serial, sorted. */
  readonly installed: readonly { readonly service: string; readonly kind: CertKind; readonly serial: string; readonly notAfter: Date }[];
  /** Subject of the root the certificates chain to. */
  readonly root: string;
}

/** The external CA bundle of an import folder; problems go to `issues`. */
async function readBundle(caPath: string, issues: Issue[]): Promise<X509Certificate[]> {
  try {
    const bundle = splitPem(await readFile(caPath, 'utf8')).map((p) => new X509Certificate(p));
    if (bundle.length === 0) issues.push({ path: caPath, message: 'holds no PEM certificate. Put the external CA certificate (and its chain up to the root) here.' });
    else if (!bundle.some(selfSigned)) issues.push({ path: caPath, message: 'holds no self-signed root. Add the root of the external CA, e.g. the output of `vault read -field=certificate pki/cert/ca`.' });
    return bundle;
  } catch (e) {
    issues.push({ path: caPath, message: `cannot read the external CA (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Put the CA that signed the certificates here as PEM.` });
    return [];
  }
}

/** Why a signed certificate cannot be installed for a binding (empty when it can), and its chain. */
function checkSigned(b: CertBinding, cert: ParsedCertificate, key: { readonly text: string | undefined; readonly path: string }, bundle: readonly X509Certificate[], now: Date): { problems: string[]; chain: X509Certificate[] } {
  const problems: string[] = [];
  if (key.text === undefined) problems.push(`there is no key ${key.path}: run podmesh certs csr and sign the new CSR`);
  else if (!cert.x509.checkPrivateKey(parsePrivateKeyPem(key.text))) {
    problems.push(`its public key does not match ${key.path}: sign the CSR podmesh certs csr wrote for ${b.service} ${b.kind} (a synth since then may have replaced the key)`);
  }
  if (cert.commonName !== b.commonName) problems.push(`CN is "${cert.commonName}", the binding needs "${b.commonName}"`);
  const dns = setProblem('SAN DNS:', cert.dnsNames.map((d) => d.toLowerCase()), sanDnsNames(b).map((d) => d.toLowerCase()));
  if (dns) problems.push(dns);
  const ips = setProblem('SAN IP:', cert.ipAddresses, b.ipAddresses.map(canonicalIp));
  if (ips) problems.push(ips);
  const uris = setProblem('SAN URI:', cert.uris, sanUris(b));
  if (uris) problems.push(`${uris} (Vault: allowed_uri_sans on the role)`);
  const eku = cert.x509.keyUsage ?? [];
  const lacking = [[SERVER_AUTH, 'serverAuth'], [CLIENT_AUTH, 'clientAuth']].filter(([oid]) => !eku.includes(oid as string)).map(([, n]) => n);
  if (lacking.length > 0) problems.push(`extended key usage lacks ${lacking.join(' and ')} (Vault: server_flag=true client_flag=true on the role)`);
  if (cert.isCa) problems.push('is a CA certificate');
  if (now.getTime() < cert.notBefore.getTime() || now.getTime() >= cert.notAfter.getTime()) {
    problems.push(`is not valid now (${now.toISOString()}): valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}`);
  }
  const chain = bundle.length > 0 ? chainOf(cert.x509, bundle) : [];
  if (typeof chain === 'string') return { problems: [...problems, chain], chain: [] };
  return { problems, chain };
}

/** A certificate accepted for installation. */
interface Installed {
  readonly service: string;
  readonly kind: CertKind;
  readonly serial: string;
  readonly notAfter: Date;
  readonly cert: ParsedCertificate;
}

/** The inventory with the imported serials active and the ones they replace superseded. */
function withImported(inv: Inventory, installed: readonly Installed[]): Inventory {
  const iso = (d: Date): string => d.toISOString().replace('.000Z', 'Z');
  const entries = new Map<string, InventoryEntry>(inv.certificates.map((e) => [e.serial, e]));
  for (const i of installed) {
    for (const [serial, e] of entries) {
      if (e.service === i.service && e.kind === i.kind && e.status === 'active' && serial !== i.serial) entries.set(serial, { ...e, status: 'superseded' });
    }
    // The inventory schema knows only the two local issuers; the external CA's certificates are recorded under the
    // issuer of their kind, and pki/external-ca.crt says who really signed them.
    entries.set(i.serial, { service: i.service, kind: i.kind, serial: i.serial, issuer: issuerOf(i.kind), notBefore: iso(i.cert.notBefore), notAfter: iso(i.cert.notAfter), status: 'active' });
  }
  return { ...inv, certificates: [...entries.values()] };
}

/**
 * Checks and installs the certificates in `dir` (`ca.crt` plus `<service>-<kind>.crt` for every
 * binding). Each must be a certificate for the key in the state folder, carry exactly the binding's
 * CN and SANs, serverAuth and clientAuth, be valid at `now`, and chain to a self-signed root in `ca.crt`.
 * @throws PodmeshError listing every problem, having written nothing.
 */
export async function importSigned(options: {
  readonly stateDir: string;
  readonly bindings: readonly CertBinding[];
  readonly dir: string;
  readonly now: Date;
}): Promise<ImportResult> {
  const { stateDir, dir, now } = options;
  const issues: Issue[] = [];
  const bundle = await readBundle(join(dir, EXTERNAL_CA_FILE), issues);
  const snapshot = await readPkiSnapshot(stateDir);
  const files = new Map<string, DesiredFile>();
  const installed: Installed[] = [];
  const bundleText = bundle.filter((c) => c.ca).map((c) => c.toString()).join('');
  for (const b of sorted(options.bindings)) {
    const path = join(dir, externalFileName(b, 'crt'));
    const keyRel = servicePath(b.service, KIND_FILES[b.kind].key);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      issues.push({ path, message: `is missing: every binding needs its signed certificate. Sign ${externalFileName(b, 'csr')} (podmesh certs csr) and save the result here.` });
      continue;
    }
    let cert: ParsedCertificate;
    try {
      cert = parseCertificate(splitPem(text)[0] ?? text);
    } catch {
      issues.push({ path, message: 'is not a PEM X.509 certificate.' });
      continue;
    }
    const { problems, chain } = checkSigned(b, cert, { text: snapshot.files.get(keyRel)?.text, path: join(stateDir, keyRel) }, bundle, now);
    if (problems.length > 0) {
      issues.push({ path, message: `refused for ${b.service} ${b.kind} (${b.commonName}): ${problems.join('; ')}.` });
      continue;
    }
    // The leaf then its intermediates (not the root), so peers that trust only the root can build the path.
    const intermediates = chain.filter((c) => !selfSigned(c)).map((c) => c.toString());
    files.set(servicePath(b.service, KIND_FILES[b.kind].cert), { content: cert.pem + intermediates.join(''), mode: MODE.file });
    files.set(servicePath(b.service, SERVICE_CA_FILE), { content: bundleText, mode: MODE.file });
    installed.push({ service: b.service, kind: b.kind, serial: cert.serial, notAfter: cert.notAfter, cert });
  }
  const invFile = snapshot.files.get(PKI_PATHS.inventory);
  const inventory = invFile?.text === undefined ? EMPTY_INVENTORY : parseInventory(invFile.text);
  if (typeof inventory === 'string') issues.push({ path: join(stateDir, PKI_PATHS.inventory), message: `the certificate inventory is unusable: ${inventory}. Restore it from backup.` });
  if (issues.length > 0 || typeof inventory === 'string') throw new PodmeshError(issues);
  files.set(PKI_PATHS.externalCa, { content: bundleText, mode: MODE.file });
  files.set(PKI_PATHS.inventory, { content: serializeInventory(withImported(inventory, installed)), mode: MODE.file });
  await applyChanges(snapshot, planChanges(snapshot, { files, prune: undefined }));
  const root = bundle.find(selfSigned) as X509Certificate;
  return { installed: installed.map(({ cert: _c, ...rest }) => rest), root: root.subject.replace(/\n/g, ', ') };
}
