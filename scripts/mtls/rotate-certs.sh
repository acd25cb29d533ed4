#!/usr/bin/env bash
# Renews certificates now: all of them, or those of --service NAME (repeatable).
set -euo pipefail
. "$(dirname "$0")/_podmesh.sh"
podmesh certs rotate "$@"
