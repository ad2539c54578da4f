#!/usr/bin/env bash
# The "Real sessions" diagrams of docs/flows.md, regenerated from real runs: a TAM, the
# software TEE and the Broker (`teep device run --once --capture`) as processes on
# loopback, each flow's captured HTTP bodies drawn by `teep trace --capture --mermaid`.
#
# Usage: scripts/flows.sh [OUTDIR]   (default: a temporary directory; prints the Mermaid
# files' paths). Uses the debug binary (built here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet --locked -p teep-cli
teep="${CARGO_TARGET_DIR:-$root/target}/debug/teep"
w=$(mktemp -d)
out=${1:-$w/diagrams}
mkdir -p "$out"
out=$(cd "$out" && pwd)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$w"
}
trap cleanup EXIT
cd "$w"

# Starts `teep ARGS` in the background, log to $log; waits until the log or stdout has $ready.
start() {
  local ready=$1 name=$2; shift 2
  "$teep" "$@" >"$name.out" 2>"$name.log" &
  pids+=($!)
  for _ in $(seq 300); do
    grep -q "$ready" "$name.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start: $(cat "$name.log")" >&2
  exit 1
}

# The TEE's identity (a first start), and a Verifier policy endorsing it.
start "tee socket: " tee0 tee serve --state-dir tee --socket device/tee.sock
kill "${pids[-1]}"; wait "${pids[-1]}" || true
"$teep" device identity --json --tee-dir tee >identity.json
jq '{policy_id: "policy:flows",
     endorsements: [{key: .attestation_key.pem, ueid: .ueid}],
     reference_values: {oemids: [.claims.oemid], hwmodels: [.claims.hwmodel],
       hwversions: [.claims.hwversion[0]], tc_digests: [.claims.manifests[].sha256]}}' \
  identity.json >policy.json
device=$(jq -r .teep_key.thumbprint identity.json)
jq -r .decryption_key.cose_key identity.json >device-decryption.key.pub

start "listening on http://" tam tam serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --data-dir tam --verifier-policy policy.json
tam_pid=${pids[-1]}
tam="http://$(sed -n 's/^listening on http:\/\///p' tam.out)"
admin=$(sed -n 's/^admin API on //p' tam.out)
adm() { "$teep" tam "$@" --admin-url "$admin" --data-dir tam >/dev/null; }

"$teep" keys generate --out signer.key >/dev/null
adm signer add --name vendor --key signer.key.pub
ta=/TEEP-Device/counter/suit
perso=/TEEP-Device/counter/greeting.suit
tas="$root/crates/teep-agent/tas"
# The counter TA at SEQ (MODULE), uploaded.
counter() {
  "$teep" suit create --component-id TEEP-Device --component-id counter --component-id ta \
    --seq "$1" --payload "$tas/$2" --out unsigned >/dev/null
  "$teep" suit sign --key signer.key unsigned --out "ta-$1.suit" >/dev/null
  adm tc add "ta-$1.suit"
}
counter 1 counter-v1.wasm
# The personalization TC, encrypted to the device, depending on the TA.
echo -n "Hello from the TAM" >greeting.txt
"$teep" suit create --component-id TEEP-Device --component-id counter --component-id greeting \
  --manifest-id TEEP-Device --manifest-id counter --manifest-id greeting.suit \
  --depends-on ta-1.suit --encrypt-to device-decryption.key.pub \
  --seq 1 --payload greeting.txt --out unsigned >/dev/null
"$teep" suit sign --key signer.key unsigned --out greeting-1.suit >/dev/null
adm tc add greeting-1.suit

tee_args=(tee serve --state-dir tee --socket device/tee.sock --trust-tam tam/tam-esp256.pub.pem
  --tam-encryption-key tam/tam-encryption.pub.pem --trust-signer signer.key.pub --tam "$tam")
start "tee socket: " tee "${tee_args[@]}"

# One policy check, captured, drawn as FLOW.mmd.
flow() {
  local name=$1; shift
  "$teep" device run --once --allow-plain-http --tam "$tam" --state-dir device \
    --capture "cap-$name" "$@" >/dev/null 2>"$name.log" || true
  set -- "$name"
  "$teep" trace --capture "cap-$1" --mermaid "$out/$1.mmd" >"$out/$1.txt"
  echo "$out/$1.mmd"
}

adm policy set --device "$device" --tc "$ta" --tc "$perso"
flow install          # attestation (background check) + TA + personalization TC
counter 2 counter-v2.wasm
flow update
adm policy set --device "$device"
flow delete

# A negotiation failure: a TEE that signs only with ES256 against this -26 TAM.
kill "${pids[-1]}"; wait "${pids[-1]}" || true
unset 'pids[-1]'
rm -rf tee2
start "tee socket: " tee2 tee serve --state-dir tee2 --socket device/tee.sock \
  --trust-tam tam/tam-esp256.pub.pem --trust-signer signer.key.pub --tam "$tam" --alg es256
flow negotiation-failure

# Passport: the Broker takes the TEE's Evidence to `teep verifier serve` and its EAR to the
# TEE, which presents it in its QueryResponse; on the -26 path the TAM takes a passport only
# with this session's token as nonce, so one fetched ahead is refused (docs/attestation.md).
kill "${pids[-1]}"; wait "${pids[-1]}" || true
unset 'pids[-1]'
vt=verifier-token-for-the-tam-0123456789
dt=verifier-token-for-the-device-0123456789
printf 'tam %s\ndevice %s\n' "$vt" "$dt" >tokens
"$teep" keys generate --out verifier.key >/dev/null
start "listening on http://" verifier verifier serve --policy policy.json --key verifier.key \
  --tokens tokens --listen 127.0.0.1:0
verifier="http://$(sed -n 's/^listening on http:\/\///p' verifier.out)"
# The TAM again, appraising through that Verifier and trusting its EARs.
kill "$tam_pid"; wait "$tam_pid" || true
start "listening on http://" tam2 tam serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --data-dir tam --verifier "$verifier" --verifier-token "$vt" --verifier-key verifier.key.pub
tam="http://$(sed -n 's/^listening on http:\/\///p' tam2.out)"
admin=$(sed -n 's/^admin API on //p' tam2.out)
tee_args=(tee serve --state-dir tee --socket device/tee.sock --trust-tam tam/tam-esp256.pub.pem
  --tam-encryption-key tam/tam-encryption.pub.pem --trust-signer signer.key.pub --tam "$tam")
start "tee socket: " tee3 "${tee_args[@]}" --attestation passport --passport-verifier verifier.key.pub
adm policy set --device "$device" --tc "$ta"
flow passport --verifier "$verifier" --verifier-token "$dt"
