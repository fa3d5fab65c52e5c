#!/usr/bin/env bash
# redpulse against redis_exporter (Debian's prometheus-redis-exporter) on the
# same real redis-servers, one after the other in one run: redpulse polls
# each server once a second; then redis_exporter, in multi-target mode, is
# scraped once a second per server (/scrape?target=...), as Prometheus
# would. For each: its own CPU per poll/scrape (user+sys from /proc), the
# new connections each server accepted per poll/scrape, and the CPU the
# redis-servers spent per poll/scrape (INFO cpu, less an idle baseline).
#   scripts/bench-vs-exporter.sh [SERVERS] [SECONDS]     (defaults: 200 30)
# TLS=1: the servers also listen on a TLS port (certificates from a CA made
# here with the openssl CLI) and both tools poll that port: redpulse with
# --tls-ca-file, redis_exporter with -tls-ca-cert-file (it handshakes on
# every scrape). The script's own INFO reads use the plaintext port.
# Loopback only; every process started here is stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=${1:-200}
secs=${2:-30}
base_port=${BASE_PORT:-23000}
tls=${TLS:-0}
tls_base=$((base_port + n + 100))
if ! command -v prometheus-redis-exporter >/dev/null || ! command -v redis-server >/dev/null; then
  apt_install redis-server prometheus-redis-exporter
fi
cargo build --release --quiet
use_scratch

tls_args=()
if [ "$tls" = 1 ]; then
  # A CA and one server certificate for 127.0.0.1, shared by every server.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=bench-ca \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$work/san.ext"
  openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 30 -extfile "$work/san.ext" -out "$work/server.crt" 2>/dev/null
fi
for i in $(seq 0 $((n - 1))); do
  mkdir -p "$work/r$i"
  [ "$tls" = 1 ] && tls_args=(--tls-port $((tls_base + i)) --tls-cert-file "$work/server.crt"
    --tls-key-file "$work/server.key" --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no)
  redis-server --port $((base_port + i)) --bind 127.0.0.1 --save '' --appendonly no --dir "$work/r$i" \
    "${tls_args[@]}" >"$work/r$i.log" 2>&1 &
  pids+=($!)
done
echo "started $n redis-servers on 127.0.0.1:$base_port..$((base_port + n - 1))"

python3 - "$n" "$secs" "$base_port" "$work" "$tls" "$tls_base" <<'PY'
import http.client, os, socket, subprocess, sys, time
n, secs, base, work = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tls, tls_base = sys.argv[5] == "1", int(sys.argv[6])
scheme, polled_base = ("rediss", tls_base) if tls else ("redis", base)
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def info(port, section):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"*2\r\n$4\r\nINFO\r\n${len(section)}\r\n{section}\r\n".encode())
    data = b""
    while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2 or len(data) < int(data[1:data.index(b"\r\n")]) + data.index(b"\r\n") + 4:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    out = {}
    for line in data.decode().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out

def servers_state():
    conns = cpu_s = 0.0
    for i in range(n):
        st = info(base + i, "stats")
        c = info(base + i, "cpu")
        conns += int(st["total_connections_received"])
        cpu_s += float(c["used_cpu_sys"]) + float(c["used_cpu_user"])
    return conns, cpu_s

def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} never opened")

for i in range(n):
    wait_port(base + i)
    if tls:
        wait_port(tls_base + i)

def measure(label, pid, drive):
    """Warm up, then measure `secs` seconds of `drive` (returns operations done)."""
    drive(3)
    c0, (k0, r0) = cpu(pid), servers_state()
    t0 = time.time()
    ops = drive(secs)
    t1 = time.time()
    c1, (k1, r1) = cpu(pid), servers_state()
    # servers_state() itself opens 2 connections per server and runs 2 INFOs.
    k1 -= 2 * n
    server_cpu = (r1 - r0) - idle_cpu_per_s * (t1 - t0)
    return dict(label=label, ops=ops, seconds=t1 - t0, cpu=c1 - c0, conns=k1 - k0, server_cpu=server_cpu)

results = []

# Idle baseline: what the servers' own housekeeping costs with nobody polling.
k0, r0 = servers_state(); time.sleep(secs); k1, r1 = servers_state()
idle_cpu_per_s = (r1 - r0) / secs

