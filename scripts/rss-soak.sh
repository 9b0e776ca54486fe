#!/usr/bin/env bash
# RSS soak: does a long headless run hold its memory?
#
# Runs `brigade demo --headless` on scripts/soak.toml (a steady pipeline whose memory
# should hold still) with 10 ms ticks, so that a long run closes many windows and
# takes many decisions. Every 10 s it scrapes /metrics, pins the `enrich` stage's
# workers to 2 or 8 in turn (so its pool spawns and retires threads all along, through
# the control endpoint), and samples the process's resident set (VmRSS in
# /proc/PID/status), thread count and bytes in flight (what the workload holds, from
# the scrape) into a CSV. At the end it drains the run with
# SIGTERM and prints the RSS after the first minute, the final and the largest RSS,
# and the growth: the median RSS of the last minute less the median of the minute
# after the first (by then the allocator, queues and histories have their working
# size; the medians keep one sample's swing out of it). It exits 1 if the growth is
# 2 MiB or more, or if the run dies, refuses a control, or fails to drain.
#
# Usage: scripts/rss-soak.sh [DURATION [CSV]]
#   DURATION  how long to sample: seconds, or with a unit (90s, 30m, 1h); default 30m,
#             at least 3m
#   CSV       where to write the samples; default target/rss-soak/rss.csv (the run's
#             stderr and JSON report go beside it)
# Environment: SOAK_SCENARIO (a scenario file, default scripts/soak.toml; empty for
# the built-in demo, whose giants swing RSS by hundreds of MiB and make the growth
# meaningless), SOAK_TICK (default 10ms), SOAK_INTERVAL seconds (default 10),
# SOAK_LIMIT_KIB (default 2048).
set -euo pipefail

die() { echo "rss-soak: $*" >&2; exit 2; }

seconds() {
    local n m
    case "$1" in
        *h) n=${1%h}; m=3600 ;;
        *m) n=${1%m}; m=60 ;;
        *s) n=${1%s}; m=1 ;;
        *) n=$1; m=1 ;;
    esac
    [[ $n =~ ^[0-9]+$ ]] || die "DURATION $1: expected whole seconds or a unit, like 1800, 90s, 30m or 1h"
    echo $((n * m))
}

[[ $(uname -s) == Linux ]] || die "needs Linux (/proc/PID/status)"
duration=$(seconds "${1:-30m}")
(( duration >= 180 )) || die "DURATION ${1}: at least 3m, to compare a minute after the first with the last"
root=$(cd "$(dirname "$0")/.." && pwd)
scenario=${SOAK_SCENARIO-$root/scripts/soak.toml}
tick=${SOAK_TICK:-10ms}
interval=${SOAK_INTERVAL:-10}
limit_kib=${SOAK_LIMIT_KIB:-2048}
[[ $interval =~ ^[1-9][0-9]*$ ]] || die "SOAK_INTERVAL $interval: expected whole seconds"
[[ $limit_kib =~ ^[0-9]+$ ]] || die "SOAK_LIMIT_KIB $limit_kib: expected a whole number"

csv=${2:-$root/target/rss-soak/rss.csv}
dir=$(dirname "$csv")
mkdir -p "$dir"
log=$dir/brigade.stderr
report=$dir/report.json

cargo build --release --quiet --bin brigade --manifest-path "$root/Cargo.toml"
# Admission runs past the sampling, so the run is still busy at the last sample.
"$root/target/release/brigade" demo ${scenario:+"$scenario"} --headless --tick "$tick" \
    --duration "$((duration + 300))s" --metrics-addr 127.0.0.1:0 --report json \
    >"$report" 2>"$log" &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true' EXIT

port=
for _ in $(seq 100); do
    port=$(sed -n 's|^brigade: metrics on http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$log")
    [[ -n $port ]] && break
    kill -0 $pid 2>/dev/null || die "brigade exited at start: $(tail -n 5 "$log")"
    sleep 0.1
done
[[ -n $port ]] || die "brigade did not say where its metrics are: $(tail -n 5 "$log")"

# One request on a fresh connection (bash's /dev/tcp, no client needed); prints the
# answer.
http() {
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf '%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' \
        "$1" "$2" >&3
    cat <&3
    exec 3<&-
}

field() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$pid/status"; }

echo "elapsed_s,rss_kib,threads,metric_lines,enrich_pin,inflight_kib" >"$csv"
echo "rss-soak: pid $pid, tick $tick, sampling every ${interval}s for ${duration}s into $csv"
start=$(date +%s)
next=$start
baseline=
pin=2
while :; do
    now=$(date +%s)
    elapsed=$((now - start))
    kill -0 $pid 2>/dev/null || die "brigade died after ${elapsed}s: $(tail -n 5 "$log")"
    scrape=$(http GET /metrics) || die "cannot connect to http://127.0.0.1:$port/metrics"
    [[ $scrape == "HTTP/1.1 200 "* ]] || die "the scrape failed: $(head -n 1 <<<"$scrape")"
    lines=$(grep -c '^brigade_' <<<"$scrape" || true)
    inflight=$(awk '$1 == "brigade_inflight_bytes" { printf "%d", $2 / 1024 }' <<<"$scrape")
    if (( lines > 0 )); then
        # Stage names are known from the first tick on.
        pin=$((10 - pin))
        answer=$(http POST "/control/pin?stage=enrich&workers=$pin" | head -n 1)
        [[ $answer == *" 200 "* ]] || die "the pin was refused: $answer"
    fi
    rss=$(field VmRSS)
    threads=$(field Threads)
    echo "$elapsed,$rss,$threads,$lines,$pin,${inflight:-0}" >>"$csv"
    if [[ -z $baseline ]] && (( elapsed >= 60 )); then
        baseline=$rss
        echo "rss-soak: RSS after the first minute: $rss KiB ($threads threads)"
    fi
    if (( elapsed >= duration )); then
        break
    fi
    next=$((next + interval))
    delay=$((next - $(date +%s)))
    if (( delay > 0 )); then
        sleep "$delay"
    fi
done

kill -TERM $pid
if ! wait $pid; then
    die "brigade did not drain cleanly on SIGTERM: $(tail -n 5 "$log")"
fi
trap - EXIT

# The median RSS of the samples taken in [from, to) seconds.
median() {
    awk -F, -v from="$1" -v to="$2" 'NR > 1 && $1 >= from && $1 < to { print $2 }' "$csv" |
        sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'
}
early=$(median 60 120)
late=$(median $((elapsed - 59)) $((elapsed + 1)))
growth=$((late - early))
max=$(awk -F, 'NR > 1 && $2 > m { m = $2 } END { print m }' "$csv")
echo "rss-soak: RSS after the first minute $baseline KiB, final $rss KiB, max $max KiB"
echo "rss-soak: median RSS 60-120 s $early KiB, last minute $late KiB:" \
    "growth $growth KiB (limit $limit_kib KiB)"
if (( growth >= limit_kib )); then
    echo "rss-soak: FAIL: RSS grew by $growth KiB, the limit is $limit_kib KiB" >&2
    exit 1
fi
echo "rss-soak: ok"
