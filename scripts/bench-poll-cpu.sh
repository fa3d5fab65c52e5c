#!/usr/bin/env bash
# The poller's CPU per poll, measured with `perf stat -e task-clock` on the
# redpulse process (no HTTP load at all), for one or more builds and, with
# MODES="plain tls", over plaintext and TLS simulated fleets of the same
# size, alternating in the same session ROUNDS times; prints every round
# and the median per build and mode. Connections (and TLS handshakes) are
# made during the warm-up, so the window measures polls only.
#   scripts/bench-poll-cpu.sh N SECONDS ROUNDS BIN [BIN...]
# e.g. scripts/bench-poll-cpu.sh 10000 10 3 /tmp/redpulse-old target/release/redpulse
#      MODES="plain tls" scripts/bench-poll-cpu.sh 1000 10 5 target/release/redpulse
# Modes: plain (INFO ALL for /metrics every metrics_interval, 15 s, while
# scraped: the counts taken around the window are scrapes), scraped (as
# plain, plus a gzip scrape of /metrics every 15 s inside the window, as
# Prometheus would: its rendering is in the CPU figure), nometrics
# (metrics_interval 24h: health polls only, after the first), allmetrics
# (metrics_interval 1ms and metrics_fetch "always": INFO ALL on every poll,
# scraped or not; builds from before metrics_fetch refuse this config),
# tls. Each round also prints the process's RSS per instance at the
# window's end.
# A BIN of floor:tokio or floor:uring is one of the floors in
# benches/poll-floor (a bare tokio poller, a bare io_uring one: they send
# redpulse's poll request and read the reply, nothing else; never
# scraped), polling the plaintext fleet:
#   MODES=scraped scripts/bench-poll-cpu.sh 10000 30 3 OLD NEW floor:tokio floor:uring
# The simulated fleets are this tree's release build, in processes of at
# most 5,000 instances (TLS mode: N at most 5,000). Loopback only;
# everything started is stopped by PID. The builds' order rotates from
# round to round.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=$1 secs=$2 rounds=$3
shift 3
bins=("$@")
modes=(${MODES:-plain})
base_port=${BASE_PORT:-20000}
http_port=${HTTP_PORT:-9479}
command -v perf >/dev/null || apt_install linux-perf
floor_target=${CARGO_TARGET_DIR:-$PWD/target}/poll-floor
if [[ " ${bins[*]}" == *" floor:"* ]]; then
  [[ " ${modes[*]} " == *" tls "* ]] && { echo "the floors poll the plaintext fleet only" >&2; exit 2; }
  CARGO_TARGET_DIR=$floor_target cargo build --release --quiet --locked --manifest-path benches/poll-floor/Cargo.toml
fi
cargo build --release --quiet
sim_bin=${CARGO_TARGET_DIR:-target}/release/redpulse
use_scratch

start_fleet() { # start_fleet FIRST_PORT [--tls --tls-dir DIR]
  local first_port=$1
  shift
  for ((first = 0; first < n; first += 5000)); do
    count=$(( n - first < 5000 ? n - first : 5000 ))
    "$sim_bin" simulate --instances "$count" --listen "127.0.0.1:$((first_port + first))" "$@" >"$work/sim-$first_port-$first.log" 2>&1 &
    pids+=($!)
  done
}
tls_port=$((base_port + (n > 5000 ? n : 5000) + 100))
for mode in "${modes[@]}"; do
  case "$mode" in
    plain | scraped)
      if [ ! -f "$work/plain.txt" ]; then
        start_fleet "$base_port"
        for i in $(seq 0 $((n - 1))); do echo "sim-$(printf %05d "$i")=redis://127.0.0.1:$((base_port + i))"; done >"$work/plain.txt"
      fi
      ;;
    tls)
      [ "$n" -le 5000 ] || { echo "TLS mode takes N up to 5000" >&2; exit 2; }
      start_fleet "$tls_port" --tls --tls-dir "$work/tls"
      for i in $(seq 0 $((n - 1))); do echo "sim-$(printf %05d "$i")=rediss://127.0.0.1:$((tls_port + i))"; done >"$work/tls.txt"
      ;;
    nometrics | allmetrics)
      [ "$mode" = nometrics ] && every=24h || every=1ms
      echo "metrics_interval = \"$every\"" >"$work/$mode.toml"
      # Fetched on demand, INFO ALL would stop after the first poll with
      # nobody scraping; allmetrics measures it on every poll.
      [ "$mode" = allmetrics ] && echo 'metrics_fetch = "always"' >>"$work/$mode.toml"
      if [ ! -f "$work/plain.txt" ]; then
        start_fleet "$base_port"
        for i in $(seq 0 $((n - 1))); do echo "sim-$(printf %05d "$i")=redis://127.0.0.1:$((base_port + i))"; done >"$work/plain.txt"
      fi
      ;;
    *) echo "unknown mode $mode (plain, scraped, nometrics, allmetrics, tls)" >&2; exit 2 ;;
  esac
