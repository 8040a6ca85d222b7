#!/usr/bin/env bash
# The facade's cost, in one run, against baselines measured in the same run:
#
# 1. Full stack vs bare tonic. The full stack: API-key auth, the policy,
#    rate limits too high to refuse, audit to a file with group commit
#    (fail_closed), the local backend. The baseline: bench/baseline.rs, a
#    bare tonic server answering the same RPCs with a constant reply.
#    h2load drives GetUserPoolMfaConfig and SetUserPoolMfaConfig at each,
#    A/B/A/B, same connections, streams and duration; prints req/s, p50 and
#    p99 of each and the ratio. Success is proven by the facade's own
#    counter of OK calls, which must equal h2load's successes.
# 2. The SDK path: the facade on the cognito backend in front of
#    bench/stub_cognito.rs (a tiny awsJson1.1 server), driven by h2load,
#    against a loop of direct SDK calls to the same stub (bench/tools.rs sdk)
#    at the same concurrency.
# 3. Footprint: ms from start to SERVING, idle RSS, RSS after 100,000 calls.
#
# Records everything in bench/RESULTS.md (latest first). Bounded: fixed durations and counts.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-8}"          # seconds per h2load run
CONNECTIONS="${CONNECTIONS:-4}"
STREAMS="${STREAMS:-16}"           # concurrent streams per connection
SDK_CALLS="${SDK_CALLS:-20000}"
ROUNDS="${ROUNDS:-3}"               # A/B rounds; each figure is their median

source bench/lib.sh
cargo build --quiet --release --example baseline --example stub_cognito --example tools
EX="$PWD/target/release/examples"

# --- 1. full stack vs bare tonic -------------------------------------------
start_facade full "[backend]
kind = \"local\"
data_file = \"$work/full/data.json\"

[audit]
file = \"$work/full/audit.jsonl\"
fsync = \"group\"
fail_closed = true
max_file_bytes = 1073741824"
full_port=$FACADE_PORT; full_pid=${pids[-1]}
full_metrics=$(grep -o 'metrics_listen = "127.0.0.1:[0-9]*"' "$work/full/config.toml" | grep -o '[0-9]*"$' | tr -d '"')
pool=$(local_pool "$full_port")
"$EX/tools" bodies "$work" "$pool"
base_port=$(free_port)
"$EX/baseline" --addr "127.0.0.1:$base_port" & pids+=($!); base_pid=$!
wait_port "$base_port"
# The same facade without audit, on a copy of the data (the same pool),
# for Get only: it shows how much of the gap the two audit records cost.
mkdir -p "$work/noaudit" && cp "$work/full/data.json" "$work/noaudit/data.json"
start_facade noaudit "[backend]
kind = \"local\"
data_file = \"$work/noaudit/data.json\""
noaudit_port=$FACADE_PORT; noaudit_pid=${pids[-1]}
noaudit_metrics=$(grep -o 'metrics_listen = "127.0.0.1:[0-9]*"' "$work/noaudit/config.toml" | grep -o '[0-9]*"$' | tr -d '"')

# Each run also takes the CPU a call of the server process (from its
# /proc stat) and of h2load (GNU time): the two share this machine's cores,
# so the throughput ratio follows the ratio of their sums.
declare -A rows
# cpu_row PID TICKS_BEFORE: "server_us:h2load_us" for the run just made.
cpu_row() { echo "$(us_per_call $(( $(ticks "$1") - $2 )) "$ok"):$(python3 -c "import sys; print(f'{float(sys.argv[1]) * 1e6 / int(sys.argv[2]):.1f}')" "$(cat "$work/h2load.cpu")" "$ok")"; }
for m in GetUserPoolMfaConfig SetUserPoolMfaConfig; do
  body="$work/get.bin"; [ "$m" = SetUserPoolMfaConfig ] && body="$work/set.bin"
  for round in $(seq 1 "$ROUNDS"); do
    t0=$(ticks "$full_pid")
    checked_h2 "facade $m" "$full_port" "$full_metrics" "$m" "$body"
    cpu=$(cpu_row "$full_pid" "$t0")
    echo "full stack $m round $round: $rps req/s, p50 $p50 ms, p99 $p99 ms ($ok OK by the facade's count; CPU a call, server:h2load $cpu us)"
    rows[full_$m]+="$rps:$p50:$p99:$cpu "
    t0=$(ticks "$base_pid")
    read -r rps ok p50 p99 <<<"$(h2 "$base_port" "$P/$m" "$body")"
    cpu=$(cpu_row "$base_pid" "$t0")
    echo "bare tonic $m round $round: $rps req/s, p50 $p50 ms, p99 $p99 ms (CPU a call, server:h2load $cpu us)"
    rows[base_$m]+="$rps:$p50:$p99:$cpu "
    if [ "$m" = GetUserPoolMfaConfig ]; then
      t0=$(ticks "$noaudit_pid")
      checked_h2 "facade without audit $m" "$noaudit_port" "$noaudit_metrics" "$m" "$body"
      cpu=$(cpu_row "$noaudit_pid" "$t0")
      echo "facade without audit $m round $round: $rps req/s, p50 $p50 ms, p99 $p99 ms (CPU a call, server:h2load $cpu us)"
      rows[noaudit_$m]+="$rps:$p50:$p99:$cpu "
    fi
  done
