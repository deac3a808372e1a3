#!/usr/bin/env bash
# Builds legate's native addons with the node-gyp that npm ships: src/native/original-dst
# (getsockopt SO_ORIGINAL_DST, for the original_dst listener filter), src/native/tcp-relay
# (tcp_proxy's byte relay in C) and src/native/malloc-trim (glibc's malloc_trim, run now and
# then by the main thread). Run by `npm install`/`npm ci` (prepare) and `npm run build:native`.
# Node-API only: built once, they load in any Node from the one they were built with.
# Without a C compiler it says so and exits 0: legate then runs without original destinations,
# tcp_proxy relays bytes in JavaScript, and freed malloc memory stays resident.
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
build() { # <dir> <target> <what is missing without it>
  local log
  log=$(mktemp)
  if node "$gyp" rebuild "${args[@]}" -C "src/native/$1" >"$log" 2>&1; then
    echo "built src/native/$1/build/Release/$2.node"
  else
    echo "legate: could not build src/native/$1 ($3):"
    grep -E 'gyp ERR!|error' "$log" | head -5
  fi
  rm -f "$log"
}
build original-dst original_dst 'the original_dst listener filter will keep each connection'"'"'s own address'
build tcp-relay tcp_relay 'tcp_proxy will relay bytes in JavaScript'
build malloc-trim malloc_trim 'freed malloc memory is not given back to the kernel'
exit 0
