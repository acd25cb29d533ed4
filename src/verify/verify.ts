// podmesh verify: probes every mTLS service of a stack the way its callers (and strangers) would,
// and judges each result against the stack's call policy and the certificates in the state folder.
import { mapLimit } from '../io/map-limit.ts';
import { lookup } from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PodmeshError } from '../../constructs/core/errors.ts';
import { parseCertificate, type ParsedCertificate } from '../state/pki/certificate.ts';
import { parseInventory } from '../state/pki/inventory.ts';
import { readPkiStatus } from '../state/pki/status.ts';
import { KIND_FILES, PKI_PATHS, servicePath } from '../state/pki/store.ts';
import type { InventoryEntry } from '../state/pki/types.ts';
import type { ResolvedStack } from '../resolve/model.ts';
import { X509Certificate } from 'node:crypto';
import { judgeStapled, type OcspStatus } from './ocsp.ts';
import { probe, type ProbeOutcome, type ProbeRequest } from './probe.ts';
import { revokedProbeCert } from './revoked.ts';

/** The TLS version every podmesh listener must negotiate. */
export const EXPECTED_TLS_VERSION = 'TLSv1.3';
/** The seed's cipher suites. */
export const EXPECTED_CIPHERS: readonly string[] = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

/** One mTLS listener of the stack, as verify needs it. */
export interface MeshTarget {
  /** Service (construct id). */
  readonly service: string;
  /** Construct path, for messages. */
  readonly path: string;
  /** `SERVICE_NAME`, the `service` field of log lines. */
  readonly serviceName: string;
  readonly host: string;
  readonly dnsName: string;
  /** Address from the allocation lock. */
  readonly ip: string;
  readonly port: number;
  /** Services allowed to call it (the call policy). */
  readonly callers: readonly string[];
  /** Its public TLS listener (the gateway's), probed without a client certificate. */
  readonly publicTls?: {
    /** Container port. */
    readonly port: number;
    /** Host names of the public certificate; the first is the CN and the SNI sent. */
    readonly hostnames: readonly string[];
  };
  /** The stack runs OCSP: the server should staple its certificate's status. */
  readonly ocsp?: boolean;
}

/** A service holding a client certificate: a possible caller. */
export interface MeshClient {
  readonly service: string;
  readonly dnsName: string;
}

/** What verify checks, per target. */
export type CheckKind = 'dns' | 'allowed' | 'no-client-cert' | 'not-allowed' | 'revoked' | 'public-tls' | 'expiry' | 'ocsp';

/** The judgement of one check. */
export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

/** One row of the report. */
export interface CheckResult {
  /** Target service, or the certificate's service for `expiry` ('' for a CA). */
  readonly service: string;
  readonly serviceName: string;
  readonly check: CheckKind;
  /** Calling service, '' for none; `expiry` rows name the certificate kind here. */
  readonly client: string;
  /** CN presented as the client ('' for none). */
  readonly clientCn: string;
  /** CN the server must present. */
  readonly serverCn: string;
  /** What the policy expects: accept, refuse, resolve or valid. */
  readonly expected: 'accept' | 'refuse' | 'resolve' | 'valid';
  readonly status: CheckStatus;
  /** What was seen, in a few words. */
  readonly detail: string;
  readonly probe?: ProbeOutcome;
  /** `ocsp` rows: the status of the server certificate the stapled response gives. */
  readonly ocspStatus?: OcspStatus;
}

/** Where verify connects and how it resolves names. */
export interface VerifyOptions {
  readonly stack: string;
  /** The stack's state folder (`.podmesh/<stack>`). */
  readonly stateDir: string;
  readonly targets: readonly MeshTarget[];
  /** Every service with a client certificate, in stack order. */
  readonly clients: readonly MeshClient[];
  /**
   * DNS servers to ask (e.g. the bridge gateway, where aardvark-dns answers).
   * @default - the system resolver (inside a container: the mesh's DNS)
   */
  readonly dnsServers?: readonly string[];
  /**
   * Connect to the lock's addresses (SNI still the DNS name); DNS is still checked but a failure only warns.
   * @default false
   */
  readonly resolveFromLock?: boolean;
  /** Certificates expiring within this many days are reported. @default 30 */
  readonly warnDays?: number;
  readonly now?: Date;
  /** Bound of each probe. @default 5000 */
  readonly timeoutMs?: number;
  /** Probes in flight at once. @default 8 */
  readonly concurrency?: number;
  /**
   * Tests only: connect somewhere else than the target's address (the SNI stays its DNS name);
   * `port` is the listener's container port (mTLS or public TLS).
   */
  readonly connectTo?: (target: MeshTarget, port: number) => { readonly host: string; readonly port: number };
}

