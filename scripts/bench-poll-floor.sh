#!/usr/bin/env bash
# The poller's CPU per poll next to two floors, at N simulated instances,
# builds alternating ROUNDS times in one session: each BIN (redpulse
# builds, scraped as in `MODES=scraped scripts/bench-poll-cpu.sh`: a gzip
# scrape of /metrics every 15 s inside the window), then the tokio floor
# and the io_uring floor of benches/poll-floor (a task per connection, or
# one ring for all, sending redpulse's poll request and reading the whole
# reply: no parsing, no verdicts, no timeouts, no metrics).
#   scripts/bench-poll-floor.sh N SECONDS ROUNDS BIN [BIN...]
# CPU is `perf stat -e task-clock` on the process over the window; polls
# are redpulse's redpulse_polls_total{result="ok"} delta, or the floor's
# own count. Loopback only; everything started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=$1 secs=$2 rounds=$3
shift 3
bins=("$@")
base_port=${BASE_PORT:-22000}
http_port=${HTTP_PORT:-9482}
command -v perf >/dev/null || apt_install linux-perf
cargo build --release --quiet
sim_bin=${CARGO_TARGET_DIR:-target}/release/redpulse
floor_target=${CARGO_TARGET_DIR:-$PWD/target}/poll-floor
CARGO_TARGET_DIR=$floor_target cargo build --release --quiet --locked --manifest-path benches/poll-floor/Cargo.toml
use_scratch
start_sim_fleet "$n" 127.0.0.1 "$base_port"

count_redpulse() { curl -sf "http://127.0.0.1:$http_port/metrics" | awk '/^redpulse_polls_total\{result="ok"/ {s += $2} END {print s + 0}'; }
count_floor() { cat "$work/count"; }

for ((r = 1; r <= rounds; r++)); do
  for b in "${bins[@]}" tokio uring; do
    case $b in
      tokio | uring)
        "$floor_target/release/${b}_floor" "$base_port" "$n" "$work/count" >"$work/floor.log" 2>&1 &
        p=$! count=count_floor
        ;;
      *)
        data=()
        "$b" --help | grep -q -- --data-dir && data=(--data-dir "$work/data-$RANDOM")
        "$b" --listen "127.0.0.1:$http_port" --targets-file "$work/fleet.txt" "${data[@]}" >"$work/rp.log" 2>&1 &
        p=$! count=count_redpulse
        ;;
    esac
    pids+=($p)
    # Warm up: every connection made and polled.
    sleep $(( n >= 5000 ? 8 : 4 ))
    p0=$($count)
    scraper=
    case $b in
      tokio | uring) ;;
      *)
        (for ((k = 0; k * 15 < secs; k++)); do
          curl -s -o /dev/null -H "Accept-Encoding: gzip" "http://127.0.0.1:$http_port/metrics"
          sleep 15
        done) &
        scraper=$!
        pids+=($scraper)
        ;;
    esac
    ms=$(perf stat -x, -e task-clock -p "$p" -- sleep "$secs" 2>&1 | awk -F, '/task-clock/ {print $1}')
    [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; }
    # The floors write their count every 100 ms.
    sleep 0.15
    p1=$($count)
    kill "$p"; wait "$p" 2>/dev/null || true
    echo "$b round $r: $(awk -v ms="$ms" -v p=$((p1 - p0)) 'BEGIN {printf "%.2f us per poll (%d polls, %.0f ms CPU)", ms * 1000 / p, p, ms}')" | tee -a "$work/rounds.txt"
  done
done
echo "== medians at $n instances"
for b in "${bins[@]}" tokio uring; do
  grep -F "$b round" "$work/rounds.txt" | sed 's/.*round [0-9]*: //' | awk '{print $1}' | sort -n |
    awk -v b="$b" '{v[NR] = $1} END {printf "%-50s %.2f us per poll (median of %d)\n", b, v[int((NR + 1) / 2)], NR}'
done
