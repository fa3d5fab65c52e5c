//! The rest of the reasons table, each produced for real by redis-server 7.0
//! and read back through HTTP: status, HTTP code, `reason` and `reasons`.

mod support;

use redpulse::wire::resp::Frame;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// A config watching one instance with fast polls and extra threshold lines.
fn config(name: &str, url: &str, thresholds: &str) -> String {
    format!(
        "interval = \"100ms\"\ntimeout = \"1s\"\n\n[[instance]]\nname = \"{name}\"\nurl = \"{url}\"\n[instance.thresholds]\n{thresholds}\n"
    )
}

fn assert_verdict(v: &(u16, Value), code: u16, status: &str, reasons: Value) {
    assert_eq!(v.0, code, "{}", v.1);
    assert_eq!(v.1["status"], status, "{}", v.1);
    assert_eq!(v.1["reasons"], reasons, "{}", v.1);
    assert_eq!(v.1["reason"], reasons[0], "{}", v.1);
}

/// Run `f` on a thread until `stop` is set (bounded by `max` iterations).
fn background(
    max: usize,
    f: impl Fn() + Send + 'static,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        for _ in 0..max {
            if flag.load(Ordering::Relaxed) {
                break;
            }
            f();
        }
    });
    (stop, handle)
}

#[test]
fn replica_far_behind_is_replication_lag_on_the_master() {
    let master = RedisServer::start(&[]);
    let replica = RedisServer::start(&[]);
    replica
        .client()
        .cmd(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    let mut m = master.client();
    wait_for(WAIT, "the replica to be online", || {
        m.info("replication").contains("state=online").then_some(())
    });
    let rp = Redpulse::start_with_config(
        &config("m", &master.url(), "replication_lag_bytes = 10000"),
        &[],
    );
    rp.wait_status("m", "ok", None);
    // A stopped replica acknowledges nothing while the master takes writes.
    signal(replica.pid(), "STOP");
    let value = "x".repeat(50_000);
    m.cmd(&["SET", "big", &value]);
    let v = rp.wait_status("m", "degraded", Some("replication_lag"));
    assert_verdict(&v, 503, "degraded", json!(["replication_lag"]));
    assert!(
        v.1["max_replica_lag_bytes"].as_u64().unwrap() > 10_000,
        "{}",
        v.1
    );
    signal(replica.pid(), "CONT");
    rp.wait_status("m", "ok", None);
}

#[test]
fn blocked_clients_are_flagged_only_with_a_threshold() {
    let redis = RedisServer::start(&[]);
    let rp =
        Redpulse::start_with_config(&config("b", &redis.url(), "blocked_clients_max = 0"), &[]);
    let plain = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("p={}", redis.url()),
    ]);
    rp.wait_status("b", "ok", None);
    let port = redis.port;
    let blocker = std::thread::spawn(move || {
        let mut c = Client::connect(port).unwrap();
        c.cmd(&["BLPOP", "queue", "15"])
    });
    let v = rp.wait_status("b", "degraded", Some("blocked_clients"));
    assert_verdict(&v, 503, "degraded", json!(["blocked_clients"]));
    assert_eq!(v.1["blocked_clients"], 1);
    // Without a threshold (-1, the default) they are only reported.
    let (code, p) = plain.health("p");
    assert_eq!(
        (code, p["status"].as_str(), p["blocked_clients"].as_u64()),
        (200, Some("ok"), Some(1)),
        "{p}"
    );
    redis.client().cmd(&["LPUSH", "queue", "job"]);
    assert!(matches!(blocker.join().unwrap(), Frame::Array(_)));
    rp.wait_status("b", "ok", None);
}

#[test]
fn failing_bgsave_is_persistence_failing() {
    let redis = RedisServer::start(&[]);
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("s={}", redis.url()),
    ]);
    rp.wait_status("s", "ok", None);
    let mut c = redis.client();
    c.cmd(&["SET", "k", "v"]);
    // Without its data directory the save cannot write its file.
    std::fs::remove_dir_all(&redis.dir).unwrap();
    c.cmd(&["BGSAVE"]);
    let v = rp.wait_status("s", "critical", Some("persistence_failing"));
    assert_verdict(&v, 503, "critical", json!(["persistence_failing"]));
    // (Recovery needs a restart: the server's working directory is the
    // removed one, and 7.0 refuses CONFIG SET dir.)
}

/// Keep the server busy with DEBUG SLEEP so polls queue behind it.
fn sleeper(port: u16, seconds: &'static str) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let c = std::sync::Mutex::new(Client::connect(port).unwrap());
    background(200, move || {
        c.lock().unwrap().cmd(&["DEBUG", "SLEEP", seconds]);
    })
}

