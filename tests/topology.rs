//! Redis Cluster on real servers: six nodes (three masters, three
//! replicas) made by `redis-cli --cluster create`, configured in redpulse
//! by one seed; every node is discovered and polled, with CLUSTER INFO in
//! the same write as its INFO. On Redis 7.0, 6.2 (CLUSTER NODES only) and
//! Valkey 8.1.

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

/// A port below 22700 held with its cluster bus port (+10000), both below
/// the ephemeral range; a held port is never handed out twice in this
/// process (tests run in parallel; two clusters sharing a port would meet).
fn cluster_port() -> u16 {
    let start = std::process::id() as u16 % 2700;
    (0..2700u16)
        .map(|i| 20000 + (start + i * 7) % 2700)
        .find(|&p| hold_all([p, p + 10000]))
        .expect("no port pair to hold for a cluster node")
}

/// A cluster node with a short node timeout, whose replica may always take
/// over (the validity factor, at a 1 s timeout, would otherwise refuse a
/// replica idle for a few seconds).
const CLUSTER_ARGS: &[&str] = &[
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    "1000",
    "--cluster-replica-validity-factor",
    "0",
];

/// Six cluster nodes of `kind`, joined as 3 masters + 3 replicas.
fn cluster(kind: Kind) -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..6)
        .map(|_| {
            let port = cluster_port();
            RedisServer::start_at(kind, [127, 0, 0, 1].into(), port, CLUSTER_ARGS)
        })
        .collect();
    let mut args = vec!["--cluster".to_string(), "create".to_string()];
    args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
    args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
    let out = Command::new("redis-cli")
        .args(&args)
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "cluster create: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for n in &nodes {
        wait_for(WAIT, "cluster_state:ok on every node", || {
            let text = match n.client().cmd(&["CLUSTER", "INFO"]) {
                redpulse::wire::resp::Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                _ => return None,
            };
            text.contains("cluster_state:ok").then_some(())
        });
    }
    nodes
}

