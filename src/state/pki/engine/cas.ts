// Engine phase 1: the two CAs: load and check what is on disk, or create what is missing.
import { join } from 'node:path';
import type { Issue } from '../../../../constructs/core/errors.ts';
import type { RandomSource } from '../../random.ts';
import { isSignedBy, parseCertificate, type ParsedCertificate } from '../certificate.ts';
import { createClientCa, createRootCa, signingCa, validityAt, type IssuedCert, type SigningCa } from '../issue.ts';
import { keyMatchesCertificate, keyTypeOf, parsePrivateKeyPem } from '../keys.ts';
import { PKI_PATHS, type PkiSnapshot } from '../store.ts';
import type { AuthoritySpec, CaPlan, Issuer, KeySource } from '../types.ts';

/** One CA's place in the state folder and the fix a message suggests. */
export interface CaRole {
  readonly role: Issuer;
  readonly label: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly fix: string;
}

export const ROOT: CaRole = {
  role: 'root',
  label: 'CA',
  certPath: PKI_PATHS.rootCert,
  keyPath: PKI_PATHS.rootKey,
  fix: 'move pki/ away to create a new CA (every certificate will be reissued)',
};
export const CLIENT_CA: CaRole = {
  role: 'client-ca',
  label: 'client CA',
  certPath: PKI_PATHS.clientCaCert,
  keyPath: PKI_PATHS.clientCaKey,
  fix: 'move pki/client-ca.crt and pki/client-ca.key away to create a new client CA under the current root (every client certificate will be reissued)',
};

export const iso = (d: Date): string => d.toISOString().replace('.000Z', 'Z');
export const day = (d: Date): string => d.toISOString().slice(0, 10);
const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const fileName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

/** A CA read from disk and found usable. */
export interface LoadedCa {
  readonly ca: SigningCa;
  readonly certText: string;
  readonly keyText: string;
}

/** A CA after the run: kept, created, or (dry run) to be created. */
export interface CaOutcome {
  readonly plan: CaPlan;
  /** Undefined only for a CA a dry run would create. */
  readonly ca: SigningCa | undefined;
  /** Files to hold: existing text for a kept CA (never rewritten), new PEM for a created one, null in a dry run. */
  readonly certFile: string | null;
  readonly keyFile: string | null;
}

/** Loads one CA pair: undefined when both files are absent; 'error' (with issues) for anything else that is wrong. */
function loadCa(snapshot: PkiSnapshot, r: CaRole, now: Date, issues: Issue[]): LoadedCa | undefined | 'error' {
  const c = snapshot.files.get(r.certPath);
  const k = snapshot.files.get(r.keyPath);
  if (!c && !k) return undefined;
  const fail = (path: string, message: string): 'error' => {
    issues.push({ path: join(snapshot.stateDir, path), message });
    return 'error';
  };
  if (!c || !k) {
    const [missing, present] = c ? [r.keyPath, r.certPath] : [r.certPath, r.keyPath];
    return fail(missing, `the ${r.label} ${c ? 'private key' : 'certificate'} is missing while ${fileName(present)} exists. Restore ${fileName(missing)} from backup, or ${r.fix}.`);
  }
  if (c.text === undefined) return fail(r.certPath, `cannot read the ${r.label} certificate (${c.error ?? 'unreadable'}). Give the owner read access, or restore it from backup.`);
  if (k.text === undefined) return fail(r.keyPath, `cannot read the ${r.label} private key (${k.error ?? 'unreadable'}). Give the owner read access, or restore it from backup.`);
  let cert: ParsedCertificate;
  try {
    cert = parseCertificate(c.text);
  } catch {
    return fail(r.certPath, `cannot parse the ${r.label} certificate (not PEM X.509). Restore it from backup, or ${r.fix}.`);
  }
  let key;
  try {
    key = parsePrivateKeyPem(k.text);
  } catch {
    return fail(r.keyPath, `cannot parse the ${r.label} private key (not PEM PKCS#8). Restore it from backup, or ${r.fix}.`);
  }
  if (!keyTypeOf(key)) {
    return fail(r.keyPath, `the ${r.label} key is ${key.asymmetricKeyType ?? 'of an unknown type'}${key.asymmetricKeyDetails?.modulusLength ? ` ${key.asymmetricKeyDetails.modulusLength}` : ''}; podmesh signs with ECDSA P-256 or RSA 2048 keys. Restore the right key, or ${r.fix}.`);
  }
  if (!keyMatchesCertificate(key, cert)) {
    return fail(r.keyPath, `does not match ${fileName(r.certPath)} (different public key). Restore both files from the same backup, or ${r.fix}.`);
  }
  if (!cert.isCa) return fail(r.certPath, `is not a CA certificate (basicConstraints CA:TRUE is missing). Restore the ${r.label} certificate, or ${r.fix}.`);
  if (now.getTime() >= cert.notAfter.getTime()) {
    return fail(r.certPath, `the ${r.label} expired on ${iso(cert.notAfter)} (now is ${iso(now)}). ${capital(r.fix)}.`);
  }
  return { ca: signingCa(cert, c.text, key), certText: c.text, keyText: k.text };
}

