#!/usr/bin/env bash
# Generates the Python and TypeScript clients of proto/ (buf.gen.yaml):
#   gen/python/  messages and grpcio stubs (import cognito.mfa.v1.user_mfa_service_pb2_grpc)
#   gen/ts/      messages and @grpc/grpc-js clients (cognito/mfa/v1/user_mfa_service.ts)
# Installs what it needs: grpcio-tools (PyPI), buf and ts-proto (npm), into
# .tools/ beside the test tools. Local plugins only.
set -euo pipefail
cd "$(dirname "$0")/.."
GRPCIO_VERSION="1.76.0"
BUF_VERSION="1.75.0"
GRPC_JS_VERSION="1.14.7"
PROTO_LOADER_VERSION="0.8.1"
TS_PROTO_VERSION="2.18.0"
python3 -c "import grpc_tools" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "grpcio-tools==${GRPCIO_VERSION}"
if [ ! -x .tools/node_modules/.bin/protoc-gen-ts_proto ] \
  || [ ! -d .tools/node_modules/@grpc/grpc-js ] \
  || [ "$(.tools/node_modules/.bin/buf --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  # Every npm tool in one install: a second --no-save install would prune the first's.
  npm install --prefix .tools --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "@bufbuild/buf@${BUF_VERSION}" "@grpc/grpc-js@${GRPC_JS_VERSION}" \
    "@grpc/proto-loader@${PROTO_LOADER_VERSION}" "ts-proto@${TS_PROTO_VERSION}"
fi
rm -rf gen
.tools/node_modules/.bin/buf generate
echo "generated: $(find gen -type f | wc -l) files in gen/python and gen/ts"
