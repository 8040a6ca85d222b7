#!/usr/bin/env bash
# Audited writes per second: the same write-only load (SetUserPoolMfaConfig
# and AdminSetUserMfaPreference, $CALLS calls at concurrency $CONCURRENCY)
# against two facades that differ only in audit.fsync:
#   A: "record" — one fsync per audit record
#   B: "group"  — one fsync per group (5 ms or 256 records)
# Both: local backend, audit file, fail_closed = true (each write waits for
# its two records to be durable). Release builds on loopback, A/B/A/B.
# Prints writes/s of each run and the ratio of the medians group/record,
# checks every call's records are in the file and the chain verifies, and
# appends the numbers to bench/RESULTS.md. Bounded: 4 runs of $CALLS calls.
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS="${CALLS:-2000}"
CONCURRENCY="${CONCURRENCY:-32}"
source bench/lib.sh

start() { # start NAME FSYNC
  start_facade "$1" "[backend]
kind = \"local\"
data_file = \"$work/$1/data.json\"

[audit]
file = \"$work/$1/audit.jsonl\"
fsync = \"$2\"
fail_closed = true
max_file_bytes = 1073741824"
}
start record record; record_port=$FACADE_PORT
start group group; group_port=$FACADE_PORT
record_pool=$(local_pool "$record_port")
group_pool=$(local_pool "$group_port")

run() { "$CALLS_BIN" --addr "http://127.0.0.1:$1" --key "$KEY" --pool "$2" --user bench-user \
  --calls "$CALLS" --concurrency "$CONCURRENCY" --mix writes; }
rate() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["calls_per_second"])' "$1"; }

record_rates=(); group_rates=()
for round in 1 2; do
  r=$(run "$record_port" "$record_pool"); echo "fsync per record, round $round: $r"; record_rates+=("$(rate "$r")")
  g=$(run "$group_port" "$group_pool"); echo "group commit,     round $round: $g"; group_rates+=("$(rate "$g")")
done

# Every call left its two records, and each chain verifies.
for name in record group; do
  records=$(wc -l <"$work/$name/audit.jsonl")
  "$BIN" audit verify "$work/$name/audit.jsonl" | sed "s/^/$name: /"
  echo "$name: $records records on disk for $((2 * CALLS)) audited writes (+ fixtures)"
  [ "$records" -ge $((4 * CALLS)) ] || { echo "$name: records are missing" >&2; exit 1; }
done

summary=$(python3 - "${record_rates[*]}" "${group_rates[*]}" <<'PY'
import statistics, sys
r = [float(x) for x in sys.argv[1].split()]
g = [float(x) for x in sys.argv[2].split()]
rm, gm = statistics.median(r), statistics.median(g)
print(f"median audited writes/s: fsync per record {rm:.0f}, group commit {gm:.0f}; ratio group/record = {gm/rm:.2f}x")
PY
)
echo "$summary"

{
  echo
  echo "## Audit: group commit vs fsync per record ($(date -u +%Y-%m-%d))"
  echo
  echo "Command: \`bench/audit.sh\` (CALLS=$CALLS, CONCURRENCY=$CONCURRENCY, writes only, local backend,"
  echo "fail_closed = true, release build, loopback)."
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; disk: $(df -h "$work" | awk 'NR==2{print $1}')."
  echo
  echo "- fsync per record runs: ${record_rates[*]} writes/s"
  echo "- group commit runs: ${group_rates[*]} writes/s"
  echo "- $summary"
  echo
  echo "Each write waits for its \"received\" record to be durable before the backend and for its"
  echo "\"completed\" record before answering; both chains verified and held every record. The local"
  echo "backend also fsyncs its own data file on every write, which bounds both runs."
} >> bench/RESULTS.md