/** A verify run. */
export interface VerifyReport {
  readonly stack: string;
  readonly results: readonly CheckResult[];
  /** Results that are not as expected. */
  readonly failures: number;
  readonly warnings: number;
}

/** mTLS listeners and possible callers of a resolved stack, optionally of one host. */
export function meshOf(stack: ResolvedStack, host?: string): { targets: MeshTarget[]; clients: MeshClient[] } {
  if (host !== undefined && !stack.hosts.some((h) => h.name === host)) {
    throw PodmeshError.at(stack.name, `has no host "${host}". Hosts: ${stack.hosts.map((h) => h.name).join(', ')}.`);
  }
  const targets: MeshTarget[] = [];
  for (const s of stack.services) {
    if (!s.mtls || (host !== undefined && s.host !== host)) continue;
    const publicPort = s.publicTlsPort === undefined ? undefined : s.ports.find((p) => p.name === s.publicTlsPort);
    const publicCert = stack.pki.bindings.find((b) => b.service === s.name && b.kind === 'public');
    targets.push({
      service: s.name, path: s.path, serviceName: s.serviceName, host: s.host, dnsName: s.dnsName, ip: s.ip, port: s.mtls.port, callers: s.callers,
      ...(publicPort && publicCert ? { publicTls: { port: publicPort.port, hostnames: [publicCert.commonName, ...publicCert.dnsNames.filter((n) => n !== publicCert.commonName)] } } : {}),
      ...(stack.pki.ocsp ? { ocsp: true } : {}),
    });
  }
  const clients = stack.services.filter((s) => s.certificates.includes('client')).map((s) => ({ service: s.name, dnsName: s.dnsName }));
  return { targets, clients };
}

interface StateFiles {
  readonly ca: string;
  readonly clientCa?: { readonly cert: string; readonly key: string };
  readonly inventory: readonly InventoryEntry[];
  readonly clientCerts: ReadonlyMap<string, { readonly cert: string; readonly key: string; readonly parsed: ParsedCertificate }>;
  readonly serverCerts: ReadonlyMap<string, ParsedCertificate>;
  readonly publicCerts: ReadonlyMap<string, ParsedCertificate>;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw PodmeshError.at(path, `cannot read it (${(e as NodeJS.ErrnoException).code}). Run verify as a user who can read the state folder.`);
  }
}

async function readState(o: VerifyOptions): Promise<StateFiles> {
  const at = (rel: string) => join(o.stateDir, rel);
  const ca = await readOptional(at(PKI_PATHS.rootCert));
  if (ca === undefined) throw PodmeshError.at(at(PKI_PATHS.rootCert), 'there is no CA in the state folder. Run podmesh synth (or pass --state) first.');
  const caCert = await readOptional(at(PKI_PATHS.clientCaCert));
  const caKey = await readOptional(at(PKI_PATHS.clientCaKey));
  const invText = await readOptional(at(PKI_PATHS.inventory));
  const inv = invText === undefined ? undefined : parseInventory(invText);
  if (typeof inv === 'string') throw PodmeshError.at(at(PKI_PATHS.inventory), `is not a valid inventory: ${inv}. Run podmesh synth to repair it.`);
  const clientCerts = new Map<string, { cert: string; key: string; parsed: ParsedCertificate }>();
  const issues: { path: string; message: string }[] = [];
  for (const c of o.clients) {
    const certPath = at(servicePath(c.service, KIND_FILES.client.cert));
    const cert = await readOptional(certPath);
    const key = await readOptional(at(servicePath(c.service, KIND_FILES.client.key)));
    if (cert === undefined || key === undefined) {
      issues.push({ path: certPath, message: `the client certificate or key of ${c.service} is missing. Run podmesh synth to issue it.` });
      continue;
    }
    clientCerts.set(c.service, { cert, key, parsed: parseCertificate(cert) });
  }
  const serverCerts = new Map<string, ParsedCertificate>();
  for (const t of o.targets) {
    const path = at(servicePath(t.service, KIND_FILES.server.cert));
    const text = await readOptional(path);
    if (text === undefined) issues.push({ path, message: `the server certificate of ${t.service} is missing. Run podmesh synth to issue it.` });
    else serverCerts.set(t.service, parseCertificate(text));
  }
  const publicCerts = new Map<string, ParsedCertificate>();
  for (const t of o.targets) {
    if (!t.publicTls) continue;
    const path = at(servicePath(t.service, KIND_FILES.public.cert));
    const text = await readOptional(path);
    if (text === undefined) issues.push({ path, message: `the public TLS certificate of ${t.service} is missing. Run podmesh synth to issue it.` });
    else publicCerts.set(t.service, parseCertificate(text));
  }
  if (issues.length > 0) throw new PodmeshError(issues);
  return {
    ca,
    ...(caCert !== undefined && caKey !== undefined ? { clientCa: { cert: caCert, key: caKey } } : {}),
    inventory: inv?.certificates ?? [],
    clientCerts,
    serverCerts,
    publicCerts,
  };
}

