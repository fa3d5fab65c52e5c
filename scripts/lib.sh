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
