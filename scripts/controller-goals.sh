#!/usr/bin/env bash
# The controller's goals (issue 19), checked in one run of the simulator:
#
#   1. every scenario given (default: the project's, scenarios/*.toml, and the copies of
#      the shared ones in sim/tests/scenarios/, unseen-* left out): adaptive ≥ 0.95 of
#      the oracle, cost ≤ 1.15× the oracle's, settles within 45 s of each phase, at most
#      2 reversals per stage per phase, first of all policies (within 1%), never fails;
#   2. over seeds 1–12 of each: median ≥ 0.95, lowest ≥ 0.90, never fails;
#   3. with GOALS_RANDOM="FROM TO" (numbers drawn after the last change to the policy),
#      the random scenarios of sim/examples/random_scenarios.rs: mean ≥ 0.97, none under
#      0.85, never fails, median cost ≤ 1.10×.
#
# Usage: scripts/controller-goals.sh [SCENARIO.toml ...]
# Environment: GOALS_SEEDS (default "1-12"; "" skips part 2), GOALS_RANDOM (default
# "": part 3 skipped), BRIGADE (default target/release/brigade, built if missing).
# Prints a markdown table per part and a line per goal, met or not.
set -euo pipefail

cd "$(dirname "$0")/.."
BRIGADE=${BRIGADE:-target/release/brigade}
SEEDS=${GOALS_SEEDS-1-12}
RANDOM_RANGE=${GOALS_RANDOM:-}
WORK=target/controller-goals
mkdir -p "$WORK"
if [[ ! -x $BRIGADE ]]; then
  cargo build --release --bin brigade
fi
if [[ $# -gt 0 ]]; then
  files=("$@")
else
  files=(scenarios/*.toml)
  for shared in sim/tests/scenarios/*.toml; do
    case $shared in *.expect.toml | */unseen-*) continue ;; esac
    files+=("$shared")
  done
fi
# Fleets are judged by their own table (brigade sim prints it); here, single processes.
single=()
for file in "${files[@]}"; do
  grep -q '^\[fleet\]' "$file" || single+=("$file")
done

echo "## Every scenario, every policy"
"$BRIGADE" sim "${single[@]}" --format json >"$WORK/all.json"
python3 - "$WORK/all.json" <<'PY'
import json, sys
reports = json.load(open(sys.argv[1]))
reports = reports if isinstance(reports, list) else [reports]
print("| scenario | vs oracle | cost | settle s | reversals/phase | rank | failed |")
print("|---|---:|---:|---:|---:|---|---|")
misses = []
for report in reports:
    runs = {run["policy"]: run for run in report["runs"]}
    a = runs["adaptive"]
    best = max(run["throughput"] for run in runs.values())
    first = a["throughput"] >= 0.99 * best
    leader = max(runs.values(), key=lambda run: run["throughput"])["policy"]
    rank = "first" if first else f"behind {leader}"
    print(f"| {report['scenario']} | {a['vs_oracle']:.2f} | {a['cost_vs_oracle']:.2f} | "
          f"{a['settle_s']:.0f} | {a['max_reversals_per_stage_phase']} | {rank} | {a['failed']} |")
    for name, ok in [("vs oracle ≥ 0.95", a["vs_oracle"] >= 0.95),
                     ("cost ≤ 1.15", a["cost_vs_oracle"] <= 1.15),
                     ("settles ≤ 45 s", a["settle_s"] <= 45),
                     ("≤ 2 reversals per stage per phase", a["max_reversals_per_stage_phase"] <= 2),
                     ("first of all policies", first),
                     ("never fails", not a["failed"])]:
        if not ok:
            misses.append(f"{report['scenario']}: {name}")
print()
print(f"goals met on {len(reports) * 6 - len(misses)} of {len(reports) * 6} checks")
for miss in misses:
    print(f"- NOT met: {miss}")
PY

if [[ -n $SEEDS ]]; then
  echo
  echo "## Seeds $SEEDS, adaptive"
  "$BRIGADE" sim "${single[@]}" --policy adaptive --seeds "$SEEDS" --format json >"$WORK/seeds.json"
  python3 - "$WORK/seeds.json" <<'PY'
import json, statistics, sys
reports = json.load(open(sys.argv[1]))
reports = reports if isinstance(reports, list) else [reports]
print("| scenario | median vs oracle | lowest | failed |")
print("|---|---:|---:|---:|")
met = True
for report in reports:
    runs = [run for seed in report["seeds"] for run in seed["runs"] if run["policy"] == "adaptive"]
    ratios = [run["vs_oracle"] for run in runs]
    failed = sum(run["failed"] for run in runs)
    median, lowest = statistics.median(ratios), min(ratios)
    met &= median >= 0.95 and lowest >= 0.90 and failed == 0
    print(f"| {report['scenario']} | {median:.2f} | {lowest:.2f} | {failed} |")
print()
print(f"seeds goal (median ≥ 0.95, lowest ≥ 0.90, never fails): {'met' if met else 'NOT met'}")
PY
fi

if [[ -n $RANDOM_RANGE ]]; then
  read -r from to <<<"$RANDOM_RANGE"
  echo
  echo "## Random scenarios $from–$((to - 1)), adaptive"
  rm -rf "$WORK/random"
  cargo run --release -q -p brigade-sim --example random_scenarios -- "$WORK/random" "$from" "$to"
  "$BRIGADE" sim "$WORK"/random/*.toml --policy adaptive --format json >"$WORK/random.json"
  python3 - "$WORK/random.json" "$WORK/random" <<'PY'
import json, statistics, sys, re, pathlib
reports = json.load(open(sys.argv[1]))
reports = reports if isinstance(reports, list) else [reports]
kinds = {}
for path in pathlib.Path(sys.argv[2]).glob("*.toml"):
    match = re.search(r'^description = "(.*)"', path.read_text(), re.M)
    kinds[path.stem] = match.group(1) if match else "?"
runs = [(report["scenario"], run) for report in reports for run in report["runs"]]
ratios = [run["vs_oracle"] for _, run in runs]
costs = [run["cost_vs_oracle"] for _, run in runs]
failed = [name for name, run in runs if run["failed"]]
low = sorted((run["vs_oracle"], name) for name, run in runs)[:5]
print(f"{len(runs)} scenarios: mean vs oracle {statistics.mean(ratios):.3f}, lowest {min(ratios):.2f}, "
      f"median cost {statistics.median(costs):.2f}, failed {len(failed)} {failed}")
print("lowest five: " + ", ".join(f"{name} ({kinds.get(name, '?')}) {ratio:.2f}" for ratio, name in low))
by_kind = {}
for name, run in runs:
    by_kind.setdefault(kinds.get(name, "?"), []).append(run["vs_oracle"])
for kind, values in sorted(by_kind.items()):
    print(f"- {kind}: {len(values)} scenarios, mean {statistics.mean(values):.3f}, lowest {min(values):.2f}")
met = statistics.mean(ratios) >= 0.97 and min(ratios) >= 0.85 and not failed and statistics.median(costs) <= 1.10
print(f"random goal (mean ≥ 0.97, none under 0.85, never fails, median cost ≤ 1.10): {'met' if met else 'NOT met'}")
PY
fi
