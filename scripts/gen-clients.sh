#!/usr/bin/env bash
# Generates the Python and TypeScript clients of proto/ (buf.gen.yaml):
#   gen/python/  messages and grpcio stubs (import cognito.mfa.v1.user_mfa_service_pb2_grpc)
#   gen/ts/      messages and @grpc/grpc-js clients (cognito/mfa/v1/user_mfa_service.ts)
# Installs what it needs: grpcio-tools (PyPI), buf and ts-proto (npm), into
# .tools/ beside the test tools. Local plugins only.
set -euo pipefail
cd "$(dirname "$0")/.."
GRPCIO_VERSION="1.76.0"
. scripts/npm-tools.sh
python3 -c "import grpc_tools" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "grpcio-tools==${GRPCIO_VERSION}"
install_npm_tools
rm -rf gen
.tools/node_modules/.bin/buf generate
echo "generated: $(find gen -type f | wc -l) files in gen/python and gen/ts"