/** Resolves a name through the chosen resolver; IPv4 addresses, sorted. */
async function resolveName(name: string, servers: readonly string[] | undefined, timeoutMs: number): Promise<string[]> {
  if (servers && servers.length > 0) {
    const r = new Resolver({ timeout: Math.min(timeoutMs, 2_000), tries: 2 });
    r.setServers([...servers]);
    return (await r.resolve4(name)).sort();
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEOUT' })), timeoutMs);
  });
  try {
    const all = await Promise.race([lookup(name, { all: true, family: 4 }), timeout]);
    return all.map((a) => a.address).sort();
  } finally {
    clearTimeout(timer);
  }
}

const describeProbe = (p: ProbeOutcome): string =>
  [
    p.handshake ? `${p.tlsVersion ?? '?'} ${p.cipherSuite ?? '?'}` : 'no handshake',
    p.httpStatus !== undefined ? `HTTP ${p.httpStatus}` : undefined,
    p.error,
  ]
    .filter(Boolean)
    .join(', ');

/** An allowed caller must get in, over TLS 1.3 with a seed cipher, from the server certificate the state holds. */
function judgeAccept(p: ProbeOutcome, target: MeshTarget, expectedServer: ParsedCertificate): { status: CheckStatus; detail: string } {
  const seen = describeProbe(p);
  if (p.verdict === 'untrusted') return { status: 'fail', detail: `server certificate not trusted: ${p.error}` };
  if (p.verdict !== 'response') return { status: 'fail', detail: `${p.verdict}: ${seen}` };
  const problems: string[] = [];
  if (p.tlsVersion !== EXPECTED_TLS_VERSION) problems.push(`negotiated ${p.tlsVersion}, expected ${EXPECTED_TLS_VERSION}`);
  if (!p.cipherSuite || !EXPECTED_CIPHERS.includes(p.cipherSuite)) problems.push(`cipher ${p.cipherSuite}, expected one of ${EXPECTED_CIPHERS.join(', ')}`);
  const cert = p.serverCert;
  if (!cert) problems.push('no server certificate seen');
  else {
    if (cert.commonName !== target.dnsName) problems.push(`server CN ${cert.commonName}, expected ${target.dnsName}`);
    if (!cert.dnsNames.includes(target.dnsName)) problems.push(`server SAN lacks ${target.dnsName}`);
    if (cert.serial !== expectedServer.serial) {
      problems.push(`server presents serial ${cert.serial}, the state holds ${expectedServer.serial}: restart ${target.service} to load its current certificate`);
    }
    const want = [...expectedServer.dnsNames].sort().join(',') + '|' + [...expectedServer.ipAddresses].sort().join(',');
    const got = [...cert.dnsNames].sort().join(',') + '|' + [...cert.ipAddresses].sort().join(',');
    if (cert.serial === expectedServer.serial && want !== got) problems.push(`server SAN ${got}, generated ${want}`);
  }
  if (p.httpStatus !== 200) problems.push(`GET /health answered ${p.httpStatus}, expected 200`);
  return problems.length > 0 ? { status: 'fail', detail: `${problems.join('; ')} (${seen})` } : { status: 'pass', detail: seen };
}

/**
 * The public listener must complete a handshake without a client certificate, over TLS 1.3 with a
 * seed cipher, presenting the state's public certificate for its names, and answer HTTP.
 */
