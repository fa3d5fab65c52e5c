//! The version-dependent cases on every supported server: Redis 7.0
//! (Debian), Redis 6.2 and Valkey 8.1 (PyPI wheels, scripts/fetch-servers.sh).

mod support;

use redpulse::wire::resp::Frame;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn watch(targets: &[(&str, String)]) -> Redpulse {
    let mut args: Vec<String> = ["--interval", "100ms", "--timeout", "1s"]
        .map(String::from)
        .to_vec();
    for (name, url) in targets {
        args.push("--target".into());
        args.push(format!("{name}={url}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Redpulse::start(&args)
}

#[test]
fn ok_with_fields_one_connection_and_pipelined_infos_on_every_server() {
    for kind in Kind::ALL {
        let redis = RedisServer::start_kind(kind, &[]);
        // The test's own connection is opened first, so it is not counted below.
        let mut c = redis.client();
        let rp = watch(&[("r", redis.url())]);
        let (code, v) = rp.wait_status("r", "ok", None);
        assert_eq!(code, 200, "{kind:?}");
        assert!(
            v["version"]
                .as_str()
                .unwrap()
                .starts_with(kind.version_prefix()),
            "{kind:?}: {v}"
        );
        assert_eq!(v["role"], "master", "{kind:?}");
        assert_master_numbers(&v, &format!("{kind:?}"));

        let polls = || rp.metric("redpulse_polls_total{result=\"ok\"}").unwrap() as u64;
        // Two INFO calls read the counters: the commandstats one of the first
        // reading and the stats one of the second are counted in between.
        let before = c.info_each(&["stats", "commandstats"]);
        let p0 = polls();
        wait_for(WAIT, "20 more polls", || (polls() >= p0 + 20).then_some(()));
        let p1 = polls();
        let after = c.info_each(&["stats", "commandstats"]);
        let p2 = polls();
        let conns = |i: &str| info_field(i, "total_connections_received").unwrap();
        assert_eq!(
            conns(&after),
            conns(&before),
            "{kind:?}: redpulse opened new connections while polling"
        );
        let calls = cmdstat_calls(&after, "info") - cmdstat_calls(&before, "info") - 2;
        let per_poll = kind.info_calls_per_poll();
        // Polls may land between reading the metrics and the INFO counters.
        let expected = (p1 - p0) * per_poll..=(p2 - p0 + 1) * per_poll;
        assert!(
            expected.contains(&calls),
            "{kind:?}: {calls} INFO calls for {expected:?}"
        );
        let Frame::Bulk(list) = c.cmd(&["CLIENT", "LIST"]) else {
            panic!("CLIENT LIST")
        };
        assert!(
            String::from_utf8_lossy(&list).contains("name=redpulse"),
            "{kind:?}"
        );
    }
}

#[test]
fn replica_online_and_its_master_on_every_server() {
    for kind in Kind::ALL {
        let master = RedisServer::start_kind(kind, &[]);
        let replica = RedisServer::start_kind(kind, &[]);
        replica
            .client()
            .cmd(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
        let rp = watch(&[("m", master.url()), ("r", replica.url())]);
        let (code, v) = rp.wait_status("r", "ok", None);
        assert_eq!(code, 200);
        assert_eq!(v["role"], "replica", "{kind:?}");
        let (_, v) = wait_for(WAIT, "the link to come up", || {
            let (code, v) = rp.health("r");
            (v["master_link_status"] == "up").then_some((code, v))
        });
        assert!(v["master_last_io_seconds_ago"].is_number(), "{kind:?}: {v}");
        assert!(v.get("connected_replicas").is_none(), "{kind:?}: {v}");
        let (_, m) = wait_for(WAIT, "the master to see its replica", || {
            let (_, v) = rp.health("m");
            (v["connected_replicas"] == 1).then_some(((), v))
        });
        assert_eq!(m["status"], "ok", "{kind:?}: {m}");
        assert!(m["max_replica_lag_bytes"].is_number(), "{kind:?}: {m}");
        assert!(m.get("master_link_status").is_none(), "{kind:?}: {m}");
    }
}

#[test]
fn replica_disconnected_on_every_server() {
    for kind in Kind::ALL {
        // A replica of a port nobody listens on.
        let lonely = RedisServer::start_kind(kind, &[]);
        lonely
            .client()
            .cmd(&["REPLICAOF", "127.0.0.1", &held_port().to_string()]);
        // A replica whose master dies after the sync.
        let mut master = RedisServer::start_kind(kind, &[]);
        let orphan = RedisServer::start_kind(kind, &[]);
        orphan
            .client()
            .cmd(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
        let rp = watch(&[("lonely", lonely.url()), ("orphan", orphan.url())]);
        let (code, v) = rp.wait_status("lonely", "degraded", Some("replica_disconnected"));
        assert_eq!(code, 503, "{kind:?}");
        assert_eq!(
            (v["role"].as_str(), v["master_link_status"].as_str()),
            (Some("replica"), Some("down"))
        );
        assert_eq!(
            v["reasons"],
            serde_json::json!(["replica_disconnected"]),
            "{kind:?}"
        );
        wait_for(WAIT, "the orphan's link to come up", || {
            (rp.health("orphan").1["master_link_status"] == "up").then_some(())
        });
        rp.wait_status("orphan", "ok", None);
        master.kill();
        let (code, _) = rp.wait_status("orphan", "degraded", Some("replica_disconnected"));
        assert_eq!(code, 503, "{kind:?}");
    }
}

#[test]
fn maxclients_near_limit_rejections_and_refused_newcomers_on_every_server() {
    for kind in Kind::ALL {
        let redis = RedisServer::start_kind(kind, &["--maxclients", "6"]);
        let rp = watch(&[("r", redis.url())]);
        rp.wait_status("r", "ok", None);
        // redpulse's connection plus five held ones: 6 of 6.
        let held = hold_connections(redis.port, 5);
        let (code, v) = rp.wait_status("r", "degraded", Some("clients_near_limit"));
        assert_eq!(code, 503, "{kind:?}");
        assert_eq!(
            v["reasons"],
            serde_json::json!(["clients_near_limit"]),
            "{kind:?}: {v}"
        );
        assert_eq!(
            (v["connected_clients"].as_u64(), v["maxclients"].as_u64()),
            (Some(6), Some(6)),
            "{kind:?}"
        );

        // Newcomers are refused: rejected_connections grows between polls,
        // and redpulse's already-open connection keeps seeing INFO.
        let stop = Arc::new(AtomicBool::new(false));
        let knocking = {
            let (stop, port) = (stop.clone(), redis.port);
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(mut c) = Client::connect(port) {
                        let _ = c.try_cmd(&["PING"]);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let (_, v) = wait_for(WAIT, "rejected_connections in the reasons", || {
            let (code, v) = rp.health("r");
            let reasons = v["reasons"].as_array()?.clone();
            reasons
                .contains(&"rejected_connections".into())
                .then_some((code, v))
        });
        assert!(
            v["reasons"]
                .as_array()
                .unwrap()
                .contains(&"clients_near_limit".into()),
            "{kind:?}: {v}"
        );

        // A second redpulse cannot get in: the server closes its connection.
        let late = watch(&[("late", redis.url())]);
        let (code, v) = late.wait_status("late", "down", Some("connection_closed"));
        assert_eq!(
            v["reasons"],
            serde_json::json!(["connection_closed"]),
            "{kind:?}: {v}"
        );
        assert_eq!(code, 503, "{kind:?}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("max number of clients"),
            "{kind:?}: {v}"
        );
        stop.store(true, Ordering::Relaxed);
        knocking.join().unwrap();
        drop(held);
        rp.wait_status("r", "ok", None);
        late.wait_status("late", "ok", None);
    }
}
