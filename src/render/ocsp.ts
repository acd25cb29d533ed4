// OCSP (README, "OCSP"): the stack's responder units on its responder host (`openssl ocsp` as a
// server, one per issuing CA, answering from the index the PKI reconcile writes into
// `pki/ocsp/`), and on every host with server or public certificates a script and timer that
// fetch each certificate's signed response into `<certificate>.ocsp` (DER) for stapling.
import { serviceNamed } from './lookup.ts';
import { hostFile, inHostRoot, ocspResponderUnit, ocspStapleUnitStem } from '../layout.ts';
import type { ResolvedHost, ResolvedOcsp, ResolvedStack } from '../resolve/model.ts';
import { OCSP_DIR, OCSP_FILES, OCSP_ISSUERS } from '../state/pki/ocsp-files.ts';
import type { Issuer } from '../state/pki/types.ts';
import type { RenderedFile } from './file.ts';
import { generatedHeader, hashHeader } from './header.ts';
import { renderUnit, type ServiceUnit, type TimerUnit } from './quadlet/index.ts';

/** File name of the staple refresh script inside `hosts/<host>/bin/` (and `<host root>/bin/`). */
export const OCSP_STAPLE_SCRIPT = 'podmesh-ocsp-staple.sh';

/** Minutes a response is fresh (its nextUpdate, `-nmin`); the timer refreshes every quarter of that. */
export const OCSP_FRESH_MINUTES = 60;

/** How often each host fetches new responses: a revoked certificate answers `revoked` in stapled responses within this. */
export const OCSP_REFRESH = '15min';

/** The certificate kinds whose responses are stapled (the server side of a handshake). */
export const STAPLED_KINDS = ['server', 'public'] as const;

/** The files one responder reads, as paths (on the host, or in a test the state folder's `pki/ocsp`). */
export function responderFiles(dir: string, issuer: Issuer): { index: string; ca: string; cert: string; key: string; other?: string } {
  return {
    index: `${dir}/${OCSP_FILES.index}`,
    ca: `${dir}/${OCSP_FILES.issuerCert(issuer)}`,
    cert: `${dir}/${OCSP_FILES.responderCert(issuer)}`,
    key: `${dir}/${OCSP_FILES.responderKey(issuer)}`,
    // The client CA's responder sends the client CA along, so that a verifier that trusts only the root can build the chain.
    ...(issuer === 'client-ca' ? { other: `${dir}/${OCSP_FILES.issuerCert('client-ca')}` } : {}),
  };
}

/**
 * The responder's command line: OpenSSL 3's `ocsp` server, which re-reads the index whenever the
 * file changed before it waits for the next request, signing with the delegated responder key
 * (a path: the key itself is never on a command line). `-nmin` sets nextUpdate; `-ignore_err`
 * keeps it serving after a malformed request.
 */
export function responderArgs(dir: string, issuer: Issuer, port: number): string[] {
  const f = responderFiles(dir, issuer);
  return [
    'openssl', 'ocsp',
    '-index', f.index,
    '-CA', f.ca,
    '-rsigner', f.cert,
    '-rkey', f.key,
    ...(f.other ? ['-rother', f.other] : []),
    '-port', String(port),
    '-nmin', String(OCSP_FRESH_MINUTES),
    '-ignore_err',
  ];
}

