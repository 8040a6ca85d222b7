#!/usr/bin/env bash
# What the hardening (issue 15: transport limits, load shedding, the door
# budget, bounded records and statuses, the codec's wire counts) costs a
# well-behaved caller: the full stack built from this tree against the same
# stack built from BASE (default bb2ac45, the last commit before it), in one
# run, A/B/A/B, with h2load on GetUserPoolMfaConfig and SetUserPoolMfaConfig
# (same config: API key, policy, limits too high to refuse, audit with group
# commit and fail_closed, the local backend). Prints req/s, p50, p99 and the
# ratio new/old; appends them to bench/RESULTS.md. Bounded: fixed durations.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

BASE="${BASE:-bb2ac45}"
DURATION="${DURATION:-6}"
CONNECTIONS="${CONNECTIONS:-4}"
STREAMS="${STREAMS:-16}"
ROUNDS="${ROUNDS:-3}"

source bench/lib.sh
cargo build --quiet --release --example tools
EX="$root/target/release/examples"
NEW_BIN="$BIN"

# The base binary, built once per BASE in a copy of target/ (so only the
# facade crate compiles, not the SDK again).
base_rev=$(git rev-parse "$BASE")
base_target="$root/target/bench-base"
if [ "$(cat "$base_target/rev" 2>/dev/null)" != "$base_rev" ]; then
  [ -d "$base_target/release" ] || { mkdir -p "$base_target"; cp -a "$root/target/release" "$base_target/release"; }
  git worktree add --detach "$work/base-src" "$base_rev" >/dev/null
  (cd "$work/base-src" && cargo build --quiet --release --bin mfa-facade --target-dir "$base_target")
  git worktree remove --force "$work/base-src"
  echo "$base_rev" >"$base_target/rev"
fi
OLD_BIN="$base_target/release/mfa-facade"

stack() { # the config both facades share; $1 is its directory
  printf '[backend]\nkind = "local"\ndata_file = "%s/data.json"\n\n[audit]\nfile = "%s/audit.jsonl"\nfsync = "group"\nfail_closed = true\nmax_file_bytes = 1073741824\n' "$1" "$1"
}
mport() { grep -o 'metrics_listen = "127.0.0.1:[0-9]*"' "$work/$1/config.toml" | grep -o '[0-9]*"$' | tr -d '"'; }

BIN="$NEW_BIN"; start_facade new "$(stack "$work/new")"; new_port=$FACADE_PORT
pool=$(local_pool "$new_port")
mkdir -p "$work/old" && cp "$work/new/data.json" "$work/old/data.json"
BIN="$OLD_BIN"; start_facade old "$(stack "$work/old")"; old_port=$FACADE_PORT
"$EX/tools" bodies "$work" "$pool"

declare -A rows
for m in GetUserPoolMfaConfig SetUserPoolMfaConfig; do
  body="$work/get.bin"; [ "$m" = SetUserPoolMfaConfig ] && body="$work/set.bin"
  for round in $(seq 1 "$ROUNDS"); do
    # The order alternates by round, so neither side always goes first.
    order="new old"; [ $((round % 2)) = 0 ] && order="old new"
    for side in $order; do
      port=$new_port; [ "$side" = old ] && port=$old_port
      checked_h2 "$side $m" "$port" "$(mport "$side")" "$m" "$body"
      echo "$side $m round $round: $rps req/s, p50 $p50 ms, p99 $p99 ms ($ok OK by the facade's count)"
      rows[${side}_$m]+="$rps:$p50:$p99 "
    done
  done
done

summary=$(python3 - "${rows[new_GetUserPoolMfaConfig]}" "${rows[old_GetUserPoolMfaConfig]}" \
  "${rows[new_SetUserPoolMfaConfig]}" "${rows[old_SetUserPoolMfaConfig]}" <<'PY'
import statistics as st, sys
def runs(s): return [tuple(map(float, r.split(":"))) for r in s.split()]
def med(rs, i): return st.median(r[i] for r in rs)
for name, n, o in (("GetUserPoolMfaConfig", sys.argv[1], sys.argv[2]), ("SetUserPoolMfaConfig", sys.argv[3], sys.argv[4])):
    n, o = runs(n), runs(o)
    print(f"- {name}: hardened {med(n,0):.0f} req/s (p50 {med(n,1):.2f} ms, p99 {med(n,2):.2f} ms), "
          f"before {med(o,0):.0f} req/s (p50 {med(o,1):.2f} ms, p99 {med(o,2):.2f} ms); ratio {med(n,0)/med(o,0):.2f}x "
          f"(per-round ratios {', '.join(f'{a[0]/b[0]:.2f}' for a, b in zip(n, o))})")
PY
)
echo "$summary"
{
  echo
  echo "## Hardening: the full stack against itself before issue 15 ($(date -u +%Y-%m-%d))"
  echo
  echo "Command: \`bench/hardening.sh\` (BASE=$BASE, DURATION=${DURATION}s per run, h2load -c $CONNECTIONS -m $STREAMS -t 1,"
  echo "$ROUNDS rounds of new/old alternating, medians; release build, loopback, $(nproc) cores)."
  echo
  echo "$summary"
} >>"$root/bench/RESULTS.md.new"
record_results "$root/bench/RESULTS.md.new"
rm -f "$root/bench/RESULTS.md.new"
