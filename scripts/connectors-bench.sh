#!/usr/bin/env bash
# The connectors benchmark (benches/connectors.rs): generated JSON lines through
# `brigade run`, the library (examples/connectors_lib.rs), `cat` and `jq -c .`; then
# into SQLite with static writer counts and with the adaptive policy. Prints two
# markdown tables and whether the goals were met.
#
# Usage: scripts/connectors-bench.sh
# Environment (see benches/connectors.rs): BENCH_SIZE (default 1GiB), BENCH_SQLITE_SIZE
# (default 256MiB, 0 to skip), BENCH_RUNS (default 3), BENCH_TICK (default the
# pipeline's 1s). A smoke run of a few seconds:
#   BENCH_SIZE=16MiB BENCH_SQLITE_SIZE=4MiB BENCH_RUNS=1 BENCH_TICK=250ms scripts/connectors-bench.sh
# Needs jq. The input is cached in target/connectors-bench/.
set -euo pipefail

cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "connectors-bench: jq is not installed" >&2; exit 2; }
# The bench runs the example as a child; cargo bench does not build examples.
cargo build --release --example connectors_lib
cargo bench --bench connectors
