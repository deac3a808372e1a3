#!/usr/bin/env bash
# Builds every Proxy-Wasm plugin from source with the AssemblyScript SDK: the examples
# (wasm-examples/<name>/assembly/index.ts) and the test fixtures (test/fixtures/wasm/<name>/…),
# each into <dir>/build/<name>.wasm. Run by `npm run build:wasm`, and by the tests when a plugin is
# missing or older than its source. Outputs are not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in wasm-examples/*/ test/fixtures/wasm/*/; do
  name=$(basename "$dir")
  [ -f "$dir/assembly/index.ts" ] || continue
  mkdir -p "$dir/build"
  node_modules/.bin/asc "$dir/assembly/index.ts" -b "$dir/build/$name.wasm" --use abort=abort_proc_exit --optimize --runtime full
  echo "built $dir/build/$name.wasm"
done
