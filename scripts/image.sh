#!/usr/bin/env bash
# Build the OCI image localhost/redpulse:latest and localhost/redpulse:VERSION
# with buildah, from this tree and Debian's packages only (no registry is
# reached): FROM scratch, holding the stripped release binary, the shared
# libraries it links (found with ldd), Debian's CA bundle, passwd/group
# entries for the user 65532 and an empty /data owned by it.
#
#   bash scripts/image.sh            # builds (or reuses) target/release/redpulse
#   podman --runtime runc --cgroup-manager cgroupfs run --rm --network host \
#     --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 \
#     --read-only --read-only-tmpfs=false -v /srv/redpulse:/data \
#     localhost/redpulse:latest --target cache=redis://10.0.0.5:6379
#
# The image's environment holds REDPULSE_LISTEN=0.0.0.0:9379 and
# REDPULSE_DATA_DIR=/data: defaults below a flag and the config file.
# Prints the image's size; fails when it is over 25,000,000 bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# The contract's ceiling (INTERFACE.md, Packaging).
MAX_IMAGE_BYTES=25000000
UID_GID=65532

missing=()
for pair in buildah:buildah podman:podman runc:runc strip:binutils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  apt_install "${missing[@]}"
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source_url=$(git config --get remote.origin.url 2>/dev/null || true)
target_dir=${CARGO_TARGET_DIR:-target}

echo "== cargo build --release (a no-op when target/ is fresh)"
cargo build --release --locked
bin="$target_dir/release/redpulse"

use_scratch
root="$work/root"
mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/data"
strip --strip-all -o "$root/usr/bin/redpulse" "$bin"
# The dynamic loader and every library ldd resolves, at the same paths.
while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done < <(ldd "$bin" | grep -o '/[^ ]*' | sort -u)
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/data:/sbin/nologin\n' \
  "$UID_GID" "$UID_GID" >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:%d:\n' "$UID_GID" >"$root/etc/group"
# Mount points the runtime binds over (it cannot create them on a
# read-only root).
: >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"
chown "$UID_GID:$UID_GID" "$root/data"
chmod 0750 "$root/data"

ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
buildah copy --quiet "$ctr" "$root" / >/dev/null
buildah config \
  --entrypoint '["/usr/bin/redpulse"]' \
  --cmd '' \
  --user "$UID_GID:$UID_GID" \
  --workingdir /data \
  --env PATH=/usr/bin \
  --env REDPULSE_LISTEN=0.0.0.0:9379 \
  --env REDPULSE_DATA_DIR=/data \
  --volume /data \
  --port 9379/tcp \
  --stop-signal SIGTERM \
  --label org.opencontainers.image.title=redpulse \
  --label "org.opencontainers.image.description=Redis/Valkey fleet health over HTTP" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.source=${source_url:-this tree}" \
  --label "org.opencontainers.image.licenses=MIT OR Apache-2.0" \
  "$ctr"
buildah commit --quiet --rm "$ctr" "localhost/redpulse:$version" >/dev/null
buildah tag "localhost/redpulse:$version" localhost/redpulse:latest

size=$(podman image inspect --format '{{.Size}}' "localhost/redpulse:$version")
echo "built localhost/redpulse:$version and :latest (revision $revision): $size bytes"
if [ "$size" -gt "$MAX_IMAGE_BYTES" ]; then
  echo "the image is larger than $MAX_IMAGE_BYTES bytes" >&2
  exit 1
fi
