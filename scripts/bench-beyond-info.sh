#!/usr/bin/env bash
# What the metrics poll beyond INFO costs the Redis server, in one run:
#  A. redis-server CPU per metrics poll: the exact write redpulse sends
#     (INFO ALL, SLOWLOG LEN, SLOWLOG GET 1, LATENCY LATEST, CONFIG GET
#     maxclients maxmemory io-threads) against INFO ALL alone, alternated
#     over ROUNDS rounds of N pipelined polls from one kept connection.
#  B. redis-server CPU per metrics poll of redpulse with key checks against
#     per scrape of redis_exporter (Debian's) with the same options, on a
#     server holding 100,000 keys user:N, 20 lists queue:N and a stream:
#     B1 `check_keys = ["db0=queue:*"]` + `count_keys = ["db0=queue:*"]` +
#        `check_streams = ["db0=orders*"]` (20 matches among 100,020 keys);
#     B2 `check_keys = ["db0=user:*"]` (every key matches; redpulse reads
#        check_keys_max = 1000 of them, the exporter all 100,000).
#   scripts/bench-beyond-info.sh [N] [ROUNDS] [SCRAPES]   (defaults 10000 3 20)
# PARTS=A runs part A only.
# CPU is user+sys of the redis-server process from /proc, less nothing:
# the server is idle between polls. Loopback only; every process started
# here is stopped by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
n=${1:-10000}
rounds=${2:-3}
scrapes=${3:-20}
port=${BASE_PORT:-23500}
if ! command -v prometheus-redis-exporter >/dev/null || ! command -v redis-server >/dev/null; then
  apt_install redis-server prometheus-redis-exporter
fi
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/redpulse
use_scratch
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --enable-debug-command yes >"$work/redis.log" 2>&1 &
pids+=($!)
redis_pid=$!

python3 - "$n" "$rounds" "$scrapes" "$port" "$work" "$bin" "$redis_pid" "${PARTS:-AB}" <<'PY'
import os, socket, subprocess, sys, time, urllib.request
n, rounds, scrapes, port, work, binary, rpid, parts = sys.argv[1:]
n, rounds, scrapes, port, rpid = int(n), int(rounds), int(scrapes), int(port), int(rpid)
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

class Conn:
    def __init__(self):
        deadline = time.monotonic() + 10
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""
    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(1 << 20)
        i = self.buf.index(b"\r\n")
        l, self.buf = self.buf[:i], self.buf[i + 2:]
        return l
    def reply(self):
        l = self.line()
        t, rest = l[:1], l[1:]
        if t in b"+-:":
            return rest
        if t == b"$":
            k = int(rest)
            if k < 0:
                return None
            while len(self.buf) < k + 2:
                self.buf += self.s.recv(1 << 20)
            v, self.buf = self.buf[:k], self.buf[k + 2:]
            return v
        if t == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise ValueError(l)
    def pipeline(self, cmds, replies):
        self.s.sendall(cmds)
        return [self.reply() for _ in range(replies)]
    def cmd(self, *a):
        return self.pipeline(enc(*a), 1)[0]

c = Conn()
# A dozen commands in commandstats (and latencystats), as a server in use.
for i in range(12):
    c.cmd("SET", f"warm:{i}", "v")
    c.cmd("GET", f"warm:{i}")
    c.cmd("HSET", f"h:{i}", "f", "v")
    c.cmd("LPUSH", f"l:{i}", "v")
    c.cmd("SADD", f"s:{i}", "v")
    c.cmd("ZADD", f"z:{i}", "1", "v")
    c.cmd("INCR", f"n:{i}")
    c.cmd("EXPIRE", f"warm:{i}", "1000")
    c.cmd("EXISTS", f"warm:{i}")
    c.cmd("TTL", f"warm:{i}")
    c.cmd("DEL", f"nothing:{i}")
    c.cmd("MGET", f"warm:{i}", f"n:{i}")

info_all = enc("INFO", "ALL")
full = info_all + enc("SLOWLOG", "LEN") + enc("SLOWLOG", "GET", "1") + enc("LATENCY", "LATEST") \
    + enc("CONFIG", "GET", "maxclients", "maxmemory", "io-threads")
print(f"== A: redis-server CPU per metrics poll, {n} polls per round, {rounds} rounds alternated")
res = {"INFO ALL alone": [], "INFO ALL + SLOWLOG + LATENCY + CONFIG": []}
for r in range(rounds):
    for name, cmds, replies in [("INFO ALL alone", info_all, 1),
                                ("INFO ALL + SLOWLOG + LATENCY + CONFIG", full, 5)]:
        before = cpu(rpid)
        for _ in range(n):
            c.pipeline(cmds, replies)
        res[name].append((cpu(rpid) - before) / n * 1e6)
