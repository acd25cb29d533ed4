#!/usr/bin/env bash
# Creates the root CA (ashchan-ca) and the client CA of every stack (or --stack NAME) if missing;
# an existing CA is never replaced. Missing service certificates are issued too.
set -euo pipefail
. "$(dirname "$0")/_podmesh.sh"
podmesh certs issue "$@"
