//! Three redpulse "regions" vote on one real Redis, across network
//! namespaces this test makes and removes: a bridge in a hub namespace,
//! one namespace per region and one for Redis, and the test host on the
//! bridge too. A path is cut silently, like a real partition: in the
//! receiving namespace the `lookup local` rule moves from pref 0 to 32000
//! and `ip rule add pref 100 from SRC blackhole` drops what SRC sends.

mod support;

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces, removed (with every veth in them) on drop.
struct Net {
    tag: String,
    subnet: String,
    names: Vec<String>,
}

impl Net {
    /// hub (bridge) + `hosts`, each with one address on the bridge; the
    /// test host gets .100.
    fn new(hosts: &[(&str, u8)]) -> Net {
        let pid = std::process::id();
        let tag = format!("rp{}", pid % 100_000);
        let subnet = format!("10.201.{}", pid % 250);
        let mut net = Net {
            tag: tag.clone(),
            subnet: subnet.clone(),
            names: Vec::new(),
        };
        let hub = net.ns("hub");
        ip(&["netns", "add", &hub]);
        net.names.push(hub.clone());
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for (host, last) in hosts {
            let ns = net.ns(host);
            ip(&["netns", "add", &ns]);
            net.names.push(ns.clone());
            let (inner, outer) = (format!("{tag}{host}"), format!("{tag}{host}h"));
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ]);
            ip(&["link", "set", &inner, "netns", &ns]);
            ip(&["link", "set", &outer, "netns", &hub]);
            ip(&["-n", &hub, "link", "set", &outer, "master", "br0", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{subnet}.{last}/24"),
                "dev",
                &inner,
            ]);
            ip(&["-n", &ns, "link", "set", &inner, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            // Ready for silent cuts: local delivery after the blackholes.
            ip(&["-n", &ns, "rule", "add", "pref", "32000", "lookup", "local"]);
            ip(&["-n", &ns, "rule", "del", "pref", "0"]);
        }
        let (inner, outer) = (format!("{tag}t"), format!("{tag}th"));
        ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ]);
        ip(&["link", "set", &outer, "netns", &hub]);
        ip(&["-n", &hub, "link", "set", &outer, "master", "br0", "up"]);
        ip(&["addr", "add", &format!("{subnet}.100/24"), "dev", &inner]);
        ip(&["link", "set", &inner, "up"]);
        net
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.tag)
    }

    fn addr(&self, last: u8) -> String {
        format!("{}.{last}", self.subnet)
    }

    /// Drop everything `from` sends to `host`.
    fn cut(&self, from: u8, host: &str) {
        let pref = format!("{}", 100 + u32::from(from));
        ip(&[
            "-n",
            &self.ns(host),
            "rule",
            "add",
            "pref",
            &pref,
            "from",
            &self.addr(from),
            "blackhole",
        ]);
    }

    fn heal(&self, from: u8, host: &str) {
        let pref = format!("{}", 100 + u32::from(from));
        ip(&["-n", &self.ns(host), "rule", "del", "pref", &pref]);
    }

    /// Run `cmd` inside `host`'s namespace.
    fn spawn(&self, host: &str, cmd: &[&str], log: &PathBuf) -> Guard {
        let file = std::fs::File::create(log).unwrap();
        Guard(
            Command::new("ip")
                .args(["netns", "exec", &self.ns(host)])
                .args(cmd)
                .env("RUST_LOG", "info")
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn get(addr: &str, path: &str) -> (u16, Value, Duration) {
    let sa: SocketAddr = format!("{addr}:9379").parse().unwrap();
    let t = Instant::now();
    let (code, _, body) =
        http_full(sa, "GET", path).unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (code, v, t.elapsed())
}

/// Wait until `region`'s answer on `path` satisfies `want`; returns it.
fn wait_answer(addr: &str, path: &str, what: &str, want: impl Fn(&Value) -> bool) -> (u16, Value) {
    let mut last = Value::Null;
    let sa: SocketAddr = format!("{addr}:9379").parse().unwrap();
    let found = wait_for_opt(Duration::from_secs(20), || {
        // Refused while the region starts.
        let (code, _, body) = http_full(sa, "GET", path).ok()?;
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        last = v.clone();
        want(&v).then_some((code, v))
    });
    found.unwrap_or_else(|| panic!("{what}: last answer from {addr}{path}: {last}"))
}

#[test]
fn three_regions_vote_and_one_cut_path_does_not_page() {
    need("ip");
    need("redis-server");
    let regions = [("a", 1u8), ("b", 2), ("c", 3)];
    let net = Net::new(&[("a", 1), ("b", 2), ("c", 3), ("r", 10)]);
    let dir = temp_dir("consensus");
    let redis = net.addr(10);
    let _redis = net.spawn(
        "r",
        &[
            "redis-server",
            "--bind",
            &redis,
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ],
        &dir.join("redis.log"),
    );
    let mut procs = Vec::new();
    for (region, last) in regions {
        let peers: Vec<String> = regions
            .iter()
            .filter(|(r, _)| *r != region)
            .map(|(_, l)| format!("\"http://{}:9379\"", net.addr(*l)))
            .collect();
        let cfg = write_file(
            &dir,
            &format!("{region}.toml"),
            &format!(
                "listen = \"{}:9379\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\n\n\
                 [[instance]]\nname = \"cache\"\nurl = \"redis://{redis}:6379\"\n\n\
                 [consensus]\npeers = [{}]\nregion = \"{region}\"\nquorum = 2\ntimeout = \"400ms\"\n",
                net.addr(last),
                peers.join(", ")
            ),
        );
        let data = dir.join(format!("data-{region}"));
        procs.push(net.spawn(
            region,
            &[
                env!("CARGO_BIN_EXE_redpulse"),
                "--config",
                cfg.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &dir.join(format!("{region}.log")),
        ));
    }
    let (a, b, c) = (net.addr(1), net.addr(2), net.addr(3));
    let all_ok = json!({"a": "ok", "b": "ok", "c": "ok"});
    for addr in [&a, &b, &c] {
        let (code, v) = wait_answer(addr, "/health/redis/cache", "every region to see ok", |v| {
            v["votes"] == all_ok
        });
        assert_eq!((code, v["status"].as_str()), (200, Some("ok")), "{v}");
        assert_eq!(v["quorum"], 2);
        let (code, v, _) = get(addr, "/health/redis/cache?local=1");
        assert_eq!(code, 200);
        assert!(
            v.get("votes").is_none(),
            "local answers carry no votes: {v}"
        );
    }
    let (code, v, _) = get(&a, "/health/redis/nope");
    assert_eq!((code, &v["error"]), (404, &json!("unknown instance")));

    // Region a loses its path to Redis: a sees down, the others outvote it.
    net.cut(1, "r");
    let (code, v) = wait_answer(&a, "/health/redis/cache?local=1", "a to see down", |v| {
        v["status"] == "down"
    });
    assert_eq!(code, 503, "{v}");
    for addr in [&a, &b, &c] {
        let (code, v) = wait_answer(addr, "/health/redis/cache", "a's down vote", |v| {
            v["votes"]["a"] == "down"
        });
        assert_eq!(
            (code, v["status"].as_str()),
            (200, Some("ok")),
            "2 of 3 see ok: {v}"
        );
        assert_eq!(v["votes"], json!({"a": "down", "b": "ok", "c": "ok"}));
    }

    // b loses it too: two of three see down, so it is down.
    net.cut(2, "r");
    for addr in [&a, &b, &c] {
        let (code, v) = wait_answer(addr, "/health/redis/cache", "b's down vote", |v| {
            v["votes"]["b"] == "down"
        });
        assert_eq!((code, v["status"].as_str()), (503, Some("down")), "{v}");
        assert_eq!(v["votes"], json!({"a": "down", "b": "down", "c": "ok"}));
        assert!(v["reason"].is_string(), "{v}");
    }
    net.heal(1, "r");
    net.heal(2, "r");
    for addr in [&a, &b, &c] {
        wait_answer(addr, "/health/redis/cache", "every region ok again", |v| {
            v["votes"] == all_ok
        });
    }

    // c's link to a is cut: c answers with its own vote and b's, and says
    // a's is missing; a still counts c.
    net.cut(3, "a");
    let (code, v) = wait_answer(&c, "/health/redis/cache", "a's vote to go missing", |v| {
        v.get("missing_votes").is_some()
    });
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")), "{v}");
    assert_eq!(v["votes"], json!({"b": "ok", "c": "ok"}));
    assert_eq!(v["missing_votes"][0]["region"], "a", "{v}");
    let (_, v, took) = get(&c, "/health/redis/cache");
    assert!(took < Duration::from_secs(1), "{took:?}: {v}");
    // And c's link to b too: one vote of the two needed.
    net.cut(3, "b");
    let (code, v) = wait_answer(&c, "/health/redis/cache", "no quorum", |v| {
        v["status"] == "unknown"
    });
    assert_eq!(
        (code, v["reason"].as_str()),
        (503, Some("no_quorum")),
        "{v}"
    );
    assert_eq!(v["votes"], json!({"c": "ok"}));
    assert_eq!(v["missing_votes"].as_array().map(Vec::len), Some(2), "{v}");
    // a and b still agree on ok between themselves.
    let (code, v, _) = get(&a, "/health/redis/cache");
    assert_eq!(code, 200, "{v}");
    drop(procs);
}
