#!/usr/bin/env bash
# What the S3 sink costs against the file sink, on moto's S3 (Object Lock
# bucket) on loopback. Two facades that differ only in their audit sink:
#   file  [audit] file, fail_closed (group commit, fsync)
#   s3    [audit.s3] into an Object Lock bucket on moto, fail_closed, flush_ms 200
# Both: local backend, signed checkpoints. Measured in one run, A/B/A/B:
#   - a change's latency (SetUserPoolMfaConfig and AdminSetUserMfaPreference,
#     one at a time: p50 and p99 of $LAT_CALLS calls);
#   - reads' throughput ($READ_CALLS Get/AdminGet at concurrency 32), whose
#     records wait up to flush_ms to share a put: the ratio s3/file.
# Then `audit verify` over the bucket. Prints the ratios and appends them to
# bench/RESULTS.md unless NO_RECORD=1. Bounded: fixed call counts, and the
# servers and moto are killed at exit. moto's S3 is a Python server: its
# latency is not AWS's (single-digit ms in-Region), and its CPU per put is
# far more than S3's costs us, so the facades run on core 0 and moto and the
# load client on core 1 (taskset): the reads' ratio is then the facade's own
# cost of the sink, not moto's CPU taken from it.
set -euo pipefail
cd "$(dirname "$0")/.."

LAT_CALLS="${LAT_CALLS:-300}"
READ_CALLS="${READ_CALLS:-20000}"
python3 -m pip install --quiet --disable-pip-version-check "moto[server]==5.2.5"
source bench/lib.sh
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1

moto_port=$(free_port)
taskset -c 1 python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=("$!")
wait_port "$moto_port"
MOTO="http://127.0.0.1:$moto_port"
BUCKET="bench-audit"
python3 - "$MOTO" "$BUCKET" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
s3.create_bucket(Bucket=sys.argv[2], ObjectLockEnabledForBucket=True)
s3.put_object_lock_configuration(Bucket=sys.argv[2], ObjectLockConfiguration={
    "ObjectLockEnabled": "Enabled",
    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
PY
"$BIN" audit keygen "$work/signing.pem" >/dev/null

start() { # start NAME SINK_TOML
  start_facade "$1" "[backend]
kind = \"local\"
data_file = \"$work/$1/data.json\"

[audit]
fail_closed = true
source = \"bench-$1\"
$2

[audit.signing]
key_file = \"$work/signing.pem\""
}
start file "file = \"$work/file/audit.jsonl\""; file_port=$FACADE_PORT; taskset -pc 0 "${pids[-1]}" >/dev/null
start s3 "[audit.s3]
bucket = \"$BUCKET\"
prefix = \"bench/\"
region = \"us-east-1\"
endpoint_url = \"$MOTO\"
force_path_style = true
flush_ms = 200"; s3_port=$FACADE_PORT; taskset -pc 0 "${pids[-1]}" >/dev/null
file_pool=$(local_pool "$file_port")
s3_pool=$(local_pool "$s3_port")

run() { taskset -c 1 "$CALLS_BIN" --addr "http://127.0.0.1:$1" --key "$KEY" --pool "$2" --user bench-user "${@:3}"; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

fp50=(); fp99=(); sp50=(); sp99=(); fr=(); sr=()
for round in 1 2; do
  f=$(run "$file_port" "$file_pool" --calls "$LAT_CALLS" --concurrency 1 --mix writes); echo "file, changes one at a time, round $round: $f"
  s=$(run "$s3_port" "$s3_pool" --calls "$LAT_CALLS" --concurrency 1 --mix writes); echo "s3,   changes one at a time, round $round: $s"
  fp50+=("$(field "$f" p50_ms)"); fp99+=("$(field "$f" p99_ms)"); sp50+=("$(field "$s" p50_ms)"); sp99+=("$(field "$s" p99_ms)")
  f=$(run "$file_port" "$file_pool" --calls "$READ_CALLS" --concurrency 32 --mix reads); echo "file, reads at 32, round $round: $f"
  s=$(run "$s3_port" "$s3_pool" --calls "$READ_CALLS" --concurrency 32 --mix reads); echo "s3,   reads at 32, round $round: $s"
  fr+=("$(field "$f" calls_per_second)"); sr+=("$(field "$s" calls_per_second)")
done
sleep 1
verified=$("$BIN" audit verify --public-key "$work/signing.pem.pub" --s3-endpoint-url "$MOTO" --s3-path-style "s3://$BUCKET/bench/" | tail -1)
echo "audit verify s3://$BUCKET/bench/: $verified"
case "$verified" in OK:*) ;; *) echo "the bucket does not verify" >&2; exit 1 ;; esac

summary=$(python3 - "$(median "${fp50[@]}")" "$(median "${fp99[@]}")" "$(median "${sp50[@]}")" "$(median "${sp99[@]}")" "$(median "${fr[@]}")" "$(median "${sr[@]}")" <<'PY'
import sys
fp50, fp99, sp50, sp99, fr, sr = map(float, sys.argv[1:])
print(f"- a change, one at a time (p50 / p99): file {fp50:.2f} / {fp99:.2f} ms, S3 {sp50:.2f} / {sp99:.2f} ms "
      f"(+{sp50 - fp50:.2f} ms at p50, {sp50 / fp50:.1f}x)")
print(f"- reads at concurrency 32: file {fr:.0f}/s, S3 {sr:.0f}/s: **{sr / fr:.2f}x** (target >= 0.9x)")
PY
)
echo "$summary"
if [ "${NO_RECORD:-0}" != 1 ]; then
  python3 - "$summary" "$LAT_CALLS" "$READ_CALLS" "$verified" "$(git rev-parse --short HEAD)" <<'PY'
import sys, datetime, pathlib
summary, lat, reads, verified, rev = sys.argv[1:]
p = pathlib.Path("bench/RESULTS.md")
text = p.read_text()
head, rest = text.split("\n## ", 1)
section = (f"## The S3 audit sink against the file sink ({datetime.date.today()}, {rev}+changes)\n\n"
           f"Command: `bench/audit_s3.sh` (LAT_CALLS={lat} changes one at a time, READ_CALLS={reads} reads at "
           f"concurrency 32, A/B/A/B, medians; moto's S3 with Object Lock on loopback, fail_closed, signed "
           f"checkpoints, flush_ms 200).\n\n{summary}\n- the bucket afterwards: `{verified}`\n")
p.write_text(head + "\n" + section + "\n## " + rest)
PY
fi