function judgePublic(p: ProbeOutcome, hostnames: readonly string[], expected: ParsedCertificate): { status: CheckStatus; detail: string } {
  const seen = describeProbe(p);
  if (p.verdict === 'untrusted') return { status: 'fail', detail: `public certificate not trusted: ${p.error}` };
  if (p.verdict !== 'response') return { status: 'fail', detail: `${p.verdict} without a client certificate: ${seen}` };
  const problems: string[] = [];
  if (p.tlsVersion !== EXPECTED_TLS_VERSION) problems.push(`negotiated ${p.tlsVersion}, expected ${EXPECTED_TLS_VERSION}`);
  if (!p.cipherSuite || !EXPECTED_CIPHERS.includes(p.cipherSuite)) problems.push(`cipher ${p.cipherSuite}, expected one of ${EXPECTED_CIPHERS.join(', ')}`);
  const cert = p.serverCert;
  if (!cert) problems.push('no certificate seen');
  else {
    if (cert.commonName !== hostnames[0]) problems.push(`CN ${cert.commonName}, expected ${hostnames[0]}`);
    const missing = hostnames.filter((n) => !cert.dnsNames.includes(n));
    if (missing.length > 0) problems.push(`SAN lacks ${missing.join(', ')}`);
    if (cert.serial !== expected.serial) problems.push(`presents serial ${cert.serial}, the state holds ${expected.serial}: restart the service to load its current public certificate`);
  }
  if (p.httpStatus === undefined || p.httpStatus >= 500) problems.push(`GET /health answered ${p.httpStatus ?? 'nothing'}`);
  return problems.length > 0 ? { status: 'fail', detail: `${problems.join('; ')} (${seen})` } : { status: 'pass', detail: seen };
}

/** A refusal is the server ending the session (alert, reset, close) or answering 401/403. */
function judgeRefuse(p: ProbeOutcome): { status: CheckStatus; detail: string } {
  const seen = describeProbe(p);
  if (p.verdict === 'refused') return { status: 'pass', detail: `refused: ${seen}` };
  if (p.verdict === 'response' && (p.httpStatus === 401 || p.httpStatus === 403)) return { status: 'pass', detail: `refused: ${seen}` };
  if (p.verdict === 'response' && p.httpStatus === 200) return { status: 'fail', detail: `ACCEPTED: ${seen}` };
  return { status: 'fail', detail: `${p.verdict}: ${seen}` };
}

const NOT_RESOLVED = 'not probed: the name did not resolve (use --resolve-from-lock from a host outside the mesh)';

/** A client certificate for a probe: PEM certificate and key. */
type Creds = { readonly cert: string; readonly key: string };

/** What the probes of a run share: options, state files, the clock and the revoked serials to try. */
interface VerifyRun {
  readonly o: VerifyOptions;
  readonly state: StateFiles;
  readonly timeoutMs: number;
  readonly dnsOf: ReadonlyMap<string, string>;
  /** The latest revoked client certificate of each service still within its validity. */
  readonly revokedBy: ReadonlyMap<string, InventoryEntry>;
  readonly revokedCerts: ReadonlyMap<string, Creds>;
}

/** Probes every target; never throws for what it finds, only for unusable state. */
export async function verifyMesh(o: VerifyOptions): Promise<VerifyReport> {
  const now = o.now ?? new Date();
  const state = await readState(o);
  const dnsOf = new Map(o.clients.map((c) => [c.service, c.dnsName]));
  const revokedBy = latestRevoked(state.inventory, now);
  const run: VerifyRun = { o, state, timeoutMs: o.timeoutMs ?? 5_000, dnsOf, revokedBy, revokedCerts: await revokedCredentials(state, revokedBy, dnsOf, now) };
  // Targets one after another, each target's probes in parallel: a server sees a bounded burst.
  const results: CheckResult[] = [];
  for (const t of o.targets) results.push(...(await verifyTarget(run, t)));
  const all = [...results, ...(await expiryChecks(o, now, o.warnDays ?? 30))];
  return {
    stack: o.stack,
    results: all,
    failures: all.filter((r) => r.status === 'fail').length,
    warnings: all.filter((r) => r.status === 'warn').length,
  };
}

/** The latest revoked client serial of each service that is still within its validity. */
function latestRevoked(inventory: readonly InventoryEntry[], now: Date): Map<string, InventoryEntry> {
  const revokedBy = new Map<string, InventoryEntry>();
  for (const e of inventory) {
    if (e.kind !== 'client' || e.status !== 'revoked' || new Date(e.notAfter).getTime() <= now.getTime()) continue;
    const prev = revokedBy.get(e.service);
    if (!prev || (prev.revokedAt ?? '') < (e.revokedAt ?? '')) revokedBy.set(e.service, e);
  }
  return revokedBy;
}

