#!/usr/bin/env bash
# What the pool history (issue 36) costs a pool change: SetUserPoolMfaConfig
# only, $CALLS calls at concurrency $CONCURRENCY, audit to a file with group
# commit and fail_closed, against two binaries in one run, A/B/A/B:
#   A: BASE_BIN, a build from before the history (no index beside the file)
#   B: target/release/mfa-facade (each change's record also appended and
#      synced to .audit.jsonl.history, and handed to the drift watch)
# Prints each run's rate and p99, the ratio of the medians B/A, and checks
# that B's history lists the last change and `audit verify` holds its index.
# Then B's start to SERVING on its files as they are then (2 x CALLS index
# entries), and on the same audit file without its index.
#
#   git worktree add /tmp/base d0768e3 && (cd /tmp/base && cargo build --release)
#   BASE_BIN=/tmp/base/target/release/mfa-facade bench/history_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BASE_BIN:?set BASE_BIN to a release binary from before the history (e.g. d0768e3)}"
CALLS="${CALLS:-3000}"
CONCURRENCY="${CONCURRENCY:-32}"
source bench/lib.sh
cargo build --quiet --release --example calls --example tools

config() { printf '[backend]\nkind = "local"\ndata_file = "%s/data.db"\n\n[audit]\nfile = "%s/audit.jsonl"\nfsync = "group"\nfail_closed = true\n' "$work/$1" "$work/$1"; }
head_bin=$BIN
root_examples="$PWD/target/release/examples"
BIN=$BASE_BIN start_facade base "$(config base)"; base_port=$FACADE_PORT
BIN=$head_bin start_facade head "$(config head)"; head_port=$FACADE_PORT
base_pool=$(local_pool "$base_port"); head_pool=$(local_pool "$head_port")

run() { "$CALLS_BIN" --addr "http://127.0.0.1:$1" --key "$KEY" --pool "$2" --user bench-user \
  --calls "$CALLS" --concurrency "$CONCURRENCY" --mix pool-writes; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
base_rates=(); head_rates=()
for round in 1 2; do
  a=$(run "$base_port" "$base_pool"); echo "A (before the history), round $round: $a"; base_rates+=("$(field "$a" calls_per_second)")
  b=$(run "$head_port" "$head_pool"); echo "B (with the history),   round $round: $b"; head_rates+=("$(field "$b" calls_per_second)")
done
entries=$(grpcurl -plaintext -H "x-api-key: $KEY" -d "{\"user_pool_id\":\"$head_pool\",\"page_size\":1}" \
  "127.0.0.1:$head_port" cognito.mfa.v1.UserPoolMfaService/ListUserPoolMfaConfigHistory | grep -c '"revision"')
[ "$entries" = 1 ] || { echo "B's history lists no change" >&2; exit 1; }
"$head_bin" audit verify "$work/head/audit.jsonl" | tail -3
# Start to SERVING on a copy of B's audit file, with and then without its
# index (a new data file each; the servers above still running).
mkdir -p "$work/start" "$work/start-noindex"
for d in start start-noindex; do cp "$work/head/audit.jsonl" "$work/$d/"; done
cp "$work/head/.audit.jsonl.history" "$work/start/"
for d in start start-noindex; do
  { config "$d"; common_config; } >"$work/$d/config.toml"
  entries_now=$({ cat "$work/$d/.audit.jsonl.history" 2>/dev/null || true; } | wc -l)
  echo "start to SERVING, $d ($entries_now index entries): $("$root_examples/tools" startup "$head_bin" "$work/$d/config.toml")"
done
python3 - "${base_rates[*]}" "${head_rates[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
am, bm = statistics.median(a), statistics.median(b)
print(f"median SetUserPoolMfaConfig/s, fail_closed audit to a file: before the history {am:.0f}, with it {bm:.0f}; ratio = {bm/am:.2f}x")
PY
