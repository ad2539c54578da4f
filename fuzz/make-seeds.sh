#!/usr/bin/env bash
# Writes the seed corpora fuzz/seeds/<target>/ as binary copies of the hex test vectors.
# Run from anywhere; re-running overwrites the seeds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vectors="$here/../tests/vectors"

# seed_name FILE: a seed's name: the file's path under tests/vectors (teep/error.hex
# and teep/pre-26-numbering/error.hex must not collide), or the base name of other files.
seed_name() {
    local name
    case $1 in
    "$vectors"/*) name=${1#"$vectors"/} ;;
    *) name=$(basename "$1") ;;
    esac
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

# seed_mode TARGET MODE FILE...: one seed per file, its contents (decoded when .hex) after
# a leading mode byte MODE (two hex digits), for targets whose first byte picks what the
# rest is.
seed_mode() {
    local target=$1 mode=$2
    shift 2
    mkdir -p "$here/seeds/$target"
    for file in "$@"; do
        {
            printf '%b' "\\x$mode"
            case $file in
            *.hex) tr -d ' \n\r\t' <"$file" | xxd -r -p ;;
            *) cat "$file" ;;
            esac
        } >"$here/seeds/$target/$mode-$(seed_name "$file")"
    done
}

# seed_bytes TARGET NAME HEX: one seed from inline hex.
seed_bytes() {
    mkdir -p "$here/seeds/$1"
    printf '%s' "$3" | xxd -r -p >"$here/seeds/$1/$2"
}

shopt -s globstar
seed cbor_check "$vectors"/**/*.hex
seed proto_decode "$vectors"/teep/*.hex "$vectors"/teep/pre-26-numbering/*.hex "$vectors"/signed/*.cose.hex
seed suit_envelope "$vectors"/suit/*/*.hex "$vectors"/teep/suit_*.hex
# suit_process reads its input with `arbitrary` (little-endian integers; an enum variant
# is a u32 scaled to the number of variants, so variant k of n starts at k * 2^32 / n).
# Layout: template (u8: 0 TC v2 over v1, 1 personalization v2, 2 encrypted TC, 3 app with a
# new dependency signed by B, 4 TC v1 again), authentication (4 bytes, 8 variants: A, B,
# MAC, garbage then A, bad signature, bad MAC, garbage, none), sequence-number delta (i8),
# severing of dependency-resolution, payload-fetch, candidate-verification, install (4
# bytes each: keep, sever, tampered, missing), compatibility-check policy (bool), three
# optional follow-up procedures (bool, then 4 bytes of variant: install again, install
# template (+ u8), invoke (+ target), uninstall (+ target); a target is 4 bytes: candidate,
# TC, personalization, other), two optional templates installed with the candidate by
# `install_all` (bool, then template u8, authentication, sequence-number delta i8), then
# the edits (rest of the input, none here). The input must reach the derived `size_hint`
# or libFuzzer's harness rejects it; zeros pad it (and leave the batch empty).
rm -rf "$here/seeds/suit_process"
zeros=$(printf '%064d' 0)
keep=00000000
sever=00000040
none=00
again=0100000000
invoke=0100000080
uninstall=01000000c0
candidate=00000000
tc=00000040
perso=00000080
# suit_seed NAME TEMPLATE AUTH DELTA SEVER4 THEN3 [BATCH]
suit_seed() {
    seed_bytes suit_process "$1" "$2$3$4${5}00$6${7:-}$zeros"
}
for template in 00 01 02 03 04; do
    for auth in 00 20 40 60 80 a0 c0 e0; do
        suit_seed "t${template}_auth$auth" "$template" "000000$auth" 00 "$keep$keep$keep$keep" "$none$none$none"
    done
    suit_seed "t${template}_rollback" "$template" 00000000 ff "$keep$keep$keep$keep" "$none$none$none"
    suit_seed "t${template}_severed" "$template" 00000000 00 "$sever$keep$keep$sever" "$invoke$candidate$none$none"
    suit_seed "t${template}_invoke_uninstall" "$template" 00000000 00 "$keep$keep$keep$keep" \
        "$invoke$candidate$uninstall$candidate$uninstall$tc"
done
# The TC update is refused while the personalization manifest links the TC: uninstall that
# first, then the same update installs.
suit_seed t00_after_uninstall 00 00000000 00 "$keep$keep$keep$keep" "$uninstall$perso$again$none"
# install_all: the app with its dependency, then the encrypted TC and the TC update (all
# by A: commits); the TC update, then the encrypted TC with a bad signature (nothing
# commits).
suit_seed t03_batch 03 00000000 00 "$keep$keep$keep$keep" "$none$none$none" 01020000000000010000000000
suit_seed t00_batch_fails 00 00000000 00 "$keep$keep$keep$keep" "$none$none$none" 0102000000800500
# COSE layer: signed messages and every key form for cose_verify (its `from_any` importers
# take COSE_Key bytes, COSE_Key hex text or PEM, so key files go in both decoded and as they
# are); the firmware-encryption infos (COSE_Encrypt) for cose_decrypt.
seed cose_verify "$vectors"/signed/*.hex "$vectors"/signed/keys/*.hex "$vectors"/suit/keys/*.hex
seed_raw cose_verify "$vectors"/signed/keys/* "$vectors"/suit/keys/*
seed cose_decrypt "$vectors"/suit/firmware-encryption/fwenc-encinfo-*.hex

# verifier_appraise: option byte (signer, freshness, teep key, tag, clock) + EAT claims-set
# (the demo's Evidence claims, which the target's policy accepts).
claims="$here/seeds/eat_decode/evidence_claims.cbor"
for options in 00 01 02 08 0c 10 20 40 c0; do
    seed_mode verifier_appraise "$options" "$claims"
done
# encrypted_decrypt: mode 0 + a SUIT_Report, mode 1 + an EAT claims-set (both also under
# A128CTR, bit 7), mode 2 + COSE_Encrypt structures.
report=a3038004f5186381822f5820$(printf '%064d' 0)
seed_bytes encrypted_decrypt 00-report "00$report"
seed_bytes encrypted_decrypt 80-report "80$report"
seed_mode encrypted_decrypt 01 "$claims"
seed_mode encrypted_decrypt 81 "$claims"
seed_mode encrypted_decrypt 02 "$vectors"/suit/firmware-encryption/fwenc-encinfo-*.hex
# received_report: a SUIT_Report as it came (00), signed (01; 09 tagged), encrypted (02),
# both (03), under require_signature (11, 13), by an unknown key (05), no TAM key (22).
for mode in 00 01 09 02 03 11 13 05 22; do
    seed_bytes received_report "$mode-report" "$mode$report"
done
# sealed_store: `arbitrary` operations (enum variants as u32 scaled to their count, so the
# byte patterns below are commits, edits and reopens); the fuzzer finds the rest.
seed_bytes sealed_store commits 000000000100000000000000000000000000000000ffffffff
seed_bytes sealed_store commit_flip_reopen 00000000010000000000000000000005616263640000001c0102030000000000ffffffff
seed_bytes sealed_store save_commit_restore 00000000aaaaaaaa0000000001000000000000000000ee000000c800ffffffff
# json_views: mode 0 TEEP messages, 1 SUIT envelopes, 2 EARs, 3 claims and policy files.
seed_mode json_views 00 "$vectors"/teep/*.hex "$vectors"/signed/*.cose.hex
seed_mode json_views 01 "$vectors"/suit/*/*.hex "$vectors"/teep/suit_*.hex
seed_mode json_views 02 "$here"/seeds/eat_decode/ear*.cbor
seed_mode json_views 03 "$here"/seed-sources/*.json

# cose_verify's x5chain seeds (the fixed chain of src/lib.rs): a normal build of the
# example, not the fuzz build. Needs CARGO_TARGET_DIR or builds under fuzz/target.
(cd "$here" && cargo +nightly run --quiet --example x509_seeds -- "$here/seeds/cose_verify")
# tam_exchange: the fixture's first contact (src/tam.rs) writes its own seeds: unsigned
# QueryResponses and Successes for each stage, the Evidence claims (challenge placeholder),
# the SUIT reports of the Update and the empty body.
(cd "$here" && cargo +nightly run --quiet --example tam_seeds -- "$here/seeds/tam_exchange")
# agent_exchange: the signed vectors as received (00; 08: in state 2) and the draft's
# QueryRequest and Update as payloads signed by TAM A (01); the hand-made payloads
# (01..c2-q_*/u_*) and structured Updates (03..4b-t*) in seeds/agent_exchange/ are committed.
seed_mode agent_exchange 00 "$vectors"/signed/*.cose.hex
seed_mode agent_exchange 08 "$vectors"/signed/query_request.*.cose.hex
seed_mode agent_exchange 01 "$vectors"/teep/query_request.hex "$vectors"/teep/update.hex
