#!/usr/bin/env bash
# Run every fuzz target for a bounded time, seeded from the INFO corpus.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
# cargo-fuzz needs nightly-only rustc flags; RUSTC_BOOTSTRAP=1 lets the one
# stable toolchain on this machine accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  cp testdata/info/*.resp "fuzz/corpus/$target/"
  echo "== fuzz $target for ${secs}s"
  cargo fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$secs" -max_len=65536 2>&1 | tail -n 3
done
