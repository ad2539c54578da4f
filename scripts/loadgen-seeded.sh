#!/usr/bin/env bash
# Throughput of a TAM on PostgreSQL with 100 000 devices' state already in its store, beside
# the same TAM on a store holding only the load's own devices (issue 11's "within 20 %").
#
# Two `teep tam serve` on two scratch databases of one PostgreSQL server; one is seeded
# (`teep loadgen --seed`). Then `teep loadgen` runs against each in turn, ROUNDS times,
# so that both see the same machine: on a shared machine the load drifts during a run, and
# runs one after the other compare the drift, not the stores.
#
#   scripts/loadgen-seeded.sh [SERVER_URL]   # default postgres://postgres@127.0.0.1:5432
#   SEED=100000 DEVICES=1000 CONCURRENCY=32 SECS=15 ROUNDS=4 scripts/loadgen-seeded.sh
set -euo pipefail
cd "$(dirname "$0")/.."
server="${1:-postgres://postgres@127.0.0.1:5432}"
seed="${SEED:-100000}" devices="${DEVICES:-1000}" concurrency="${CONCURRENCY:-32}"
secs="${SECS:-15}" rounds="${ROUNDS:-4}"

cargo build --release --locked -p teep-cli
teep="$PWD/target/release/teep"
work=$(mktemp -d)
cd "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait || true
  for db in teep_load_plain teep_load_seeded; do
    psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  done
}
trap cleanup EXIT

"$teep" loadgen --write-policy --fleet fleet > /dev/null
declare -A uri
for db in teep_load_plain teep_load_seeded; do
  psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  "$teep" tam serve --data-dir "tam-$db" --database "$server/$db" --listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --verifier-policy fleet/policy.json \
    --rate 100000 --burst 100000 > "tam-$db.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 150); do grep -q 'listening on http://' "tam-$db.log" && break; sleep 0.2; done
  uri[$db]="http://$(grep -o 'listening on http://[^ ]*' "tam-$db.log" | head -1 | cut -c21-)"
done
"$teep" loadgen --seed "$seed" --database "$server/teep_load_seeded"

echo "round store sessions sessions/s p50_ms p99_ms errors load1"
for round in $(seq "$rounds"); do
  for db in teep_load_plain teep_load_seeded; do
    "$teep" loadgen --tam "${uri[$db]}" --trust-tam "tam-$db/tam-esp256.key" --fleet fleet \
      --devices "$devices" --concurrency "$concurrency" --duration "$secs" --json \
      > "$db-$round.json" 2> /dev/null || true
    python3 - "$db-$round.json" "$round" "$db" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
load = open("/proc/loadavg").read().split()[0]
print(sys.argv[2], sys.argv[3], d["sessions"], round(d["sessions_per_second"], 1),
      round(d["p50_ms"], 1), round(d["p99_ms"], 1), d["errors"] or "none", load)
EOF
  done
done