done

# --- 3. footprint (the full-stack facade) -----------------------------------
footprint=$("$EX/tools" startup "$BIN" "$work/full/config.toml")
before_rss=$(awk '/VmRSS/{print $2}' "/proc/$full_pid/status")
h2load -n 100000 -c "$CONNECTIONS" -m "$STREAMS" -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
  -H "x-api-key: $KEY" -d "$work/get.bin" "http://127.0.0.1:$full_port/$P/GetUserPoolMfaConfig" >/dev/null 2>&1
after_rss=$(awk '/VmRSS/{print $2}' "/proc/$full_pid/status")

# --- 2. the SDK path -----------------------------------------------------------
stub_port=$(free_port)
"$EX/stub_cognito" --addr "127.0.0.1:$stub_port" & pids+=($!)
wait_port "$stub_port"
# Before the facade starts: its SDK reads credentials from the environment.
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true
start_facade sdk "[backend]
kind = \"cognito\"
endpoint_url = \"http://127.0.0.1:$stub_port\"
region = \"us-east-1\""
sdk_port=$FACADE_PORT
sdk_metrics=$(grep -o 'metrics_listen = "127.0.0.1:[0-9]*"' "$work/sdk/config.toml" | grep -o '[0-9]*"$' | tr -d '"')
"$EX/tools" bodies "$work" "us-east-1_Stub1"
concurrency=$((CONNECTIONS * STREAMS))
sdk_facade=(); sdk_direct=(); sdk_cpu=()
sdk_pid=${pids[-1]}
for round in $(seq 1 "$ROUNDS"); do
  t0=$(ticks "$sdk_pid")
  checked_h2 "facade -> stub" "$sdk_port" "$sdk_metrics" GetUserPoolMfaConfig "$work/get.bin"
  facade_us=$(us_per_call $(( $(ticks "$sdk_pid") - t0 )) "$ok")
  echo "facade -> stub round $round: $rps req/s, p50 $p50 ms, p99 $p99 ms ($ok OK by the facade's count; facade process $facade_us us CPU a call)"
  sdk_facade+=("$rps")
  # The direct client, and the facade's backend alone (its SDK client as
  # `serve` builds it, no gRPC server): CPU per call from their rusage.
  cpu_of() { /usr/bin/time -f '%U %S' -o "$work/time" "$@" >"$work/tool.out"; cat "$work/tool.out";
    python3 -c "import sys; u, s = map(float, open(sys.argv[1]).read().split()); print(f'{(u + s) * 1e6 / int(sys.argv[2]):.1f}')" "$work/time" "$SDK_CALLS" >"$work/us"; }
  d=$(cpu_of "$EX/tools" sdk "http://127.0.0.1:$stub_port" us-east-1_Stub1 "$SDK_CALLS" "$concurrency"); direct_us=$(cat "$work/us")
  echo "direct SDK -> stub round $round: $d ($direct_us us CPU a call)"
  b=$(cpu_of "$EX/tools" backend "http://127.0.0.1:$stub_port" us-east-1_Stub1 "$SDK_CALLS" "$concurrency"); backend_us=$(cat "$work/us")
  echo "the facade's backend alone -> stub round $round: $b ($backend_us us CPU a call)"
  sdk_direct+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["calls_per_second"])' "$d")")
  sdk_cpu+=("$facade_us:$direct_us:$backend_us")
