#!/usr/bin/env bash
# The library walk-through, one `teep` tool at a time (the demo of the running system is
# `scripts/demo.sh`, i.e. `teep demo`): every role's keys and a CA, a TEEP message shown as
# JSON, a Trusted Component packaged, signed, installed, updated, protected against
# rollback and deleted by the SUIT processor on a bare state directory, encrypted
# personalization data, and Evidence appraised by the Verifier in process and over HTTP
# (a stale challenge and a replay refused).
#
# Usage: scripts/library-demo.sh [WORKDIR]   (default: a fresh temporary directory)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

for tool in jq curl; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done
cargo build --quiet --locked -p teep-cli
teep="${CARGO_TARGET_DIR:-$root/target}/debug/teep"
work="${1:-$(mktemp -d -t teep-demo.XXXXXX)}"
mkdir -p "$work"
cd "$work"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
hexfile() { od -An -v -tx1 "$1" | tr -d ' \n'; }
vendor=c0ddd5f1-5243-5660-87db-4f5b0aa26c2f
class=db42f709-3d8c-55ba-a8c5-265fc5820f4e

step "1. Keys of every role (docs/keys.md)"
for role in tam agent tc-signer attester verifier tee-kek; do
  alg=esp256; [ "$role" = agent ] && alg=ed25519
  printf '%-10s ' "$role"; "$teep" keys generate --alg "$alg" --out "$role.key"
done
"$teep" keys ca --out ca --name "demo TEEP CA" >/dev/null
"$teep" keys certify --ca ca tam.key.pub --out tam.pem --name "tam.example" >/dev/null
echo "CA in ca/, TAM certificate tam.pem"

step "2. A TEEP message as the wire carries it, and its JSON view"
"$teep" inspect "$root/tests/vectors/signed/query_request.esp256.cose.hex"

step "3. The TC signer packages and signs a Trusted Component (SUIT)"
printf 'hello from trusted app v1\n' > app-v1.ta
cid=(--component-id TEEP-Device --component-id SecureFS --component-id demo-app --component-id ta)
"$teep" suit create "${cid[@]}" --seq 1 --payload app-v1.ta --vendor-id $vendor --class-id $class --out app-v1.unsigned.suit
"$teep" suit sign --key tc-signer.key app-v1.unsigned.suit --out app-v1.suit
"$teep" suit verify --key tc-signer.key.pub app-v1.suit
"$teep" suit inspect app-v1.suit | jq -c '{type, seq: .manifest["manifest-sequence-number"], sections: (.manifest.sequences | keys)}'

step "4. The TEE installs it (state directory = the device's secure storage)"
process() { "$teep" suit process --state-dir device --trust tc-signer.key.pub --vendor-id $vendor --class-id $class "$@"; }
process --nonce a0a1a2a3a4a5a6a7 app-v1.suit | jq -c '{result: .["suit-report-result"], nonce: .["suit-report-nonce"]}'

step "5. Update to sequence 2, then a replay of sequence 1 is refused and nothing changes"
printf 'hello from trusted app v2\n' > app-v2.ta
"$teep" suit create "${cid[@]}" --seq 2 --payload app-v2.ta --vendor-id $vendor --class-id $class --out app-v2.unsigned.suit
"$teep" suit sign --key tc-signer.key app-v2.unsigned.suit --out app-v2.suit
process app-v2.suit | jq -c '{result: .["suit-report-result"]}'
before=$(find device -type f -exec sha256sum {} + | sort | sha256sum)
if process app-v1.suit > rollback.json; then echo "rollback was accepted: demo failed" >&2; exit 1; fi
jq -c '{result: .["suit-report-result"]}' rollback.json
after=$(find device -type f -exec sha256sum {} + | sort | sha256sum)
[ "$before" = "$after" ] && echo "device state unchanged by the refused rollback"

step "6. Personalization data encrypted to the TEE's key, depending on the TC"
printf '{"name":"demo","secret":"0123456789abcdef"}' > config.json
"$teep" suit create --component-id TEEP-Device --component-id SecureFS --component-id config.json \
  --seq 1 --payload config.json --encrypt-to tee-kek.key.pub --depends-on app-v2.suit \
  --vendor-id $vendor --class-id $class --out config.unsigned.suit
"$teep" suit sign --key tc-signer.key config.unsigned.suit --out config.suit
echo "components (the ciphertext is staged beside config.json, not under it):"
"$teep" suit inspect config.suit | jq -r '.manifest.common.components[] | join(" ")' \
  | while read -r -a segments; do
      names=(); for seg in "${segments[@]}"; do names+=("$(echo "$seg" | xxd -r -p)"); done
      (IFS=/; echo "  ${names[*]}")
    done
