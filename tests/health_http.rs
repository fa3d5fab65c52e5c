//! Every health state of the first milestone produced by a real
//! redis-server and read back through redpulse's HTTP API.

mod support;

use std::time::Duration;
use support::*;

/// Fast polls so state changes show within a second or two.
const FAST: [&str; 4] = ["--interval", "100ms", "--timeout", "1s"];

fn start_redpulse(targets: &[String]) -> Redpulse {
    let mut args: Vec<&str> = FAST.to_vec();
    for t in targets {
        args.push("--target");
        args.push(t);
    }
    Redpulse::start(&args)
}

#[test]
fn healthy_instance_answers_200_with_numbers_as_numbers() {
    let redis = RedisServer::start(&[]);
    let rp = start_redpulse(&[format!("local={}", redis.url())]);
    let (code, v) = rp.wait_status("local", "ok", None);
    assert_eq!(code, 200);
    assert_eq!(v["instance"], "local");
    assert_eq!(v["addr"], format!("127.0.0.1:{}", redis.port));
    assert_eq!(v["role"], "master");
    assert!(v["version"].as_str().unwrap().starts_with("7."), "{v}");
    assert_master_numbers(&v, "local");
    assert_eq!(v["maxclients"], 10000);
    assert_eq!(v["reasons"], serde_json::json!([]));
    // Compact JSON, as uptime monitors' "body contains" checks expect.
    let (_, body) = rp.get("/health/redis/local");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    // Unknown names are a JSON 404.
    let (code, body) = rp.get("/health/redis/nope");
    assert_eq!(code, 404);
    assert_eq!(body, r#"{"error":"unknown instance","instance":"nope"}"#);
}

#[test]
fn maxmemory_with_data_is_memory_pressure() {
    let redis = RedisServer::start(&["--enable-debug-command", "local"]);
    let mut c = redis.client();
    assert_eq!(
        format!("{:?}", c.cmd(&["DEBUG", "POPULATE", "50000", "key", "100"])),
        "Simple(b\"OK\")"
    );
    let used = info_field(&c.info("memory"), "used_memory").unwrap();
    // A limit well below what the data already uses; noeviction keeps it there.
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    c.cmd(&["CONFIG", "SET", "maxmemory", &(used / 2).to_string()]);
    let rp = start_redpulse(&[format!("full={}", redis.url())]);
    let (code, v) = rp.wait_status("full", "critical", Some("memory_pressure"));
    assert_eq!(code, 503);
    assert_eq!(v["reasons"], serde_json::json!(["memory_pressure"]));
    assert!(v["mem_ratio"].as_f64().unwrap() > 1.5, "{v}");
}

#[test]
fn gets_of_missing_keys_are_low_hit_rate() {
    let redis = RedisServer::start(&[]);
    let mut c = redis.client();
    // Hits before redpulse starts count for nothing: the rate is windowed.
    c.cmd(&["SET", "present", "1"]);
    let hits: Vec<Vec<String>> = (0..5000)
        .map(|_| vec!["GET".into(), "present".into()])
        .collect();
    c.pipeline(&hits);
    let rp = start_redpulse(&[format!("cache={}", redis.url())]);
    rp.wait_status("cache", "ok", None);
    let misses: Vec<Vec<String>> = (0..3000)
        .map(|i| vec!["GET".into(), format!("missing:{i}")])
        .collect();
    c.pipeline(&misses);
    let (code, v) = rp.wait_status("cache", "degraded", Some("low_hit_rate"));
    assert_eq!(code, 503);
    assert_eq!(
        v["hit_rate"], 0.0,
        "lifetime rate is 62 % but the window saw only misses: {v}"
    );
    assert_eq!(v["reasons"], serde_json::json!(["low_hit_rate"]));
}

#[test]
fn replica_of_a_closed_port_is_replica_disconnected() {
    let redis = RedisServer::start(&[]);
    let closed = free_port();
    let mut c = redis.client();
    c.cmd(&["REPLICAOF", "127.0.0.1", &closed.to_string()]);
    let rp = start_redpulse(&[format!("replica={}", redis.url())]);
    let (code, v) = rp.wait_status("replica", "degraded", Some("replica_disconnected"));
    assert_eq!(code, 503);
    assert_eq!(v["role"], "replica");
    assert_eq!(v["master_link_status"], "down");
    assert!(v.get("connected_replicas").is_none(), "{v}");
    // And back to ok once it is a master again.
    c.cmd(&["REPLICAOF", "NO", "ONE"]);
    let (code, v) = rp.wait_status("replica", "ok", None);
    assert_eq!((code, v["role"].as_str()), (200, Some("master")));
}

#[test]
fn killed_server_is_down_and_ok_again_after_restart_on_the_same_port() {
    let mut redis = RedisServer::start(&[]);
    let rp = start_redpulse(&[format!("r={}", redis.url())]);
    rp.wait_status("r", "ok", None);
    redis.kill();
    let (code, v) = rp.wait_status("r", "down", None);
    assert_eq!(code, 503);
    let reason = v["reason"].as_str().unwrap();
    assert!(
        ["connection_refused", "connection_closed"].contains(&reason),
        "{v}"
    );
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    let (code, v) = rp.wait_status("r", "down", Some("connection_refused"));
    assert_eq!(code, 503);
    assert_eq!(
        v["reasons"],
        serde_json::json!(["connection_refused"]),
        "{v}"
    );
    assert!(
        v["error"].as_str().unwrap().contains("connection refused"),
        "{v}"
    );
    redis.restart();
    let (code, _) = rp.wait_status("r", "ok", None);
    assert_eq!(code, 200);
}

#[test]
fn wrong_password_is_auth_failed_and_the_right_one_is_ok() {
    let redis = RedisServer::start(&["--requirepass", "correct-horse"]);
    let rp = start_redpulse(&[
        format!("bad=redis://:wrong-battery@127.0.0.1:{}", redis.port),
        format!("none={}", redis.url()),
        format!("good=redis://:correct-horse@127.0.0.1:{}", redis.port),
        format!("acl=redis://default:correct-horse@127.0.0.1:{}", redis.port),
    ]);
    let (code, v) = rp.wait_status("bad", "down", Some("auth_failed"));
    assert_eq!(v["reasons"], serde_json::json!(["auth_failed"]), "{v}");
    assert_eq!(code, 503);
    assert!(v["error"].as_str().unwrap().contains("WRONGPASS"), "{v}");
    let (code, v) = rp.wait_status("none", "down", Some("auth_failed"));
    assert_eq!(v["reasons"], serde_json::json!(["auth_failed"]), "{v}");
    assert_eq!(code, 503);
    assert!(v["error"].as_str().unwrap().contains("NOAUTH"), "{v}");
    assert_eq!(rp.wait_status("good", "ok", None).0, 200);
    assert_eq!(rp.wait_status("acl", "ok", None).0, 200);
    let everything = format!("{}{}", rp.log_text(), rp.get("/metrics").1);
    assert!(!everything.contains("wrong-battery") && !everything.contains("correct-horse"));
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let redis = RedisServer::start(&[]);
    let mut rp = start_redpulse(&[format!("r={}", redis.url())]);
    rp.wait_status("r", "ok", None);
    signal(rp.pid(), "TERM");
    assert_eq!(rp.wait_exit(Duration::from_secs(10)), Some(0));
}