#[test]
fn slow_replies_are_slow_response_degraded_then_critical() {
    let redis = RedisServer::start(&["--enable-debug-command", "local"]);
    let thresholds = "latency_warn = \"50ms\"\nlatency_critical = \"400ms\"\nfail_after = 1\nrecover_after = 1000";
    let toml =
        config("slow", &redis.url(), thresholds).replace("timeout = \"1s\"", "timeout = \"3s\"");
    let rp = Redpulse::start_with_config(&toml, &[]);
    rp.wait_status("slow", "ok", None);
    let (stop, h) = sleeper(redis.port, "0.2");
    let v = rp.wait_status("slow", "degraded", Some("slow_response"));
    assert_verdict(&v, 503, "degraded", json!(["slow_response"]));
    // (A held verdict shows the latest poll's latency, which may be fast.)
    assert!(v.1["latency_ms"].is_number(), "{}", v.1);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    let (stop, h) = sleeper(redis.port, "1");
    let v = rp.wait_status("slow", "critical", Some("slow_response"));
    assert_verdict(&v, 503, "critical", json!(["slow_response"]));
    assert!(v.1["latency_ms"].is_number(), "{}", v.1);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn restart_with_a_large_dataset_is_loading() {
    let mut redis = RedisServer::start(&["--enable-debug-command", "local"]);
    let mut c = redis.client();
    c.cmd(&["DEBUG", "POPULATE", "20000", "key", "16"]);
    assert!(matches!(c.cmd(&["SAVE"]), Frame::Simple(_)));
    drop(c);
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("l={}", redis.url()),
    ]);
    rp.wait_status("l", "ok", None);
    // A per-key delay makes the load last seconds; the server answers INFO
    // (and -LOADING to data commands) while it loads.
    redis.restart_without_waiting(&[
        "--key-load-delay",
        "20",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    let v = rp.wait_status("l", "down", Some("loading"));
    assert_verdict(&v, 503, "down", json!(["loading"]));
    let v = rp.wait_status("l", "ok", None);
    assert_eq!(v.0, 200);
}

#[test]
fn a_long_script_is_busy() {
    let redis = RedisServer::start(&["--busy-reply-threshold", "100"]);
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("b={}", redis.url()),
    ]);
    rp.wait_status("b", "ok", None);
    let port = redis.port;
    let script = std::thread::spawn(move || {
        let mut c = Client::connect(port).unwrap();
        // Loops until SCRIPT KILL (bounded by the 10 s read timeout anyway).
        c.try_cmd(&["EVAL", "while true do end", "0"])
    });
    let v = rp.wait_status("b", "down", Some("busy"));
    assert_verdict(&v, 503, "down", json!(["busy"]));
    assert!(v.1["error"].as_str().unwrap().contains("BUSY"), "{}", v.1);
    let mut killer = Client::connect(port).unwrap();
    wait_for(WAIT, "SCRIPT KILL", || {
        matches!(killer.cmd(&["SCRIPT", "KILL"]), Frame::Simple(_)).then_some(())
    });
    let _ = script.join().unwrap();
    rp.wait_status("b", "ok", None);
}

#[test]
fn a_user_without_info_permission_is_auth_failed() {
    let redis = RedisServer::start(&[]);
    let mut c = redis.client();
    c.cmd(&[
        "ACL",
        "SETUSER",
        "watcher",
        "on",
        ">watcher-pw",
        "+@all",
        "-info",
        "~*",
    ]);
    let url = format!("redis://watcher:watcher-pw@127.0.0.1:{}", redis.port);
    let rp = Redpulse::start(&["--interval", "100ms", "--target", &format!("acl={url}")]);
    let v = rp.wait_status("acl", "down", Some("auth_failed"));
    assert_verdict(&v, 503, "down", json!(["auth_failed"]));
    assert!(v.1["error"].as_str().unwrap().contains("NOPERM"), "{}", v.1);
}

#[test]
fn a_stopped_server_is_timeout_and_recovers() {
    let redis = RedisServer::start(&[]);
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--timeout",
        "300ms",
        "--target",
        &format!("t={}", redis.url()),
    ]);
    rp.wait_status("t", "ok", None);
    signal(redis.pid(), "STOP");
    let v = rp.wait_status("t", "down", Some("timeout"));
    assert_verdict(&v, 503, "down", json!(["timeout"]));
    signal(redis.pid(), "CONT");
    rp.wait_status("t", "ok", None);
}

