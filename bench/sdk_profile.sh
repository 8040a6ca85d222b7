#!/usr/bin/env bash
# Where the cognito backend's calls go, under callgrind: the facade (cognito
# backend, API key, policy, limits, no audit) in front of bench/stub_cognito.rs,
# driven by h2load, against direct SDK calls to the same stub (bench/tools.rs
# sdk). Prints instructions per call of each, and the SDK's share of the
# facade's (orchestrator, SigV4 signing, signing-key derivation), and appends
# them to bench/RESULTS.md unless NO_RECORD=1. Bounded: fixed call counts;
# every process is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS="${CALLS:-1000}"
WARMUP="${WARMUP:-300}"

command -v valgrind >/dev/null || {
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
}
source bench/lib.sh
cargo build --quiet --release --example stub_cognito --example tools
EX="$PWD/target/release/examples"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true

stub_port=$(free_port)
"$EX/stub_cognito" --addr "127.0.0.1:$stub_port" & pids+=($!)
wait_port "$stub_port"
"$EX/tools" bodies "$work" "us-east-1_Stub1"

port=$(free_port); metrics=$(free_port)
mkdir -p "$work/sdk"
{ printf 'listen = "127.0.0.1:%s"\nmetrics_listen = "127.0.0.1:%s"\n' "$port" "$metrics"
  printf '[backend]\nkind = "cognito"\nendpoint_url = "http://127.0.0.1:%s"\nregion = "us-east-1"\n' "$stub_port"
  common_config; } >"$work/sdk/config.toml"
(cd "$work/sdk" && RUST_LOG="${BENCH_LOG:-info}" exec valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/cg.facade" "$BIN" serve --config config.toml >out 2>err) &
vg=$!; pids+=("$vg")
for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
drive() {
  h2load -n "$1" -c 1 -m 8 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
    -H "x-api-key: $KEY" -d "$work/get.bin" \
    "http://127.0.0.1:$port/cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig" >"$work/h2load" 2>&1
  grep -q " 0 failed, 0 errored" "$work/h2load" || { cat "$work/h2load" >&2; exit 1; }
}
drive "$WARMUP"
callgrind_control -i on "$vg" >/dev/null
drive "$CALLS"
callgrind_control -i off "$vg" >/dev/null
callgrind_control -d "$vg" >/dev/null
# h2load counts gRPC errors as successes: the facade must have answered OK.
oks=$(metric "$metrics" mfa_facade_grpc_calls_total 'code="OK"')
[ "$oks" = $((WARMUP + CALLS)) ] || { echo "$oks OK calls of $((WARMUP + CALLS))" >&2; exit 1; }
kill "$vg"; wait "$vg" 2>/dev/null || true

# The direct client, twice: its start-up (config, TLS roots) is the same in
# both runs, so the difference over the difference in calls is per call.
direct() { valgrind --tool=callgrind --callgrind-out-file="$work/cg.direct.$1" \
  "$EX/tools" sdk "http://127.0.0.1:$stub_port" us-east-1_Stub1 "$1" 8 >"$work/direct.$1.out" 2>"$work/direct.$1.err"; }
small=$CALLS; large=$((3 * CALLS))
direct "$small"; direct "$large"
total() { cat "$1"* | awk '/^(summary|totals):/ {s += $2} END {printf "%d\n", s}'; }
inclusive() { # inclusive FILE PATTERN: the largest inclusive count of a function matching PATTERN
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null | grep -E "$2" | head -1 | awk '{gsub(",","",$1); print $1}'; }
facade_file=$(ls "$work"/cg.facade.* | head -1)
# KEEP_PROFILE=DIR keeps the profiles, for callgrind_annotate.
[ -n "${KEEP_PROFILE:-}" ] && mkdir -p "$KEEP_PROFILE" && cp "$work"/cg.* "$KEEP_PROFILE/"
f_total=$(( $(total "$work/cg.facade") / CALLS ))
d_total=$(( ($(total "$work/cg.direct.$large") - $(total "$work/cg.direct.$small")) / (large - small) ))
f_sdk=$(( $(inclusive "$facade_file" 'orchestrator::try_op::\{\{closure\}\}::\{\{closure\}\} ') / CALLS ))
f_sign=$(( $(inclusive "$facade_file" 'orchestrator::auth::sign_request') / CALLS ))
f_key=$(( $(inclusive "$facade_file" 'sigv4::sign::v4::generate_signing_key') / CALLS ))

commit=$(git rev-parse --short HEAD)
report=$(cat <<EOF
## The cognito backend's calls under callgrind ($(date +%F), $commit)

Command: \`bench/sdk_profile.sh\` (CALLS=$CALLS GetUserPoolMfaConfig through the facade after
WARMUP=$WARMUP, h2load -c 1 -m 8, instrumentation on around them; then direct SDK calls at
concurrency 8, $small and $large in two runs, per call from the difference).

- the facade process, per call: $f_total instructions
  - in the SDK's orchestrator (serialize, sign, send, parse): $f_sdk
  - of which SigV4 signing: $f_sign (deriving the signing key again: $f_key)
- a direct SDK client, per call: $d_total
EOF
)
echo "$report"
[ -n "${NO_RECORD:-}" ] || { printf '%s\n' "$report" >"$work/report.md"; record_results "$work/report.md"; }
