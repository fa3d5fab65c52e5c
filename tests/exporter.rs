//! redpulse as a drop-in for redis_exporter: Debian's
//! prometheus-redis-exporter (with `-include-config-metrics
//! -export-client-list`) and redpulse (with the same `[metrics]` options)
//! read the same real redis-server (keys in two databases, some expiring,
//! a known workload, a slow EVAL that leaves a slow log entry and a latency
//! spike, a replica attached) and every series the exporter makes from
//! INFO, CLUSTER INFO, SLOWLOG, LATENCY, CONFIG and CLIENT LIST must be in
//! redpulse's /metrics with the same type and label keys, and the stable
//! values must agree with the exporter and with the server.

mod support;

use redpulse::wire::resp::Frame;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use support::prom::Exposition;
use support::*;

/// Exporter series that come from options not given here (key checks,
/// Lua scripts) or describe the exporter itself.
fn out_of_scope(name: &str) -> Option<&'static str> {
    let reasons: &[(&str, &str)] = &[
        ("redis_exporter_", "the exporter's own metrics"),
        (
            "redis_target_scrape_request_errors_total",
            "the exporter's own metrics",
        ),
        (
            "redis_last_key_groups_scrape_duration_milliseconds",
            "key group checks",
        ),
        ("redis_script_", "the exporter's Lua scripts"),
    ];
    reasons
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, why)| *why)
}

fn scrape(port: u16, path: &str) -> Exposition {
    let (code, body) = http_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(code, 200, "{path}: {body}");
    Exposition::parse(&body)
}

