#!/usr/bin/env bash
# Run every fuzz target for a bounded time: RESP and INFO targets seeded
# from the captured replies in testdata/info (and testdata/metrics), the
# exposition target also with each server's replies beyond INFO as one
# input (`INFO ALL`, NUL, no CLUSTER INFO, NUL, the other replies), the
# topology target from testdata/topology, the others from fuzz/seeds.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 30 s, all)
# cargo-fuzz needs nightly-only rustc flags; RUSTC_BOOTSTRAP=1 lets the one
# stable toolchain on this machine accept them. Prints each target's
# execution count; a crash fails the script and leaves its input in
# fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  case "$target" in
    resp_decode|info_parse) cp testdata/info/*.resp testdata/metrics/*.resp "$corpus/" ;;
    exposition)
      cp testdata/info/*.resp "$corpus/"
      for info in testdata/metrics/*_info_all.resp; do
        server=${info%_info_all.resp}
        { tail -n +2 "$info"; printf '\0\0'
          cat "${server}"_{slowlog_len,slowlog_get_1,latency_latest,config_get_all,client_list}.resp
        } >"$corpus/beyond_$(basename "$server")"
      done ;;
    topology_parse) cp testdata/topology/*.resp "$corpus/" ;;
    *) cp fuzz/seeds/"$target"/* "$corpus/" ;;
  esac
  echo "== fuzz $target for ${secs}s"
  log=$(mktemp)
  if ! cargo fuzz run "$target" "$corpus" -- -max_total_time="$secs" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target FAILED" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$log" || tail -n 3 "$log"
  rm -f "$log"
done
