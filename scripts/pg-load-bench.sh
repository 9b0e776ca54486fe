#!/usr/bin/env bash
# The PostgreSQL load experiment of issue 20: one generated CSV loaded, in one run,
# into the same (truncated) table of a local PostgreSQL by `psql \copy` (one COPY
# stream), by pgloader (its parallel settings by default, then each workers ×
# concurrency of a small grid), and by `brigade run` with the postgres sink at static
# writer counts and with `adaptive` from one writer. Then the same with an upsert into
# a table with a primary key and a hot key range (few keys, many rows each), where
# too many writers deadlock. Prints markdown tables and whether the goals were met.
#
# Usage: scripts/pg-load-bench.sh [append|upsert|all]   (default all)
# Environment:
#   PG_BENCH_ROWS     rows in the CSV (default 1000000)
#   PG_BENCH_HOT      the upsert's hot rows: "share:keys", a share of the rows whose
#                     key is drawn from a narrow range of keys (default "0.02:1000";
#                     the other rows have keys of their own)
#   PG_BENCH_RUNS     runs of each loader, the median reported (default 1)
#   PG_BENCH_WRITERS  static writer counts (default "1 2 4 8 16 32 64"; "" runs
#                     adaptive alone)
#   PG_BENCH_PGLOADER pgloader "workers:concurrency" settings besides the default
#                     (default "2:1 4:1 4:2 8:2 8:4"; "" skips the grid)
#   PG_BENCH_BATCH    the sink's batch size in the static runs (default 1000)
#   PG_BENCH_FINAL_BATCH 1 to run the statics again at adaptive's last batch when it
#                     differs, the goals then against the best of both (default 1)
#   PG_BENCH_BRIGADE  0 to run only psql and pgloader (default 1)
#   BRIGADE           the binary (default target/release/brigade, built if missing)
# Work files (the CSVs, run logs) go to target/pg-load-bench/, the server's data to
# a temporary directory removed at exit. Needs the Debian postgresql and pgloader
# packages, python3 (for the reports' arithmetic) and root (the server runs as
# `postgres`) or a user who may run initdb.
set -euo pipefail

cd "$(dirname "$0")/.."
MODE=${1:-all}
ROWS=${PG_BENCH_ROWS:-1000000}
HOT=${PG_BENCH_HOT:-0.02:1000}
RUNS=${PG_BENCH_RUNS:-1}
WRITERS=${PG_BENCH_WRITERS-"1 2 4 8 16 32 64"}
PGLOADER_GRID=${PG_BENCH_PGLOADER-"2:1 4:1 4:2 8:2 8:4"}
BATCH=${PG_BENCH_BATCH:-1000}
FINAL_BATCH=${PG_BENCH_FINAL_BATCH:-1}
WITH_BRIGADE=${PG_BENCH_BRIGADE:-1}
BRIGADE=${BRIGADE:-target/release/brigade}
WORK=$PWD/target/pg-load-bench
mkdir -p "$WORK"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "pg-load-bench: no PostgreSQL server binaries" >&2; exit 2; }
command -v pgloader >/dev/null || { echo "pg-load-bench: pgloader is not installed" >&2; exit 2; }
if [ "$WITH_BRIGADE" = 1 ] && [ ! -x "$BRIGADE" ]; then
  cargo build --release --bin brigade
fi

# --- the input -------------------------------------------------------------------
# id, name (text), qty (int), price (numeric), ts (timestamp); deterministic. With
# a hot range "share:keys", that share of the rows takes an id from 1..keys, the rest
# ids of their own past it.
csv() {
  local path=$1 hot=$2
  [ -s "$path" ] && return
  awk -v rows="$ROWS" -v share="${hot%%:*}" -v keys="${hot##*:}" 'BEGIN {
    srand(20); OFS = ","
    print "id,name,qty,price,ts"
    split("alpha beta gamma delta epsilon zeta eta theta iota kappa", words, " ")
    for (i = 1; i <= rows; i++) {
      id = rand() < share ? int(rand() * keys) + 1 : keys + i
      name = words[int(rand() * 10) + 1] "-" words[int(rand() * 10) + 1] "-" i
      printf "%d,%s,%d,%.2f,2026-%02d-%02d %02d:%02d:%02d\n", id, name, int(rand() * 1000),
        rand() * 10000, int(rand() * 12) + 1, int(rand() * 28) + 1, int(rand() * 24),
        int(rand() * 60), int(rand() * 60)
    }
  }' > "$path.tmp"
  mv "$path.tmp" "$path"
}

# --- the server ------------------------------------------------------------------
PGDATA_DIR=$(mktemp -d /tmp/pg-load-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop_server() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR/data" stop -m immediate -w >/dev/null 2>&1 || true
  rm -rf "$PGDATA_DIR"
}
trap stop_server EXIT
[ "$(id -u)" = 0 ] && chown postgres "$PGDATA_DIR"
as_pg "$PGBIN/initdb" -D "$PGDATA_DIR/data" -U brigade --auth=trust -E UTF8 --locale=C \
  --no-instructions >/dev/null