process --decrypt-key tee-kek.key config.suit | jq -c '{result: .["suit-report-result"]}'

step "7. Remote attestation: Evidence from the TEE, appraised by the Verifier"
digest=$("$teep" suit verify --key tc-signer.key.pub app-v2.suit | sed -n 's/.*manifest digest \([0-9a-f]*\).*/\1/p')
cat > claims.json <<JSON
{ "ueid": "0198f50a4ff6c05861c8860d13a638ea", "oemid": "894823",
  "hwmodel": "549dcecc8b987c737b44e40f7c635ce8", "hwversion": ["1.3.4", 1],
  "dbgstat": "disabled-permanently", "secboot": true,
  "manifests": [ { "uri": "https://tam.example/demo-app.suit", "sha256": "$digest" } ] }
JSON
cat > policy.json <<JSON
{ "policy_id": "policy:teep-demo",
  "endorsements": [ { "key": "$(hexfile attester.key.pub)", "ueid": "0198f50a4ff6c05861c8860d13a638ea" } ],
  "reference_values": { "oemids": ["894823"], "hwmodels": ["549dcecc8b987c737b44e40f7c635ce8"],
    "hwversions": ["1.3.4"], "dbgstat": "disabled", "secboot": true, "tc_digests": ["$digest"] },
  "freshness_window_seconds": 300 }
JSON
challenge=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$teep" attest evidence --key attester.key --nonce "$challenge" --claims claims.json --cnf-key agent.key.pub --out evidence.cbor
"$teep" attest verify --policy policy.json --nonce "$challenge" --teep-key agent.key.pub evidence.cbor 2>/dev/null \
  | jq -c '.submods.tee | {status: .["ear.status"], vector: .["ear.trustworthiness-vector"]}'
echo "the same Evidence against another challenge:"
if "$teep" attest verify --policy policy.json --nonce 00112233445566778899 evidence.cbor > stale.json 2> stale.err; then
  echo "stale Evidence was accepted: demo failed" >&2; exit 1
fi
jq -c '.submods.tee | {status: .["ear.status"]}' stale.json; head -n 1 stale.err

step "8. The same through the Verifier's HTTP API on loopback (background-check model)"
"$teep" verifier serve --policy policy.json --key verifier.key --listen 127.0.0.1:0 > verifier.log 2>&1 &
verifier_pid=$!
trap 'kill $verifier_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do grep -q 'listening on' verifier.log && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' verifier.log | head -n 1)
echo "Verifier at $url"
grep 'bearer token' verifier.log || true  # first start: where the relying-party token is
auth="authorization: Bearer $(awk '$1 == "default" { print $2 }' verifier.key.tokens)"
echo "a challenge without the relying-party token: HTTP $(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/challenge")"
nonce=$(curl -sf -H "$auth" -X POST "$url/challenge" | jq -r .nonce)
"$teep" attest evidence --key attester.key --nonce "$nonce" --claims claims.json --cnf-key agent.key.pub --out evidence-http.cbor
curl -sf -H "$auth" -X POST -H 'content-type: application/eat+cwt' --data-binary @evidence-http.cbor "$url/verify" -o ear.cbor
"$teep" inspect ear.cbor | jq -c '{cose, status: .payload.submods.tee["ear.status"]}'
echo "replaying that Evidence:"
curl -s -H "$auth" -X POST -H 'content-type: application/eat+cwt' --data-binary @evidence-http.cbor "$url/verify" -o ear-replay.cbor
"$teep" inspect ear-replay.cbor | jq -c '{status: .payload.submods.tee["ear.status"]}'
echo "the Verifier's log (stderr): the refused request and the two appraisals"
grep -E 'refused|appraised' verifier.log | sed 's/^/  /'

step "9. Delete: unlink the personalization data, then the TC (sequence numbers stay, so no downgrade later)"
process --uninstall "TEEP-Device/SecureFS/config.json.suit" | jq -c '{result: .["suit-report-result"]}'
process --uninstall "TEEP-Device/SecureFS/demo-app/suit" | jq -c '{result: .["suit-report-result"]}'
if process app-v1.suit > reinstall-v1.json; then echo "downgrade after delete was accepted: demo failed" >&2; exit 1; fi
echo "reinstalling version 1 after the delete: $(jq -r '.["suit-report-result"].error' reinstall-v1.json)"

echo
echo "demo finished; files are in $work"
