#!/usr/bin/env bash
# /metrics at fleet scale, end to end: N simulated instances polled at 1 s
# by one or more redpulse builds, one at a time. For each build: RSS per
# instance once every instance has had its metrics poll, then TRIES
# scrapes of /metrics plain and with Accept-Encoding: gzip (curl's time to
# the first byte, time_total and bytes, medians; and the peak RSS above
# the idle RSS before the scrapes, sampled every 2 ms from /proc), then
# SECONDS of back-to-back gzip scrapes while the age of every instance's
# verdict is sampled (does a scrape stall polling?).
#   scripts/bench-metrics.sh N TRIES SECONDS BIN [BIN...]
# e.g. scripts/bench-metrics.sh 10000 5 20 /tmp/redpulse-old target/release/redpulse
# Loopback only; everything started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=$1 tries=$2 secs=$3
shift 3
bins=("$@")
base_port=${BASE_PORT:-20000}
http_port=${HTTP_PORT:-9479}
cargo build --release --quiet
sim_bin=${CARGO_TARGET_DIR:-target}/release/redpulse
use_scratch
start_sim_fleet "$n" 127.0.0.1 "$base_port"
url="http://127.0.0.1:$http_port/metrics"
for bin in "${bins[@]}"; do
  data=()
  "$bin" --help | grep -q -- --data-dir && data=(--data-dir "$work/data-$RANDOM")
  "$bin" --listen "127.0.0.1:$http_port" --targets-file "$work/fleet.txt" "${data[@]}" >"$work/rp.log" 2>&1 &
  rp=$!
  pids+=($rp)
  # Every instance connected and through its first (metrics) poll.
  sleep $(( n >= 5000 ? 15 : 5 ))
  rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$rp/status")
  echo "$bin: RSS $((rss_kb / 1024)) MiB, $(awk -v r="$rss_kb" -v n="$n" 'BEGIN {printf "%.1f", r / n}') KiB per instance"
  for enc in identity gzip; do
    # Peak RSS while the scrapes run, sampled beside them.
    rm -f "$work/peak-$enc" "$work/peak-$enc.stop"
    python3 - "$rp" "$work/peak-$enc" <<'PY' &
import sys, time, os
pid, out = sys.argv[1], sys.argv[2]
peak = 0
while not os.path.exists(out + ".stop"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                peak = max(peak, int(line.split()[1]))
    time.sleep(0.002)
open(out, "w").write(str(peak))
PY
    sampler=$!
    for ((t = 0; t < tries; t++)); do
      curl -s -o /dev/null -H "Accept-Encoding: $enc" -w '%{time_total} %{time_starttransfer} %{size_download}\n' "$url"
    done >"$work/times-$enc"
    touch "$work/peak-$enc.stop"; wait "$sampler"
    peak_kb=$(cat "$work/peak-$enc")
    python3 - "$bin" "$enc" "$work/times-$enc" "$rss_kb" "$peak_kb" <<'PY'
import statistics, sys
b, enc, path, idle, peak = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rows = [tuple(map(float, l.split())) for l in open(path) if l.strip()]
total = statistics.median(r[0] for r in rows) * 1000
first = statistics.median(r[1] for r in rows) * 1000
size = statistics.median(r[2] for r in rows) / 1e6
print(f"{b}: /metrics {enc}: median {total:.0f} ms of {len(rows)} (first byte {first:.0f} ms), {size:.1f} MB, peak RSS {(peak - idle) / 1024:+.0f} MiB over idle")
PY
  done
  python3 - "$http_port" "$n" "$secs" "$url" <<'PY'
import http.client, json, subprocess, sys, threading, time
port, n, secs, url = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
stop = time.time() + secs
scrapes = [0]
def scrape():
    while time.time() < stop:
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", url])
        scrapes[0] += 1
t = threading.Thread(target=scrape)
t.start()
ages = []
while time.time() < stop:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/health/redis?all=1")
    fleet = json.loads(c.getresponse().read())
    ages += [i["age_ms"] for i in fleet["all"] if i.get("age_ms") is not None]
    time.sleep(1)
t.join()
ages.sort()
q = lambda p: ages[min(len(ages) - 1, int(p * len(ages)))]
print(f"during {scrapes[0]} back-to-back gzip scrapes in {secs:.0f} s: health age p50 {q(0.5)} ms, p99 {q(0.99)} ms, max {ages[-1]} ms ({len(ages)} samples)")
PY
  kill "$rp"; wait "$rp" 2>/dev/null || true
done
