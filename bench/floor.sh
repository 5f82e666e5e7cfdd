#!/usr/bin/env bash
# `make bench-floor`: Duet against the floor, in one run on this machine. Serves five targets
# with the same wrangler dev on loopback ports: Duet (release build, tickets off), Duet with
# LOG_LEVEL=warn (no log line per join), Duet with JOIN_SECRET set (every peer sends a
# ticket), and the two JavaScript floors of bench/floor/ (bare: a relay with no storage;
# durable: the same with durable slots), which sit behind the same static assets as Duet.
# Then, for each round,
# runs every scenario against every target in turn (the order rotates each round, so drift
# falls on all targets alike), restarts all four for the idle scenario (memory is compared on
# fresh servers), and prints each figure's median with its ratio to the floor
# (`duet-bench ratios`).
#
#   bench/floor.sh                 the standard run (about 20 minutes)
#   bench/floor.sh --json          the ratios as JSON
#   bench/floor.sh --rounds 1 --idle-rounds 1 --quick    a smoke run of a few minutes
#   bench/floor.sh --out DIR       keep every run's report in DIR
#   bench/floor.sh --before DIR    also serve an earlier build (index.js and index_bg.wasm in
#                                  DIR) as the target `before`, for before/after in one run
#   bench/floor.sh --max-load L    before each round, wait (up to 10 minutes) until the
#                                  1-minute load average is below L
#   bench/floor.sh --targets "duet duet-warn durable"   only these targets
#   bench/floor.sh --scenarios "join_fast join_slow"     only these of join_fast, join_slow,
#                                  relay_many and relay_one (the idle scenario: --idle-rounds)
#   FLOOR_DIR=DIR bench/floor.sh --targets "durable variant"
#                                  floors from DIR (NAME.toml each) instead of bench/floor/,
#                                  for an A/B of one feature of Duet added to a floor
#   bench/floor.sh --idle-batches 3   after each target's idle run, open and close the same
#                                  number of sockets twice more on the same server and print
#                                  what each batch added (memory that a fresh server grows
#                                  once, against memory kept per socket)
#
# Two measurements never overlap: the run holds the lock $BENCH_LOCK (default
# /work/notes/bench.lock where that directory exists, else a file in $TMPDIR).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RATE_LIMIT=1000000
floor_dir=$(cd "${FLOOR_DIR:-bench/floor}" && pwd)
SECRET=duet-bench-floor-secret

rounds=3
idle_rounds=1
idle_batches=1
json=()
out=""
quick=false
before=""
max_load=""
targets=(duet duet-warn duet-tickets bare durable)
scenarios=(join_fast join_slow relay_many relay_one)
while [[ $# -gt 0 ]]; do
  case $1 in
    --before) before=$(cd "$2" && pwd); shift 2 ;;
    --max-load) max_load=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --idle-rounds) idle_rounds=$2; shift 2 ;;
    --idle-batches) idle_batches=$2; shift 2 ;;
    --json) json=(--json); shift ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=true; shift ;;
    --targets) read -ra targets <<<"$2"; shift 2 ;;
    --scenarios) read -ra scenarios <<<"$2"; shift 2 ;;
    *) echo "bench-floor: unknown flag $1" >&2; exit 2 ;;
  esac
done
for s in "${scenarios[@]}"; do
  case $s in
    join_fast | join_slow | relay_many | relay_one) ;;
    *) echo "bench-floor: unknown scenario $s (join_fast join_slow relay_many relay_one)" >&2; exit 2 ;;
  esac
done

# The scenarios of issue 13: joins at 100 in flight and one at a time, relays at 200 rooms
# (and 1 room, unloaded), idle memory of 2,000 sockets.
if $quick; then
  join_fast=(join --rooms 200 --concurrency 100)
  join_slow=(join --rooms 50 --concurrency 1)
  relay_many=(relay --rooms 200 --duration 3)
  relay_one=(relay --rooms 1 --duration 3)
  idle=(idle --rooms 200 --duration 5)
else
  join_fast=(join --rooms 1000 --concurrency 100)
  join_slow=(join --rooms 300 --concurrency 1)
  relay_many=(relay --rooms 200 --duration 10)
  relay_one=(relay --rooms 1 --duration 10)
  idle=(idle --rooms 1000 --duration 30)
fi
TARGETS=("${targets[@]}")
[[ -n $before ]] && TARGETS+=(before)

lock=${BENCH_LOCK:-}
if [[ -z $lock ]]; then
  if [[ -d /work/notes ]]; then lock=/work/notes/bench.lock; else lock=${TMPDIR:-/tmp}/duet-bench.lock; fi
