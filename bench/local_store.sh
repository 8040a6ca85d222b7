#!/usr/bin/env bash
# The local backend's store at scale (issue 34): a write must cost the same
# at USERS users as at one. One run, one machine, ratios within the run:
#
# 1. AdminSetUserMfaPreference and SetUserPoolMfaConfig, h2load at
#    CONNECTIONS x STREAMS in flight for DURATION s, on a pool of 1 user and
#    on a pool of USERS users (filled through the fixtures service, 1,000 a
#    call), alternating for ROUNDS rounds; medians, and their ratio.
# 2. AdminSetUserMfaPreference through the full stack with audit to a file,
#    fail_closed, on the large pool: rate and p99.
# 3. RSS of that server; start to SERVING on the large file and the idle RSS
#    of a fresh start (bench/tools.rs startup); a coverage walk over the
#    large pool on a fresh server with the walk's quota share lifted, and
#    how much its RSS grew (VmHWM after - VmRSS before).
#
#   bench/local_store.sh                 # USERS=100000, ~4 min on 2 cores
#   USERS=10000 ROUNDS=1 bench/local_store.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

USERS="${USERS:-100000}"
DURATION="${DURATION:-4}"
CONNECTIONS="${CONNECTIONS:-4}"
STREAMS="${STREAMS:-16}"
ROUNDS="${ROUNDS:-3}"

source bench/lib.sh
cargo build --quiet --release --example tools
EX="$root/target/release/examples"
U=cognito.mfa.v1.UserMfaService

