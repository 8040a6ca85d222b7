#!/usr/bin/env bash
# Idle RSS of a fresh start (a new local data file), the binary CI tests
# (target/release) against the one we ship (scripts/build-dist.sh: fat LTO,
# and the functions a start runs placed together by
# deploy/link/startup-order.txt). ROUNDS alternating starts each, medians
# (bench/tools.rs startup: SERVING, then the RSS after 1 s idle); records
# into bench/RESULTS.md.
#
# REORDER=1 first writes deploy/link/startup-order.txt afresh: the functions
# one start of the dist binary runs (to SERVING and one health check), in
# the order callgrind first meets them. Regenerate it when the startup code
# changed much: a stale order is harmless (unknown names are skipped), only
# less effective.
#
# Where the RSS goes: the binary's code pages a start touches. The kernel
# maps a 64 KiB window around each code fault (fault-around), so scattered
# startup code maps far more than it runs; fat LTO shrinks the text by a
# quarter, and the order puts what a start runs in a few windows.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
source bench/lib.sh
cargo build --quiet --release --example tools
TOOLS="$PWD/target/release/examples/tools"
DIST="$PWD/target/dist/mfa-facade"

fresh_config() { # $1: the data directory
  printf '[backend]\nkind = "local"\ndata_file = "%s/data.db"\n' "$1"
  common_config
}

if [ "${REORDER:-0}" = 1 ]; then
  command -v valgrind >/dev/null || {
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
  }
  scripts/build-dist.sh
  mkdir -p "$work/order"; fresh_config "$work/order" >"$work/order.toml"
  port=$(free_port)
  MFA_FACADE_LISTEN="127.0.0.1:$port" MFA_FACADE_METRICS_LISTEN="127.0.0.1:0" RUST_LOG=warn \
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.out" \
    "$DIST" serve --config "$work/order.toml" >"$work/vg.log" 2>&1 &
  vg=$!
  for _ in $(seq 1 600); do
    grpcurl -plaintext -max-time 2 "127.0.0.1:$port" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING && break
    sleep 0.1
  done
  kill -INT "$vg"; wait "$vg" || true
  python3 - "$work/cg.out" deploy/link/startup-order.txt <<'PY'
import re, sys
names, order, seen = {}, [], set()
for line in open(sys.argv[1]):
    m = re.match(r'^c?fn=\((\d+)\)(?: (.*))?$', line.strip())
    if not m:
        continue
    if m.group(2):
        names[m.group(1)] = m.group(2)
    n = names.get(m.group(1))
    if n and n not in seen and re.match(r'^(_ZN|_R|[A-Za-z_][A-Za-z0-9_]*$)', n):
        seen.add(n); order.append(n)
open(sys.argv[2], 'w').write('\n'.join(order) + '\n')
print(f"deploy/link/startup-order.txt: {len(order)} functions")
PY
fi
scripts/build-dist.sh

declare -A rss ms
for r in $(seq 1 "$ROUNDS"); do
  for which in release dist; do
    bin=$BIN; [ "$which" = dist ] && bin=$DIST
    d="$work/$which-$r"; mkdir -p "$d"; fresh_config "$d" >"$d.toml"
    out=$("$TOOLS" startup "$bin" "$d.toml")
    rss[$which]+="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["idle_rss_kib"])' "$out") "
    ms[$which]+="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["serving_ms"])' "$out") "
  done
done
summary=$(python3 - "${rss[release]}" "${rss[dist]}" "${ms[release]}" "${ms[dist]}" "$(stat -c %s "$BIN")" "$(stat -c %s "$DIST")" <<'PY'
import statistics as st, sys
med = lambda s: st.median(float(x) for x in s.split())
rr, rd, mr, md = (med(x) for x in sys.argv[1:5])
sr, sd = int(sys.argv[5]), int(sys.argv[6])
print(f"- target/release (CI's): idle RSS **{rr/1024:.1f} MiB**, SERVING in {mr:.0f} ms; binary {sr/2**20:.1f} MiB")
print(f"- target/dist (shipped: scripts/build-dist.sh): idle RSS **{rd/1024:.1f} MiB** (target <= 15), SERVING in {md:.0f} ms; binary {sd/2**20:.1f} MiB")
print(f"- dist / release: **{rd/rr:.2f}x** the RSS")
PY
)
echo "$summary"
cat >"$work/section.md" <<EOF2
## Idle RSS of a fresh start (${ROUNDS} starts each, $(date -u +%Y-%m-%d), $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes))

Command: \`bench/idle_rss.sh\` (alternating starts on a new local data file, medians; bench/tools.rs startup;
2 cores).

$summary
EOF2
record_results "$work/section.md"
