#!/usr/bin/env bash
# Shards and consensus, end to end on loopback:
#  1. 3 shards over 3 x N simulated instances (default N = 10,000; the
#     fleet on three loopback addresses, 10,000 ports each): each shard's
#     RSS, CPU over a quiet window, poll lag and targets.
#  2. wrk on shard 0: its own instances (a local lookup) against shard 1's
#     (forwarded to shard 1), alternating ROUNDS times, same connections.
#  3. 3 consensus regions over the first 1,000 instances: wrk on region a,
#     ?local=1 against the consensus answer (peers' votes cached for one
#     poll interval), alternating.
#   scripts/bench-shards.sh [N] [SECONDS] [ROUNDS]   (defaults: 10000 10 3)
# Loopback only; processes started here are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=${1:-10000}
secs=${2:-10}
rounds=${3:-3}
conns=${CONNECTIONS:-32}
command -v wrk >/dev/null || apt_install wrk
cargo build --release --quiet
sim_bin=$(realpath target/release/redpulse)
bin=$sim_bin
use_scratch
ports=(9581 9582 9583)
for k in 0 1 2; do
  start_sim_fleet "$n" "127.0.0.9$((k + 1))" 20000 "$((k * n))"
done
total=$((3 * n))
peers="\"http://127.0.0.1:${ports[0]}\", \"http://127.0.0.1:${ports[1]}\", \"http://127.0.0.1:${ports[2]}\""
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# redpulse on $work/NAME.toml with its data in $work/NAME-data; its PID in
# $started (and in pids, stopped at exit).
start_config() {
  (cd "$work" && exec "$bin" --config "$1.toml" --data-dir "$1-data") >"$work/$1.log" 2>&1 &
  started=$!
  pids+=("$started")
}
# Until every listed port answers /readyz.
wait_ready() {
  local p
  for p in "$@"; do
    until curl -sf "http://127.0.0.1:$p/readyz" >/dev/null; do sleep 1; done
  done
}
shard_pids=()
for k in 0 1 2; do
  cat >"$work/shard-$k.toml" <<TOML
listen = "127.0.0.1:${ports[$k]}"
targets_file = "fleet.txt"
shard = "$k/3"
peers = [$peers]
TOML
  start_config "shard-$k"
  shard_pids+=("$started")
done
wait_ready "${ports[@]}"
sleep 5
echo "== 3 shards over $total simulated instances, quiet ${secs}s window"
for k in 0 1 2; do c0[$k]=$(cpu_ticks "${shard_pids[$k]}"); done
sleep "$secs"
# Every shard's counters first: a /metrics render at 10,000 instances is
# itself work that must not land in the next shard's window.
for k in 0 1 2; do
  c1s[$k]=$(cpu_ticks "${shard_pids[$k]}")
  rss[$k]=$(awk '/VmRSS/ {print $2}' "/proc/${shard_pids[$k]}/status")
done
for k in 0 1 2; do
  c1=${c1s[$k]}
  m=$(curl -s "http://127.0.0.1:${ports[$k]}/metrics")
  targets=$(awk '/^redpulse_targets / {print $2}' <<<"$m")
  lag=$(awk '/^redpulse_poll_lag_seconds / {print $2}' <<<"$m")
  python3 -c "import sys; k,t,rss,c,tck,secs,lag=sys.argv[1:]; print(f'shard {k}: {t} targets, RSS {int(rss)/1024:.0f} MiB, CPU {int(c)/int(tck)/float(secs)*100:.1f} % of a core, poll lag {float(lag):.2f} s')" \
    "$k" "$targets" "${rss[$k]}" "$((c1 - c0[$k]))" "$(getconf CLK_TCK)" "$secs" "$lag"
done
curl -s "http://127.0.0.1:${ports[0]}/health/redis" | python3 -c "import json,sys; v=json.load(sys.stdin); print('fleet view from shard 0:', v['instances'], 'instances over', v['shards'], 'shards, partial:', v.get('partial', False))"

# The names each shard owns, from its own (unforwarded) fleet view.
for k in 0 1; do
  curl -s -H 'x-redpulse-forwarded: 1' "http://127.0.0.1:${ports[$k]}/health/redis?all=1" |
    python3 -c "import json,sys; [print(e['instance']) for e in json.load(sys.stdin)['all']]" >"$work/names-$k.txt"
