//! The operator surface: fleet and TCP views, readiness, HEAD/405 and
//! headers, heartbeats, the status page, and SIGHUP reloads that keep
//! unchanged instances' connections.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

/// A raw request: the whole response text (head and body).
fn raw(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn fleet_tcp_readiness_and_http_conventions() {
    let up = RedisServer::start(&[]);
    let closed = held_port();
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("up={}", up.url()),
        "--target",
        &format!("gone=redis://127.0.0.1:{closed}"),
    ]);
    rp.wait_status("up", "ok", None);
    rp.wait_status("gone", "down", Some("connection_refused"));

    let (code, body) = rp.get("/readyz");
    assert_eq!(code, 200, "{body}");
    let (code, body) = rp.get("/health/redis");
    assert_eq!(code, 503);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "down");
    assert_eq!(v["instances"], 2);
    assert_eq!(
        v["counts"],
        json!({"ok": 1, "degraded": 0, "critical": 0, "down": 1})
    );
    assert_eq!(
        v["not_ok"],
        json!([{"instance": "gone", "status": "down", "reason": "connection_refused"}])
    );
    assert!(v.get("all").is_none(), "the full list only with ?all");
    let (_, body) = rp.get("/health/redis?all=1");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["all"].as_array().unwrap().len(), 2);

    let (code, body) = rp.get("/health/tcp/up");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"status\":\"up\""));
    let (code, body) = rp.get("/health/tcp/gone");
    assert_eq!(code, 503);
    assert!(body.contains("connection refused"), "{body}");
    assert_eq!(rp.get("/health/tcp/nope").0, 404);

    // HEAD answers like GET without a body; headers are the contract's.
    let head = raw(
        rp.port,
        "HEAD /health/redis/up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/json") && head.contains("cache-control: no-store"),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "HEAD carried a body: {head}");
    let post = raw(
        rp.port,
        "POST /health/redis HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(
        post.starts_with("HTTP/1.1 405") && post.contains("allow: GET, HEAD"),
        "{post}"
    );
    let (code, body) = rp.get("/no/such/path");
    assert_eq!((code, body.as_str()), (404, "{\"error\":\"not found\"}"));

    // The status page, no external assets.
    let page = raw(
        rp.port,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        page.contains("content-type: text/html")
            && page.contains("fetch(here(\"health/redis?\"")
            && !page.contains("src=\"http")
            && !page.contains("href=\"http"),
        "{page}"
    );
}

#[test]
fn readyz_waits_for_every_first_verdict() {
    // Accepts and never answers: the first verdict takes the whole timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let rp = Redpulse::start(&[
        "--timeout",
        "2s",
        "--target",
        &format!("slow=redis://127.0.0.1:{port}"),
    ]);
    let (code, body) = rp.get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"pending\":1"), "{body}");
    wait_for(WAIT, "readiness", || {
        (rp.get("/readyz").0 == 200).then_some(())
    });
    rp.wait_status("slow", "down", Some("timeout"));
    drop(silent);
}

#[test]
fn heartbeats_go_from_200_to_503_when_pings_stop() {
    let toml = "[[heartbeat]]\nname = \"worker\"\ninterval = \"1s\"\ngrace = \"500ms\"\n\n[[instance]]\nname = \"x\"\nurl = \"redis://127.0.0.1:1\"\n";
    let rp = Redpulse::start_with_config(toml, &[]);
    let (code, body) = http_request(rp.port, "POST", "/heartbeat/worker").unwrap();
    assert_eq!((code, body.as_str()), (200, "{\"status\":\"ok\"}"));
    let (code, body) = rp.get("/health/heartbeat/worker");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["last_ping"].is_string() && v["age_ms"].as_u64().unwrap() < 1500,
        "{v}"
    );
    // GET pings too (for tools that can only GET).
    assert_eq!(rp.get("/heartbeat/worker").0, 200);
    let (code, body) = wait_for(WAIT, "the heartbeat to be missed", || {
        let (code, body) = rp.get("/health/heartbeat/worker");
        (code == 503).then_some((code, body))
    });
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, v["status"].as_str(), v["reason"].as_str()),
        (503, Some("down"), Some("heartbeat_missed"))
    );
    // Missed means older than interval + grace; age_ms is truncated to
    // whole milliseconds, so a 1500.3 ms age reads as 1500.
    assert!(v["age_ms"].as_u64().unwrap() >= 1500, "{v}");
    assert_eq!(
        http_request(rp.port, "POST", "/heartbeat/worker")
            .unwrap()
            .0,
        200
    );
    assert_eq!(rp.get("/health/heartbeat/worker").0, 200);
    // Unknown names are refused and never stored.
    assert_eq!(
        http_request(rp.port, "POST", "/heartbeat/other").unwrap().0,
        404
    );
    assert_eq!(rp.get("/health/heartbeat/other").0, 404);
    assert_eq!(
        http_request(rp.port, "DELETE", "/heartbeat/worker")
            .unwrap()
            .0,
        405
    );
}

