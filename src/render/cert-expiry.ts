// The daily certificate expiry check of each host: a POSIX sh script (openssl + awk, no node on
// the host) that writes the seed's `mtls_cert_expiry_days` gauge for node-exporter's textfile
// collector, and the systemd `.service` + `.timer` that run it.
import { serviceNamed } from './lookup.ts';
import { APPLIED_SHA256, defaultTextfileDir, hostFile, inHostRoot } from '../layout.ts';
import type { ResolvedHost, ResolvedStack } from '../resolve/model.ts';
import type { RenderedFile } from './file.ts';
import { generatedHeader, hashHeader } from './header.ts';
import { renderUnit, type ServiceUnit, type TimerUnit } from './quadlet/index.ts';

/** File name of the check script inside `hosts/<host>/bin/` (and `<host root>/bin/` once applied). */
export const CERT_EXPIRY_SCRIPT = 'podmesh-cert-expiry.sh';

export { defaultTextfileDir };

/** The seed's alert threshold, in days. */
const WARN_DAYS = 30;

// Longer than 80 lines: one shell script as one template literal, read top to bottom like the file it writes.
/**
 * The check script. Everything a run needs is baked in; environment variables override:
 * `PODMESH_PKI_DIR` (the installed `pki/` folder), `PODMESH_TEXTFILE_DIR`, `PODMESH_WARN_DAYS`,
 * `PODMESH_NOW` (`YYYY-MM-DDTHH:MM:SSZ`, for tests and what-ifs).
 */
