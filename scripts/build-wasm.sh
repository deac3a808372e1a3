#!/usr/bin/env bash
# Builds every Proxy-Wasm example plugin (wasm-examples/<name>/assembly/index.ts) with the
# AssemblyScript SDK into wasm-examples/<name>/build/<name>.wasm. Run by `npm run build:wasm`,
# and by the tests when a plugin is missing or older than its source.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in wasm-examples/*/; do
  name=$(basename "$dir")
  [ -f "$dir/assembly/index.ts" ] || continue
  mkdir -p "$dir/build"
  node_modules/.bin/asc "$dir/assembly/index.ts" -b "$dir/build/$name.wasm" --use abort=abort_proc_exit --optimize --runtime full
  echo "built $dir/build/$name.wasm"
done
