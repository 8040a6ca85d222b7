# Sourced by scripts/test.sh and scripts/gen-clients.sh: the npm tools both
# use, at one set of versions, installed into .tools/ in one npm install (a
# second --no-save install would prune the first's packages).
BUF_VERSION="1.75.0"
GRPC_JS_VERSION="1.14.7"                # @grpc/grpc-js and @grpc/proto-loader, for the Node.js client test
PROTO_LOADER_VERSION="0.8.1"
TS_PROTO_VERSION="2.18.0"               # the TypeScript plugin of buf.gen.yaml

node_version() { node -p "require('./.tools/node_modules/$1/package.json').version" 2>/dev/null || true; }

install_npm_tools() {
  if [ "$(.tools/node_modules/.bin/buf --version 2>/dev/null)" != "$BUF_VERSION" ] \
    || [ "$(node_version @grpc/grpc-js)" != "$GRPC_JS_VERSION" ] \
    || [ "$(node_version @grpc/proto-loader)" != "$PROTO_LOADER_VERSION" ] \
    || [ "$(node_version ts-proto)" != "$TS_PROTO_VERSION" ]; then
    npm install --prefix .tools --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "@bufbuild/buf@${BUF_VERSION}" "@grpc/grpc-js@${GRPC_JS_VERSION}" \
      "@grpc/proto-loader@${PROTO_LOADER_VERSION}" "ts-proto@${TS_PROTO_VERSION}"
  fi
}
