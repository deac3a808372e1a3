#!/usr/bin/env bash
# Builds Proxy-Wasm plugins from source with the AssemblyScript SDK: the examples
# (wasm-examples/<name>/assembly/index.ts) and the test fixtures (test/fixtures/wasm/<name>/…),
# each into <dir>/build/<name>.wasm; or only the plugin directories given as arguments. Run by
# `npm install`/`npm ci` (prepare), `npm run build:wasm`, and by the tests for a plugin whose
# .wasm is missing or older than its source. Two at a time; outputs are not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
build_one() {
  local dir=${1%/}
  local name
  name=$(basename "$dir")
  [ -f "$dir/assembly/index.ts" ] || return 0
  mkdir -p "$dir/build"
  # Write beside the target and rename: tests running in parallel never see a half-written file.
  node_modules/.bin/asc "$dir/assembly/index.ts" -b "$dir/build/$name.wasm.$$" --use abort=abort_proc_exit --optimize --runtime full
  mv "$dir/build/$name.wasm.$$" "$dir/build/$name.wasm"
  echo "built $dir/build/$name.wasm"
}
export -f build_one
if [ $# -gt 0 ]; then
  for d in "$@"; do build_one "$d"; done
else
  printf '%s\n' wasm-examples/*/ test/fixtures/wasm/*/ | xargs -P 2 -I{} bash -c 'build_one "$@"' _ {}
fi