# redpulse: one process, 1 s interval; operations are its own poll counter.
with open(f"{work}/fleet.txt", "w") as f:
    for i in range(n):
        f.write(f"r{i}={scheme}://127.0.0.1:{polled_base + i}\n")
rp = subprocess.Popen([os.environ.get("CARGO_TARGET_DIR", "target") + "/release/redpulse", "--listen", "127.0.0.1:9481", "--targets-file", f"{work}/fleet.txt",
                       "--interval", "1s", "--data-dir", f"{work}/data"] + (["--tls-ca-file", f"{work}/ca.crt"] if tls else []),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port(9481)
def polls():
    c = http.client.HTTPConnection("127.0.0.1", 9481, timeout=5)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    return sum(int(float(l.rsplit(" ", 1)[1])) for l in body.splitlines() if l.startswith('redpulse_polls_total{result="ok"'))
def drive_redpulse(duration):
    p0 = polls(); time.sleep(duration); return polls() - p0
try:
    # Its poll counter is read from /metrics, so this run is scraped
    # throughout: INFO ALL every 15 s per server, as under Prometheus.
    results.append(measure("redpulse", rp.pid, drive_redpulse))
finally:
    rp.terminate(); rp.wait()

# redpulse again with nobody scraping /metrics: after the first poll only
# health INFOs. Not asking for its counter is the point, so its polls are
# counted as servers x seconds (one a second each, the interval).
rp = subprocess.Popen([os.environ.get("CARGO_TARGET_DIR", "target") + "/release/redpulse", "--listen", "127.0.0.1:9481", "--targets-file", f"{work}/fleet.txt",
                       "--interval", "1s", "--data-dir", f"{work}/data2"] + (["--tls-ca-file", f"{work}/ca.crt"] if tls else []),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port(9481)
def drive_unscraped(duration):
    time.sleep(duration); return int(n * duration)
try:
    results.append(measure("redpulse, no scrape", rp.pid, drive_unscraped))
finally:
    rp.terminate(); rp.wait()

# redis_exporter in multi-target mode, every server scraped once a second.
ex = subprocess.Popen(["prometheus-redis-exporter", "-web.listen-address", "127.0.0.1:9482", "-redis.addr", ""]
                      + (["-tls-ca-cert-file", f"{work}/ca.crt"] if tls else []),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_port(9482)
def drive_exporter(duration):
    done, end = 0, time.time() + duration
    conn = http.client.HTTPConnection("127.0.0.1", 9482, timeout=10)
    while time.time() < end:
        start = time.time()
        for i in range(n):
            conn.request("GET", f"/scrape?target={scheme}://127.0.0.1:{polled_base + i}")
            r = conn.getresponse(); body = r.read()
            assert r.status == 200 and b"redis_up 1" in body, body[:200]
            done += 1
        time.sleep(max(0.0, 1.0 - (time.time() - start)))
    return done
try:
    results.append(measure("redis_exporter", ex.pid, drive_exporter))
finally:
    ex.terminate(); ex.wait()

print(f"{n} redis-servers{' over TLS' if tls else ''}, {secs} s each, 1 poll/scrape per server per second")
print(f"idle redis-server CPU (subtracted below): {idle_cpu_per_s * 1000:.1f} ms/s for all {n}\n")
print(f"{'':20}{'polls':>8}{'CPU/op':>12}{'conns/op':>10}{'redis CPU/op':>14}")
for r in results:
    print(f"{r['label']:20}{r['ops']:>8}{r['cpu'] / r['ops'] * 1e6:>10.1f}us{r['conns'] / r['ops']:>10.3f}"
          f"{r['server_cpu'] / r['ops'] * 1e6:>12.1f}us")
a, quiet, b = results
for mine in (a, quiet):
    print(f"\nredis_exporter / {mine['label']}: CPU per op {b['cpu'] / b['ops'] / (mine['cpu'] / mine['ops']):.0f}x, "
          f"redis-server CPU per op {b['server_cpu'] / b['ops'] / (mine['server_cpu'] / mine['ops']):.1f}x")
PY
