#!/usr/bin/env bash
# The seed's verify-mesh.sh: probes every mTLS service of a stack over mTLS as its allowed callers,
# without a client certificate, as callers the policy refuses and with revoked certificates, and
# exits non-zero on any unexpected result. Run it inside the mesh (a container on the network), or
# from a host with --resolve-from-lock. Options pass on, e.g.
#   scripts/mtls/verify-mesh.sh --stack ashchan-dev --json
set -euo pipefail
. "$(dirname "$0")/_podmesh.sh"
podmesh verify "$@"
