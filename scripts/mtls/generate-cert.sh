#!/usr/bin/env bash
# generate-cert.sh <dns-name> [podmesh options]: makes sure the service with that DNS name
# (e.g. auth.ashchan.local) has its certificates, and shows them.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <dns-name> [--stack NAME]" >&2; exit 2; }
name=$1; shift
. "$(dirname "$0")/_podmesh.sh"
podmesh certs issue "$@"
podmesh certs status --format json "$@" | node -e '
  const rows = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const hit = rows.filter((r) => r.commonName === process.argv[1]);
  if (hit.length === 0) { console.error(`no service has the DNS name ${process.argv[1]}`); process.exit(1); }
  for (const r of hit) console.log(`${r.service} ${r.kind} ${r.commonName} serial ${r.serial} expires ${r.notAfter}`);' "$name"