done
sleep 2

polls() { curl -sf "http://127.0.0.1:$http_port/metrics" | awk '/^redpulse_polls_total\{result="ok"/ {s += $2} END {print s + 0}'; }
# A floor writes its count every 100 ms: wait for a fresh one.
floor_polls() { sleep 0.15; cat "$work/count"; }

for ((r = 1; r <= rounds; r++)); do
  # Each round starts with the next build: a run leaves its 10,000 closed
  # connections in TIME_WAIT and the machine drifts, so a fixed order
  # favours whichever build always goes first.
  order=("${bins[@]:$(( (r - 1) % ${#bins[@]} ))}" "${bins[@]:0:$(( (r - 1) % ${#bins[@]} ))}")
  for bin in "${order[@]}"; do
    for mode in "${modes[@]}"; do
      extra=() targets=$mode
      [ "$mode" = tls ] && extra=(--tls-ca-file "$work/tls/ca.crt")
      case "$mode" in
        nometrics | allmetrics) extra=(--config "$work/$mode.toml") targets=plain ;;
        scraped) targets=plain ;;
      esac
      if [[ $bin == floor:* ]]; then
        "$floor_target/release/${bin#floor:}_floor" "$base_port" "$n" "$work/count" >"$work/rp.log" 2>&1 &
        count=floor_polls
      else
        # Builds from before the history have no --data-dir.
        data=()
        "$bin" --help | grep -q -- --data-dir && data=(--data-dir "$work/data-$RANDOM")
        "$bin" --listen "127.0.0.1:$http_port" --targets-file "$work/$targets.txt" "${data[@]}" "${extra[@]}" >"$work/rp.log" 2>&1 &
        count=polls
      fi
      rp=$!
      pids+=($rp)
      # Warm up: every instance connected (handshakes done) and polled.
      sleep $(( n >= 5000 ? 8 : 4 ))
      p0=$($count)
      scraper=
      if [ "$mode" = scraped ] && [ "$count" = polls ]; then
        # Bounded: one gzip scrape every 15 s until the window ends.
        (for ((k = 0; k * 15 < secs; k++)); do
          curl -s -o /dev/null -H "Accept-Encoding: gzip" "http://127.0.0.1:$http_port/metrics"
          sleep 15
        done) &
        scraper=$!
        pids+=($scraper)
      fi
      ms=$(perf stat -x, -e task-clock -p "$rp" -- sleep "$secs" 2>&1 | awk -F, '/task-clock/ {print $1}')
      rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$rp/status")
      [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; }
      p1=$($count)
      kill "$rp"; wait "$rp" 2>/dev/null || true
      echo "$bin $mode round $r: $(awk -v ms="$ms" -v p=$((p1 - p0)) -v rss="$rss_kb" -v n="$n" 'BEGIN {printf "%.2f us per poll (%d polls, %.0f ms CPU), RSS %.2f KiB per instance", ms * 1000 / p, p, ms, rss / n}')" | tee -a "$work/rounds.txt"
    done
  done
done
echo "== medians at $n instances"
for bin in "${bins[@]}"; do
  for mode in "${modes[@]}"; do
    grep -F "$bin $mode round" "$work/rounds.txt" | sed 's/.*round [0-9]*: //' | awk '{print $1}' | sort -n |
      awk -v b="$bin $mode" '{v[NR] = $1} END {printf "%-50s %.2f us per poll (median of %d)\n", b, v[int((NR + 1) / 2)], NR}'
    grep -F "$bin $mode round" "$work/rounds.txt" | sed 's/.*RSS //' | awk '{print $1}' | sort -n |
      awk -v b="$bin $mode" '{v[NR] = $1} END {printf "%-50s %.2f KiB RSS per instance (median of %d)\n", b, v[int((NR + 1) / 2)], NR}'
  done
done
