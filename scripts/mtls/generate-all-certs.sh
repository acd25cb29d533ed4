#!/usr/bin/env bash
# Issues every service certificate the stacks need into .podmesh/<stack>/pki/services/.
set -euo pipefail
. "$(dirname "$0")/_podmesh.sh"
podmesh certs issue "$@"
podmesh certs status "$@"