#[test]
fn renamed_info_and_non_resp_servers_are_protocol_error() {
    let redis = RedisServer::start(&["--rename-command", "INFO", ""]);
    // Something that is not Redis at all: an HTTP server's answer.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in http.incoming().take(100) {
            let Ok(mut s) = stream else { break };
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("renamed={}", redis.url()),
        "--target",
        &format!("web=redis://127.0.0.1:{http_port}"),
    ]);
    let v = rp.wait_status("renamed", "down", Some("protocol_error"));
    assert_verdict(&v, 503, "down", json!(["protocol_error"]));
    assert!(
        v.1["error"]
            .as_str()
            .unwrap()
            .contains("disabled or renamed"),
        "{}",
        v.1
    );
    let v = rp.wait_status("web", "down", Some("protocol_error"));
    assert_verdict(&v, 503, "down", json!(["protocol_error"]));
}

#[test]
fn a_stopped_poller_is_reported_stale() {
    let redis = RedisServer::start(&[]);
    // Stale after max(3 x 200ms, 200ms + 200ms) + 100 ms of slack = 700 ms.
    let rp = Redpulse::start(&[
        "--interval",
        "200ms",
        "--timeout",
        "200ms",
        "--target",
        &format!("s={}", redis.url()),
    ]);
    rp.wait_status("s", "ok", None);
    // Freeze redpulse, then Redis; queue a request and let redpulse run
    // again. Redis stays frozen until the answer is in, so no poll can
    // finish before the queued request is answered (a poll can only end
    // by its 200 ms timeout), whichever task the runtime wakes first.
    let mut seen = None;
    for _ in 0..5 {
        signal(rp.pid(), "STOP");
        signal(redis.pid(), "STOP");
        std::thread::sleep(Duration::from_millis(1500));
        let port = rp.port;
        let request = std::thread::spawn(move || http_get(port, "/health/redis/s"));
        std::thread::sleep(Duration::from_millis(200));
        signal(rp.pid(), "CONT");
        let answer = request.join().unwrap();
        signal(redis.pid(), "CONT");
        let (code, body) = answer.unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["reason"] == "stale" {
            seen = Some((code, v));
            break;
        }
        rp.wait_status("s", "ok", None);
    }
    let v = seen.expect("never answered stale while the poller was frozen");
    assert_verdict(&v, 503, "down", json!(["stale"]));
    assert!(v.1["age_ms"].as_u64().unwrap() > 700, "{}", v.1);
    rp.wait_status("s", "ok", None);
}

#[test]
fn a_killed_connection_is_replaced_without_flapping() {
    let redis = RedisServer::start(&[]);
    let mut c = redis.client();
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("k={}", redis.url()),
    ]);
    rp.wait_status("k", "ok", None);
    let before = info_field(&c.info("stats"), "total_connections_received").unwrap();
    let Frame::Integer(1) = c.cmd(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"]) else {
        panic!("expected to kill exactly redpulse's connection")
    };
    // One failed poll is below fail_after: the status never leaves ok.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let (code, v) = rp.health("k");
        assert_eq!((code, v["status"].as_str()), (200, Some("ok")), "{v}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = info_field(&c.info("stats"), "total_connections_received").unwrap();
    assert_eq!(after, before + 1, "exactly one reconnection");
    let Frame::Bulk(list) = c.cmd(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST")
    };
    assert!(String::from_utf8_lossy(&list).contains("name=redpulse"));
}

#[test]
fn system_memory_pressure_and_backup_stale_on_a_real_server() {
    // No maxmemory (the default), so only the host's memory can say how
    // full the server is; a threshold far below its real share trips it.
    let redis = RedisServer::start(&[]);
    let mut c = redis.client();
    let host = info_field(&c.info("memory"), "total_system_memory").unwrap();
    let used = info_field(&c.info("memory"), "used_memory").unwrap();
    let below = (used as f64 / host as f64) / 2.0;
    let rp = Redpulse::start_with_config(
        &config(
            "host",
            &redis.url(),
            &format!("system_memory_critical = {below:e}\nfail_after = 1"),
        ),
        &[],
    );
    let v = rp.wait_status("host", "critical", Some("system_memory_pressure"));
    assert_verdict(&v, 503, "critical", json!(["system_memory_pressure"]));
    assert_eq!(v.1["mem_ratio"], 0, "{}", v.1);
    drop(rp);

    // RDB saving is off in the test servers (--save ""), so a write stays
    // unsaved and the last save is the server's start.
    let fresh = RedisServer::start(&[]);
    let rp = Redpulse::start_with_config(
        &config(
            "rdb",
            &fresh.url(),
            "backup_max_age = \"1s\"\nfail_after = 1",
        ),
        &[],
    );
    rp.wait_status("rdb", "ok", None);
    fresh.client().cmd(&["SET", "k", "v"]);
    let v = rp.wait_status("rdb", "degraded", Some("backup_stale"));
    assert_verdict(&v, 503, "degraded", json!(["backup_stale"]));
    // A save clears it.
    fresh.client().cmd(&["SAVE"]);
    let v = rp.wait_status("rdb", "ok", None);
    assert_verdict(&v, 200, "ok", json!([]));
}