/** The CAs on disk, checked together (a client CA must belong to the root); every problem goes to `issues`. */
export function checkCas(snapshot: PkiSnapshot, authority: AuthoritySpec | undefined, now: Date, issues: Issue[]): { root?: LoadedCa; client?: LoadedCa } {
  const at = (p: string): string => join(snapshot.stateDir, p);
  const rootLoad = loadCa(snapshot, ROOT, now, issues);
  const clientLoad = loadCa(snapshot, CLIENT_CA, now, issues);
  if (rootLoad === undefined && !authority) {
    issues.push({ path: at(ROOT.certPath), message: 'there is no CA yet. Run podmesh synth first to create it.' });
  }
  if (clientLoad === undefined && !authority && rootLoad !== undefined) {
    issues.push({ path: at(CLIENT_CA.certPath), message: 'there is no client CA yet. Run podmesh synth first to create it.' });
  }
  if (clientLoad && clientLoad !== 'error' && rootLoad !== 'error') {
    if (rootLoad === undefined) {
      issues.push({
        path: at(CLIENT_CA.certPath),
        message: `was issued by a root CA that is gone (pki/ca.crt and pki/ca.key are absent). Restore ca.crt and ca.key from backup, or move pki/ away to create a new CA (every certificate will be reissued).`,
      });
    } else if (!isSignedBy(clientLoad.ca.cert, rootLoad.ca)) {
      issues.push({
        path: at(CLIENT_CA.certPath),
        message: `was not issued by the root CA in pki/ca.crt. Restore the client CA that belongs to this root, or ${CLIENT_CA.fix}.`,
      });
    }
  }
  const usable = (l: LoadedCa | undefined | 'error') => (l === 'error' ? undefined : l);
  return { root: usable(rootLoad), client: usable(clientLoad) };
}

/** Kept as loaded, or created now (new material held in the outcome); a dry run only plans the creation. */
async function caOutcome(r: CaRole, load: LoadedCa | undefined, create: () => Promise<IssuedCert>, lifetime: number, now: Date, dryRun: boolean): Promise<CaOutcome> {
  if (load) {
    return {
      plan: { ca: r.role, action: 'keep', reason: `existing ${r.label}, valid until ${day(load.ca.cert.notAfter)}`, serial: load.ca.cert.serial, notAfter: load.ca.cert.notAfter },
      ca: load.ca,
      certFile: load.certText,
      keyFile: load.keyText,
    };
  }
  const reason = `no ${r.label} yet`;
  if (dryRun) {
    return { plan: { ca: r.role, action: 'create', reason, serial: '', notAfter: validityAt(now, lifetime).notAfter }, ca: undefined, certFile: null, keyFile: null };
  }
  const issued = await create();
  return {
    plan: { ca: r.role, action: 'create', reason, serial: issued.cert.serial, notAfter: issued.cert.notAfter },
    ca: signingCa(parseCertificate(issued.certPem), issued.certPem, parsePrivateKeyPem(issued.keyPem)),
    certFile: issued.certPem,
    keyFile: issued.keyPem,
  };
}

/** Where new CA material comes from. */
export interface CaSources {
  readonly keys: KeySource;
  readonly random: RandomSource;
  readonly now: Date;
  readonly dryRun: boolean;
}

/** The root and the client CA after this run (created when missing), with warnings about kept CAs the stack describes differently. */
export async function settleCas(
  loaded: { root?: LoadedCa; client?: LoadedCa },
  spec: AuthoritySpec | undefined,
  src: CaSources,
  warnings: string[],
): Promise<{ root: CaOutcome; clientCa: CaOutcome }> {
  const { keys, random, now, dryRun } = src;
  const root = await caOutcome(ROOT, loaded.root, () => createRootCa(spec as AuthoritySpec, keys, now, random), spec?.rootLifetimeDays ?? 0, now, dryRun);
  const clientCa = await caOutcome(
    CLIENT_CA,
    loaded.client,
    () => createClientCa(spec as AuthoritySpec, root.ca as SigningCa, keys, now, random),
    spec?.clientCaLifetimeDays ?? 0,
    now,
    dryRun,
  );
  if (spec) {
    if (root.plan.action === 'keep' && root.ca) warnings.push(...caWarnings(ROOT, root.ca, spec.rootCommonName, spec));
    if (clientCa.plan.action === 'keep' && clientCa.ca) warnings.push(...caWarnings(CLIENT_CA, clientCa.ca, spec.clientCaCommonName, spec));
  }
  return { root, clientCa };
}

function describeName(cert: ParsedCertificate): string {
  return cert.organization ? `O=${cert.organization}, CN=${cert.commonName}` : `CN=${cert.commonName}`;
}

function caWarnings(r: CaRole, ca: SigningCa, cn: string, spec: AuthoritySpec): string[] {
  const out: string[] = [];
  const want = spec.organization ? `O=${spec.organization}, CN=${cn}` : `CN=${cn}`;
  const have = describeName(ca.cert);
  const never = `An existing ${r.label} is never replaced: ${r.fix}.`;
  if (have !== want) out.push(`${r.certPath}: kept the existing ${r.label} "${have}"; the stack asks for "${want}". ${never}`);
  if (ca.keyType !== spec.keyType) out.push(`${r.certPath}: kept the existing ${r.label} key (${ca.keyType}); the stack asks for ${spec.keyType}. ${never}`);
  return out;
}
