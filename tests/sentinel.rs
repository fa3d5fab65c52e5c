//! Sentinel on real servers: a master, two replicas and three sentinels
//! (`redis-server sentinel.conf --sentinel`), configured in redpulse by the
//! sentinels alone. Everything is discovered; a killed master is a bad
//! verdict, then the group is ok with the sentinels' new master; the old
//! master, restarted, shows up as a replica; two sentinels gone lose the
//! quorum.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

/// A sentinel process, killed by PID on drop.
struct Sentinel {
    port: u16,
    child: Option<Child>,
}

impl Sentinel {
    fn start(master_port: u16) -> Sentinel {
        let port = held_port();
        let dir = temp_dir(&format!("sentinel-{port}"));
        let conf = write_file(
            &dir,
            "sentinel.conf",
            &format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {master_port} 2\n\
sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n",
                dir.display()
            ),
        );
        let child = Command::new(Kind::Redis70.bin())
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs in sentinel mode");
        wait_for(WAIT, "the sentinel to answer", || {
            Client::connect(port).ok()
        });
        Sentinel {
            port,
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.kill();
    }
}

fn group(rp: &Redpulse) -> serde_json::Value {
    let (_, body) = rp.get("/health/group/ha/mymaster");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn a_sentinel_group_is_discovered_judged_and_followed_through_a_failover() {
    let mut master = RedisServer::start(&[]);
    let replicas: Vec<RedisServer> = (0..2)
        .map(|_| RedisServer::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]))
        .collect();
    let mut sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(master.port)).collect();
    let urls: Vec<String> = sentinels
        .iter()
        .map(|s| format!("\"redis://127.0.0.1:{}\"", s.port))
        .collect();
    let toml = format!(
        "interval = \"200ms\"\n\n[[sentinel]]\nname = \"ha\"\nsentinels = [{}]\nrefresh = \"1s\"\n",
        urls.join(", ")
    );
    let rp = Redpulse::start_with_config(&toml, &[]);
    let name = |port: u16| format!("ha/mymaster/127.0.0.1:{port}");

    // Discovered: the master, both replicas linked, and all three sentinels.
    let v = wait_for(
        WAIT,
        "the sentinel group ok with two linked replicas",
        || {
            let v = group(&rp);
            let linked = v["replicas"]
                .as_array()?
                .iter()
                .filter(|r| r["master_link_status"] == "up")
                .count();
            (v["status"] == "ok" && linked == 2 && v["sentinels_reachable"] == 3).then_some(v)
        },
    );
    assert_eq!(v["master"], name(master.port), "{v}");
    assert_eq!(
        (v["quorum"].as_u64(), v["sentinel_status"].as_str()),
        (Some(2), Some("ok")),
        "{v}"
    );
    for s in &sentinels {
        rp.wait_status(&format!("ha/sentinel/127.0.0.1:{}", s.port), "ok", None);
    }
    for r in &replicas {
        rp.wait_status(&name(r.port), "ok", None);
    }

    // Kill the master: bad while the sentinels fail over, then ok with
    // the replica they promoted.
    let old = master.port;
    master.kill();
    let bad = wait_for(WAIT, "the group to notice", || {
        let v = group(&rp);
        (v["status"] != "ok").then_some(v)
    });
    eprintln!("during the failover: {bad}");
    let after = wait_for(
        Duration::from_secs(40),
        "a new master named by the sentinels",
        || {
            let v = group(&rp);
            let master = v["master"].as_str()?.to_string();
            (master != name(old) && (v["status"] == "ok" || v["status"] == "degraded")).then_some(v)
        },
    );
    assert!(
        replicas.iter().any(|r| after["master"] == name(r.port)),
        "the new master is one of the replicas: {after}"
    );

    // The old master, restarted, is turned into a replica by the sentinels.
    master.restart();
    let healed = wait_for(
        Duration::from_secs(40),
        "the old master back as a linked replica, all ok",
        || {
            let v = group(&rp);
            let back = v["replicas"]
                .as_array()?
                .iter()
                .any(|r| r["instance"] == name(old) && r["master_link_status"] == "up");
            (back && v["status"] == "ok").then_some(v)
        },
    );
    // Usually the same master as after the failover; the sentinels may
    // also have failed over once more meanwhile (short timeouts on a busy
    // machine), which redpulse must follow all the same: one master, not
    // the old one, which is a linked replica.
    assert_ne!(healed["master"], name(old), "{healed}");
    assert_eq!(
        healed["masters"].as_array().map(Vec::len),
        Some(1),
        "{healed}"
    );

    // Two of three sentinels gone: the quorum of 2 cannot be reached.
    sentinels[1].kill();
    sentinels[2].kill();
    let lost = wait_for(Duration::from_secs(40), "sentinel_quorum_lost", || {
        let v = group(&rp);
        v["reasons"]
            .as_array()?
            .iter()
            .any(|r| r == "sentinel_quorum_lost")
            .then_some(v)
    });
    assert_eq!(lost["status"], "critical", "{lost}");
}
