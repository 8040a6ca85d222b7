# Sourced by scripts/test.sh and scripts/gen-clients.sh: the npm tools both
# use, at one set of versions, installed into .tools/ in one npm install (a
# second --no-save install would prune the first's packages).
BUF_VERSION="1.75.0"
GRPC_JS_VERSION="1.14.7"                # @grpc/grpc-js and @grpc/proto-loader, for the Node.js client test
PROTO_LOADER_VERSION="0.8.1"
TS_PROTO_VERSION="2.18.0"               # the TypeScript plugin of buf.gen.yaml
# The browser test (tests/browser, issue 37): Connect's gRPC-Web client, its
# code generator, and esbuild to bundle the page.
PROTOBUF_ES_VERSION="2.17.0"            # @bufbuild/protobuf and @bufbuild/protoc-gen-es
CONNECT_VERSION="2.3.0"                 # @connectrpc/connect and @connectrpc/connect-web
ESBUILD_VERSION="0.28.2"

node_version() { node -p "require('./.tools/node_modules/$1/package.json').version" 2>/dev/null || true; }

install_npm_tools() {
  if [ "$(.tools/node_modules/.bin/buf --version 2>/dev/null)" != "$BUF_VERSION" ] \
    || [ "$(node_version @grpc/grpc-js)" != "$GRPC_JS_VERSION" ] \
    || [ "$(node_version @grpc/proto-loader)" != "$PROTO_LOADER_VERSION" ] \
    || [ "$(node_version ts-proto)" != "$TS_PROTO_VERSION" ] \
    || [ "$(node_version @connectrpc/connect-web)" != "$CONNECT_VERSION" ] \
    || [ "$(node_version @bufbuild/protoc-gen-es)" != "$PROTOBUF_ES_VERSION" ] \
    || [ "$(node_version esbuild)" != "$ESBUILD_VERSION" ]; then
    npm install --prefix .tools --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "@bufbuild/buf@${BUF_VERSION}" "@grpc/grpc-js@${GRPC_JS_VERSION}" \
      "@grpc/proto-loader@${PROTO_LOADER_VERSION}" "ts-proto@${TS_PROTO_VERSION}" \
      "@bufbuild/protobuf@${PROTOBUF_ES_VERSION}" "@bufbuild/protoc-gen-es@${PROTOBUF_ES_VERSION}" \
      "@connectrpc/connect@${CONNECT_VERSION}" "@connectrpc/connect-web@${CONNECT_VERSION}" \
      "esbuild@${ESBUILD_VERSION}"
  fi
}
