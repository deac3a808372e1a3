#!/usr/bin/env bash
# Builds legate's one native addon, src/native/original-dst (getsockopt SO_ORIGINAL_DST, for the
# original_dst listener filter), with the node-gyp that npm ships. Run by `npm install`/`npm ci`
# (prepare) and `npm run build:native`. Node-API only: built once, it loads in any Node >= 12.
# Without a C compiler it says so and exits 0: legate then runs without original destinations.
set -uo pipefail
cd "$(dirname "$0")/.."
gyp=${npm_config_node_gyp:-}
if [ -z "$gyp" ]; then
  npm_cli=$(readlink -f "$(command -v npm)")
  gyp=$(dirname "$(dirname "$npm_cli")")/node_modules/node-gyp/bin/node-gyp.js
fi
nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null)}
args=()
case "$nodedir" in ''|undefined|null) ;; *) args+=("--nodedir=$nodedir") ;; esac
log=$(mktemp)
if node "$gyp" rebuild "${args[@]}" -C src/native/original-dst >"$log" 2>&1; then
  echo "built src/native/original-dst/build/Release/original_dst.node"
else
  echo "legate: could not build src/native/original-dst (the original_dst listener filter will keep each connection's own address):"
  grep -E 'gyp ERR!|error' "$log" | head -5
fi
rm -f "$log"
exit 0
