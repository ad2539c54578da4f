#!/usr/bin/env bash
# Writes the seed corpora fuzz/seeds/<target>/ as binary copies of the hex test vectors.
# Run from anywhere; re-running overwrites the seeds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vectors="$here/../tests/vectors"

# seed TARGET HEX_FILE...: one binary seed per hex file, named after its path under
# tests/vectors (teep/error.hex and teep/pre-26-numbering/error.hex must not collide).
seed() {
    local target=$1
    shift
    mkdir -p "$here/seeds/$target"
    for file in "$@"; do
        local name
        name=${file#"$vectors"/}
        name=${name%.hex}
        name=${name//\//_}
        tr -d ' \n\r\t' <"$file" | xxd -r -p >"$here/seeds/$target/$name.cbor"
    done
}

shopt -s globstar
seed cbor_check "$vectors"/**/*.hex
seed proto_decode "$vectors"/teep/*.hex "$vectors"/teep/pre-26-numbering/*.hex "$vectors"/signed/*.cose.hex
seed suit_envelope "$vectors"/suit/*/*.hex "$vectors"/teep/suit_*.hex
# suit_process takes bare manifests: its seeds are the manifests of the suit_envelope seeds
# (fuzz/seeds/suit_process/, extracted once and committed).
