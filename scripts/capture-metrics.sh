#!/usr/bin/env bash
# Capture SLOWLOG/LATENCY/CONFIG/CLIENT LIST/XINFO/INFO ALL replies from
# Redis 6.2, Redis 7.0 and Valkey 8.1 into testdata/metrics/ (see its
# README). The servers run in a network namespace of this script's own
# (unshare -rn: loopback only, removed when the script ends), so the fixed
# ports inside are always free. Arguments PREFIX=PATH capture only the
# servers named (e.g. a build of an unreleased version).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-servers.sh >/dev/null
exec unshare -rn sh -c 'ip link set lo up && exec python3 scripts/capture-metrics.py "$@"' sh "$@"
