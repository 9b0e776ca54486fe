#!/usr/bin/env bash
# Instructions brigade executes per record against the hand-written crossbeam pipeline
# of `benches/overhead.rs`, counted by callgrind: a figure that does not depend on the
# machine's load or its scheduler, unlike the bench's wall-clock ratio.
#
# usage: scripts/overhead-instructions.sh [ITERS]   (spin iterations per stage, default 300)
# Needs valgrind (Debian's `valgrind`).
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-300}
command -v valgrind >/dev/null || { echo "install valgrind (apt-get install valgrind)" >&2; exit 2; }

bench=$(cargo bench --bench overhead --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "overhead" and m.get("executable"):
        print(m["executable"])')

count() {
  OVERHEAD_ONLY=$1 OVERHEAD_ITERS=$iters valgrind --tool=callgrind \
    --callgrind-out-file=/dev/null "$bench" --bench 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | tail -n 1
}

raw=$(count raw)
brigade=$(count brigade)
python3 - "$raw" "$brigade" "$iters" <<'PY'
import sys
raw, brigade, iters = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
records = 200_000
print(f"spin iterations per stage: {iters}")
print(f"raw crossbeam: {raw:>14,} instructions, {raw / records:8.1f} per record")
print(f"brigade:       {brigade:>14,} instructions, {brigade / records:8.1f} per record")
print(f"brigade / raw: {brigade / raw:.3f}  (overhead {(brigade - raw) / records:.1f} instructions per record)")
PY
