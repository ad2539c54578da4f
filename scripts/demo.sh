#!/usr/bin/env bash
# The demo (the README's main job): `teep demo`, the whole TEEP lifecycle across real
# processes on loopback (Verifier, TAM, software TEE, Broker): attestation, install, invoke,
# update, a refused rollback, delete, each step checked, then the message sequence drawn
# from the roles' logs (docs/demo.md). Exit status 0 only when every step passed.
#
# Usage: scripts/demo.sh [DIR] [teep demo options]
#   DIR (or --dir DIR): run there and keep the files (must be empty or missing); without it
#   a temporary directory is used and removed at the end (--keep keeps it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet --locked -p teep-cli
teep="${CARGO_TARGET_DIR:-$root/target}/debug/teep"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  dir=$1; shift
  set -- --dir "$dir" "$@"
fi
exec "$teep" demo "$@"
