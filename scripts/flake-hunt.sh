#!/usr/bin/env bash
# Runs the whole test suite RUNS times in a row (default 10) while stress-ng keeps
# every core busy, to catch tests that depend on the scheduler. Each run's output goes
# to target/flake-hunt/run-K.log; a failed run lists its failed tests and their
# messages, and the last line sums up. Exits non-zero if any run failed.
#
#   scripts/flake-hunt.sh [RUNS]
#
# Needs stress-ng (Debian: apt-get install stress-ng).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-10}
case $runs in
  '' | *[!0-9]* | 0)
    echo "flake-hunt: RUNS must be a whole number above 0, got '$runs'" >&2
    exit 2
    ;;
esac
if ! command -v stress-ng >/dev/null; then
  echo "flake-hunt: stress-ng not found (Debian: apt-get install stress-ng)" >&2
  exit 2
fi

logs=target/flake-hunt
mkdir -p "$logs"
# Build first, unstressed: the runs load the tests, not the compiler.
cargo test -j 1 --workspace --no-run

cpus=$(nproc)
stress-ng --cpu "$cpus" --timeout 0 --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null || true; wait "$stress" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

failed=0
for run in $(seq 1 "$runs"); do
  log=$logs/run-$run.log
  start=$(date +%s)
  if cargo test -j 1 --workspace --no-fail-fast >"$log" 2>&1; then
    echo "run $run/$runs: pass in $(($(date +%s) - start)) s"
  else
    failed=$((failed + 1))
    echo "run $run/$runs: FAIL in $(($(date +%s) - start)) s, see $log"
    { grep -E '^test .* \.\.\. FAILED$' "$log" || true; } | sed 's/^/    /'
    { grep -A1 'panicked at' "$log" || true; } | sed 's/^/    /'
  fi
done
echo "flake-hunt: $((runs - failed)) of $runs runs passed under stress-ng --cpu $cpus"
[ "$failed" -eq 0 ]
