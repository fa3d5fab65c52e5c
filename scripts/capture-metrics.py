#!/usr/bin/env python3
"""Capture the replies of the metrics poll's commands beyond INFO from real
servers into testdata/metrics/: SLOWLOG, LATENCY LATEST, CONFIG GET, CLIENT
LIST, XINFO and INFO ALL (with keyspace), as raw RESP bytes.

Run through scripts/capture-metrics.sh [PREFIX=PATH ...] (with arguments,
only the servers named, e.g. a build of an unreleased version), which puts this in a network
namespace of its own (unshare -rn), so fixed ports are free and nothing
leaves the namespace. Each server gets the same workload: keys of every
type, a stream with a group, a consumer and a pending entry, a slow EVAL
(a slow log entry and a latency spike), and two idle TCP clients.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_reader import read_reply  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "testdata", "metrics")
SERVERS = [
    # (file prefix, binary, multi-pattern CONFIG GET)
    ("redis-6.2", os.path.join(ROOT, ".cache/servers/redis-6.2-server"), False),
    ("redis-7.0", shutil.which("redis-server") or "redis-server", True),
    ("valkey-8.1", os.path.join(ROOT, ".cache/servers/valkey-8.1-server"), True),
]
BUSY_LOOP = "local i = 0 while i < 5000000 do i = i + 1 end return i"


def encode(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def raw_reply(self):
        """One whole reply, as the bytes the server sent."""
        return read_reply(self.f)

    def cmd(self, *args):
        self.s.sendall(encode(*args))
        return self.raw_reply()


def normalise_executable(bulk):
    """The `executable:` path names this checkout: keep only the binary's
    name, and recompute the bulk length."""
    head, body = bulk.split(b"\r\n", 1)
    text = body[:-2]
    lines = [b"executable:/usr/bin/" + l.rsplit(b"/", 1)[-1] if l.startswith(b"executable:") else l
             for l in text.split(b"\r\n")]
    text = b"\r\n".join(lines)
    return b"$%d\r\n%s\r\n" % (len(text), text)


def wait_ready(port, proc):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("server exited early")
        try:
            c = Conn(port)
            if c.cmd("PING") == b"+PONG\r\n":
                return c
        except OSError:
            time.sleep(0.05)
    sys.exit("server not ready within 10 s")


def capture(prefix, binary, multi, port):
    workdir = tempfile.mkdtemp(prefix="capture-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir,
         "--slowlog-log-slower-than", "1000", "--latency-monitor-threshold", "5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = wait_ready(port, proc)
        version = c.cmd("INFO", "server").split(b"redis_version:")[1].split(b"\r\n")[0].decode()
        c.cmd("CLIENT", "SETNAME", "capture")
        c.cmd("SET", "user:1", "alice")
        c.cmd("SET", "user:2", "12345")
        c.cmd("RPUSH", "queue:jobs", "a", "b", "c")
        c.cmd("SADD", "set:tags", "x", "y")
        c.cmd("ZADD", "zset:scores", "1", "a", "2", "b")
        c.cmd("HSET", "hash:h", "f1", "v1", "f2", "v2")
        c.cmd("SET", "temp", "v", "EX", "1000")
        c.cmd("XADD", "orders:eu", "1-1", "item", "book")
        c.cmd("XADD", "orders:eu", "2-1", "item", "pen")
        c.cmd("XGROUP", "CREATE", "orders:eu", "shipping", "0")
        c.cmd("XREADGROUP", "GROUP", "shipping", "worker-1", "COUNT", "1",
              "STREAMS", "orders:eu", ">")
        c.cmd("EVAL", BUSY_LOOP, "0")
        idle = [Conn(port), Conn(port)]
        idle[0].cmd("CLIENT", "SETNAME", "idle-worker")
        idle[1].cmd("SELECT", "1")
        replies = {
            "slowlog_len": [("SLOWLOG", "LEN")],
            "slowlog_get_1": [("SLOWLOG", "GET", "1")],
            "latency_latest": [("LATENCY", "LATEST")],
            "config_get_default": (
                [("CONFIG", "GET", "maxclients", "maxmemory", "io-threads")] if multi else
                [("CONFIG", "GET", k) for k in ("maxclients", "maxmemory", "io-threads")]),
            "config_get_all": [("CONFIG", "GET", "*")],
            "client_list": [("CLIENT", "LIST")],
            "xinfo_stream": [("XINFO", "STREAM", "orders:eu")],
            "xinfo_groups": [("XINFO", "GROUPS", "orders:eu")],
            "xinfo_consumers": [("XINFO", "CONSUMERS", "orders:eu", "shipping")],
            "info_all": [("INFO", "ALL")],
        }
        os.makedirs(OUT, exist_ok=True)
        for name, cmds in replies.items():
            c.s.sendall(b"".join(encode(*a) for a in cmds))
            data = b"".join(c.raw_reply() for _ in cmds)
            if name == "info_all":
                data = normalise_executable(data)
            with open(os.path.join(OUT, "%s_%s.resp" % (prefix, name)), "wb") as f:
                f.write(data)
        print("%s: redis_version %s, %d files" % (prefix, version, len(replies)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    # Further servers built by hand: PREFIX=PATH_TO_BINARY arguments.
    servers = SERVERS if len(sys.argv) == 1 else []
    for spec in sys.argv[1:]:
        prefix, binary = spec.split("=", 1)
        servers.append((prefix, binary, True))
    for i, (prefix, binary, multi) in enumerate(servers):
        capture(prefix, binary, multi, 6379 + i)


if __name__ == "__main__":
    main()
