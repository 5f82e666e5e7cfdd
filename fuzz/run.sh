#!/usr/bin/env bash
# `make fuzz`: runs each fuzz target (all, or those named) for FUZZ_SECONDS (default 600), one
# after the other at nice 19, on nightly with cargo-fuzz, installing both if missing. New
# inputs go to fuzz/work/<target>/ (not committed), seeded from the committed fuzz/corpus/;
# a failing input goes to fuzz/artifacts/<target>/. Prints each target's final figures and
# fails if any target failed. Built without a sanitizer (the crate has no unsafe code), with
# debug assertions and overflow checks. See docs/testing.md, "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-600}

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
[ "$(cargo fuzz --version 2>/dev/null)" = "cargo-fuzz $CARGO_FUZZ_VERSION" ] \
  || cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked

if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

nice -n 19 cargo +nightly fuzz build -s none
failed=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/work/$target"
  log="fuzz/work/$target.log"
  echo "== $target: ${seconds}s (log: $log)"
  corpora=("fuzz/work/$target" "fuzz/corpus/$target")
  [ -d "fuzz/regressions/$target" ] && corpora+=("fuzz/regressions/$target")
  if ! nice -n 19 cargo +nightly fuzz run -s none "$target" "${corpora[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -dict="fuzz/dict/$target.dict" \
      -print_final_stats=1 >"$log" 2>&1; then
    failed+=("$target")
    grep -E 'panicked|ERROR|Test unit written' "$log" || tail -20 "$log"
  fi
  # The last status line (executions, coverage, features, corpus) and the final statistics.
  grep -E '^#[0-9]+' "$log" | tail -1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" || true
  echo "corpus: $(find "fuzz/work/$target" -type f | wc -l) files, $(du -sb "fuzz/work/$target" | cut -f1) bytes"
done

if ((${#failed[@]})); then
  echo "failing inputs in fuzz/artifacts/ for: ${failed[*]}"
  exit 1
fi
