#!/usr/bin/env bash
# What the history costs at fleet scale: N simulated instances (1 in 100
# flapping: memory pressure every other minute) polled at 1 s for MINUTES
# after a 30 s warm-up, by each build in turn. Reports the process's CPU
# (user+sys from /proc, % of one core) over the window, and for builds
# with a history the database's growth (after a WAL checkpoint), the
# transitions written, and the growth extrapolated to a day. Give the
# build before the history as the first BIN for the side-by-side CPU.
#   scripts/bench-history.sh N MINUTES BIN [BIN...]
# e.g. scripts/bench-history.sh 10000 3 /tmp/redpulse-nohistory target/release/redpulse
# Each build runs with its working directory in a scratch dir (so
# ./redpulse-data lands there). Loopback only; everything started is
# stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=$1 minutes=$2
shift 2
bins=()
for b in "$@"; do bins+=("$(realpath "$b")"); done
ip=127.0.0.90
cargo build --release --quiet
sim_bin=$(realpath target/release/redpulse)
use_scratch
start_sim_fleet "$n" "$ip" 20000
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
db_bytes() { # checkpoint the WAL into the file, then its size
  python3 - "$1" <<'PY'
import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
t = c.execute("SELECT count(*) FROM transitions").fetchone()[0]
print(os.path.getsize(sys.argv[1]), t)
PY
}
hz=$(getconf CLK_TCK)
for ((k = 0; k < ${#bins[@]}; k++)); do
  bin=${bins[$k]}
  run="$work/run-$k"
  mkdir -p "$run"
  (cd "$run" && exec "$bin" --listen 127.0.0.1:9479 --targets-file "$work/fleet.txt") >"$run/rp.log" 2>&1 &
  rp=$!
  pids+=($rp)
  sleep 30
  db="$run/redpulse-data/history.db"
  [ -f "$db" ] && read -r s0 t0 < <(db_bytes "$db")
  c0=$(cpu_ticks "$rp")
  sleep $((minutes * 60))
  c1=$(cpu_ticks "$rp")
  cpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s=$((minutes * 60)) 'BEGIN {printf "%.2f", 100 * d / hz / s}')
  if [ -f "$db" ]; then
    read -r s1 t1 < <(db_bytes "$db")
    echo "$bin: CPU ${cpu} % of a core over ${minutes} min; database +$(( (s1 - s0) / 1024 )) KiB, +$((t1 - t0)) transitions; $(awk -v d=$((s1 - s0)) -v m="$minutes" 'BEGIN {printf "%.1f", d / m * 1440 / 1e6}') MB per day at this rate"
  else
    echo "$bin: CPU ${cpu} % of a core over ${minutes} min (no history)"
  fi
  kill "$rp"; wait "$rp" 2>/dev/null || true
done