cat >> "$PGDATA_DIR/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA_DIR'
max_connections = 200
shared_buffers = 512MB
max_wal_size = 4GB
EOF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR/data" -l "$PGDATA_DIR/log" -w start >/dev/null
URL="host=127.0.0.1 port=$PORT user=brigade dbname=postgres"
sql() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$URL" -c "$1"; }

# --- one timed load --------------------------------------------------------------
# Prints the wall seconds of "$@", with the table truncated before and its rows
# checked after against $expect.
timed() {
  local table=$1 expect=$2
  shift 2
  sql "TRUNCATE $table; CHECKPOINT;"
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  local rows
  rows=$(sql "SELECT count(*) FROM $table")
  if [ "$rows" != "$expect" ]; then
    echo "pg-load-bench: $* left $rows rows in $table, expected $expect" >&2
    exit 1
  fi
  python3 -c "print(f'{$end - $start:.3f}')"
}

psql_copy() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$URL" \
    -c "\\copy $1 ($2) FROM '$3' WITH (FORMAT csv, HEADER true)"
}

# pgloader into an existing table; $4 = "" for its defaults, else "workers:concurrency".
run_pgloader() {
  local table=$1 columns=$2 file=$3 setting=$4 with=""
  if [ -n "$setting" ]; then
    with=", workers = ${setting%%:*}, concurrency = ${setting##*:}"
  fi
  cat > "$WORK/load.pgl" <<EOF
LOAD CSV FROM '$file' ($columns)
  INTO postgresql://brigade@127.0.0.1:$PORT/postgres
  TARGET TABLE $table ($columns)
  WITH skip header = 1, fields terminated by ',', fields optionally enclosed by '"'$with;
EOF
  pgloader --root-dir "$WORK/pgloader" --summary "$WORK/pgloader-summary.txt" "$WORK/load.pgl" \
    > "$WORK/pgloader.log" 2>&1 || { cat "$WORK/pgloader.log" >&2; return 1; }
}

# A pipeline file: CSV → postgres sink, $3 = "append" or "upsert".
pipeline() {
  local table=$1 file=$2 how=$3 key=""
  [ "$how" = upsert ] && key='key = ["id"]'
  cat <<EOF
name = "pg-load-$how"

[runtime]
memory_budget = "256MiB"

[source]
type = "file"
path = "$file"
format = "csv"

[sink]
type = "postgres"
url = "$URL"
table = "$table"
columns = ["id", "name", "qty", "price", "ts"]
$key
batch_size = $BATCH
# Two batches: a batch takes only what waits in the queue.
queue_capacity = $((2 * BATCH))

[dead_letter]
path = "$WORK/dead.jsonl"
EOF
}

# brigade run with --policy $2; leaves the report in $WORK/report.json and the
# ticks in $WORK/ticks.jsonl.
run_brigade() {
  rm -f "$WORK/ticks.jsonl" "$WORK/dead.jsonl"
  "$BRIGADE" run "$1" --headless --report json --policy "$2" \
    --metrics-log "$WORK/ticks.jsonl" > "$WORK/report.json" 2> "$WORK/brigade.log"
}

