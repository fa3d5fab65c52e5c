#!/usr/bin/env python3
"""Capture raw RESP replies of topology commands from real servers, for
testdata/topology/. Starts its own servers on free loopback ports in a
scratch folder, builds a 3-master/3-replica cluster with redis-cli, and a
master, two replicas and three sentinels; saves each reply byte for byte;
stops everything it started by PID.

    python3 scripts/capture-topology.py SERVER_BIN CLI_BIN PREFIX [--sentinel]

e.g. python3 scripts/capture-topology.py redis-server redis-cli redis-7.0
"""
import os, shutil, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp_reader import read_reply  # noqa: E402

server, cli, prefix = sys.argv[1:4]
# Servers run in the scratch folder: a relative path must not break.
server = os.path.abspath(server) if os.path.exists(server) else server
taken = set()
with_sentinel = "--sentinel" in sys.argv
out_dir = os.path.join(os.path.dirname(__file__), "..", "testdata", "topology")
work = tempfile.mkdtemp(prefix="redpulse-capture-")
procs = []

def free_port():
    """A free port in 20000-22700: below the ephemeral range, and so is the
    cluster bus port (port + 10000)."""
    import random
    for _ in range(1000):
        p = random.randint(20000, 22700)
        if p in taken:
            continue
        try:
            for q in (p, p + 10000):
                s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
            taken.add(p)
            return p
        except OSError:
            continue
    raise SystemExit("no free port pair")

def command(port, *args):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args)
    s.sendall(req)
    f = s.makefile("rb")
    reply = read_reply(f)
    s.close()
    return reply

def save(name, data):
    path = os.path.join(out_dir, f"{prefix}_{name}.resp")
    with open(path, "wb") as fh:
        fh.write(data)
    print(f"wrote {path} ({len(data)} bytes)")

def start(args, port):
    log = open(os.path.join(work, f"{port}.log"), "w")
    p = subprocess.Popen([server] + args, stdout=log, stderr=log, cwd=work)
    procs.append(p)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    log.flush()
    raise SystemExit(f"server on {port} did not start: " + open(os.path.join(work, f"{port}.log")).read()[-600:])

try:
    ports = [free_port() for _ in range(6)]
    for p in ports:
        d = os.path.join(work, str(p)); os.makedirs(d)
        start(["--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file",
               f"nodes-{p}.conf", "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no", "--dir", d], p)
    subprocess.run([cli, "--cluster", "create"] + [f"127.0.0.1:{p}" for p in ports] +
                   ["--cluster-replicas", "1", "--cluster-yes"], check=True, stdout=subprocess.DEVNULL)
    for _ in range(100):
        if b"cluster_state:ok" in command(ports[0], "CLUSTER", "INFO"):
            break
        time.sleep(0.2)
    time.sleep(2)  # let every node see every other
    save("cluster_info_ok", command(ports[0], "CLUSTER", "INFO"))
    save("cluster_nodes", command(ports[0], "CLUSTER", "NODES"))
    save("cluster_shards", command(ports[0], "CLUSTER", "SHARDS"))
    # Slots no node serves: cluster_state:fail, slots_assigned below 16384.
    command(ports[0], "CLUSTER", "DELSLOTS", "0", "1", "2")
    time.sleep(1.5)
    save("cluster_info_slots_missing", command(ports[0], "CLUSTER", "INFO"))
    save("cluster_shards_slots_missing", command(ports[0], "CLUSTER", "SHARDS"))
    # A plain (non-cluster) server asked CLUSTER INFO.
    plain = free_port(); d = os.path.join(work, "plain"); os.makedirs(d)
    start(["--port", str(plain), "--bind", "127.0.0.1", "--save", "", "--dir", d], plain)
    save("cluster_info_not_cluster", command(plain, "CLUSTER", "INFO"))

    if with_sentinel:
        master = free_port(); replicas = [free_port(), free_port()]
        for p in [master] + replicas:
            d = os.path.join(work, f"s{p}"); os.makedirs(d)
            extra = ["--replicaof", "127.0.0.1", str(master)] if p != master else []
            start(["--port", str(p), "--bind", "127.0.0.1", "--save", "", "--dir", d] + extra, p)
        sentinels = [free_port() for _ in range(3)]
        for p in sentinels:
            conf = os.path.join(work, f"sentinel-{p}.conf")
            with open(conf, "w") as fh:
                fh.write(f"port {p}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {master} 2\n"
                         "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n")
            start([conf, "--sentinel"], p)
        for _ in range(100):
            masters = command(sentinels[0], "SENTINEL", "MASTERS")
            replicas = command(sentinels[0], "SENTINEL", "REPLICAS", "mymaster")
            if (b"num-other-sentinels\r\n$1\r\n2" in masters and b"num-slaves\r\n$1\r\n2" in masters
                    and replicas.count(b"master-link-status\r\n$2\r\nok") == 2):
                break
            time.sleep(0.2)
        save("sentinel_masters", command(sentinels[0], "SENTINEL", "MASTERS"))
        save("sentinel_replicas", command(sentinels[0], "SENTINEL", "REPLICAS", "mymaster"))
        save("sentinel_sentinels", command(sentinels[0], "SENTINEL", "SENTINELS", "mymaster"))
        save("sentinel_ckquorum_ok", command(sentinels[0], "SENTINEL", "CKQUORUM", "mymaster"))
        save("sentinel_info_sentinel", command(sentinels[0], "INFO", "sentinel"))
        save("sentinel_info_poll_sections", command(sentinels[0], "INFO", "clients", "memory", "stats", "replication", "persistence"))
        # Two sentinels gone: quorum 2 cannot be reached.
        for p in procs[-2:]:
            p.kill(); p.wait()
        for _ in range(100):
            lost = command(sentinels[0], "SENTINEL", "CKQUORUM", "mymaster")
            if lost.startswith(b"-"):
                break
            time.sleep(0.2)
        save("sentinel_ckquorum_lost", lost)
        save("sentinel_masters_sentinels_down", command(sentinels[0], "SENTINEL", "MASTERS"))
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(work, ignore_errors=True)