#[test]
fn every_info_series_of_redis_exporter_is_in_redpulse_with_the_same_shape_and_values() {
    need("prometheus-redis-exporter");
    // Slow log entries over 10 ms, latency events over 10 ms: only the
    // slow EVAL below makes either.
    let master = RedisServer::start(&[
        "--slowlog-log-slower-than",
        "10000",
        "--latency-monitor-threshold",
        "10",
    ]);
    let replica = RedisServer::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut c = master.client();
    // The workload: counted by the server, the exporter and redpulse alike.
    for i in 0..5 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    c.cmd(&["SET", "temp", "v", "EX", "1000"]);
    for _ in 0..3 {
        c.cmd(&["GET", "k1"]);
    }
    c.cmd(&["GET", "missing"]);
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["SET", "other-db", "v"]);
    c.cmd(&["NOSUCHCOMMAND"]);
    let busy = "local i = 0 while i < 8000000 do i = i + 1 end return i";
    c.cmd(&["EVAL", busy, "0"]);
    c.cmd(&["CLIENT", "SETNAME", "workload"]);
    // Keys of every type for the key checks, a stream with a group, a
    // consumer and a pending entry for the stream checks.
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["SET", "ck:str", "hello"]);
    c.cmd(&["SET", "ck:num", "42.5"]);
    c.cmd(&["RPUSH", "ck:list", "a", "b", "c"]);
    c.cmd(&["SADD", "ck:set", "a", "b"]);
    c.cmd(&["ZADD", "ck:zset", "1", "a", "2", "b", "3", "c", "4", "d"]);
    c.cmd(&["HSET", "ck:hash", "f", "v"]);
    c.cmd(&["PFADD", "ck:hll", "a", "b", "c", "d", "e"]);
    c.cmd(&["SET", "single", "7"]);
    c.cmd(&["XADD", "orders:eu", "1000-1", "item", "book"]);
    c.cmd(&["XADD", "orders:eu", "2000-1", "item", "pen"]);
    c.cmd(&["XGROUP", "CREATE", "orders:eu", "shipping", "0"]);
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "shipping",
        "worker-1",
        "COUNT",
        "1",
        "STREAMS",
        "orders:eu",
        ">",
    ]);
    wait_for(WAIT, "the replica to be in sync", || {
        let info = master.client().info("replication");
        info.contains("state=online").then_some(())
    });

    let dir = temp_dir("exporter");
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"200ms\"\nmetrics_interval = \"500ms\"\n\
             [metrics]\ninclude_config_metrics = true\nexport_client_list = true\n\
             check_keys = [\"db0=ck:*\"]\n\
             check_single_keys = [\"db0=single\", \"db1=other-db\", \"db0=missing\"]\n\
             count_keys = [\"db0=k*\"]\ncheck_streams = [\"db0=orders*\"]\n\
             [[instance]]\nname = \"master\"\nurl = \"{}\"\n\
             [[instance]]\nname = \"replica\"\nurl = \"{}\"\n",
            master.url(),
            replica.url()
        ),
    );
    let rp = Redpulse::start(&["--config", config.to_str().unwrap()]);
    rp.wait_status("master", "ok", None);

    // What the server itself says the workload was.
    let stats = master.client().info("commandstats");
    let set_calls = cmdstat_calls(&stats, "set");
    let get_calls = cmdstat_calls(&stats, "get");
    assert_eq!((set_calls, get_calls), (10, 4), "{stats}");
    // What the server says of the slow EVAL.
    let int = |f: &Frame| match f {
        Frame::Integer(n) => *n as f64,
        other => panic!("{other:?}"),
    };
    let (slow_id, slow_seconds) = match master.client().cmd(&["SLOWLOG", "GET", "1"]) {
        Frame::Array(entries) => match &entries[..] {
            [Frame::Array(e)] => (int(&e[0]), int(&e[2]) / 1e6),
            other => panic!("one slow log entry expected: {other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let (spike_at, spike_seconds) = match master.client().cmd(&["LATENCY", "LATEST"]) {
        Frame::Array(events) => match &events[..] {
            [Frame::Array(e)] => (int(&e[1]), int(&e[2]) / 1e3),
            other => panic!("one latency event expected: {other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert!(slow_seconds > 0.01, "the EVAL took {slow_seconds} s");

    // redpulse, once a metrics poll has seen the whole workload (before
    // the exporter runs: its key checks GET keys, which would count).
    let ours = wait_for(WAIT, "redpulse's INFO ALL series", || {
        let e = scrape(rp.port, "/metrics");
        let set = e.value(
            "redis_commands_total",
            &[("instance", "master"), ("cmd", "set")],
        );
        (set == Some(set_calls as f64) && !e.find("redis_slave_info", &[]).is_empty()).then_some(e)
    });

    let port = held_port();
    let _exporter = Guard(
        Command::new("prometheus-redis-exporter")
            .arg(format!("--redis.addr=redis://127.0.0.1:{}", master.port))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--include-config-metrics")
            .arg("--export-client-list")
            .arg("--check-keys=db0=ck:*")
            .arg("--check-single-keys=db0=single,db1=other-db,db0=missing")
            .arg("--count-keys=db0=k*")
            .arg("--check-streams=db0=orders*")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Ready once its landing page answers: a /metrics would scrape, and
    // every scrape's key checks GET keys the comparison counts.
    wait_for(WAIT, "the exporter to answer", || {
        (http_get(port, "/").ok()?.0 == 200).then_some(())
    });
    let ex_master = scrape(port, "/metrics");
    let ex_replica = scrape(
        port,
        &format!("/scrape?target=redis://127.0.0.1:{}", replica.port),
    );
    // Names, types and label keys.
    let mut checked = BTreeSet::new();
    let mut skipped = BTreeSet::new();
    let mut problems = Vec::new();
    for ex in [&ex_master, &ex_replica] {
        for (family, kind) in &ex.types {
            if !family.starts_with("redis_") {
                continue;
            }
            if let Some(why) = out_of_scope(family) {
                skipped.insert(format!("{family} ({why})"));
                continue;
            }
            checked.insert(family.clone());
            match ours.types.get(family) {
                None => problems.push(format!("{family}: missing")),
                Some(k) if k != kind => {
                    problems.push(format!("{family}: {k}, exporter says {kind}"))
                }
                Some(_) => {
                    let theirs = ex.label_keys(family, &["instance"]);
                    let mine = ours.label_keys(family, &["instance"]);
                    if theirs != mine {
                        problems.push(format!("{family}: labels {mine:?}, exporter {theirs:?}"));
                    }
                }
            }
        }
    }
    println!("checked {} exporter series names:", checked.len());
    for name in &checked {
        println!("  {name}");
    }
    println!("out of scope ({}):", skipped.len());
    for name in &skipped {
        println!("  {name}");
    }
    assert!(
        checked.len() > 100,
        "the exporter showed only {} names",
        checked.len()
    );
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // Stable values: equal to the exporter's, and to the server's.
    let at = |who: &str, extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, String)> {
        let mut v = vec![("instance", who.to_string())];
        v.extend(extra.iter().map(|(k, x)| (*k, x.to_string())));
        v
    };
    let ours_value = |name: &str, labels: Vec<(&str, String)>| {
        let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ours.value(name, &l)
    };
    let maxclients = info_field(&master.client().info("clients"), "maxclients").unwrap() as f64;
    for (name, extra, expected) in [
        // k0-k4, temp, seven ck:*, single, orders:eu
        ("redis_db_keys", &[("db", "db0")][..], 15.0),
        ("redis_db_keys", &[("db", "db1")][..], 1.0),
        ("redis_db_keys_expiring", &[("db", "db0")][..], 1.0),
        ("redis_db_keys_expiring", &[("db", "db1")][..], 0.0),
        ("redis_connected_slaves", &[][..], 1.0),
        (
            "redis_commands_total",
            &[("cmd", "set")][..],
            set_calls as f64,
        ),
        (
            "redis_commands_total",
            &[("cmd", "get")][..],
            get_calls as f64,
        ),
        ("redis_config_maxclients", &[][..], maxclients),
        ("redis_memory_max_bytes", &[][..], 0.0),
        ("redis_config_maxmemory", &[][..], 0.0),
        ("redis_config_io_threads", &[][..], 1.0),
        ("redis_slowlog_length", &[][..], 1.0),
        ("redis_slowlog_last_id", &[][..], slow_id),
        (
            "redis_last_slow_execution_duration_seconds",
            &[][..],
            slow_seconds,
        ),
        (
            "redis_latency_spike_last",
            &[("event_name", "command")][..],
            spike_at,
        ),
        (
            "redis_latency_spike_duration_seconds",
            &[("event_name", "command")][..],
            spike_seconds,
        ),
        (
            "redis_config_value",
            &[("key", "maxclients")][..],
            maxclients,
        ),
        (
            "redis_config_value",
            &[("key", "slowlog-log-slower-than")][..],
            10000.0,
        ),
    ] {
        let theirs = ex_master.value(name, extra);
        let mine = ours_value(name, at("master", extra));
        println!("{name}{extra:?}: exporter {theirs:?}, redpulse {mine:?}, expected {expected}");
        assert_eq!(theirs, Some(expected), "exporter {name}{extra:?}");
        assert_eq!(mine, Some(expected), "redpulse {name}{extra:?}");
    }
    // Every config key and value, as the exporter shows them (secrets
    // redacted by both).
    let config = |e: &Exposition, having: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        e.find("redis_config_key_value", having)
            .iter()
            .map(|s| (s.labels["key"].clone(), s.labels["value"].clone()))
            .collect()
    };
    let (theirs, mine) = (
        config(&ex_master, &[]),
        config(&ours, &[("instance", "master")]),
    );
    assert!(theirs.len() > 100, "{theirs:?}");
    assert_eq!(
        theirs.symmetric_difference(&mine).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new()
    );
    assert!(!mine.iter().any(|(k, _)| k == "requirepass"));
    // The client list: the workload's client as the server lists it (the
    // other clients differ by nature: each tool sees itself).
    let mine = ours.find(
        "redis_connected_clients_details",
        &[("instance", "master"), ("name", "workload")],
    );
    let theirs = ex_master.find("redis_connected_clients_details", &[("name", "workload")]);
    assert_eq!((mine.len(), theirs.len()), (1, 1));
    for key in ["cmd", "db", "flags", "host", "omem"] {
        assert_eq!(mine[0].labels[key], theirs[0].labels[key], "{key}");
    }
    assert!(!ours
        .find(
            "redis_connected_clients_details",
            &[("instance", "master"), ("name", "redpulse")]
        )
        .is_empty());
    // The key and stream checks: every series of the exporter's, with the
    // same labels and value (idle times differ by the moment of reading).
    let mut compared = 0;
    for family in [
        "redis_key_size",
        "redis_key_value",
        "redis_key_value_as_string",
        "redis_keys_count",
        "redis_stream_length",
        "redis_stream_radix_tree_keys",
        "redis_stream_radix_tree_nodes",
        "redis_stream_last_generated_id",
        "redis_stream_groups",
        "redis_stream_group_consumers",
        "redis_stream_group_messages_pending",
        "redis_stream_group_last_delivered_id",
        "redis_stream_group_consumer_messages_pending",
        "redis_stream_group_consumer_idle_seconds",
    ] {
        let theirs = ex_master.find(family, &[]);
        assert!(!theirs.is_empty(), "the exporter made no {family}");
        for t in theirs {
            let mut want: Vec<(&str, &str)> = t
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            want.push(("instance", "master"));
            let mine = ours.find(family, &want);
            assert_eq!(mine.len(), 1, "{family} {:?}", t.labels);
            if family.ends_with("idle_seconds") {
                assert!((mine[0].value - t.value).abs() < 30.0, "{family}");
            } else {
                assert_eq!(mine[0].value, t.value, "{family} {:?}", t.labels);
            }
            compared += 1;
        }
        assert_eq!(
            ours.find(family, &[("instance", "master")]).len(),
            ex_master.find(family, &[]).len(),
            "{family}: as many series as the exporter"
        );
    }
    println!("compared {compared} key and stream series");
    // And against the server: sizes by type, counts, the pending entry.
    for (family, labels, expected) in [
        (
            "redis_key_size",
            &[("db", "db0"), ("key", "ck:list")][..],
            3.0,
        ),
        (
            "redis_key_size",
            &[("db", "db0"), ("key", "ck:zset")][..],
            4.0,
        ),
        (
            "redis_key_size",
            &[("db", "db0"), ("key", "ck:hll")][..],
            5.0,
        ),
        (
            "redis_key_size",
            &[("db", "db0"), ("key", "ck:str")][..],
            5.0,
        ),
        (
            "redis_key_size",
            &[("db", "db0"), ("key", "missing")][..],
            0.0,
        ),
        (
            "redis_key_value",
            &[("db", "db0"), ("key", "ck:num")][..],
            42.5,
        ),
        (
            "redis_key_value",
            &[("db", "db0"), ("key", "single")][..],
            7.0,
        ),
        ("redis_keys_count", &[("db", "db0"), ("key", "k*")][..], 5.0),
        (
            "redis_stream_length",
            &[("db", "db0"), ("stream", "orders:eu")][..],
            2.0,
        ),
        (
            "redis_stream_last_generated_id",
            &[("db", "db0"), ("stream", "orders:eu")][..],
            2000.0,
        ),
        (
            "redis_stream_group_consumer_messages_pending",
            &[
                ("stream", "orders:eu"),
                ("group", "shipping"),
                ("consumer", "worker-1"),
            ][..],
            1.0,
        ),
    ] {
        let mut l = labels.to_vec();
        l.push(("instance", "master"));
        assert_eq!(
            ours.value(family, &l),
            Some(expected),
            "{family} {labels:?}"
        );
    }
    assert_eq!(
        ours.find(
            "redis_key_value_as_string",
            &[("instance", "master"), ("key", "ck:str")]
        )[0]
        .labels["val"],
        "hello"
    );
    // The errors the workload made, by prefix.
    assert_eq!(
        ours_value("redis_errors_total", at("master", &[("err", "ERR")])),
        ex_master.value("redis_errors_total", &[("err", "ERR")])
    );
    // redis_instance_info: every label value the same, role from INFO.
    for (ex, who, role) in [
        (&ex_master, "master", "master"),
        (&ex_replica, "replica", "slave"),
    ] {
        let theirs = ex.find("redis_instance_info", &[]);
        let mine = ours.find("redis_instance_info", &[("instance", who)]);
        assert_eq!((theirs.len(), mine.len()), (1, 1));
        let mut mine = mine[0].labels.clone();
        mine.remove("instance");
        let mut theirs = theirs[0].labels.clone();
        theirs.remove("instance");
        assert_eq!(mine, theirs, "{who}");
        assert_eq!(mine["role"], role);
    }
    // The replica's view of its master.
    for name in ["redis_master_link_up", "redis_slave_info"] {
        let theirs = ex_replica.find(name, &[]);
        let mine = ours.find(name, &[("instance", "replica")]);
        assert_eq!((theirs.len(), mine.len()), (1, 1), "{name}");
        let mut l = mine[0].labels.clone();
        l.remove("instance");
        assert_eq!(l, theirs[0].labels, "{name}");
        assert_eq!(mine[0].value, theirs[0].value, "{name}");
    }
}