#[test]
fn sighup_adds_and_removes_targets_and_keeps_unchanged_connections() {
    let a = RedisServer::start(&[]);
    let b = RedisServer::start(&[]);
    let c = RedisServer::start(&[]);
    let mut watch_a = a.client();
    let config = |names: &[(&str, &RedisServer)]| -> String {
        let mut t = String::from("interval = \"100ms\"\n");
        for (name, server) in names {
            t.push_str(&format!(
                "\n[[instance]]\nname = \"{name}\"\nurl = \"{}\"\n",
                server.url()
            ));
        }
        t
    };
    let dir = temp_dir("reload");
    let path = write_file(&dir, "redpulse.toml", &config(&[("a", &a), ("b", &b)]));
    let rp = Redpulse::start(&["--config", path.to_str().unwrap()]);
    rp.wait_status("a", "ok", None);
    rp.wait_status("b", "ok", None);
    let conns_before = info_field(&watch_a.info("stats"), "total_connections_received").unwrap();

    write_file(&dir, "redpulse.toml", &config(&[("a", &a), ("c", &c)]));
    signal(rp.pid(), "HUP");
    rp.wait_status("c", "ok", None);
    wait_for(WAIT, "b to be removed", || {
        (rp.get("/health/redis/b").0 == 404).then_some(())
    });
    assert_eq!(rp.get("/health/redis/a").0, 200);
    std::thread::sleep(Duration::from_millis(500));
    let conns_after = info_field(&watch_a.info("stats"), "total_connections_received").unwrap();
    assert_eq!(
        conns_after, conns_before,
        "the unchanged instance reconnected"
    );
    assert!(
        rp.log_text().contains("config reloaded"),
        "{}",
        rp.log_text()
    );

    // A broken config is refused and the running one kept.
    write_file(&dir, "redpulse.toml", "intervall = \"1s\"\n");
    signal(rp.pid(), "HUP");
    wait_for(WAIT, "the reload failure in the log", || {
        rp.log_text().contains("reload failed").then_some(())
    });
    assert_eq!(rp.get("/health/redis/a").0, 200);
    assert_eq!(rp.get("/health/redis/c").0, 200);
}

#[test]
fn sigterm_during_a_stuck_reload_exits_0_within_the_drain_time() {
    let redis = RedisServer::start(&[]);
    let dir = temp_dir("stuck-reload");
    let plain = format!(
        "interval = \"100ms\"\n\n[[instance]]\nname = \"r\"\nurl = \"{}\"\n",
        redis.url()
    );
    let path = write_file(&dir, "redpulse.toml", &plain);
    let mut rp = Redpulse::start(&["--config", path.to_str().unwrap()]);
    rp.wait_status("r", "ok", None);

    // A password file that is a FIFO nobody writes to: opening it blocks
    // the reload for as long as nobody opens the other end.
    let fifo = dir.join("password.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    write_file(
        &dir,
        "redpulse.toml",
        &format!("{plain}password_file = \"{}\"\n", fifo.display()),
    );
    signal(rp.pid(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    // The stuck reload harms nothing: polling and HTTP go on, and a second
    // SIGHUP is refused rather than queued behind it.
    assert_eq!(rp.health("r").0, 200);
    signal(rp.pid(), "HUP");
    wait_for(WAIT, "the second SIGHUP to be refused", || {
        rp.log_text().contains("still loading").then_some(())
    });
    assert!(!rp.log_text().contains("config reloaded"));

    let asked = Instant::now();
    signal(rp.pid(), "TERM");
    // 5 s is the HTTP drain limit; nothing here is draining.
    let code = rp.wait_exit(Duration::from_secs(8));
    let took = asked.elapsed();
    assert_eq!(code, Some(0), "exit code; log:\n{}", rp.log_text());
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
}
