# Shared by the bench scripts: ports, a release build, and facades started
# from a config file with one API key that may call everything and limits
# high enough never to refuse. Source it; it sets BIN, CALLS_BIN, KEY.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

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
  (cd "$work/$name" && RUST_LOG=warn exec "$BIN" serve --config config.toml >"$work/$name/out" 2>"$work/$name/err") &
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