done
lua() { # a wrk script cycling over the names in $1, with query $2
  cat <<LUA
local names = {}
for line in io.lines("$1") do names[#names + 1] = line end
local i = 0
request = function()
  i = i % #names + 1
  return wrk.format("GET", "/health/redis/" .. names[i] .. "$2")
end
LUA
}
lua "$work/names-0.txt" "" >"$work/local.lua"
lua "$work/names-1.txt" "" >"$work/forwarded.lua"
# wrk's requests/s, p50 and p99 latency (ms) of one run.
run_wrk() { # script port
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$1" "http://127.0.0.1:$2" >"$work/wrk.txt"
  python3 - "$work/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)", s).groups()
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {non2xx.group(1) if non2xx else 0}")
PY
}
summary() { # label file-of-runs
  python3 - "$1" "$2" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
print(f"{sys.argv[1]:<22} median of {len(rows)}: {med(0):8.0f} req/s  p50 {med(1):.3f} ms  p99 {med(2):.3f} ms  (runs: {'; '.join(f'{r[0]:.0f}/s' for r in rows)})")
PY
}
echo "== shard 0: local lookups against forwarded ones, ${secs}s each, $conns connections, alternating"
: >"$work/local.runs"
: >"$work/forwarded.runs"
for ((r = 0; r < rounds; r++)); do
  run_wrk "$work/local.lua" "${ports[0]}" >>"$work/local.runs"
  run_wrk "$work/forwarded.lua" "${ports[0]}" >>"$work/forwarded.runs"
done
summary "local (shard 0's)" "$work/local.runs"
summary "forwarded (shard 1's)" "$work/forwarded.runs"
python3 - "${ports[0]}" "$work/names-0.txt" "$work/names-1.txt" <<'PY'
import http.client, statistics, sys, time
port = int(sys.argv[1])
own = open(sys.argv[2]).read().split()[:300]
other = open(sys.argv[3]).read().split()[:300]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
def t(name):
    s = time.perf_counter(); c.request("GET", f"/health/redis/{name}"); c.getresponse().read(); return (time.perf_counter() - s) * 1e3
local, fwd = [], []
for a, b in zip(own, other):
    local.append(t(a)); fwd.append(t(b))
print(f"one request at a time, 300 names each, alternating: local p50 {statistics.median(local):.3f} ms, forwarded p50 {statistics.median(fwd):.3f} ms")
PY
for p in "${shard_pids[@]}"; do kill "$p"; done
wait "${shard_pids[@]}" 2>/dev/null || true

# Consensus: three regions over the first 1,000 instances.
head -n 1000 "$work/fleet.txt" >"$work/fleet-1000.txt"
cut -d= -f1 "$work/fleet-1000.txt" >"$work/names-1000.txt"
regions=(a b c)
rports=(9591 9592 9593)
for k in 0 1 2; do
  others=""
  for j in 0 1 2; do [ "$j" = "$k" ] || others+="\"http://127.0.0.1:${rports[$j]}\", "; done
  cat >"$work/region-$k.toml" <<TOML
listen = "127.0.0.1:${rports[$k]}"
targets_file = "fleet-1000.txt"
[consensus]
peers = [${others%, }]
region = "${regions[$k]}"
quorum = 2
TOML
  start_config "region-$k"
done
wait_ready "${rports[@]}"
sleep 3
curl -s "http://127.0.0.1:${rports[0]}/health/redis/sim-00000"; echo
lua "$work/names-1000.txt" "?local=1" >"$work/own.lua"
lua "$work/names-1000.txt" "" >"$work/consensus.lua"
echo "== region a: its own verdict against the consensus of 3 (quorum 2), ${secs}s each, alternating"
: >"$work/own.runs"
: >"$work/consensus.runs"
for ((r = 0; r < rounds; r++)); do
  run_wrk "$work/own.lua" "${rports[0]}" >>"$work/own.runs"
  run_wrk "$work/consensus.lua" "${rports[0]}" >>"$work/consensus.runs"
done
summary "own (?local=1)" "$work/own.runs"
summary "consensus" "$work/consensus.runs"
# One lookup with nothing cached: every peer asked once.
sleep 1.5
python3 - "${rports[0]}" <<'PY'
import http.client, statistics, sys, time
port = int(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
def t(path):
    s = time.perf_counter(); c.request("GET", path); c.getresponse().read(); return (time.perf_counter() - s) * 1e3
cold, own = [], []
for i in range(200, 400):
    own.append(t(f"/health/redis/sim-{i:05d}?local=1"))
    cold.append(t(f"/health/redis/sim-{i:05d}"))
print(f"one request at a time, 200 names: own p50 {statistics.median(own):.3f} ms; consensus, votes not cached, p50 {statistics.median(cold):.3f} ms")
PY