for name, v in res.items():
    print(f"  {name}: {', '.join(f'{x:.1f}' for x in v)} us/poll (median {sorted(v)[len(v)//2]:.1f})")
a = sorted(res["INFO ALL alone"])[rounds // 2]
b = sorted(res["INFO ALL + SLOWLOG + LATENCY + CONFIG"])[rounds // 2]
print(f"  ratio of medians: {b / a:.2f}x")

if "B" not in parts:
    sys.exit(0)
# B: the keyspace.
c.cmd("DEBUG", "POPULATE", "100000", "user:")
for i in range(20):
    c.cmd("RPUSH", f"queue:{i}", "a", "b", "c")
c.cmd("XADD", "orders:eu", "*", "item", "book")
c.cmd("XGROUP", "CREATE", "orders:eu", "shipping", "0")
c.cmd("XREADGROUP", "GROUP", "shipping", "w1", "COUNT", "1", "STREAMS", "orders:eu", ">")

def calls(name):
    text = c.cmd("INFO", "commandstats").decode()
    for line in text.split("\r\n"):
        if line.startswith(f"cmdstat_{name}:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0

def exporter(flags, count):
    web = port + 1
    p = subprocess.Popen(["prometheus-redis-exporter", f"--redis.addr=redis://127.0.0.1:{port}",
                          f"--web.listen-address=127.0.0.1:{web}"] + flags,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{web}/", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        before = cpu(rpid)
        t0 = time.monotonic()
        for _ in range(count):
            urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics", timeout=120).read()
        return (cpu(rpid) - before) / count * 1e6, (time.monotonic() - t0) / count
    finally:
        p.terminate()
        p.wait()

def redpulse(options, count):
    cfg = os.path.join(work, "bench.toml")
    with open(cfg, "w") as f:
        f.write('interval = "500ms"\nmetrics_interval = "500ms"\nmetrics_fetch = "always"\n'
                '[metrics]\n' + options +
                f'\n[[instance]]\nname = "bench"\nurl = "redis://127.0.0.1:{port}"\n')
    web = port + 2
    p = subprocess.Popen([binary, "--config", cfg, "--listen", f"127.0.0.1:{web}",
                          "--data-dir", os.path.join(work, "data")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Past the first metrics poll and its SCAN pass.
        start = calls("slowlog|len")
        deadline = time.monotonic() + 30
        while calls("slowlog|len") < start + 4:
            if time.monotonic() > deadline:
                raise RuntimeError("redpulse made no metrics polls")
            time.sleep(0.1)
        # A measurement window of `count` metrics polls (0.5 s apart),
        # read with two commandstats calls only.
        polls0, before = calls("slowlog|len"), cpu(rpid)
        time.sleep(count * 0.5)
        used = cpu(rpid) - before
        polls = (calls("slowlog|len") - polls0) / 2
        return used, polls
    finally:
        p.terminate()
        p.wait()

for label, ours, theirs, count in [
    ("B1: 20 matching keys among 100,020, count_keys, a stream",
     'check_keys = ["db0=queue:*"]\ncount_keys = ["db0=queue:*"]\ncheck_streams = ["db0=orders*"]',
     ["--check-keys=db0=queue:*", "--count-keys=db0=queue:*", "--check-streams=db0=orders*"], scrapes),
    # The exporter reads all 100,000 keys per scrape: a few scrapes do.
    ("B2: every one of 100,000 keys matches",
     'check_keys = ["db0=user:*"]', ["--check-keys=db0=user:*"], max(2, scrapes // 10)),
]:
    print(f"== {label}")
    ex = [exporter(theirs, count) for _ in range(rounds)]
    rp = []
    for _ in range(rounds):
        used, polls = redpulse(ours, scrapes)
        rp.append(used / polls * 1e6)
    print("  redis_exporter: " + ", ".join(f"{u:.0f}" for u, _ in ex) +
          f" us of redis-server CPU per scrape (scrape took {sorted(t for _, t in ex)[rounds//2]*1e3:.0f} ms)")
    print("  redpulse:       " + ", ".join(f"{u:.0f}" for u in rp) + " us per metrics poll")
    m_ex, m_rp = sorted(u for u, _ in ex)[rounds // 2], sorted(rp)[rounds // 2]
    print(f"  ratio of medians (redpulse / exporter): {m_rp / m_ex:.3f}x")
PY
