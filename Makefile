# One-command setup: every target installs what is missing first.
#   make dev     serve the app on http://localhost:8787 (wrangler dev)
#   make test    run every test (cargo, clippy on host and wasm32, Miniflare, browser)
#   make deploy  publish with wrangler deploy
#   make fuzz    fuzz the parsers of untrusted input (nightly; FUZZ_SECONDS per target)
#   make bench-floor  Duet against the JavaScript floors of bench/floor/, as ratios

SHELL := bash
# --norc: bash started with a socket on stdin (as Node starts it) would otherwise read the
# system bashrc, which fails under -u.
.SHELLFLAGS := --norc -eu -o pipefail -c
.DEFAULT_GOAL := help

WORKER_BUILD_VERSION := 0.8.7
# wasm-bindgen-cli must match the wasm-bindgen library in Cargo.lock exactly.
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p;}' Cargo.lock)
CARGO_BIN := $(HOME)/.cargo/bin

# worker-build would download these from GitHub; use the pinned local copies instead.
export WASM_BINDGEN_BIN := $(CARGO_BIN)/wasm-bindgen
export ESBUILD_BIN := $(CURDIR)/node_modules/.bin/esbuild
export WASM_OPT_BIN := $(CURDIR)/node_modules/.bin/wasm-opt
export PATH := $(CARGO_BIN):$(CURDIR)/node_modules/.bin:$(PATH)

# The release wasm is built on a pinned nightly: std is rebuilt with the crate's size
# profile, and a panic aborts at once, without formatting a message (no code in the module
# formats one). 15 KB less gzipped (bench/BASELINE.md, "Wasm size"); clippy and every host test
# stay on stable. The code never panics on a request path; to see a panic's message while
# debugging, build on stable with `make clean build PANIC_MESSAGES=1` (its wasm is over the budget).
WASM_TOOLCHAIN := nightly-2026-05-20
ifeq ($(PANIC_MESSAGES),1)
WASM_BUILD_ENV :=
else
WASM_BUILD_ENV := RUSTUP_TOOLCHAIN=$(WASM_TOOLCHAIN) CARGO_UNSTABLE_BUILD_STD=std,panic_abort \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort"
endif

NPM_STAMP := node_modules/.package-lock.json
# Gzipped size budget of the release wasm: the size measured after issue 25's typed admission
# and admin API (162,583: the verbs, their validation, the room view and bans in the stored
# room; 154,320 before, bench/BASELINE.md "Closing the holes") plus 2%.
WASM_GZIP_BUDGET := 165835

.PHONY: help setup tools build native-peer dev test test-rust test-node lint size-check bench bench-floor fuzz soak flood deploy dry-run clean

help:
	@echo "make dev     serve the app locally on http://localhost:8787"
	@echo "make test    run every test"
	@echo "make bench   load-test a local release build (bench/BASELINE.md)"
	@echo "make fuzz    fuzz every parser of untrusted input, FUZZ_SECONDS (600) each, on nightly"
	@echo "             (installs nightly and cargo-fuzz if missing; FUZZ_TARGETS=\"frames route\" picks)"
	@echo "make soak    10-minute soak with churn, drops and resumes (SOAK_ARGS=--restart-every 120s)"
	@echo "make flood   round trips with and without one flooding client"
	@echo "make bench-floor  Duet's figures as ratios to the floors' (bench/floor.sh)"
	@echo "make deploy  wrangler deploy"

setup: tools $(NPM_STAMP)

tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
	  || rustup target add wasm32-unknown-unknown
	@rustup run $(WASM_TOOLCHAIN) rustc --print sysroot >/dev/null 2>&1 \
	  && [ -d "$$(rustup run $(WASM_TOOLCHAIN) rustc --print sysroot)/lib/rustlib/src/rust/library" ] \
	  && rustup target list --installed --toolchain $(WASM_TOOLCHAIN) | grep -qx wasm32-unknown-unknown \
	  || rustup toolchain install $(WASM_TOOLCHAIN) --profile minimal \
	       --component rust-src --target wasm32-unknown-unknown
	@[ "$$($(CARGO_BIN)/worker-build --version 2>/dev/null)" = "$(WORKER_BUILD_VERSION)" ] \
	  || cargo install worker-build --version "=$(WORKER_BUILD_VERSION)"
	@[ "$$($(CARGO_BIN)/wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] \
	  || cargo install wasm-bindgen-cli --version "=$(WASM_BINDGEN_VERSION)"

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Called by wrangler ([build] in wrangler.toml) and by the targets below.
RUST_INPUTS := Cargo.toml Cargo.lock $(shell find src -name '*.rs')

build: setup build/index_bg.wasm

# Only when a Rust input or this recipe changed: wrangler dev runs its build command twice per
# start.
build/index_bg.wasm: $(RUST_INPUTS) Makefile
	$(WASM_BUILD_ENV) worker-build --release
	@# worker-build keeps the name section for stack traces (wasm-opt --debuginfo); panics abort
	@# anyway, so drop it: a third of the module. A second -Oz pass after wasm-bindgen's output
	@# finds another ~2 KB.
	wasm-opt build/index_bg.wasm -Oz --strip-debug --strip-producers -o build/index_bg.wasm
	@echo "wasm: $$(wc -c < build/index_bg.wasm) bytes, $$(gzip -9c build/index_bg.wasm | wc -c) gzipped"

dev: setup
	wrangler dev

test: setup test-rust lint build size-check dry-run native-peer test-node

test-rust:
	cargo test --workspace --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p duet --target wasm32-unknown-unknown -- -D warnings

size-check:
	@size=$$(gzip -9c build/index_bg.wasm | wc -c); \
	if [ "$$size" -gt $(WASM_GZIP_BUDGET) ]; then \
	  echo "wasm is $$size bytes gzipped, over the budget of $(WASM_GZIP_BUDGET)"; exit 1; \
	else echo "wasm size ok: $$size of $(WASM_GZIP_BUDGET) bytes gzipped"; fi

# Builds the release Worker, serves it with wrangler dev on a free loopback port, runs the
# standard scenarios (duet-bench all), stops the server and prints the table. Flags for
# `duet-bench all` go in BENCH_ARGS, e.g. make bench BENCH_ARGS="--json".
bench: setup
	bench/run.sh $(BENCH_ARGS)

# Runs each fuzz target (fuzz/, docs/testing.md "Fuzzing") for FUZZ_SECONDS, one at a time at
# nice 19, on nightly with cargo-fuzz (both installed if missing). Not part of `make test`,
# which replays the committed corpus on stable instead (tests/fuzz_corpus.rs).
FUZZ_SECONDS ?= 600
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh $(FUZZ_TARGETS)

# The soak (1,000 calls for 10 minutes with churn, drops and resumes; a restart every 2 minutes
# with SOAK_ARGS="--restart-every 120s") and the flood scenario, each against a wrangler dev
# that duet-bench starts, kills and restarts itself. PASS/FAIL per criterion; not part of test.
soak: setup
	bench/soak.sh soak $(SOAK_ARGS)

flood: setup
	bench/soak.sh flood $(FLOOD_ARGS)
# Serves Duet (tickets off and on) and the two JavaScript floors of bench/floor/ with the
# same wrangler dev, runs the scenarios of issue 13 against each in turn, and prints each
# figure as a ratio to its floor. Holds a lock so two measurements never overlap. Flags go
# in BENCH_ARGS: --json, --rounds N, --idle-rounds N, --quick, --out DIR.
bench-floor: setup
	bench/floor.sh $(BENCH_ARGS)

# The native peer (duet-client/examples/native-peer), which test/browser/native-peer.test.mjs
# runs against the app in Chromium: built once here, before the browser lane.
native-peer:
	cargo build -p duet-client --example native-peer

# Two lanes at once (test/lanes.sh): the Miniflare and client suites, and the browser and
# network-lab suites; each lane runs one suite at a time.
test-node:
	test/lanes.sh

deploy: setup
	wrangler deploy

# Bundles for deployment without uploading (works offline); part of `make test`.
dry-run: setup
	wrangler deploy --dry-run --outdir build/dry-run

clean:
	rm -rf build target/wasm32-unknown-unknown .wrangler
