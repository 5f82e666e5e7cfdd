#!/usr/bin/env bash
# Before/after of the load generator itself: the same scenarios (join, relay with 1 and 500
# rooms, idle: `duet-bench all`) against one server, run in turn by an earlier duet-bench
# binary and by this one, then each figure's median side by side (`duet-bench ratios`, the
# earlier binary's runs labelled `before`, this one's `duet`: the `duet/before` column).
# Both binaries drive the same release build of this worktree's Worker.
#
#   bench/compare.sh OLD_BIN                 two rounds, order alternating
#   bench/compare.sh OLD_BIN --rounds 1 --quick      a smoke run of a minute
#
# OLD_BIN: e.g. built from main (a copy of its tree, with its own target directory, so that
# the two binaries do not overwrite each other):
#   mkdir -p /tmp/bench-before && git archive main | tar -x -C /tmp/bench-before
#   cargo build --release -p duet-bench --manifest-path /tmp/bench-before/Cargo.toml \
#     --target-dir /tmp/bench-before/target
#   bench/compare.sh /tmp/bench-before/target/release/duet-bench
#
# Holds the bench lock of bench/floor.sh, so two measurements never overlap. The server listens
# on a free loopback port, or on $BENCH_PORT.
set -euo pipefail

cd "$(dirname "$0")/.."
old=$(realpath "${1:?usage: bench/compare.sh OLD_BIN [--rounds N] [--quick]}")
shift
rounds=2
scenario=(all)
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --quick) scenario=(all --join-rooms 50 --relay-rooms 1,20 --relay-duration 3 --idle-rooms 50 --idle-duration 5); shift ;;
    *) echo "bench/compare.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done

lock=${BENCH_LOCK:-}
if [[ -z $lock ]]; then
  if [[ -d /work/notes ]]; then lock=/work/notes/bench.lock; else lock=${TMPDIR:-/tmp}/duet-bench.lock; fi
fi
exec 9>>"$lock"
echo "compare: waiting for the lock $lock" >&2
flock 9

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-compare.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  echo "compare: reports in $work" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make --no-print-directory build >&2
cargo build --release -p duet-bench >&2
new=$PWD/target/release/duet-bench

port=${BENCH_PORT:-$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')}
config=$(node test/helpers/static-config.mjs wrangler.bench.toml 1000000000)
set -m
node_modules/.bin/wrangler dev --config "$config" --ip 127.0.0.1 --port "$port" \
  --persist-to "$work/state" --show-interactive-dev-session=false \
  --var "RATE_LIMIT_BURST:1000000" --var "RATE_LIMIT_PER_SEC:1000000" \
  </dev/null 9>&- >"$work/wrangler.log" 2>&1 &
server_pid=$!
set +m
for _ in $(seq 240); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done

# run LABEL BIN ROUND: one `all` run, its JSON report kept.
run() {
  echo "compare: round $3, $1" >&2
  "$2" --url "ws://127.0.0.1:$port" --label "$1" --json --no-progress "${scenario[@]}" \
    >"$work/r$3-$1.json"
}
for r in $(seq "$rounds"); do
  if (( r % 2 )); then run before "$old" "$r"; run duet "$new" "$r"
  else run duet "$new" "$r"; run before "$old" "$r"; fi
done
"$new" ratios "$work"/r*.json