fi
exec 9>>"$lock"
echo "bench-floor: waiting for the lock $lock" >&2
flock 9

# Servers of an earlier run that died without its cleanup (killed with SIGKILL, say): with the
# lock held no other run is under way, so they are stale, and they would skew every figure.
# (No server holds the lock: each is started without the lock's descriptor.)
stale=$(pgrep -f -- "--persist-to ${TMPDIR:-/tmp}/duet-floor\.[A-Za-z0-9]+/state-" || true)
if [[ -n $stale ]]; then
  echo "bench-floor: stopping servers an earlier run left running: $(echo $stale)" >&2
  # Each with its whole process group: workerd's command line does not name the directory.
  for g in $(ps -o pgid= -p "$(echo $stale | tr ' ' ,)" | sort -u); do
    kill -KILL -- "-$g" 2>/dev/null || true
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-floor.XXXXXX")
reports=${out:-$work/reports}
# Later idle batches are kept apart: the ratios compare fresh servers only.
mkdir -p "$reports/batches"
declare -A pid port

free_port() {
  node -e '
    const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# The pids of process group $1 (a target's wrangler, its node child, esbuild and both workerd).
group() {
  ps -eo pid=,pgid= | awk -v g="$1" '$2 == g { print $1 }'
}

# Whether process group $1 is gone within 5 s.
gone() {
  for _ in $(seq 50); do
    [[ -z $(group "$1") ]] && return 0
    sleep 0.1
  done
  return 1
}

stop() {
  local t=$1 p=${pid[$1]:-}
  if [[ -n $p ]]; then
    # wrangler runs in its own process group: stop the group (node and its workerd children),
    # and wait until none of it is left: a server still running would share the machine with
    # the next measurement.
    kill -TERM -- "-$p" 2>/dev/null || true
    gone "$p" || kill -KILL -- "-$p" 2>/dev/null || true
    if ! gone "$p"; then
      echo "bench-floor: $t's processes $(group "$p" | tr '\n' ' ')survived SIGKILL" >&2
      exit 1
    fi
  fi
  pid[$t]=""
}
stop_all() {
  for t in "${TARGETS[@]}"; do stop "$t"; done
}
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() {
  local t=$1 config args=() dir=$ROOT
  case $t in
    duet) config=$duet_config ;;
    duet-warn) config=$duet_config; args=(--var "LOG_LEVEL:warn") ;;
    duet-tickets) config=$duet_config; args=(--var "JOIN_SECRET:$SECRET") ;;
    before) config=$before_config; dir=$before ;;
    *)
      # A floor: bench/floor/bare.toml and durable.toml, or a variant of them in $FLOOR_DIR,
      # behind Duet's own [assets] table.
      if [[ ! -f $floor_dir/$t.toml ]]; then
        echo "bench-floor: unknown target $t (duet duet-warn duet-tickets, or a floor in $floor_dir)" >&2
        exit 2
      fi
      config=$(node "$ROOT/test/helpers/static-config.mjs" --floor "$floor_dir/$t.toml" "$work/floor-$t.toml")
      dir=$floor_dir ;;
  esac
  port[$t]=$(free_port)
  local inspector
  inspector=$(free_port)
  rm -rf "$work/state-$t"
  # Job control on for this one job: it gets a process group of its own (its pid).
  set -m
  (cd "$dir" && exec "$ROOT/node_modules/.bin/wrangler" dev --config "$config" \
    --ip 127.0.0.1 --port "${port[$t]}" --inspector-port "$inspector" \
    --persist-to "$work/state-$t" --show-interactive-dev-session=false \
    --var "RATE_LIMIT_BURST:$RATE_LIMIT" --var "RATE_LIMIT_PER_SEC:$RATE_LIMIT" "${args[@]}" \
    </dev/null >"$work/$t.log" 2>&1 9>&-) &
  pid[$t]=$!
  set +m
}

wait_up() {
  local t=$1 tries=0
  for _ in $(seq 240); do
    curl -fsS "http://127.0.0.1:${port[$t]}/healthz" >/dev/null 2>&1 && return 0
    if ! kill -0 "${pid[$t]}" 2>/dev/null; then
      # A port picked free can be taken before wrangler binds it: start again on others.
      if grep -q "Address already in use" "$work/$t.log" && [[ $((tries += 1)) -le 3 ]]; then
        echo "bench-floor: $t lost its port; starting it again" >&2
        start "$t"
        continue
      fi
      echo "bench-floor: wrangler dev for $t exited; its log:" >&2
      tail -n 40 "$work/$t.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "bench-floor: no /healthz from $t after 120 s; its log:" >&2
  tail -n 40 "$work/$t.log" >&2
  exit 1
}