data="$work/data"
mkdir -p "$data"
local_stack() { printf '[backend]\nkind = "local"\ndata_file = "%s/store.db"\n%s\n' "$data" "${1:-}"; }
mport() { grep -o 'metrics_listen = "127.0.0.1:[0-9]*"' "$work/$1/config.toml" | grep -o '[0-9]*"$' | tr -d '"'; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# --- the two pools ---------------------------------------------------------
start_facade plain "$(local_stack)"; port=$FACADE_PORT; plain_pid=${pids[-1]}
small=$(local_pool "$port")
large=$(local_pool "$port")
fill_started=$(date +%s.%N)
python3 - "$large" "$USERS" <<'PY' | while read -r batch; do
import json, sys
pool, n = sys.argv[1], int(sys.argv[2]) - 1  # bench-user is the first
for start in range(0, n, 1000):
    users = [{"username": f"u{i:07d}", "attributes": {"phone_number": "+15555550100", "email": f"u{i}@example.com"}}
             for i in range(start, min(n, start + 1000))]
    print(json.dumps({"user_pool_id": pool, "users": users}))
PY
  printf '%s' "$batch" | grpcurl -plaintext -H "x-api-key: $KEY" -d @ "127.0.0.1:$port" \
    cognito.mfa.dev.v1.LocalFixturesService/CreateUsers >/dev/null
done
fill_s=$(python3 -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$fill_started")
file_mib=$(du -m "$data/store.db" | cut -f1)
echo "filled a pool with $USERS users in $fill_s s; the database is $file_mib MiB"
mkdir -p "$work/small" "$work/large"
"$EX/tools" bodies "$work/small" "$small"
"$EX/tools" bodies "$work/large" "$large"

# --- 1. a write at 1 user and at USERS users ---------------------------------
declare -A rows
for round in $(seq 1 "$ROUNDS"); do
  order="small large"; [ $((round % 2)) = 0 ] && order="large small"
  for m in AdminSetUserMfaPreference SetUserPoolMfaConfig; do
    for side in $order; do
      if [ "$m" = SetUserPoolMfaConfig ]; then
        checked_h2 "$side $m" "$port" "$(mport plain)" "$m" "$work/$side/set.bin"
      else
        P=$U checked_h2 "$side $m" "$port" "$(mport plain)" "$m" "$work/$side/pref.bin"
      fi
      echo "$m, pool of $([ "$side" = small ] && echo 1 || echo "$USERS"): $rps req/s, p50 $p50 ms, p99 $p99 ms"
      rows[${side}_$m]+="$rps "
    done
  done
done
plain_rss=$(status_kib "$plain_pid" VmRSS)
kill "$plain_pid"; wait "$plain_pid" 2>/dev/null || true

# --- 2. the full stack with fail-closed audit --------------------------------
start_facade audited "$(local_stack "$(printf '[audit]\nfile = "%s/audit.jsonl"\nfsync = "group"\nfail_closed = true\nmax_file_bytes = 1073741824\n' "$work/audited")")"
aport=$FACADE_PORT; audited_pid=${pids[-1]}
P=$U checked_h2 "audited" "$aport" "$(mport audited)" AdminSetUserMfaPreference "$work/large/pref.bin"
audited="$rps req/s, p50 $p50 ms, p99 $p99 ms"
audited_rps=$rps; audited_p99=$p99
audited_rss=$(status_kib "$audited_pid" VmRSS)
kill "$audited_pid"; wait "$audited_pid" 2>/dev/null || true
echo "full stack, audit fail_closed, pool of $USERS: $audited; RSS $((audited_rss / 1024)) MiB"

# --- 3. start, idle RSS, the walk --------------------------------------------
{ local_stack; common_config; } >"$work/startup.toml"
start_json=$("$EX/tools" startup "$BIN" "$work/startup.toml")
mkdir -p "$work/fresh"; { printf '[backend]\nkind = "local"\ndata_file = "%s/fresh.db"\n' "$work/fresh"; common_config; } >"$work/fresh.toml"
fresh_json=$("$EX/tools" startup "$BIN" "$work/fresh.toml")
# The walk paces itself to its share of the UserList and UserRead quotas:
# lifted here, to measure the store, not the pacing.
QUOTA_EXTRA=$'user_list = 1000000\nuser_read = 1000000' \
  start_facade walker "$(local_stack "$(printf '[limits.walk]\nshare = 1.0\nmax_seconds = 3600\n')")"
wport=$FACADE_PORT; walker_pid=${pids[-1]}
before=$(status_kib "$walker_pid" VmRSS)
walk_started=$(date +%s.%N)
walked=$(grpcurl -plaintext -max-msg-sz 67108864 -max-time 600 -H "x-api-key: $KEY" -d "{\"user_pool_id\":\"$large\"}" \
  "127.0.0.1:$wport" cognito.mfa.v1.UserPoolMfaService/ListUserMfaStatus | grep -c '"username"' || true)
walk_s=$(python3 -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$walk_started")
hwm=$(status_kib "$walker_pid" VmHWM)
kill "$walker_pid"; wait "$walker_pid" 2>/dev/null || true

summary=$(python3 - "$USERS" "${rows[small_AdminSetUserMfaPreference]}" "${rows[large_AdminSetUserMfaPreference]}" \
  "${rows[small_SetUserPoolMfaConfig]}" "${rows[large_SetUserPoolMfaConfig]}" \
  "$audited_rps" "$audited_p99" "$audited_rss" "$plain_rss" "$start_json" "$fresh_json" \
  "$walked" "$walk_s" "$before" "$hwm" "$fill_s" "$file_mib" <<'PY'
import json, statistics as st, sys
a = sys.argv[1:]
n = int(a[0])
med = lambda s: st.median(float(x) for x in s.split())
ps, pl, ss, sl = med(a[1]), med(a[2]), med(a[3]), med(a[4])
arps, ap99, arss, prss = float(a[5]), float(a[6]), int(a[7]), int(a[8])
start, fresh = json.loads(a[9]), json.loads(a[10])
walked, walk_s, before, hwm = int(a[11]), a[12], int(a[13]), int(a[14])
print(f"- AdminSetUserMfaPreference: {ps:.0f} req/s with 1 user in the pool, {pl:.0f} with {n:,}: **{pl/ps:.2f}x** (target >= 0.5x)")
print(f"- SetUserPoolMfaConfig: {ss:.0f} req/s on a pool of 1 user, {sl:.0f} on a pool of {n:,}: **{sl/ss:.2f}x** (target >= 0.5x)")
print(f"- full stack with audit (file, fail_closed), pool of {n:,}: **{arps:.0f} req/s, p99 {ap99:.2f} ms** (targets >= 10,000/s, <= 20 ms)")
print(f"- RSS with {n:,} users: {prss/1024:.1f} MiB after the runs without audit, {arss/1024:.1f} MiB with audit (target <= 64)")
print(f"- start to SERVING on the {n:,}-user file: **{start['serving_ms']:.0f} ms** (target <= 200); idle RSS then {start['idle_rss_kib']/1024:.1f} MiB")
print(f"- idle RSS of a fresh start (new data file), target/release: {fresh['idle_rss_kib']/1024:.1f} MiB (the target, <= 15, is the shipped binary's: bench/idle_rss.sh)")
print(f"- coverage walk over the pool, quota share lifted: {walked:,} users in {walk_s} s; RSS grew by **{(hwm-before)/1024:.1f} MiB** (VmHWM {hwm/1024:.1f} - VmRSS before {before/1024:.1f}; target <= 8)")
print(f"- filling the pool through the fixtures service (1,000 users a call): {a[15]} s; the database: {a[16]} MiB")
PY
)
echo "$summary"

cat >"$work/section.md" <<EOF
## The local store at scale ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes))

Command: \`bench/local_store.sh\` (USERS=$USERS, DURATION=${DURATION}s per run, h2load -c $CONNECTIONS -m $STREAMS -t 1,
ROUNDS=$ROUNDS alternating, medians; release binary, local backend (SQLite), no audit unless said; 2 cores).

$summary
EOF
record_results "$work/section.md"
