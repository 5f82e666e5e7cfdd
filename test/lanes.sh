#!/usr/bin/env bash
# `make test-node`: the Node suites in two lanes at once, each one suite at a time.
#   1. Miniflare and client suites: each starts its own Miniflare (or none).
#   2. Browser and network-lab suites: each starts its own `wrangler dev` and browsers.
# The lanes share no server, so they run side by side; the second lane's output is printed
# after the first's, so neither interleaves. Exits non-zero if either lane failed.
set -u
shopt -s nullglob
cd "$(dirname "$0")/.."
browser_log=$(mktemp)
lane_b=""
cleanup() {
  [[ -n $lane_b ]] && kill -- "$lane_b" 2>/dev/null
  rm -f "$browser_log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

node --test --test-concurrency=1 test/browser/*.test.mjs test/netlab/*.test.mjs >"$browser_log" 2>&1 &
lane_b=$!
node --test --test-concurrency=1 test/*.test.mjs test/client/*.test.mjs
first=$?
wait "$lane_b"
second=$?
lane_b=""
echo "# ---- browser and network-lab suites ----"
cat "$browser_log"
exit $((first != 0 || second != 0))
