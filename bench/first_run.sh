#!/usr/bin/env bash
# The README's two commands on a fresh clone, as a new user meets them
# (crates already downloaded, no target directory): how long
# `cargo run -- serve` takes to print its first grpcurl commands (a build
# of the dev profile, then the start), and how long the release build of
# `scripts/test.sh` takes after it (a second, separate build of the SDK).
# Prints both and inserts them at the top of bench/RESULTS.md.
#
#   bench/first_run.sh          # ~12 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
rev=$(git rev-parse --short HEAD)
dir=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
git clone -q . "$dir/clone"
cd "$dir/clone"
cargo fetch --locked -q

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }
mins() { awk -v s="$1" 'BEGIN { printf "%d m %02d s", s / 60, s % 60 }'; }

# 1. cargo run -- serve, until the banner's "Try it" line.
t0=$(now)
cargo build --locked -q --bin mfa-facade
t1=$(now)
MFA_FACADE_LISTEN=127.0.0.1:0 MFA_FACADE_METRICS_LISTEN=127.0.0.1:0 \
  ./target/debug/mfa-facade serve > "$dir/banner" 2> /dev/null &
server=$!
for _ in $(seq 1 200); do grep -q "Try it" "$dir/banner" && break; sleep 0.05; done
t2=$(now)
kill "$server"; wait "$server" 2>/dev/null || true
grep -q "Try it" "$dir/banner" || { echo "the server printed no banner" >&2; exit 1; }

# 2. scripts/test.sh's build: the same sources, the release profile.
t3=$(now)
cargo build --locked -q --release --bins --tests
t4=$(now)

debug=$(secs "$t0" "$t1"); first=$(secs "$t0" "$t2"); release=$(secs "$t3" "$t4")
summary="- \`cargo run -- serve\` to its first grpcurl commands: $(mins "$first") (the dev-profile build $(mins "$debug"), then the start)
- then the release build of \`scripts/test.sh\` (bins and tests): $(mins "$release")
- both, in a row, as a new user runs them: $(mins "$((first + release))")"
echo "$summary"

cd - > /dev/null
section="## First run on a fresh clone ($(date -u +%Y-%m-%d), $rev)

Command: \`bench/first_run.sh\` (a clone of HEAD, crates downloaded, no target directory; 2 cores).

$summary
"
python3 - "$section" <<'PY'
import sys
path = "bench/RESULTS.md"
text = open(path).read()
head, sep, rest = text.partition("\n## ")
open(path, "w").write(head + "\n" + sys.argv[1] + "\n## " + rest if sep else text + "\n" + sys.argv[1])
PY
