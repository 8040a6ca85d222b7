#!/usr/bin/env bash
# Instructions per call under callgrind: deterministic where wall-clock
# timings on this machine move up to 2x between minutes.
#
# Three servers, each under `valgrind --tool=callgrind --instr-atstart=no`:
#   bare  bench/baseline.rs, bare tonic answering with a constant reply;
#   full  the facade: API key, policy, limits (too high to refuse), audit to
#         a file (group commit, fail_closed), metrics, log line, local backend;
#   noaudit  the same facade without [audit].
# Each gets WARMUP calls uncounted, then instrumentation is switched on
# (callgrind_control -i on) around exactly CALLS GetUserPoolMfaConfig calls
# from h2load, and the server's instructions (all threads) are divided by
# CALLS. Prints each and the ratios to bare tonic; appends to bench/RESULTS.md
# unless NO_RECORD=1; KEEP_PROFILE=DIR keeps the callgrind files. Bounded: fixed call counts, and each server is killed.
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS="${CALLS:-5000}"
WARMUP="${WARMUP:-1000}"
CONNECTIONS=1
STREAMS=8

command -v valgrind >/dev/null || {
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
}
source bench/lib.sh
cargo build --quiet --release --example baseline --example tools
EX="$PWD/target/release/examples"

# callgrind_run NAME PORT METHOD BODY KEY CMD...: starts CMD under callgrind,
# drives WARMUP then CALLS calls, prints the instructions per counted call.
callgrind_run() {
  local name=$1 port=$2 method=$3 body=$4 key=$5; shift 5
  local out="$work/callgrind.$name" pid auth=()
  [ -n "$key" ] && auth=(-H "x-api-key: $key")
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$@" \
    >"$work/$name.vg.out" 2>"$work/$name.vg.err" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  drive() {
    h2load -n "$1" -c "$CONNECTIONS" -m "$STREAMS" -t 1 \
      -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
      -d "$body" "http://127.0.0.1:$port/$method" >"$work/$name.h2load" 2>&1
    grep -q " 0 failed, 0 errored" "$work/$name.h2load" || {
      echo "$name: h2load errors" >&2; cat "$work/$name.h2load" >&2; kill "$pid"; exit 1; }
  }
  drive "$WARMUP"
  callgrind_control -i on "$pid" >/dev/null
  drive "$CALLS"
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  # h2load counts a gRPC error as a success (HTTP 200): the facade's own
  # counter of OK calls must have every call.
  if [ -n "${METRICS_PORT:-}" ]; then
    local oks
    oks=$(metric "$METRICS_PORT" mfa_facade_grpc_calls_total "method=\"$method\"" 'code="OK"')
    [ "$oks" = $((WARMUP + CALLS)) ] || {
      echo "$name: $oks OK calls of $((WARMUP + CALLS))" >&2; kill "$pid"; exit 1; }
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # KEEP_PROFILE=DIR keeps the profiles, for callgrind_annotate.
  [ -n "${KEEP_PROFILE:-}" ] && mkdir -p "$KEEP_PROFILE" && cp "$out"* "$KEEP_PROFILE/"
  # Every dump of every thread: the "summary:" (or "totals:") line of each file.
  cat "$out"* | awk '/^(summary|totals):/ {s += $2} END {print s}' | {
    read -r total; echo $((total / CALLS)); }
}

# The facades: the same config as bench/stack.sh's full stack.
facade_config() { # facade_config DIR AUDIT(0|1) PORT METRICS
  local dir=$1 audit=$2
  mkdir -p "$dir"
  { printf 'listen = "127.0.0.1:%s"\nmetrics_listen = "127.0.0.1:%s"\n' "$3" "$4"
    printf '[backend]\nkind = "local"\ndata_file = "%s/data.json"\n' "$dir"
    [ "$audit" = 1 ] && printf '[audit]\nfile = "%s/audit.jsonl"\nfsync = "group"\nfail_closed = true\nmax_file_bytes = 1073741824\n' "$dir"
    common_config; } >"$dir/config.toml"
}

# A pool to read, made by a facade run outside valgrind on the same data file.
start_facade seed "[backend]
kind = \"local\"
data_file = \"$work/seed/data.json\""
pool=$(local_pool "$FACADE_PORT")
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
"$EX/tools" bodies "$work" "$pool"
body="$work/get.bin"
M="cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig"

declare -A ipc
port=$(free_port)
ipc[bare]=$(callgrind_run bare "$port" "$M" "$body" "" "$EX/baseline" --addr "127.0.0.1:$port")
for variant in full noaudit; do
  port=$(free_port); metrics=$(free_port)
  audit=1; [ "$variant" = noaudit ] && audit=0
  facade_config "$work/$variant" "$audit" "$port" "$metrics"
  cp "$work/seed/data.json" "$work/$variant/data.json"
  ipc[$variant]=$(cd "$work/$variant" && RUST_LOG="${BENCH_LOG:-info}" METRICS_PORT=$metrics callgrind_run "$variant" "$port" "$M" "$body" "$KEY" \
    "$BIN" serve --config "$work/$variant/config.toml")
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo "+changes")
report=$(cat <<EOF
## Instructions per call under callgrind ($(date -u +%Y-%m-%d), $commit)

Command: \`bench/instructions.sh\` (CALLS=$CALLS GetUserPoolMfaConfig after WARMUP=$WARMUP, h2load -c $CONNECTIONS -m $STREAMS,
valgrind --tool=callgrind, instrumentation on around the counted calls only, all server threads).

- bare tonic: ${ipc[bare]} instructions per call
- full stack (API key, policy, limits, audit to a file with fail_closed, metrics, local backend): ${ipc[full]} ($(ratio "${ipc[full]}" "${ipc[bare]}")x bare)
- the same without audit: ${ipc[noaudit]} ($(ratio "${ipc[noaudit]}" "${ipc[bare]}")x bare)
EOF
)
echo "$report"
if [ "${NO_RECORD:-0}" != 1 ]; then
  printf '%s\n' "$report" >"$work/report.md"
  record_results "$work/report.md"
fi
