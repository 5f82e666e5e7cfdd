#!/usr/bin/env bash
# `make bench`: builds the Worker in release mode, serves it with `wrangler dev` on a free
# loopback port, runs the standard scenarios (`duet-bench all`) against it, stops the server
# (always, on any exit) and prints the table.
#
#   bench/run.sh                          the standard scenarios
#   bench/run.sh --json                   the same as JSON
#   bench/run.sh --idle-duration 60       any `duet-bench all` flag
#
# The per-socket rate limit is raised for the run: the relay scenario sends as fast as the
# server answers, far above the 20 frames/s a browser needs. Everything else is wrangler.toml's.
# Durable Object state goes to a temporary directory, removed afterwards.
set -euo pipefail

cd "$(dirname "$0")/.."
RATE_LIMIT=1000000

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-bench.XXXXXX")
server_pid=""

stop_server() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    # wrangler runs in its own process group: stop the group (node and its workerd children).
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench: building the Worker (make build)" >&2
make --no-print-directory build >&2
echo "bench: building duet-bench" >&2
cargo build --release -p duet-bench >&2

port=$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')

echo "bench: starting wrangler dev on 127.0.0.1:$port (log: $work/wrangler.log)" >&2
# Job control on for this one job: it gets a process group of its own (its pid), so the trap
# can stop wrangler with every child.
# The Worker is built above; a build-less copy of wrangler.toml keeps wrangler dev from
# rebuilding and restarting mid-run when a file under src/ changes.
config=$(node test/helpers/static-config.mjs wrangler.bench.toml 1000000000)
set -m
node_modules/.bin/wrangler dev --config "$config" --ip 127.0.0.1 --port "$port" \
  --persist-to "$work/state" --show-interactive-dev-session=false \
  --var "RATE_LIMIT_BURST:$RATE_LIMIT" --var "RATE_LIMIT_PER_SEC:$RATE_LIMIT" \
  </dev/null >"$work/wrangler.log" 2>&1 &
server_pid=$!
set +m

for _ in $(seq 240); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "bench: wrangler dev exited; its log:" >&2
    tail -n 40 "$work/wrangler.log" >&2
    exit 1
  fi
  sleep 0.5
done
if ! curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
  echo "bench: no /healthz after 120 s; wrangler's log:" >&2
  tail -n 40 "$work/wrangler.log" >&2
  exit 1
fi
echo "bench: server up; rate limit raised to $RATE_LIMIT frames/s per socket" >&2

status=0
target/release/duet-bench --url "ws://127.0.0.1:$port" all "$@" || status=$?
stop_server
exit "$status"
