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
    let closed = held_port();
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

/// The endpoints the HTTP module's header documents, as (methods, path
/// template), read from the header itself so the two cannot drift.
fn documented_endpoints() -> Vec<(Vec<String>, String)> {
    let src = include_str!("../src/http/mod.rs");
    let mut out = Vec::new();
    for line in src.lines().take_while(|l| l.starts_with("//!")) {
        let Some(item) = line.strip_prefix("//! - ") else {
            continue;
        };
        let head = item.split(": ").next().unwrap();
        for chunk in head.split('`').skip(1).step_by(2) {
            let (methods, path) = chunk.rsplit_once(' ').unwrap();
            out.push((
                methods.split(", ").map(str::to_string).collect(),
                path.to_string(),
            ));
        }
    }
    out
}

#[test]
fn every_documented_endpoint_answers_its_methods_and_405s_the_rest() {
    let server = RedisServer::start(&[]);
    let toml = format!(
        "interval = \"100ms\"\n\n[[instance]]\nname = \"cache\"\nurl = \"{}\"\n\n\
         [[heartbeat]]\nname = \"worker\"\ninterval = \"1h\"\n",
        server.url()
    );
    let rp = Redpulse::start_with_config(&toml, &[]);
    rp.wait_status("cache", "ok", None);
    wait_for(WAIT, "readiness", || {
        (rp.get("/readyz").0 == 200).then_some(())
    });
    // Each documented path with the name it is asked for, and the status a
    // GET gets here: known subjects that are well (200), unknown ones (404).
    fn expected(template: &str) -> Option<(&str, u16)> {
        Some(match template {
            "/health/redis/{name}" => ("/health/redis/cache", 200),
            "/health/redis" => ("/health/redis", 200),
            "/health/tcp/{name}" => ("/health/tcp/cache", 200),
            "/heartbeat/{name}" => ("/heartbeat/worker", 200),
            "/health/heartbeat/{name}" => ("/health/heartbeat/worker", 200),
            "/health/cluster/{name}" => ("/health/cluster/nope", 404),
            "/health/clusters" => ("/health/clusters", 200),
            "/health/group/{name}" => ("/health/group/nope", 404),
            "/health/groups" => ("/health/groups", 200),
            "/history/redis/{name}" => ("/history/redis/cache", 200),
            "/history/bars" => ("/history/bars?name=cache", 200),
            "/events" => ("/events", 200),
            "/metrics" => ("/metrics", 200),
            "/" => ("/", 200),
            "/readyz" | "/-/ready" | "/healthz" | "/-/healthy" => (template, 200),
            _ => return None,
        })
    }
    let endpoints = documented_endpoints();
    assert!(endpoints.len() >= 18, "{endpoints:?}");
    // Pinged first, so its health reads 200 below.
    assert_eq!(rp.get("/heartbeat/worker").0, 200);
    for (methods, template) in &endpoints {
        let (path, code) = expected(template)
            .unwrap_or_else(|| panic!("no expectation for documented {template}"));
        let mut allow: Vec<&str> = methods.iter().map(String::as_str).collect();
        allow.insert(1, "HEAD");
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let (got, headers, _) =
                http_full(([127, 0, 0, 1], rp.port).into(), method, path).unwrap();
            if allow.contains(&method) {
                assert_eq!(got, code, "{method} {path}");
            } else {
                assert_eq!(got, 405, "{method} {path}");
                let want = format!("allow: {}", allow.join(", ").to_ascii_lowercase());
                assert!(headers.contains(&want), "{method} {path}: {headers:?}");
            }
        }
    }
    for path in ["/nothing", "/history/other/x", "/health", "/healthz/"] {
        assert_eq!(rp.get(path).0, 404, "{path}");
    }
}
