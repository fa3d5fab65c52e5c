#!/usr/bin/env bash
# Health answers for an authenticated client while others flood wrong
# passwords: one wrk connection asks /health/redis/{name} with the right
# credential for SECONDS, first alone, then while FLOODERS connections
# send a different wrong password on every request (so no cache helps
# them and each costs a bcrypt check at cost 10). Prints both runs' wrk
# latency distributions and how many wrong passwords were refused.
#   scripts/bench-auth-flood.sh [N] [SECONDS] [FLOODERS]   (defaults: 100 10 8)
# Loopback only; processes started here are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=${1:-100}
secs=${2:-10}
flooders=${3:-8}
base_port=${BASE_PORT:-20000}
http_port=${HTTP_PORT:-9481}
command -v wrk >/dev/null || apt_install wrk
command -v htpasswd >/dev/null || apt_install apache2-utils
cargo build --release --quiet
bin=target/release/redpulse
use_scratch

"$bin" simulate --instances "$n" --listen "127.0.0.1:$base_port" >"$work/sim.log" 2>&1 &
pids+=($!)
for i in $(seq 0 $((n - 1))); do echo "sim-$(printf %05d "$i")=redis://127.0.0.1:$((base_port + i))"; done >"$work/fleet.txt"
printf 'basic_auth_users:\n  bench: %s\n' "$(htpasswd -nbB -C 10 bench bench-password | cut -d: -f2)" >"$work/web.yml"
"$bin" --listen "127.0.0.1:$http_port" --targets-file "$work/fleet.txt" --data-dir "$work/data" \
  --web.config.file "$work/web.yml" >"$work/redpulse.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/healthz" >/dev/null && break; sleep 0.1; done
sleep 2
good="Basic $(printf 'bench:bench-password' | base64)"
cat >"$work/good.lua" <<LUA
local i = 0
request = function()
  i = (i + 1) % $n
  return wrk.format("GET", string.format("/health/redis/sim-%05d", i), { Authorization = "$good" })
end
done = function(summary, latency, requests)
  io.write(string.format("p50 %d us, p95 %d us, p99 %d us, max %d us, %d answers, %d errors\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
LUA
# A different wrong password on every request: base64 of "bench:wrong-N".
cat >"$work/flood.lua" <<'LUA'
local b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  return ((s:gsub(".", function(x)
    local r, c = "", x:byte()
    for i = 8, 1, -1 do r = r .. (c % 2 ^ i - c % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/health/redis", { Authorization = "Basic " .. base64("bench:wrong-" .. n .. "-" .. math.random(1e9)) })
end
LUA
echo "== alone"
wrk -t1 -c1 -d"${secs}s" --latency -s "$work/good.lua" "http://127.0.0.1:$http_port" | tee "$work/alone.txt"
echo "== during the flood ($flooders connections of wrong passwords)"
wrk -t1 -c"$flooders" -d"$((secs + 2))s" --timeout 30s -s "$work/flood.lua" "http://127.0.0.1:$http_port" >"$work/flood.txt" 2>&1 &
flood=$!
sleep 1
wrk -t1 -c1 -d"${secs}s" --latency -s "$work/good.lua" "http://127.0.0.1:$http_port" | tee "$work/during.txt"
wait "$flood" || true
echo "== the flood"
cat "$work/flood.txt"
curl -s -H "Authorization: $good" "http://127.0.0.1:$http_port/metrics" | grep '^redpulse_http_auth_failures_total'
