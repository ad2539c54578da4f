#!/usr/bin/env bash
# Writes the seed corpora fuzz/seeds/<target>/ as binary copies of the hex test vectors.
# Run from anywhere; re-running overwrites the seeds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vectors="$here/../tests/vectors"

# seed_name FILE: a seed's name from the file's path under tests/vectors (teep/error.hex
# and teep/pre-26-numbering/error.hex must not collide).
seed_name() {
    local name=${1#"$vectors"/}
    name=${name%.hex}
    echo "${name//\//_}"
}

# seed TARGET HEX_FILE...: one binary seed per hex file.
seed() {
    local target=$1
    shift
    mkdir -p "$here/seeds/$target"
    for file in "$@"; do
        tr -d ' \n\r\t' <"$file" | xxd -r -p >"$here/seeds/$target/$(seed_name "$file").cbor"
    done
}

# seed_raw TARGET FILE...: one seed per file, copied as it is (e.g. PEM text).
seed_raw() {
    local target=$1
    shift
    mkdir -p "$here/seeds/$target"
    for file in "$@"; do
        cp "$file" "$here/seeds/$target/$(seed_name "$file")"
    done
}

shopt -s globstar
seed cbor_check "$vectors"/**/*.hex
seed proto_decode "$vectors"/teep/*.hex "$vectors"/teep/pre-26-numbering/*.hex "$vectors"/signed/*.cose.hex
seed suit_envelope "$vectors"/suit/*/*.hex "$vectors"/teep/suit_*.hex
# suit_process takes bare manifests: its seeds are the manifests of the suit_envelope seeds
# (fuzz/seeds/suit_process/, extracted once and committed).
# COSE layer: signed messages and every key form for cose_verify (its `from_any` importers
# take COSE_Key bytes, COSE_Key hex text or PEM, so key files go in both decoded and as they
# are); the firmware-encryption infos (COSE_Encrypt) for cose_decrypt.
seed cose_verify "$vectors"/signed/*.hex "$vectors"/signed/keys/*.hex "$vectors"/suit/keys/*.hex
seed_raw cose_verify "$vectors"/signed/keys/* "$vectors"/suit/keys/*
seed cose_decrypt "$vectors"/suit/firmware-encryption/fwenc-encinfo-*.hex
