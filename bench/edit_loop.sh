#!/usr/bin/env bash
# The edit-compile-test loop: wall time from a one-line change in a stage
# (the expression of a constant in src/limits/local.rs, a change of code
# that incremental compilation cannot skip as it would a comment; taken
# back on exit) to that
# stage's unit tests passing, and to one integration test passing, in the
# profile CI builds (release). Each is run ROUNDS times, alternating with a
# no-change run (a warm rebuild that does nothing) as the baseline measured
# in the same run; prints the medians and appends them to bench/RESULTS.md
# unless NO_RECORD=1. Bounded: fixed rounds; the file is restored on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
FILE=src/limits/local.rs
cp "$FILE" "$FILE.edit-loop.bak"
restore() { mv -f "$FILE.edit-loop.bak" "$FILE"; }
trap restore EXIT

unit=(cargo nextest run --release --lib -E 'test(/^limits::local::/)')
integration=(cargo nextest run --release --test integration -E 'test(=local_rules::fixtures_check_their_input)')
export MFA_FACADE_TEST_LOG_DIR="${MFA_FACADE_TEST_LOG_DIR:-$(mktemp -d)}"


seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); python3 -c "print(f'{$t1 - $t0:.1f}')"; }
edit() {
  sed -i "s/^const MIN_RETRY_AFTER: std::time::Duration = .*/const MIN_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(1 + 0 * $RANDOM);/" "$FILE"
  grep -q "from_millis(1 + 0 \\* " "$FILE" || { echo "edit_loop: the edit did not apply" >&2; exit 1; }
}

declare -A runs
# Each timed run starts from its own target built (untimed), so "no
# change" is the loop's floor and "change" what one edit costs.
for round in $(seq 1 "$ROUNDS"); do
  "${unit[@]}" >/dev/null 2>&1
  runs[unit_none]+=" $(seconds "${unit[@]}")"
  edit; runs[unit_edit]+=" $(seconds "${unit[@]}")"
  "${integration[@]}" >/dev/null 2>&1
  runs[int_none]+=" $(seconds "${integration[@]}")"
  edit; runs[int_edit]+=" $(seconds "${integration[@]}")"
done
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.1f}')" $1; }

commit=$(git rev-parse --short HEAD)
report=$(cat <<EOF
## The edit-compile-test loop ($(date -u +%Y-%m-%d), $commit)

Command: \`bench/edit_loop.sh\` ($ROUNDS rounds; a one-line change to $FILE, release profile as CI
builds, $(nproc) cores; linker: ${RUSTFLAGS:-the default (cc, GNU ld)}; medians, seconds).

- change -> \`limits::local\` unit tests pass: $(median "${runs[unit_edit]}") s (no change: $(median "${runs[unit_none]}") s; runs:${runs[unit_edit]})
- change -> one integration test passes: $(median "${runs[int_edit]}") s (no change: $(median "${runs[int_none]}") s; runs:${runs[int_edit]})
EOF
)
echo "$report"
if [ "${NO_RECORD:-0}" != 1 ]; then
  BENCH_ROOT=$PWD
  tmp=$(mktemp); printf '%s\n' "$report" >"$tmp"
  # record_results without the rest of lib.sh (no servers, no tools to install).
  eval "$(sed -n '/^record_results() {/,/^}/p' bench/lib.sh)"
  record_results "$tmp"; rm -f "$tmp"
fi
