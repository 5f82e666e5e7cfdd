#!/usr/bin/env bash
# `make soak` / `make flood`: builds the Worker in release mode and runs `duet-bench soak` (or
# `flood`) with a `wrangler dev` that duet-bench starts itself (--serve), so that it can kill
# the server with SIGKILL and start it again on the same --persist-to storage
# (--restart-every), as a deploy does. duet-bench stops the server at the end, on any exit.
#
#   bench/soak.sh                                   soak: 1,000 calls for 10 minutes
#   bench/soak.sh soak --restart-every 120s         the same with a restart every 2 minutes
#   bench/soak.sh soak --rooms 100 --duration 2m    any `duet-bench soak` flag
#   bench/soak.sh flood                             the flood scenario
#   bench/soak.sh flood --json                      any `duet-bench flood` flag
#
# The server runs with wrangler.toml's vars, the deployed rate limit included (20 frames/s,
# burst 100): the soak stays under it, the flood must be refused by it. Only JOIN_LIMITER is
# raised, since every socket of the run joins from one IP. Durable Object state and the
# server's log go to a temporary directory, kept if the run fails (its path is printed).
set -euo pipefail

cd "$(dirname "$0")/.."
scenario=${1:-soak}
[[ $# -gt 0 ]] && shift
case $scenario in
  soak | flood) ;;
  *)
    echo "usage: bench/soak.sh [soak|flood] [duet-bench flags...]" >&2
    exit 2
    ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-soak.XXXXXX")
keep=0
cleanup() {
  if [[ $keep == 0 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "soak: building the Worker (make build)" >&2
make --no-print-directory build >&2
echo "soak: building duet-bench" >&2
cargo build --release -p duet-bench >&2

# 2,000 sockets cost wrangler's local proxy ~6 files each; it inherits this limit.
ulimit -n "$(ulimit -Hn)"

port=$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
# A build-less copy of wrangler.toml (no rebuild mid-run), with JOIN_LIMITER raised.
config=$(node test/helpers/static-config.mjs wrangler.soak.toml 1000000000)
serve="exec node_modules/.bin/wrangler dev --config '$config' --ip 127.0.0.1 --port $port"
serve+=" --persist-to '$work/state' --show-interactive-dev-session=false"

echo "soak: duet-bench $scenario; wrangler dev on 127.0.0.1:$port, log $work/wrangler.log" >&2
# In the background so that a SIGINT or SIGTERM of this script reaches duet-bench at once,
# which then stops its server (bash runs a trap only after a foreground child has ended).
target/release/duet-bench --url "ws://127.0.0.1:$port" "$scenario" \
  --serve "$serve" --server-log "$work/wrangler.log" "$@" &
bench=$!
trap 'kill -TERM "$bench" 2>/dev/null' INT TERM
status=0
wait "$bench" || status=$?
# A trapped signal ends the first wait early; the second one collects duet-bench's status.
if kill -0 "$bench" 2>/dev/null; then wait "$bench" || status=$?; fi
if [[ $status != 0 ]]; then
  keep=1
  echo "soak: failed ($status); the server's log and state are kept in $work" >&2
fi
exit "$status"
