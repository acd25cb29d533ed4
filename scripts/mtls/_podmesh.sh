# Shared by the seed's scripts/mtls/*.sh: run the podmesh CLI from the repository root.
cd "$(dirname "$0")/../.." || exit 1
podmesh() { node bin/podmesh.mjs "$@"; }