start_all() {
  for t in "${TARGETS[@]}"; do start "$t"; done
  for t in "${TARGETS[@]}"; do wait_up "$t"; done
}

# bench NAME TARGET ARGS...: one duet-bench run, its JSON report kept as NAME.
bench() {
  local name=$1 t=$2
  shift 2
  local ticket=()
  [[ $t == duet-tickets ]] && ticket=(--ticket-secret "$SECRET")
  echo "bench-floor: $name" >&2
  "$ROOT/target/release/duet-bench" --url "ws://127.0.0.1:${port[$t]}" --label "$t" --json \
    --no-progress "${ticket[@]}" "$@" >"$reports/$name.json" 9>&- \
    || echo "bench-floor: $name failed (kept in the report)" >&2
}

# The targets in the order of round $1: rotated by one each round.
order() {
  local r=$1 n=${#TARGETS[@]}
  for i in $(seq 0 $((n - 1))); do echo "${TARGETS[$(((i + r) % n))]}"; done
}

echo "bench-floor: building the Worker (make build)" >&2
make --no-print-directory build >&2
echo "bench-floor: building duet-bench" >&2
cargo build --release -p duet-bench >&2
duet_config=$(node test/helpers/static-config.mjs wrangler.bench.toml 1000000000)
if [[ -n $before ]]; then
  # The same configuration, serving the earlier build and this tree's public/.
  before_config=$work/wrangler.before.toml
  sed -e 's#^main = .*#main = "'"$before"'/index.js"#' \
    -e 's#^directory = .*#directory = "'"$ROOT"'/public"#' "$duet_config" >"$before_config"
fi

# Waits until the 1-minute load average is below --max-load, for at most 10 minutes.
quiet() {
  [[ -z $max_load ]] && return 0
  for _ in $(seq 120); do
    awk -v max="$max_load" '{ exit !($1 < max) }' /proc/loadavg && return 0
    sleep 5
  done
  echo "bench-floor: load still $(cut -d' ' -f1 /proc/loadavg) after 10 minutes; going on" >&2
}

echo "bench-floor: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
start_all
for r in $(seq 1 "$rounds"); do
  quiet
  for s in "${scenarios[@]}"; do
    declare -n scenario=$s
    for t in $(order "$r"); do
      bench "r$r-$s-$t" "$t" "${scenario[@]}"
    done
  done
done
stop_all
for r in $(seq 1 "$idle_rounds"); do
  start_all
  quiet
  for t in $(order "$r"); do
    bench "r$r-idle-$t" "$t" "${idle[@]}"
    for b in $(seq 2 "$idle_batches"); do
      reports=$reports/batches bench "r$r-idle-b$b-$t" "$t" "${idle[@]}"
    done
  done
  stop_all
done
echo "bench-floor: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$ROOT/target/release/duet-bench" "${json[@]}" ratios "$reports"/*.json
if [[ $idle_batches -gt 1 && ${#json[@]} -eq 0 ]]; then
  # Per target and round: each batch's (held - before) per socket, and the server's whole RSS
  # while the batch was held.
  node -e '
    const fs = require("fs"), path = require("path");
    const [dir] = process.argv.slice(1);
    const rows = {};
    const add = (file, batch) => {
      const m = path.basename(file).match(/^r(\d+)-idle-(?:b\d+-)?(.+)\.json$/);
      const r = JSON.parse(fs.readFileSync(file, "utf8")).results?.[0]?.memory;
      if (!m || !r) return;
      (rows[`${m[2]} r${m[1]}`] ??= [])[batch - 1] =
        `${r.rss_per_socket_kib?.toFixed(0)} KiB/socket, ${(r.held.rss_kib / 1024).toFixed(0)} MiB`;
    };
    for (const f of fs.readdirSync(dir)) if (/^r\d+-idle-/.test(f)) add(path.join(dir, f), 1);
    for (const f of fs.readdirSync(path.join(dir, "batches")))
      add(path.join(dir, "batches", f), Number(f.match(/-b(\d+)-/)[1]));
    console.log("\nidle batches on one server: (held - before) per socket, and all processes while held");
    for (const [k, v] of Object.entries(rows).sort()) console.log(`${k.padEnd(18)} ${v.join("  |  ")}`);
  ' "$reports"
fi