# From a run's ticks: the sink's most and last writers, its final throughput (the
# mean of its rate over the last 10 s before the source ran out, or of the run's
# last third if shorter), the seconds until a 3-tick mean first reached 95% of it,
# and its last batch size.
summarise_ticks() {
  python3 - "$WORK/ticks.jsonl" <<'EOF'
import json, sys
ticks = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
points = []
for t in ticks:
    s = t["snapshot"]
    sink = s["stages"][-1]
    knobs = s["knobs"]["stages"][-1]
    rate = sink["records_out"] / s["window_s"] if s["window_s"] > 0 else 0.0
    exhausted = s["global"]["source"].get("exhausted", False)
    points.append((s["at_s"], rate, knobs["workers"], exhausted, knobs["batch_size"]))
if not points:
    print("- - - - -")
    sys.exit()
most = max(p[2] for p in points)
last = points[-1][2]
reading = [p for p in points if not p[3]] or points
end = reading[-1][0]
tail = [p for p in reading if p[0] > end - 10] or reading
if len(tail) < 3:
    tail = reading[len(reading) * 2 // 3:] or reading
final = sum(p[1] for p in tail) / len(tail)
reach = "-"
for i in range(len(reading)):
    window = reading[max(0, i - 2): i + 1]
    if sum(p[1] for p in window) / len(window) >= 0.95 * final:
        reach = f"{reading[i][0]:.0f}"
        break
print(most, last, f"{final:.0f}", reach, points[-1][4])
EOF
}

median() { python3 -c 'import statistics, sys; print(f"{statistics.median(float(a) for a in sys.argv[1:]):.3f}")' "$@"; }

# --- one experiment --------------------------------------------------------------
experiment() {
  local how=$1 table file hot
  if [ "$how" = upsert ]; then
    table=load_upsert hot=$HOT
    sql "SET client_min_messages TO warning; DROP TABLE IF EXISTS $table; CREATE TABLE $table (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), ts timestamp)"
  else
    table=load_append hot=0:0
    sql "SET client_min_messages TO warning; DROP TABLE IF EXISTS $table; CREATE TABLE $table (id bigint, name text, qty int, price numeric(12,2), ts timestamp)"
  fi
  file=$WORK/rows-$ROWS-hot-$hot.csv
  csv "$file" "$hot"
  local expect=$ROWS
  [ "$how" = upsert ] && expect=$(cut -d, -f1 "$file" | tail -n +2 | sort -u | wc -l)
  local columns="id, name, qty, price, ts"
  pipeline "$table" "$file" "$how" > "$WORK/$how.toml"

  echo
  echo "## $how: $ROWS rows$( [ "$how" = upsert ] && echo ", $expect distinct keys, hot share:keys $hot") into $table"
  echo
  echo "| loader | median s | rows/s | writers (most/last) | last batch | final rows/s | s to 95% |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  local row times t

  if [ "$how" = append ]; then
    times=()
    for _ in $(seq "$RUNS"); do times+=("$(timed "$table" "$expect" psql_copy "$table" "$columns" "$file")"); done
    t=$(median "${times[@]}")
    echo "| psql \\copy | $t | $(python3 -c "print(round($ROWS / $t))") | 1/1 | all | - | - |"
  fi

  # pgloader loads the upsert's file with duplicate keys into a primary key only by
  # refusing rows: it has no upsert, so only the append runs it.
  if [ "$how" = append ]; then
    for setting in "" $PGLOADER_GRID; do
      times=()
      for _ in $(seq "$RUNS"); do times+=("$(timed "$table" "$expect" run_pgloader "$table" "$columns" "$file" "$setting")"); done
      t=$(median "${times[@]}")
      echo "| pgloader ${setting:-default} | $t | $(python3 -c "print(round($ROWS / $t))") | ${setting:-default} | - | - | - |"
    done
  fi

  [ "$WITH_BRIGADE" = 1 ] || return 0
  local best_rate=0 best_label="" best_writers=0 adaptive_rate=0 adaptive_most=0
  local adaptive_reach=-
  # The statics at the configured batch, adaptive, then (PG_BENCH_FINAL_BATCH) the
  # statics again at adaptive's last batch: the best static a user could have set.
  local queue
  queue=$(for n in $WRITERS; do echo "$how.toml:static:2,$n"; done; echo "$how.toml:adaptive")
  while [ -n "$queue" ]; do
    local entry=${queue%%$'\n'*}
    if [ "$entry" = "$queue" ]; then queue=""; else queue=${queue#*$'\n'}; fi
    local toml=${entry%%:*} policy=${entry#*:}
    times=() summaries=()
    for _ in $(seq "$RUNS"); do
      t=$(timed "$table" "$expect" run_brigade "$WORK/$toml" "$policy")
      times+=("$t")
      summaries+=("$t $(summarise_ticks)")
    done
    t=$(median "${times[@]}")
    # The summary of the median run.
    row=$(printf '%s\n' "${summaries[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
    read -r _ most last final reach batch <<< "$row"
    local rate
    rate=$(python3 -c "print(round($ROWS / $t))")
    echo "| brigade $policy | $t | $rate | $most/$last | $batch | $final | $reach |"
    if [ "$policy" != adaptive ] && [ "$rate" -gt "$best_rate" ]; then
      best_rate=$rate best_label="$policy at batch $batch" best_writers=${policy##*,}
    fi
    if [ "$policy" = adaptive ]; then
      adaptive_rate=$rate adaptive_most=$most adaptive_reach=$reach
      if [ "$FINAL_BATCH" = 1 ] && [ "$batch" != "$BATCH" ] && [ -n "$WRITERS" ]; then
        local configured=$BATCH
        BATCH=$batch
        pipeline "$table" "$file" "$how" > "$WORK/$how-final.toml"
        BATCH=$configured
        queue=$(for n in $WRITERS; do echo "$how-final.toml:static:2,$n"; done)
      fi
    fi
  done
  echo
  python3 - "$adaptive_rate" "$best_rate" "$best_label" "$best_writers" "$adaptive_most" "$adaptive_reach" <<'EOF'
import sys
rate, best, label, best_writers, most, reach = sys.argv[1:]
rate, best, best_writers, most = float(rate), float(best), int(best_writers), int(most)
if best <= 0:
    print("no static run to compare with")
    sys.exit()
ok = rate >= 0.95 * best and most <= best_writers + 2
print(f"goal adaptive ≥ 0.95 × best static ({label}, {best:.0f} rows/s) with ≤ {best_writers + 2} writers: "
      f"{'met' if ok else 'NOT met'} ({rate / best:.2f}×, most {most} writers)")
print(f"goal time to 95% of final throughput < 30 s: {'met' if reach != '-' and float(reach) < 30 else 'NOT met'} ({reach} s)")
EOF
  if [ "$how" = append ]; then
    echo "(compare adaptive's rows/s with the best pgloader row above for the pgloader goal)"
  fi
}

case $MODE in
  append) experiment append ;;
  upsert) experiment upsert ;;
  all) experiment append; experiment upsert ;;
  *) echo "usage: $0 [append|upsert|all]" >&2; exit 2 ;;
esac