/// The discovered node names of `cluster` in the fleet view, sorted.
fn discovered(rp: &Redpulse, cluster: &str) -> Vec<(String, String)> {
    let (_, body) = rp.get("/health/redis?all=1");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<(String, String)> = v["all"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| {
            let name = i["instance"].as_str()?;
            name.starts_with(&format!("{cluster}/")).then(|| {
                (
                    name.to_string(),
                    i["status"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_node_is_discovered_from_one_seed_and_polled_in_one_round_trip() {
    for kind in Kind::ALL {
        let nodes = cluster(kind);
        let toml = format!(
            "interval = \"200ms\"\n\n[[cluster]]\nname = \"orders\"\nseeds = [\"redis://127.0.0.1:{}\"]\nrefresh = \"30s\"\n",
            nodes[0].port
        );
        let rp = Redpulse::start_with_config(&toml, &[]);
        let want: Vec<String> = {
            let mut w: Vec<String> = nodes
                .iter()
                .map(|n| format!("orders/127.0.0.1:{}", n.port))
                .collect();
            w.sort();
            w
        };
        let found = wait_for(WAIT, "six ok nodes", || {
            let d = discovered(&rp, "orders");
            (d.len() == 6 && d.iter().all(|(_, s)| s == "ok")).then_some(d)
        });
        assert_eq!(
            found.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            want,
            "{kind:?}"
        );
        // A discovered node's name, slash and all, works as an instance URL.
        let (code, v) = rp.health(&want[1]);
        assert_eq!(code, 200, "{kind:?}: {v}");
        assert!(
            v["version"]
                .as_str()
                .unwrap_or("")
                .starts_with(kind.version_prefix()),
            "{kind:?}: {v}"
        );

        // One round trip per poll: on a node other than the seed (no
        // topology reads there), INFO and CLUSTER (INFO) calls grow
        // together, by one per poll, with no new connection.
        let watched = &nodes[5];
        let mut c = watched.client();
        let read = |c: &mut Client| {
            let stats = c.info("commandstats");
            let conns = info_field(&c.info("stats"), "total_connections_received").unwrap();
            // Redis >= 7 counts subcommands apart (cmdstat_cluster|info).
            let cluster = cmdstat_calls(&stats, "cluster|info") + cmdstat_calls(&stats, "cluster");
            (cmdstat_calls(&stats, "info"), cluster, conns)
        };
        let (info0, cluster0, conns0) = read(&mut c);
        std::thread::sleep(Duration::from_millis(2000));
        let (info1, cluster1, conns1) = read(&mut c);
        // Between the two commandstats readings the test itself made two
        // INFO calls (the first reading's, and its INFO stats).
        let per_poll = kind.info_calls_per_poll();
        let redpulse_info = info1 - info0 - 2;
        assert_eq!(
            redpulse_info % per_poll,
            0,
            "{kind:?}: {redpulse_info} INFO calls"
        );
        let polls = redpulse_info / per_poll;
        assert!(polls >= 6, "{kind:?}: only {polls} polls in 2 s");
        assert_eq!(
            cluster1 - cluster0,
            polls,
            "{kind:?}: one CLUSTER INFO per poll"
        );
        assert_eq!(conns1, conns0, "{kind:?}: a new connection during polling");
    }
}

fn cluster_json(rp: &Redpulse, name: &str) -> (u16, serde_json::Value) {
    let (code, body) = rp.get(&format!("/health/cluster/{name}"));
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

#[test]
fn the_cluster_is_judged_as_a_whole_and_followed_through_a_failover() {
    let mut nodes = cluster(Kind::Redis70);
    let toml = format!(
        "interval = \"200ms\"\n\n[[cluster]]\nname = \"orders\"\nseeds = [\"redis://127.0.0.1:{}\"]\nrefresh = \"1s\"\n",
        nodes[0].port
    );
    let rp = Redpulse::start_with_config(&toml, &[]);
    let (code, v) = wait_for(WAIT, "the cluster ok", || {
        let (code, v) = cluster_json(&rp, "orders");
        (v["status"] == "ok").then_some((code, v))
    });
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "ok", "{v}");
    assert_eq!(v["slots_assigned"], 16384, "{v}");
    assert_eq!(v["nodes_down"], serde_json::json!([]), "{v}");
    let shards = v["shards"].as_array().unwrap().clone();
    assert_eq!(shards.len(), 3, "{v}");
    assert!(shards.iter().all(|s| s["replicas_online"] == 1), "{v}");
    let (code, all) = rp.get("/health/clusters");
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(
        (
            code,
            &all["clusters"][0]["cluster"],
            &all["clusters"][0]["status"]
        ),
        (200, &"orders".into(), &"ok".into()),
        "{all}"
    );
    let (_, metrics) = rp.get("/metrics");
    assert!(
        metrics.contains("redpulse_group_status{group=\"orders\",status=\"ok\"} 1"),
        "{metrics}"
    );
    // CLUSTER INFO's series, as redis_exporter names them, for every node:
    // state ok and every slot assigned, as the nodes themselves say.
    let e = support::prom::Exposition::parse(&metrics);
    let states = e.find("redis_cluster_state", &[]);
    assert_eq!(states.len(), 6, "{metrics}");
    assert!(states.iter().all(|s| s.value == 1.0), "{metrics}");
    for s in e.find("redis_cluster_slots_assigned", &[]) {
        let port: u16 = s.labels["instance"]
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut c = Client::connect(port).unwrap();
        let text = match c.cmd(&["CLUSTER", "INFO"]) {
            redpulse::wire::resp::Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            Some(s.value as u64),
            info_field(&text, "cluster_slots_assigned"),
            "{text}"
        );
    }
    assert_eq!(rp.get("/health/cluster/nope").0, 404);

    // Kill the master of the first shard: the verdict goes bad, then the
    // replica is promoted and becomes that shard's master, with no reload.
    let victim = shards[0]["master"].as_str().unwrap().to_string();
    let heir = shards[0]["replicas"][0].as_str().unwrap().to_string();
    let slots = shards[0]["slots"].clone();
    let port: u16 = victim.rsplit(':').next().unwrap().parse().unwrap();
    nodes.iter_mut().find(|n| n.port == port).unwrap().kill();
    let (_, bad) = wait_for(WAIT, "the cluster to notice the dead master", || {
        let (code, v) = cluster_json(&rp, "orders");
        (code == 503).then_some((code, v))
    });
    eprintln!("while failing over: {bad}");
    let mut last = serde_json::Value::Null;
    let promoted = wait_for_opt(Duration::from_secs(40), || {
        let (_, v) = cluster_json(&rp, "orders");
        last = v.clone();
        let shard = v["shards"]
            .as_array()?
            .iter()
            .find(|s| s["slots"] == slots)?
            .clone();
        let settled = shard["master"] == heir.as_str()
            && (v["status"] == "ok" || v["status"] == "degraded")
            && v["state"] == "ok";
        settled.then_some((shard, v))
    });
    let (_, after) = promoted.unwrap_or_else(|| {
        panic!(
            "{heir} never became the master of {slots}; last verdict {last}; log:\n{}",
            rp.log_text()
        )
    });
    assert!(
        after["nodes_down"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == victim.as_str()),
        "{after}"
    );
    assert!(!rp.log_text().contains("config reloaded"));

    // A node added to the cluster is polled within the refresh.
    let port = cluster_port();
    let extra = RedisServer::start_at(Kind::Redis70, [127, 0, 0, 1].into(), port, CLUSTER_ARGS);
    let alive = nodes
        .iter()
        .find(|n| format!("orders/127.0.0.1:{}", n.port) == heir)
        .unwrap();
    let out = Command::new("redis-cli")
        .args([
            "--cluster",
            "add-node",
            &format!("127.0.0.1:{}", extra.port),
            &format!("127.0.0.1:{}", alive.port),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "add-node: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    rp.wait_status(&format!("orders/127.0.0.1:{}", extra.port), "ok", None);

    // A slot nobody serves: the node that gave it up says so.
    let owner = after["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slots"] != slots && s["slots"] != "")
        .unwrap()["master"]
        .as_str()
        .unwrap()
        .to_string();
    let owner_port: u16 = owner.rsplit(':').next().unwrap().parse().unwrap();
    let first_slot = after["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["master"] == owner.as_str())
        .unwrap()["slots"]
        .as_str()
        .unwrap()
        .split(['-', ','])
        .next()
        .unwrap()
        .to_string();
    let owner_server = nodes.iter().find(|n| n.port == owner_port).unwrap();
    owner_server
        .client()
        .cmd(&["CLUSTER", "DELSLOTS", &first_slot]);
    let (code, v) = wait_for(WAIT, "slots_not_covered", || {
        let (code, v) = cluster_json(&rp, "orders");
        v["reasons"]
            .as_array()?
            .iter()
            .any(|r| r == "slots_not_covered")
            .then_some((code, v))
    });
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["status"], "critical", "{v}");
}

fn group_json(rp: &Redpulse, name: &str) -> (u16, serde_json::Value) {
    let (code, body) = rp.get(&format!("/health/group/{name}"));
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

#[test]
fn a_static_group_catches_two_masters_and_a_replica_following_elsewhere() {
    let master = RedisServer::start(&[]);
    let follow = |s: &RedisServer| {
        s.client()
            .cmd(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    };
    let b = RedisServer::start(&[]);
    let c = RedisServer::start(&[]);
    let stranger = RedisServer::start(&[]);
    follow(&b);
    follow(&c);
    let toml = format!(
        "interval = \"100ms\"\n\n[thresholds]\nfail_after = 1\nrecover_after = 1\n\n\
[[instance]]\nname = \"a\"\nurl = \"{}\"\n[[instance]]\nname = \"b\"\nurl = \"{}\"\n[[instance]]\nname = \"c\"\nurl = \"{}\"\n\n\
[[group]]\nname = \"sessions\"\nmembers = [\"a\", \"b\", \"c\"]\n",
        master.url(),
        b.url(),
        c.url()
    );
    let rp = Redpulse::start_with_config(&toml, &[]);
    let (code, v) = wait_for(WAIT, "the group ok with both replicas linked", || {
        let (code, v) = group_json(&rp, "sessions");
        let linked = v["replicas"]
            .as_array()?
            .iter()
            .all(|r| r["master_link_status"] == "up");
        (v["status"] == "ok" && linked).then_some((code, v))
    });
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["master"], "a", "{v}");
    assert_eq!(v["replicas"].as_array().unwrap().len(), 2, "{v}");
    assert!(
        v["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["master_link_status"] == "up"),
        "{v}"
    );

    // A replica promoted by hand: two members claim master (split brain).
    b.client().cmd(&["REPLICAOF", "NO", "ONE"]);
    let (code, v) = wait_for(WAIT, "multiple_masters", || {
        let (code, v) = group_json(&rp, "sessions");
        (v["reason"] == "multiple_masters").then_some((code, v))
    });
    assert_eq!((code, &v["status"]), (503, &"critical".into()), "{v}");
    assert_eq!(v["masters"], serde_json::json!(["a", "b"]), "{v}");
    assert_eq!(v["master"], serde_json::Value::Null, "{v}");

    // Back in line, then a replica pointed at a server outside the group.
    follow(&b);
    c.client()
        .cmd(&["REPLICAOF", "127.0.0.1", &stranger.port.to_string()]);
    let (code, v) = wait_for(WAIT, "replica_wrong_master", || {
        let (code, v) = group_json(&rp, "sessions");
        (v["reason"] == "replica_wrong_master").then_some((code, v))
    });
    assert_eq!((code, &v["status"]), (503, &"degraded".into()), "{v}");
    let (code, all) = rp.get("/health/groups");
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(
        (code, &all["groups"][0]["group"]),
        (503, &"sessions".into()),
        "{all}"
    );
    let (_, metrics) = rp.get("/metrics");
    assert!(
        metrics.contains("redpulse_group_status{group=\"sessions\",status=\"degraded\"} 1"),
        "{metrics}"
    );
    assert_eq!(rp.get("/health/group/nope").0, 404);
}
