//! Redis Cluster on real servers: six nodes (three masters, three
//! replicas) made by `redis-cli --cluster create`, configured in redpulse
//! by one seed; every node is discovered and polled, with CLUSTER INFO in
//! the same write as its INFO. On Redis 7.0, 6.2 (CLUSTER NODES only) and
//! Valkey 8.1.

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

/// A free port below 22700 whose cluster bus port (+10000) is free too,
/// both below the ephemeral range.
fn cluster_port(taken: &mut Vec<u16>) -> u16 {
    let start = std::process::id() as u16 % 2700;
    for i in 0..2700u16 {
        let p = 20000 + (start + i * 7) % 2700;
        if taken.contains(&p) {
            continue;
        }
        let free = |q: u16| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok();
        if free(p) && free(p + 10000) {
            taken.push(p);
            return p;
        }
    }
    panic!("no free port pair for a cluster node");
}

/// Six cluster nodes of `kind`, joined as 3 masters + 3 replicas.
fn cluster(kind: Kind) -> Vec<RedisServer> {
    let mut taken = Vec::new();
    let nodes: Vec<RedisServer> = (0..6)
        .map(|_| {
            let port = cluster_port(&mut taken);
            RedisServer::start_at(
                kind,
                [127, 0, 0, 1].into(),
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ],
            )
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