/** Probe certificates carrying each revoked serial (signed by the client CA), by service. */
async function revokedCredentials(state: StateFiles, revokedBy: ReadonlyMap<string, InventoryEntry>, dnsOf: ReadonlyMap<string, string>, now: Date): Promise<Map<string, Creds>> {
  const creds = new Map<string, Creds>();
  if (!state.clientCa) return creds;
  for (const [service, e] of revokedBy) {
    const cn = state.clientCerts.get(service)?.parsed.commonName ?? dnsOf.get(service);
    if (cn) creds.set(service, await revokedProbeCert(e, cn, state.clientCa, now));
  }
  return creds;
}

type Target = VerifyOptions['targets'][number];

/** The DNS check of a target, and the address its probes use (undefined when nothing resolved). */
async function dnsCheck(run: VerifyRun, t: Target): Promise<{ row: CheckResult; address: string | undefined }> {
  const { o } = run;
  const base = { service: t.service, serviceName: t.serviceName, serverCn: t.dnsName, check: 'dns' as const, client: '', clientCn: '', expected: 'resolve' as const };
  const fallback = o.resolveFromLock ? t.ip : undefined;
  try {
    const ips = await resolveName(t.dnsName, o.dnsServers, run.timeoutMs);
    const ok = ips.includes(t.ip);
    const detail = ok ? `${t.dnsName} -> ${ips.join(', ')}` : `${t.dnsName} -> ${ips.join(', ') || 'nothing'}, expected ${t.ip} (podmesh.lock.json)`;
    return { row: { ...base, status: ok ? 'pass' : 'fail', detail }, address: fallback ?? (ok ? t.ip : undefined) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const detail = `${t.dnsName} does not resolve here (${code})${o.resolveFromLock ? `; probing the lock's ${t.ip}` : ''}`;
    return { row: { ...base, status: o.resolveFromLock ? 'warn' : 'fail', detail }, address: fallback };
  }
}

/** One planned mTLS probe of a target: who connects, with which certificate, and what should happen. */
type Planned = { check: CheckKind; client: string; clientCn: string; expected: 'accept' | 'refuse'; creds?: Creds };

/** The callers (accepted), no certificate, every other client, and each caller's revoked certificate (refused). */
function plannedProbes(run: VerifyRun, t: Target): Planned[] {
  const { o, state, dnsOf } = run;
  const planned: Planned[] = [];
  for (const c of t.callers) {
    const creds = state.clientCerts.get(c);
    planned.push({ check: 'allowed', client: c, clientCn: creds?.parsed.commonName ?? dnsOf.get(c) ?? c, expected: 'accept', ...(creds ? { creds } : {}) });
  }
  planned.push({ check: 'no-client-cert', client: '', clientCn: '', expected: 'refuse' });
  for (const c of o.clients) {
    if (c.service === t.service || t.callers.includes(c.service)) continue;
    const creds = state.clientCerts.get(c.service)!;
    planned.push({ check: 'not-allowed', client: c.service, clientCn: creds.parsed.commonName, expected: 'refuse', creds });
  }
  for (const c of t.callers) {
    const creds = run.revokedCerts.get(c);
    if (creds) planned.push({ check: 'revoked', client: c, clientCn: `${dnsOf.get(c)} (serial ${run.revokedBy.get(c)!.serial})`, expected: 'refuse', creds });
  }
  return planned;
}

/** Every check of one target: DNS, the planned mTLS probes (in parallel, bounded), public TLS. */
async function verifyTarget(run: VerifyRun, t: Target): Promise<CheckResult[]> {
  const { o, state } = run;
  const base = { service: t.service, serviceName: t.serviceName, serverCn: t.dnsName };
  const dns = await dnsCheck(run, t);
  /** Where a listener of the target is reached, or undefined when its name did not resolve. */
  const endpoint = (port: number) => (o.connectTo ? o.connectTo(t, port) : dns.address === undefined ? undefined : { host: dns.address, port });
  const to = endpoint(t.port);
  const server = state.serverCerts.get(t.service)!;
  const req = (client?: Creds): ProbeRequest | undefined => to && { host: to.host, port: to.port, servername: t.dnsName, ca: state.ca, ...(client ? { client } : {}), timeoutMs: run.timeoutMs };
  const probed = await mapLimit(
    plannedProbes(run, t),
    o.concurrency ?? 8,
    async (p): Promise<CheckResult> => {
      const common = { ...base, check: p.check, client: p.client, clientCn: p.clientCn, expected: p.expected };
      if (p.check === 'allowed' && !p.creds) return { ...common, status: 'fail', detail: `${p.client} has no client certificate in the state folder` };
      const r = req(p.creds);
      if (!r) return { ...common, status: 'skip', detail: NOT_RESOLVED };
      const outcome = await probe(r);
      const judged = p.expected === 'accept' ? judgeAccept(outcome, t, server) : judgeRefuse(outcome);
      return { ...common, ...judged, probe: outcome };
    },
  );
  return [dns.row, ...probed, ...(t.publicTls ? [await publicTlsCheck(run, t, t.publicTls, endpoint)] : []), ...(t.ocsp ? [await ocspCheck(run, t, req)] : [])];
}

/** Status of an OCSP row: good passes, a missing staple warns, anything else fails. */
const OCSP_ROW: Readonly<Record<OcspStatus, CheckStatus>> = { good: 'pass', 'not stapled': 'warn', revoked: 'fail', unknown: 'fail', invalid: 'fail' };

/**
 * The server's OCSP status as a client sees it: a handshake asking for the stapled response (as
 * the first allowed caller), judged against the root and the serial the server presents.
 */
async function ocspCheck(run: VerifyRun, t: Target, req: (client?: Creds) => ProbeRequest | undefined): Promise<CheckResult> {
  const caller = t.callers.map((c) => run.state.clientCerts.get(c)).find((c) => c !== undefined);
  const common = { service: t.service, serviceName: t.serviceName, serverCn: t.dnsName, check: 'ocsp' as const, client: '', clientCn: caller?.parsed.commonName ?? '', expected: 'valid' as const };
  const r = req(caller);
  if (!r) return { ...common, status: 'skip', detail: NOT_RESOLVED };
  const outcome = await probe({ ...r, requestOcsp: true });
  if (!outcome.handshake) return { ...common, status: 'fail', detail: `no handshake to read a stapled response from: ${describeProbe(outcome)}`, probe: outcome };
  const serial = outcome.serverCert?.serial ?? run.state.serverCerts.get(t.service)!.serial;
  const v = judgeStapled(outcome.stapled, serial, new X509Certificate(run.state.ca), run.o.now ?? new Date());
  return { ...common, status: OCSP_ROW[v.status], detail: `OCSP ${v.status}: ${v.detail}`, ocspStatus: v.status, probe: outcome };
}

/** The public TLS listener: a browser's handshake (no client certificate) against the public certificate. */
async function publicTlsCheck(run: VerifyRun, t: Target, pub: NonNullable<Target['publicTls']>, endpoint: (port: number) => { host: string; port: number } | undefined): Promise<CheckResult> {
  const common = { service: t.service, serviceName: t.serviceName, serverCn: pub.hostnames[0]!, check: 'public-tls' as const, client: '', clientCn: '', expected: 'accept' as const };
  const at = endpoint(pub.port);
  if (!at) return { ...common, status: 'skip', detail: NOT_RESOLVED };
  const outcome = await probe({ host: at.host, port: at.port, servername: pub.hostnames[0]!, ca: run.state.ca, timeoutMs: run.timeoutMs });
  return { ...common, ...judgePublic(outcome, pub.hostnames, run.state.publicCerts.get(t.service)!), probe: outcome };
}

/** Certificates of the verified services (and the CAs) expiring within `warnDays`, or expired. */
async function expiryChecks(o: VerifyOptions, now: Date, warnDays: number): Promise<CheckResult[]> {
  const expiry: CheckResult[] = [];
  const wanted = new Set([...o.targets.map((t) => t.service), ...o.clients.map((c) => c.service)]);
  for (const row of await readPkiStatus(o.stateDir, now)) {
    if (row.service !== '' && !wanted.has(row.service)) continue;
    if (row.daysToExpiry >= warnDays && row.status !== 'expired') continue;
    expiry.push({
      service: row.service,
      serviceName: row.service || row.kind,
      check: 'expiry',
      client: row.kind,
      clientCn: '',
      serverCn: row.commonName,
      expected: 'valid',
      status: row.status === 'expired' ? 'fail' : 'warn',
      detail: `${row.kind} certificate ${row.commonName} (serial ${row.serial}) ${row.status === 'expired' ? 'expired' : 'expires'} ${row.notAfter.toISOString()}: ${row.daysToExpiry} days. Renew with podmesh certs rotate${row.service ? ` --service ${row.service}` : ''}`,
    });
  }
  return expiry;
}