export function certExpiryScript(stack: string, host: Pick<ResolvedHost, 'name' | 'rootless' | 'install'>): string {
  // ${HOME:-}: under set -u an unset HOME (a test's environment) must not stop the script.
  const root = host.install.root.replace(/^%h\//, () => '${HOME:-}/');
  return `#!/bin/sh
${hashHeader(stack).trimEnd()}
#
# Daily certificate expiry check of stack "${stack}" on this host (${host.install.certExpiryUnit}.timer).
# Writes mtls_cert_expiry_days{stack,service,kind} (whole days to notAfter, rounded down,
# negative once expired) for node-exporter's textfile collector, atomically, and logs a warning
# for every certificate under PODMESH_WARN_DAYS days. Needs only sh, openssl, awk, date.
# Then compares the installed files with the checksums podmesh apply recorded
# (${APPLIED_SHA256} in the host root, \`sha256sum -c\` format) and writes
# podmesh_drift_files{stack,host} (files changed or removed since the apply) to
# podmesh_\${stack}_drift.prom, logging a warning per file. Needs sha256sum (coreutils or busybox).
# Exit status: 0 (also with warnings or drift), 1 when a certificate cannot be read or a metric not written.
set -u
stack='${stack}'
host='${host.name}'
# PODMESH_ROOT: the folder the host's files are under (tests: a temporary root); empty on the host.
root_prefix="\${PODMESH_ROOT:-}"
host_root="$root_prefix${root}"
pki_dir="\${PODMESH_PKI_DIR:-$host_root/pki}"
textfile_dir="\${PODMESH_TEXTFILE_DIR:-${defaultTextfileDir(host)}}"
warn_days="\${PODMESH_WARN_DAYS:-${WARN_DAYS}}"
now="\${PODMESH_NOW:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"

# Under systemd, <4> gives a line journal priority "warning" and <3> "err".
warn() { if [ -n "\${JOURNAL_STREAM:-}" ]; then printf '<4>%s\\n' "$*" >&2; else printf 'warning: %s\\n' "$*" >&2; fi; }
fail() { if [ -n "\${JOURNAL_STREAM:-}" ]; then printf '<3>%s\\n' "$*" >&2; else printf 'error: %s\\n' "$*" >&2; fi; }

case $warn_days in ''|*[!0-9]*) fail "PODMESH_WARN_DAYS=$warn_days is not a whole number of days"; exit 1 ;; esac

# Whole days from $now to an openssl date ("Nov 28 13:36:58 2027 GMT"), rounded down.
days_left() {
  awk -v now="$now" -v end="$1" '
    function epoch(y, mo, d, h, mi, s,   a, yy, m) {
      a = (mo <= 2); yy = y - a; m = mo + 12 * a - 3
      return ((int((153 * m + 2) / 5) + d - 1 + 365 * yy + int(yy / 4) - int(yy / 100) + int(yy / 400) - 719468) * 86400) + h * 3600 + mi * 60 + s
    }
    BEGIN {
      if (now !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z$/) exit 2
      t = epoch(substr(now, 1, 4) + 0, substr(now, 6, 2) + 0, substr(now, 9, 2) + 0, substr(now, 12, 2) + 0, substr(now, 15, 2) + 0, substr(now, 18, 2) + 0)
      split(end, f, " ")
      mo = index("JanFebMarAprMayJunJulAugSepOctNovDec", f[1]); if (mo == 0 || (mo - 1) % 3 != 0) exit 3
      split(f[3], c, ":")
      e = epoch(f[4] + 0, (mo + 2) / 3, f[2] + 0, c[1] + 0, c[2] + 0, c[3] + 0)
      q = (e - t) / 86400; r = int(q); if (r > q) r = r - 1
      print r
    }'
}

label() { printf '%s' "$1" | sed 's/\\\\/\\\\\\\\/g; s/"/\\\\"/g'; }

[ -d "$pki_dir/services" ] || { fail "$pki_dir/services does not exist: install the stack's certificates first (podmesh apply --stack $stack --host <host>), or set PODMESH_PKI_DIR"; exit 1; }
mkdir -p "$textfile_dir" || { fail "cannot create $textfile_dir: set PODMESH_TEXTFILE_DIR to a folder node-exporter's --collector.textfile.directory reads"; exit 1; }
out="$textfile_dir/podmesh_$stack.prom"
tmp="$textfile_dir/.podmesh_$stack.prom.$$"
drift_out="$textfile_dir/podmesh_\${stack}_drift.prom"
drift_tmp="$textfile_dir/.podmesh_\${stack}_drift.prom.$$"
trap 'rm -f "$tmp" "$drift_tmp"' EXIT
status=0
: > "$tmp" || { fail "cannot write $tmp"; exit 1; }
{
  echo '# HELP mtls_cert_expiry_days Days until the certificate expires (negative once expired).'
  echo '# TYPE mtls_cert_expiry_days gauge'
  root_done=
  for dir in "$pki_dir"/services/*/; do
    [ -d "$dir" ] || continue
    dir=\${dir%/}; service=$(basename "$dir")
    for kind in root-ca server client public; do
      if [ "$kind" = root-ca ]; then
        [ -z "$root_done" ] || continue
        file="$dir/ca.crt"; svc=''
      else
        file="$dir/$kind.crt"; svc=$service
      fi
      [ -f "$file" ] || continue
      [ "$kind" != root-ca ] || root_done=1
      end=$(openssl x509 -noout -enddate -in "$file" 2>/dev/null) || { fail "cannot read $file (not a PEM certificate)"; status=1; continue; }
      days=$(days_left "\${end#notAfter=}") || { fail "cannot compute the expiry of $file (notAfter: \${end#notAfter=}; now: $now)"; status=1; continue; }
      printf 'mtls_cert_expiry_days{stack="%s",service="%s",kind="%s"} %s\\n' "$(label "$stack")" "$(label "$svc")" "$kind" "$days"
      if [ "$days" -lt 0 ]; then
        warn "$stack \${svc:-(CA)} $kind certificate $file expired on \${end#notAfter=} (days: $days): run podmesh synth (or certs rotate) and podmesh apply"
      elif [ "$days" -lt "$warn_days" ]; then
        warn "$stack \${svc:-(CA)} $kind certificate $file expires in $days days (\${end#notAfter=}): run podmesh synth (or certs rotate) and podmesh apply"
      fi
    done
  done
} >> "$tmp"
chmod 0644 "$tmp" && mv -f "$tmp" "$out" || { fail "cannot move $tmp to $out"; exit 1; }

# Drift. The list holds host paths; PODMESH_ROOT is put in front of each (after the 64 hex digits
# and two spaces). Busybox's sha256sum has no --quiet: both print "<path>: FAILED" (coreutils adds
# " open or read" for a missing file), in the C locale.
checksums="$host_root/${APPLIED_SHA256}"
if [ ! -f "$checksums" ]; then
  warn "$checksums does not exist, so drift is not checked (no podmesh_drift_files): run podmesh apply --stack $stack --host $host, which writes it"
  exit $status
fi
failed=$(awk -v p="$root_prefix" '{ print substr($0, 1, 66) p substr($0, 67) }' "$checksums" | LC_ALL=C sha256sum -c - 2>/dev/null | grep ': FAILED')
drift=0
if [ -n "$failed" ]; then
  drift=$(printf '%s\\n' "$failed" | wc -l | tr -d ' ')
  printf '%s\\n' "$failed" | while IFS= read -r line; do
    warn "$stack: \${line%%: FAILED*} was changed or removed by hand since podmesh apply: podmesh apply --check --stack $stack --host $host lists it, podmesh apply restores it"
  done
fi
{
  echo '# HELP podmesh_drift_files Files podmesh apply installed that were changed or removed since.'
  echo '# TYPE podmesh_drift_files gauge'
  printf 'podmesh_drift_files{stack="%s",host="%s"} %s\\n' "$(label "$stack")" "$(label "$host")" "$drift"
} > "$drift_tmp" || { fail "cannot write $drift_tmp"; exit 1; }
chmod 0644 "$drift_tmp" && mv -f "$drift_tmp" "$drift_out" || { fail "cannot move $drift_tmp to $drift_out"; exit 1; }
exit $status
`;
}

function serviceUnit(stack: string, host: ResolvedHost): ServiceUnit {
  const script = inHostRoot(host, `bin/${CERT_EXPIRY_SCRIPT}`);
  return {
    kind: 'service',
    unit: {
      description: `podmesh ${stack}: certificate expiry check (mtls_cert_expiry_days)`,
      documentation: ['https://github.com/prometheus/node_exporter#textfile-collector'],
    },
    service: {
      type: 'oneshot',
      // Rootless paths start at %h, which systemd does not expand in a program path or (through the
      // unit writer, which keeps values literal) in arguments: sh expands $HOME instead.
      execStart: [host.rootless ? ['/bin/sh', '-c', `exec /bin/sh "${script.replace(/^%h\//, '$HOME/')}"`] : ['/bin/sh', script]],
      syslogIdentifier: host.install.certExpiryUnit,
    },
  };
}

function timerUnit(stack: string): TimerUnit {
  return {
    kind: 'timer',
    unit: { description: `podmesh ${stack}: daily certificate expiry check` },
    timer: { onCalendar: ['daily'], persistent: true, randomizedDelaySec: '1h' },
    install: { wantedBy: ['timers.target'] },
  };
}

/**
 * The expiry check of every host that holds certificates of the stack:
 * `hosts/<host>/bin/podmesh-cert-expiry.sh` and `hosts/<host>/systemd/podmesh-<stack>-cert-expiry.{service,timer}`;
 * the timer is enabled on its own on first install (the target does not want it).
 */
export function renderCertExpiry(stack: ResolvedStack): Map<string, RenderedFile> {
  const files = new Map<string, RenderedFile>();
  const withCerts = new Set(stack.pki.bindings.map((b) => serviceNamed(stack, b.service)?.host));
  const comments = generatedHeader(stack.name);
  for (const host of stack.hosts) {
    if (!withCerts.has(host.name)) continue;
    const stem = host.install.certExpiryUnit;
    files.set(...hostFile(host, 'root', `bin/${CERT_EXPIRY_SCRIPT}`, certExpiryScript(stack.name, host)));
    files.set(...hostFile(host, 'systemd', `${stem}.service`, renderUnit(serviceUnit(stack.name, host), { path: host.path, comments }), { units: [`${stem}.service`] }));
    files.set(...hostFile(host, 'systemd', `${stem}.timer`, renderUnit(timerUnit(stack.name), { path: host.path, comments }), { units: [`${stem}.timer`], enable: true }));
  }
  return files;
}
