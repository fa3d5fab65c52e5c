#!/usr/bin/env bash
# The poller's CPU per poll, measured with `perf stat -e task-clock` on the
# redpulse process (no HTTP load at all), for one or more builds
# alternating in the same session, ROUNDS times each; prints every round and
# the median per build. For side-by-side figures on a noisy machine.
#   scripts/bench-poll-cpu.sh N SECONDS ROUNDS BIN [BIN...]
# e.g. scripts/bench-poll-cpu.sh 10000 10 3 /tmp/redpulse-old target/release/redpulse
# The simulated fleet is this tree's release build, in processes of at most
# 5,000 instances. Loopback only; everything started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=$1 secs=$2 rounds=$3
shift 3
bins=("$@")
base_port=${BASE_PORT:-20000}
http_port=${HTTP_PORT:-9479}
command -v perf >/dev/null || apt_install linux-perf
cargo build --release --quiet
sim_bin=target/release/redpulse
use_scratch

for ((first = 0; first < n; first += 5000)); do
  count=$(( n - first < 5000 ? n - first : 5000 ))
  "$sim_bin" simulate --instances "$count" --listen "127.0.0.1:$((base_port + first))" >"$work/sim-$first.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 0 $((n - 1))); do echo "sim-$(printf %05d "$i")=redis://127.0.0.1:$((base_port + i))"; done >"$work/fleet.txt"
sleep 2

polls() { curl -sf "http://127.0.0.1:$http_port/metrics" | awk '/^redpulse_polls_total/ {s += $2} END {print s + 0}'; }

for ((r = 1; r <= rounds; r++)); do
  for bin in "${bins[@]}"; do
    "$bin" --listen "127.0.0.1:$http_port" --targets-file "$work/fleet.txt" >"$work/rp.log" 2>&1 &
    rp=$!
    pids+=($rp)
    # Warm up: every instance connected and polled a few times.
    sleep $(( n >= 5000 ? 8 : 4 ))
    p0=$(polls)
    ms=$(perf stat -x, -e task-clock -p "$rp" -- sleep "$secs" 2>&1 | awk -F, '/task-clock/ {print $1}')
    p1=$(polls)
    kill "$rp"; wait "$rp" 2>/dev/null || true
    echo "$bin round $r: $(awk -v ms="$ms" -v p=$((p1 - p0)) 'BEGIN {printf "%.2f us per poll (%d polls, %.0f ms CPU)", ms * 1000 / p, p, ms}')" | tee -a "$work/rounds.txt"
  done
done
echo "== medians at $n instances"
for bin in "${bins[@]}"; do
  grep -F "$bin round" "$work/rounds.txt" | awk '{print $(NF-8)}' | sort -n | awk -v b="$bin" '{v[NR] = $1} END {printf "%-40s %.2f us per poll (median of %d)\n", b, v[int((NR + 1) / 2)], NR}'
done