/** A host path for a unit's command: `%h/…` becomes `$HOME/…` (run through sh, as systemd keeps arguments literal). */
const shPath = (p: string): string => p.replace(/^%h\//, '$HOME/');
const shQuote = (s: string): string => (/^[A-Za-z0-9_./:=$-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function responderUnit(stack: ResolvedStack, host: ResolvedHost, issuer: Issuer, port: number): ServiceUnit {
  const dir = inHostRoot(host, OCSP_DIR);
  const args = responderArgs(host.rootless ? shPath(dir) : dir, issuer, port);
  return {
    kind: 'service',
    unit: {
      description: `podmesh ${stack.name}: OCSP responder of the ${issuer === 'root' ? 'root CA (server and public certificates)' : 'client CA (client certificates)'}, port ${port}`,
      documentation: ['man:openssl-ocsp(1)', 'https://www.rfc-editor.org/rfc/rfc6960'],
    },
    service: {
      type: 'simple',
      execStart: [host.rootless ? ['/bin/sh', '-c', `exec ${args.map(shQuote).join(' ')}`] : args],
      restart: 'always',
      restartSec: '5s',
      syslogIdentifier: ocspResponderUnit(stack.name, issuer).replace(/\.service$/, ''),
    },
    install: { wantedBy: [host.install.wantedBy] },
  };
}

/**
 * The responder URL a host's refresh script asks: loopback on the responder host, else the
 * responder host's WireGuard tunnel address on multi-host stacks, else the AIA URL.
 */
export function stapleUrl(stack: ResolvedStack, ocsp: ResolvedOcsp, host: ResolvedHost): string {
  if (host.name === ocsp.host) return `http://127.0.0.1:${ocsp.ports.root}/`;
  const tunnel = stack.wireguard?.peers.find((p) => p.host === ocsp.host)?.address;
  if (tunnel) return `http://${tunnel.includes(':') ? `[${tunnel}]` : tunnel}:${ocsp.ports.root}/`;
  return ocsp.urls.root;
}

/**
 * The refresh script. For every `server.crt` and `public.crt` under the host's `pki/services/`
 * it asks the responder for the certificate's status, verifies the signed response against the
 * folder's `ca.crt`, and replaces `<certificate>.ocsp` (DER) atomically: what the Node sample
 * staples and HAProxy reads. Environment overrides: `PODMESH_PKI_DIR`, `PODMESH_OCSP_URL`.
 * Exit status 1 when a response could not be fetched or verified (the old file stays).
 */
export function stapleScript(stack: string, host: Pick<ResolvedHost, 'name' | 'install'>, url: string): string {
  const root = host.install.root.replace(/^%h\//, () => '${HOME:-}/');
  return `#!/bin/sh
${hashHeader(stack).trimEnd()}
#
# OCSP responses for stapling, stack "${stack}", host ${host.name} (${host.install.root}): for each
# server and public certificate, asks the stack's responder, verifies the answer against the
# folder's ca.crt and writes it, DER, to <certificate>.ocsp (what servers staple). A revoked
# certificate's file then says revoked. Needs only sh and openssl.
set -u
root_prefix="\${PODMESH_ROOT:-}"
pki_dir="\${PODMESH_PKI_DIR:-$root_prefix${root}/pki}"
url="\${PODMESH_OCSP_URL:-${url}}"
fail() { if [ -n "\${JOURNAL_STREAM:-}" ]; then printf '<3>%s\\n' "$*" >&2; else printf 'error: %s\\n' "$*" >&2; fi; }
[ -d "$pki_dir/services" ] || { fail "$pki_dir/services does not exist: install the stack's certificates first (podmesh apply), or set PODMESH_PKI_DIR"; exit 1; }
status=0
first=1
for cert in "$pki_dir"/services/*/server.crt "$pki_dir"/services/*/public.crt; do
  [ -f "$cert" ] || continue
  dir=\${cert%/*}
  out="$cert.ocsp"
  tmp="$dir/.$(basename "$cert").ocsp.$$"
  if [ -n "$first" ]; then
    # openssl ocsp re-reads a changed index only after answering: a first request makes the next ones current.
    openssl ocsp -url "$url" -issuer "$dir/ca.crt" -cert "$cert" -no_nonce -timeout 10 -noverify >/dev/null 2>&1
    first=
  fi
  if ! text=$(openssl ocsp -url "$url" -issuer "$dir/ca.crt" -cert "$cert" -CAfile "$dir/ca.crt" -no_nonce -timeout 10 -respout "$tmp" 2>&1); then
    rm -f "$tmp"; fail "no OCSP response for $cert from $url: $text"; status=1; continue
  fi
  case $text in
    *"Response verify OK"*) ;;
    *) rm -f "$tmp"; fail "the OCSP response for $cert from $url does not verify against $dir/ca.crt: $text"; status=1; continue ;;
  esac
  chmod 0644 "$tmp" && mv -f "$tmp" "$out" || { rm -f "$tmp"; fail "cannot write $out"; status=1; continue; }
  case $text in *": revoked"*) fail "$cert is revoked (stapled response written): run podmesh synth and podmesh apply to install its replacement" ;; esac
done
exit $status
`;
}

function stapleService(stack: string, host: ResolvedHost): ServiceUnit {
  const script = inHostRoot(host, `bin/${OCSP_STAPLE_SCRIPT}`);
  return {
    kind: 'service',
    unit: { description: `podmesh ${stack}: refresh the stapled OCSP responses (<certificate>.ocsp)`, documentation: ['man:openssl-ocsp(1)'] },
    service: {
      type: 'oneshot',
      execStart: [host.rootless ? ['/bin/sh', '-c', `exec /bin/sh "${shPath(script)}"`] : ['/bin/sh', script]],
      syslogIdentifier: ocspStapleUnitStem(stack),
    },
  };
}

function stapleTimer(stack: string): TimerUnit {
  return {
    kind: 'timer',
    unit: { description: `podmesh ${stack}: refresh the stapled OCSP responses every ${OCSP_REFRESH}` },
    timer: { onBootSec: '1min', onUnitActiveSec: OCSP_REFRESH, persistent: false },
    install: { wantedBy: ['timers.target'] },
  };
}

/**
 * The responder host's `podmesh-<stack>-ocsp-root.service` and `podmesh-<stack>-ocsp-client-ca.service`,
 * and on every host with server or public certificates `bin/podmesh-ocsp-staple.sh` with
 * `podmesh-<stack>-ocsp-staple.{service,timer}`. Nothing when the stack turned OCSP off.
 */
export function renderOcsp(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  const ocsp = stack.pki.ocsp;
  if (!ocsp) return files;
  const comments = generatedHeader(stack.name);
  const responderHost = stack.hosts.find((h) => h.name === ocsp.host);
  if (responderHost) {
    for (const issuer of OCSP_ISSUERS) {
      const unit = ocspResponderUnit(stack.name, issuer);
      const text = renderUnit(responderUnit(stack, responderHost, issuer, ocsp.ports[issuer]), { path: responderHost.path, comments });
      files.set(...hostFile(responderHost, 'systemd', unit, text, { units: [unit], enable: true }));
    }
  }
  const stapled = new Set(stack.pki.bindings.filter((b) => (STAPLED_KINDS as readonly string[]).includes(b.kind)).map((b) => serviceNamed(stack, b.service)?.host));
  for (const host of stack.hosts) {
    if (!stapled.has(host.name)) continue;
    const stem = ocspStapleUnitStem(stack.name);
    files.set(...hostFile(host, 'root', `bin/${OCSP_STAPLE_SCRIPT}`, stapleScript(stack.name, host, stapleUrl(stack, ocsp, host))));
    files.set(...hostFile(host, 'systemd', `${stem}.service`, renderUnit(stapleService(stack.name, host), { path: host.path, comments }), { units: [`${stem}.service`] }));
    files.set(...hostFile(host, 'systemd', `${stem}.timer`, renderUnit(stapleTimer(stack.name), { path: host.path, comments }), { units: [`${stem}.timer`], enable: true }));
  }
  return files;
}