done

summary=$(python3 - "${rows[full_GetUserPoolMfaConfig]}" "${rows[base_GetUserPoolMfaConfig]}" \
  "${rows[full_SetUserPoolMfaConfig]}" "${rows[base_SetUserPoolMfaConfig]}" \
  "${sdk_facade[*]}" "${sdk_direct[*]}" "$footprint" "$before_rss" "$after_rss" \
  "${rows[noaudit_GetUserPoolMfaConfig]}" "$((CONNECTIONS * STREAMS))" "${sdk_cpu[*]}" <<'PY'
import json, statistics as st, sys
def runs(s): return [tuple(map(float, r.split(":"))) for r in s.split()]
def med(rs, i): return st.median(r[i] for r in rs)
out = []
for name, f, b in (("GetUserPoolMfaConfig", sys.argv[1], sys.argv[2]), ("SetUserPoolMfaConfig", sys.argv[3], sys.argv[4])):
    f, b = runs(f), runs(b)
    out.append(f"- {name}: full stack {med(f,0):.0f} req/s (p50 {med(f,1):.2f} ms, p99 {med(f,2):.2f} ms), "
               f"bare tonic {med(b,0):.0f} req/s (p50 {med(b,1):.2f} ms, p99 {med(b,2):.2f} ms); "
               f"ratio {med(f,0)/med(b,0):.2f}x" + (" (target 0.75x)" if name.startswith("Get") else ""))
    # Server and h2load share the cores: when both are busy, the ratio of
    # throughputs is about the inverse ratio of their summed CPU a call.
    out.append(f"  - CPU a call (server + h2load): full stack {med(f,3):.1f} + {med(f,4):.1f} us, "
               f"bare tonic {med(b,3):.1f} + {med(b,4):.1f} us; server ratio {med(f,3)/med(b,3):.2f}x, "
               f"the throughput those sums allow {(med(b,3)+med(b,4))/(med(f,3)+med(f,4)):.2f}x")
    if name == "SetUserPoolMfaConfig":
        out.append(f"  - writes through the local backend with fail_closed audit at {int(sys.argv[11])} in flight: "
                   f"{med(f,0):.0f} writes/s (target 5,000), p99 {med(f,2):.2f} ms (target 20)")
    if name == "GetUserPoolMfaConfig":
        n = runs(sys.argv[10])
        out.append(f"  - the same facade without audit: {med(n,0):.0f} req/s (p50 {med(n,1):.2f} ms, p99 {med(n,2):.2f} ms); "
                   f"ratio {med(n,0)/med(b,0):.2f}x; CPU a call {med(n,3):.1f} + {med(n,4):.1f} us")
sf = st.median(map(float, sys.argv[5].split())); sd = st.median(map(float, sys.argv[6].split()))
out.append(f"- SDK path: facade -> stub {sf:.0f} req/s, direct SDK -> stub {sd:.0f} calls/s; ratio {sf/sd:.2f}x (target 0.85x)")
c = runs(sys.argv[12])
out.append(f"  - CPU a call: the facade process {med(c,0):.1f} us, a direct SDK client {med(c,1):.1f} us, "
           f"the facade's cognito backend alone (its SDK client, no gRPC server) {med(c,2):.1f} us")
fp = json.loads(sys.argv[7])
out.append(f"- Footprint: start to SERVING {fp['serving_ms']:.1f} ms (target 100), idle RSS {fp['idle_rss_kib']/1024:.1f} MiB (target 15), "
           f"RSS {int(sys.argv[8])/1024:.1f} MiB before and {int(sys.argv[9])/1024:.1f} MiB after 100,000 calls")
print("\n".join(out))
PY
)
echo "$summary"
{
  echo "## Stack: the facade against bare tonic and a direct SDK client ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo +changes))"
  echo
  echo "Command: \`bench/stack.sh\` (DURATION=${DURATION}s per run, h2load -c $CONNECTIONS -m $STREAMS -t 1, A/B in $ROUNDS rounds, medians,"
  echo "release build, loopback; SDK path: $SDK_CALLS direct calls at concurrency $concurrency)."
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB."
  echo
  echo "$summary"
} > "$work/report.md"
record_results "$work/report.md"
