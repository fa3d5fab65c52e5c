#!/usr/bin/env bash
# Fleet benchmark: N simulated instances (a separate `redpulse simulate`
# process) polled by redpulse at a 1 s interval for SECONDS. Reports the
# poller's CPU per instance-poll (user+sys from /proc, kernel included), RSS
# per instance, health age p50/p99 sampled over HTTP, and polls/s.
#   scripts/bench-fleet.sh [N] [SECONDS]      (defaults: 1000 30)
# BIN=path/to/redpulse measures another build (e.g. an older commit's, for
# a side-by-side figure); the simulator is always this tree's release build.
# Loopback only; both processes are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=${1:-1000}
secs=${2:-30}
base_port=${BASE_PORT:-20000}
http_port=${HTTP_PORT:-9479}
cargo build --release --quiet
sim_bin=${CARGO_TARGET_DIR:-target}/release/redpulse
bin=${BIN:-$sim_bin}
use_scratch

# The poller needs one descriptor per instance (lib.sh splits the
# simulated fleet over processes for the same reason).
start_sim_fleet "$n" 127.0.0.1 "$base_port"

# Baseline RSS: the same binary watching one instance.
"$bin" --listen "127.0.0.1:$((http_port + 1))" --target "sim-00000=redis://127.0.0.1:$base_port" --data-dir "$work/base-data" >"$work/base.log" 2>&1 &
base_pid=$!
pids+=($base_pid)
sleep 3
base_rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$base_pid/status")
kill "$base_pid"

"$bin" --listen "127.0.0.1:$http_port" --targets-file "$work/fleet.txt" --interval 1s --timeout 1s --data-dir "$work/data" >"$work/redpulse.log" 2>&1 &
rp=$!
pids+=($rp)

python3 - "$rp" "$n" "$secs" "$http_port" "$base_rss_kb" <<'PY'
import http.client, json, os, random, sys, time
pid, n, secs, port, base_rss_kb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
tick = os.sysconf("SC_CLK_TCK")

def cpu_seconds():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

conn = None
def get(path):
    global conn
    for _ in range(3):
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            conn = None
            time.sleep(0.2)
    raise SystemExit(f"GET {path} failed")

def polls():
    _, body = get("/metrics")
    total = 0
    for line in body.decode().splitlines():
        if line.startswith("redpulse_polls_total"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total

# Warm up: every instance polled at least twice.
deadline = time.time() + 60
while polls() < 2 * n:
    if time.time() > deadline:
        raise SystemExit("warm-up did not finish within 60 s")
    time.sleep(0.5)
time.sleep(1)

c0, p0, t0 = cpu_seconds(), polls(), time.time()
ages, statuses = [], {}
sample = min(n, 200)
while time.time() - t0 < secs:
    for name in random.sample(range(n), sample):
        code, body = get(f"/health/redis/sim-{name:05d}")
        v = json.loads(body)
        ages.append(v.get("age_ms", 10**9))
        statuses[v["status"]] = statuses.get(v["status"], 0) + 1
    time.sleep(1)
c1, p1, t1 = cpu_seconds(), polls(), time.time()
rss = rss_kb()
ages.sort()
pct = lambda q: ages[min(len(ages) - 1, int(q * len(ages)))]
polled = p1 - p0
print(f"instances           {n}")
print(f"window              {t1 - t0:.1f} s, {polled} polls ({polled / (t1 - t0):.0f} polls/s)")
print(f"poller CPU          {(c1 - c0) / (t1 - t0) * 100:.1f} % of one core")
print(f"CPU per poll        {(c1 - c0) / polled * 1e6:.2f} us (user+sys)")
print(f"RSS                 {rss / 1024:.1f} MiB total; {rss * 1024 / n / 1024:.2f} KiB per instance; "
      f"{(rss - base_rss_kb) * 1024 / max(n - 1, 1) / 1024:.2f} KiB per instance above a 1-instance baseline ({base_rss_kb / 1024:.1f} MiB)")
print(f"health age          p50 {pct(0.5)} ms, p99 {pct(0.99)} ms, max {ages[-1]} ms ({len(ages)} samples)")
print(f"statuses sampled    {dict(sorted(statuses.items()))}")
PY
