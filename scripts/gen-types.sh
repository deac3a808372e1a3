#!/usr/bin/env bash
# Generates TypeScript types for Envoy's v3 protos (as @grpc/proto-loader objects:
# snake_case fields, enums and 64-bit integers as strings, defaults filled, oneofs named)
# into src/generated/. Types only: nothing there is imported at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
D=node_modules/@grpc/grpc-js-xds/deps
rm -rf src/generated
node_modules/.bin/proto-loader-gen-types --keepCase --longs=String --enums=String --defaults --oneofs \
  --bytes=Buffer --grpcLib=@grpc/grpc-js --includeComments=false \
  -I $D/envoy-api -I $D/xds -I $D/googleapis -I $D/protoc-gen-validate -O src/generated \
  $(cat scripts/protos.txt) >/dev/null
# The generated files use extensionless relative imports; give them the `.ts` that ESM needs.
find src/generated -name '*.ts' -print0 | xargs -0 sed -i -E "s#(from '\.[^']*)';#\1.ts';#"

