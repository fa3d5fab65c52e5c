#!/usr/bin/env bash
# The status page's first paint at fleet scale, in headless Chromium: N
# simulated instances polled by redpulse; the page logs a console line when
# it first renders the table, and Chromium stamps that line with the wall
# clock. Reported: from launching Chromium (its own start-up included, so
# an upper bound) to that line. TRIES loads, median.
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
sim_bin=$bin
start_sim_fleet "$n" "$ip" 20000
(cd "$work" && exec "$bin" --listen 127.0.0.1:9479 --targets-file "$work/fleet.txt") >"$work/rp.log" 2>&1 &
pids+=($!)
until curl -sf http://127.0.0.1:9479/readyz >/dev/null; do sleep 1; done
for ((t = 0; t < tries; t++)); do
  start=$(date +%s.%N)
  line=$(timeout 30 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --user-data-dir="$work/profile" --enable-logging=stderr --v=0 --virtual-time-budget=5000 \
    --dump-dom http://127.0.0.1:9479/ 2>&1 >/dev/null | grep -m1 'redpulse first render' || true)
  # [pid:tid:MMDD/HHMMSS.micro:INFO:CONSOLE...]
  stamp=$(sed -E 's/^\[[0-9]+:[0-9]+:[0-9]{4}\/([0-9]{2})([0-9]{2})([0-9]{2})\.([0-9]+):.*/\1 \2 \3 \4/' <<<"$line")
  if [ -z "$line" ]; then echo "no render"; continue; fi
  python3 - "$start" $stamp <<'PY'
import sys, datetime, time
start = float(sys.argv[1]); h, m, s, us = (int(x) for x in sys.argv[2:6])
d = datetime.datetime.fromtimestamp(start)
t = d.replace(hour=h, minute=m, second=s, microsecond=us).timestamp()
print(round((t - start) * 1000))
PY
done | sort -n | awk -v n="$n" '{v[NR] = $1} END {printf "status page at %d instances: first render %s ms after launching headless Chromium (median of %d: %s..%s ms)\n", n, v[int((NR + 1) / 2)], NR, v[1], v[NR]}'
