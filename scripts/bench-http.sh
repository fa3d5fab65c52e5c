#!/usr/bin/env bash
# HTTP serving throughput: wrk (Debian's package) on /health/redis/{name}
# while redpulse polls N simulated instances (a separate process) at 1 s.
# Reports wrk's requests/s and latency percentiles, redpulse's server CPU
# per request (its utime+stime over the wrk window, less what polling alone
# cost over a quiet window of the same length just before), and the health
# age of the polled fleet right after the load.
#   scripts/bench-http.sh [N] [SECONDS] [CONNECTIONS]   (defaults: 1000 30 64)
# BIN=path/to/redpulse measures another build; the simulator is this tree's.
# AUTH=1 turns basic auth on (a web config with one user, bcrypt cost 10)
# and sends that user's credential with every request: the cost of an
# authenticated (cached) answer against an open one.
# Loopback only; processes started here are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=${1:-1000}
secs=${2:-30}
conns=${3:-64}
base_port=${BASE_PORT:-20000}
http_port=${HTTP_PORT:-9480}
command -v wrk >/dev/null || apt_install wrk
cargo build --release --quiet
sim_bin=${CARGO_TARGET_DIR:-target}/release/redpulse
bin=${BIN:-$sim_bin}
use_scratch

"$sim_bin" simulate --instances "$n" --listen "127.0.0.1:$base_port" >"$work/sim.log" 2>&1 &
pids+=($!)
for i in $(seq 0 $((n - 1))); do echo "sim-$(printf %05d "$i")=redis://127.0.0.1:$((base_port + i))"; done >"$work/fleet.txt"
web_args=()
header=""
if [ "${AUTH:-0}" = 1 ]; then
  command -v htpasswd >/dev/null || apt_install apache2-utils
  printf 'basic_auth_users:\n  bench: %s\n' "$(htpasswd -nbB -C 10 bench bench-password | cut -d: -f2)" >"$work/web.yml"
  web_args=(--web.config.file "$work/web.yml")
  header="Basic $(printf 'bench:bench-password' | base64)"
fi
"$bin" --listen "127.0.0.1:$http_port" --targets-file "$work/fleet.txt" --data-dir "$work/data" "${web_args[@]}" >"$work/redpulse.log" 2>&1 &
rp=$!
pids+=($rp)
# utime+stime of redpulse, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$rp/stat"; }
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null && break; sleep 0.1; done
sleep 3

# Every request asks for a different instance, round robin over the fleet.
cat >"$work/names.lua" <<LUA
local headers = {}
if "$header" ~= "" then headers["Authorization"] = "$header" end
local i = 0
request = function()
  i = (i + 1) % $n
  return wrk.format("GET", string.format("/health/redis/sim-%05d", i), headers)
end
LUA
quiet0=$(cpu_ticks); sleep "$secs"; quiet1=$(cpu_ticks)
load0=$(cpu_ticks)
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/names.lua" "http://127.0.0.1:$http_port" | tee "$work/wrk.txt"
load1=$(cpu_ticks)
requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
python3 - "$quiet0" "$quiet1" "$load0" "$load1" "$requests" "$(getconf CLK_TCK)" <<'PY'
import sys
q0, q1, l0, l1, reqs, tck = map(int, sys.argv[1:])
http = (l1 - l0) - (q1 - q0)
print(f"server CPU under load {(l1 - l0) / tck:.2f} s, polling alone {(q1 - q0) / tck:.2f} s over the same length")
print(f"server CPU per request {http / tck / reqs * 1e6:.2f} us ({reqs} requests)")
PY

python3 - "$http_port" "$n" "$header" <<'PY'
import http.client, json, random, sys
port, n, header = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
ages = []
for i in random.sample(range(n), min(n, 500)):
    c.request("GET", f"/health/redis/sim-{i:05d}", headers={"Authorization": header} if header else {})
    ages.append(json.loads(c.getresponse().read())["age_ms"])
ages.sort()
print(f"health age after the load: p50 {ages[len(ages) // 2]} ms, p99 {ages[int(len(ages) * 0.99)]} ms, max {ages[-1]} ms")
PY
