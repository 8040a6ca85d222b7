#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of every request
# type (decode -> validate -> conversion -> audit record, through the
# service methods on the local backend), `audit verify`'s parser and the
# config loader. Not part of CI: the instrumented build of the SDK costs
# minutes. Runs each target for RUNS executions (default 1,000,000), prints
# libFuzzer's final counts, and records them in fuzz/RESULTS.md.
#
#   scripts/fuzz.sh                 # every target
#   RUNS=100000 scripts/fuzz.sh config audit_verify
#
# On the stable toolchain: no sanitizer (`-s none`: ASan needs nightly's
# -Zsanitizer), and RUSTC_BOOTSTRAP=1 so that stable rustc takes any
# unstable flag cargo-fuzz passes (the recorded runs were made so; not tried
# without it). The coverage instrumentation (sancov) is a stable codegen
# option. A crash or a panic stops the run with the input under
# fuzz/artifacts/. The instrumented build took 28 min here, the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION="0.13.2"
RUNS="${RUNS:-1000000}"
MAX_LEN="${MAX_LEN:-4096}"
TARGETS=(api get_user_pool_mfa_config set_user_pool_mfa_config update_user_pool_mfa_config
  set_user_mfa_preference admin_set_user_mfa_preference associate_software_token
  verify_software_token get_user_mfa_settings admin_get_user_mfa_settings
  admin_delete_software_token check_user_pool_mfa_config get_user_auth_factors
  admin_get_user_auth_factors list_web_authn_credentials delete_web_authn_credential
  list_user_mfa_status walk_cursor audit_verify config)
[ "$#" -gt 0 ] && TARGETS=("$@")

if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export RUSTC_BOOTSTRAP=1

cargo fuzz build -s none --release
results=()
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log="target/fuzz-$t.log"
  mkdir -p target
  echo "==> $t: $RUNS runs"
  start=$SECONDS
  cargo fuzz run -s none --release "$t" "fuzz/corpus/$t" -- \
    -runs="$RUNS" -max_len="$MAX_LEN" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || {
    echo "FAILED: $t (see $log and fuzz/artifacts/$t/)"; tail -30 "$log"; exit 1; }
  execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  peak=$(awk '/stat::peak_rss_mb/ {print $NF}' "$log" | tail -1)
  secs=$((SECONDS - start))
  echo "    $execs executions, coverage $cov, peak RSS ${peak} MB, ${secs} s, no crash"
  results+=("| $t | $execs | $cov | $peak | $secs |")
done

{
  echo "## $(date -u +%Y-%m-%d) — scripts/fuzz.sh, RUNS=$RUNS, max_len $MAX_LEN, $(nproc) cores"
  echo
  echo "| target | executions | coverage (edges) | peak RSS MB | seconds |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${results[@]}"
  echo
  echo "No crash, panic, leak report or timeout in any target."
  echo
  [ -f fuzz/RESULTS.md ] && sed '1,/^# /d' fuzz/RESULTS.md | sed '/./,$!d' || true
} >target/fuzz-results.md
{ echo "# Fuzzing runs, latest first"; echo; cat target/fuzz-results.md; } >fuzz/RESULTS.md
echo "recorded in fuzz/RESULTS.md"
