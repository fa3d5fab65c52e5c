#!/usr/bin/env bash
# Health answers against the floor: wrk (Debian's package) on
# /health/redis/{name} of redpulse (polling N simulated instances at 1 s)
# and on bare hyper answering the same pre-rendered bytes
# (benches/servers/bare_hyper.rs), alternating ROUNDS times. CPU per request
# is each server's utime+stime over the wrk window divided by requests;
# for redpulse, what polling alone cost over a quiet window of the same
# length is taken off first. Prints every round, the medians and the ratio.
#   scripts/bench-http-floor.sh [N] [SECONDS] [ROUNDS] [CONNECTIONS]   (defaults: 1000 15 3 64)
# BIN=path/to/redpulse measures another build. Loopback only; processes
# started here are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=${1:-1000}
secs=${2:-15}
rounds=${3:-3}
conns=${4:-64}
base_port=${BASE_PORT:-20000}
rp_port=${HTTP_PORT:-9480}
bare_port=$((rp_port + 1))
command -v wrk >/dev/null || apt_install wrk
cargo build --release --quiet
cargo build --release --quiet --example bare-hyper
sim_bin=${CARGO_TARGET_DIR:-target}/release/redpulse
bin=${BIN:-$sim_bin}
target_dir=${CARGO_TARGET_DIR:-target}
use_scratch

"$sim_bin" simulate --instances "$n" --listen "127.0.0.1:$base_port" >"$work/sim.log" 2>&1 &
pids+=($!)
for i in $(seq 0 $((n - 1))); do echo "sim-$(printf %05d "$i")=redis://127.0.0.1:$((base_port + i))"; done >"$work/fleet.txt"
"$bin" --listen "127.0.0.1:$rp_port" --targets-file "$work/fleet.txt" --data-dir "$work/data" >"$work/redpulse.log" 2>&1 &
rp=$!
pids+=($rp)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$rp_port/readyz" >/dev/null && break; sleep 0.1; done
# The same bytes redpulse answers for one instance.
curl -sf "http://127.0.0.1:$rp_port/health/redis/sim-00000" -o "$work/body.json" || true
[ -s "$work/body.json" ] || { echo "no health answer from redpulse" >&2; exit 1; }
"$target_dir/release/examples/bare-hyper" "127.0.0.1:$bare_port" "$work/body.json" >"$work/bare.log" 2>&1 &
bare=$!
pids+=($bare)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$bare_port/" >/dev/null && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cat >"$work/names.lua" <<LUA
local i = 0
request = function()
  i = (i + 1) % $n
  return wrk.format("GET", string.format("/health/redis/sim-%05d", i))
end
LUA
for ((r = 1; r <= rounds; r++)); do
  for who in redpulse bare; do
    if [ "$who" = redpulse ]; then pid=$rp port=$rp_port; else pid=$bare port=$bare_port; fi
    quiet=0
    if [ "$who" = redpulse ]; then q0=$(cpu_ticks "$pid"); sleep "$secs"; quiet=$(( $(cpu_ticks "$pid") - q0 )); fi
    c0=$(cpu_ticks "$pid")
    wrk -t2 -c"$conns" -d"${secs}s" -s "$work/names.lua" "http://127.0.0.1:$port" >"$work/wrk.txt"
    c1=$(cpu_ticks "$pid")
    reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
    python3 -c "import sys; who,r,d,q,reqs,rps,tck=sys.argv[1:]; print(f'{who} round {r}: {(int(d)-int(q))/int(tck)/int(reqs)*1e6:.3f} us CPU per request ({reqs} requests, {float(rps):.0f}/s)')" \
      "$who" "$r" "$((c1 - c0))" "$quiet" "$reqs" "$rps" "$(getconf CLK_TCK)" | tee -a "$work/rounds.txt"
  done
done
python3 - "$work/rounds.txt" <<'PY'
import re, statistics, sys
v = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\w+) round \d+: ([\d.]+) us", line)
    v.setdefault(m.group(1), []).append(float(m.group(2)))
med = {k: statistics.median(x) for k, x in v.items()}
for k, m in med.items():
    print(f"{k}: median {m:.3f} us CPU per request over {len(v[k])} rounds")
print(f"redpulse / bare hyper: {med['redpulse'] / med['bare']:.2f}x")
PY
