# Shared by the scripts in this folder (source it; it runs nothing itself).

# Run a command as root: directly when we are root, else through sudo.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Install Debian packages quietly (refreshing the package lists first).
apt_install() {
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# A scratch folder in $work and a $pids list: on exit every process whose
# PID was added to pids is stopped (by PID) and the folder removed.
use_scratch() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
}

# Start N simulated instances of $sim_bin at IP:BASE.. (names sim-FIRST..,
# zero-padded to 5 digits; FIRST defaults to 0) and append them to
# $work/fleet.txt. A simulated instance holds two descriptors (listener and
# accepted socket), so they are split over processes of at most 5,000 to
# stay under the 20,000 hard limit. Waits 2 s for them to listen and fails
# when one did not start.
start_sim_fleet() {
  local n=$1 ip=$2 base=$3 name0=${4:-0} first count i started=()
  for ((first = 0; first < n; first += 5000)); do
    count=$(( n - first < 5000 ? n - first : 5000 ))
    "$sim_bin" simulate --instances "$count" --listen "$ip:$((base + first))" >"$work/sim-$ip-$first.log" 2>&1 &
    pids+=($!)
    started+=($!)
  done
  for ((i = 0; i < n; i++)); do
    printf 'sim-%05d=redis://%s:%d\n' "$((name0 + i))" "$ip" "$((base + i))"
  done >>"$work/fleet.txt"
  sleep 2
  for p in "${started[@]}"; do
    kill -0 "$p" 2>/dev/null || { cat "$work"/sim-*.log >&2; echo "a simulate process failed to start" >&2; exit 1; }
  done
}
