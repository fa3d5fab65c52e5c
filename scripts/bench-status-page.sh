#!/usr/bin/env bash
# The status page's first paint at fleet scale, in headless Chromium: N
# simulated instances polled by redpulse; the page records
# performance.now() (ms since navigation start, real time) when it first
# renders the table, into <body data-first-render-ms>. TRIES loads, median.
#   scripts/bench-status-page.sh N TRIES
# Loopback only; everything started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=$1 tries=$2
ip=127.0.0.91
cargo build --release --quiet
bin=$(realpath target/release/redpulse)
command -v chromium >/dev/null || apt_install chromium
use_scratch
for ((first = 0; first < n; first += 5000)); do
  count=$(( n - first < 5000 ? n - first : 5000 ))
  "$bin" simulate --instances "$count" --listen "$ip:$((20000 + first))" >"$work/sim-$first.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 0 $((n - 1))); do echo "sim-$(printf %05d "$i")=redis://$ip:$((20000 + i))"; done >"$work/fleet.txt"
sleep 2
(cd "$work" && exec "$bin" --listen 127.0.0.1:9479 --targets-file "$work/fleet.txt") >"$work/rp.log" 2>&1 &
pids+=($!)
until curl -sf http://127.0.0.1:9479/readyz >/dev/null; do sleep 1; done
for ((t = 0; t < tries; t++)); do
  # --timeout: real time, not virtual; the dump happens after it.
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --user-data-dir="$work/profile" --timeout=4000 --dump-dom http://127.0.0.1:9479/ 2>/dev/null |
    grep -o 'data-first-render-ms="[0-9]*"' | grep -o '[0-9]*' || echo "no render"
done | sort -n | awk -v n="$n" '{v[NR] = $1} END {printf "status page at %d instances: first render %s ms after navigation start (median of %d: %s)\n", n, v[int((NR + 1) / 2)], NR, v[1] ".." v[NR]}'
