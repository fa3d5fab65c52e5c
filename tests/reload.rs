//! Live reconfiguration without a signal: file_sd targets files (JSON and
//! YAML) with labels, edited in place and swapped the way a Kubernetes
//! ConfigMap is, applied within 5 s; labels in JSON, metrics and the
//! fleet filter; and reloads that never turn an ok instance into a 503.

mod support;

use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// Changes must apply within this long of the edit (INTERFACE.md).
const APPLY_WITHIN: Duration = Duration::from_secs(5);

fn fleet_json(rp: &Redpulse, query: &str) -> (u16, Value) {
    let (code, body) = rp.get(&format!("/health/redis?all{query}"));
    (code, serde_json::from_str(&body).unwrap())
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

/// Wait until `f` holds, and say how long after `since` it did.
fn within(since: Instant, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    wait_for(APPLY_WITHIN + Duration::from_secs(5), what, || {
        f().then_some(())
    });
    let took = since.elapsed();
    assert!(took <= APPLY_WITHIN, "{what}: took {took:?}");
    took
}

/// Connections the server has accepted, read over one kept connection (a
/// new one per read would count itself).
fn connections(watch: &mut Client) -> u64 {
    info_field(&watch.info("stats"), "total_connections_received").unwrap()
}

/// Write a file the way editors do not: in place, same inode.
fn write_in_place(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn file_sd_labels_reach_json_metrics_and_filters_and_edits_apply_without_a_signal() {
    let a = RedisServer::start(&[]);
    let b = RedisServer::start(&[]);
    let c = RedisServer::start(&[]);
    let dir = temp_dir("file-sd");
    let fleet = dir.join("fleet.json");
    std::fs::write(
        &fleet,
        format!(
            r#"[{{"targets":["127.0.0.1:{}"],"labels":{{"team":"payments","env":"prod"}}}},
               {{"targets":["redis://127.0.0.1:{}"],"labels":{{"name":"bee","team":"search","env":"prod"}}}}]"#,
            a.port, b.port
        ),
    )
    .unwrap();
    let rp = Redpulse::start(&[
        "--interval",
        "200ms",
        "--targets-file",
        fleet.to_str().unwrap(),
    ]);
    let a_name = format!("127.0.0.1:{}", a.port);
    rp.wait_status(&a_name, "ok", None);
    rp.wait_status("bee", "ok", None);

    // JSON: the instance's labels, `name` taken as its name.
    let (_, v) = rp.health("bee");
    assert_eq!(
        v["labels"],
        serde_json::json!({"team": "search", "env": "prod"})
    );
    let (_, v) = rp.health(&a_name);
    assert_eq!(v["labels"]["team"], "payments");
    // Metrics: the labels on every per-instance series.
    let (_, metrics) = rp.get("/metrics");
    assert!(
        metrics.contains("redis_up{instance=\"bee\",env=\"prod\",team=\"search\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "redpulse_health_status{{instance=\"{a_name}\",env=\"prod\",team=\"payments\",status=\"ok\"}} 1\n"
    )));
    // Filters: every label given must match; counts cover the matches only.
    let (code, v) = fleet_json(&rp, "&label=team:search");
    assert_eq!(
        (code, names(&v), v["instances"].clone()),
        (200, vec!["bee".into()], 1.into())
    );
    let (_, v) = fleet_json(&rp, "&label=env:prod");
    assert_eq!(v["instances"], 2);
    let (_, v) = fleet_json(&rp, "&label=env:prod&label=team:nobody");
    assert_eq!(v["instances"], 0);
    let (code, _) = rp.get("/health/redis?label=team");
    assert_eq!(code, 400);

    // Edit in place: relabel a, remove bee, add c.
    let mut watch_a = a.client();
    let a_conns = connections(&mut watch_a);
    let edited = Instant::now();
    write_in_place(
        &fleet,
        &format!(
            r#"[{{"targets":["127.0.0.1:{}"],"labels":{{"team":"checkout","env":"prod"}}}},
               {{"targets":["127.0.0.1:{}"],"labels":{{"team":"search"}}}}]"#,
            a.port, c.port
        ),
    );
    let c_name = format!("127.0.0.1:{}", c.port);
    let mut want = vec![a_name.clone(), c_name.clone()];
    want.sort();
    let took = within(edited, "the in-place edit to apply", || {
        let (_, v) = fleet_json(&rp, "");
        let (_, a_json) = rp.health(&a_name);
        names(&v) == want && a_json["labels"]["team"] == "checkout"
    });
    println!("in-place edit applied in {took:?}");
    rp.wait_status(&c_name, "ok", None);
    let (_, v) = fleet_json(&rp, "&label=team:checkout");
    assert_eq!(names(&v), vec![a_name.clone()]);
    // Relabeling kept a's connection.
    assert_eq!(connections(&mut watch_a), a_conns, "relabeling reconnected");
    assert!(rp
        .log_text()
        .contains("a watched config or targets file changed"));

    // A ConfigMap: fleet.yaml -> ..data/fleet.yaml, ..data -> v1, and the
    // kubelet swaps ..data to a new directory atomically.
    let cm = dir.join("configmap");
    std::fs::create_dir_all(cm.join("v1")).unwrap();
    std::fs::create_dir_all(cm.join("v2")).unwrap();
    let yaml = |team: &str, ports: &[u16]| {
        let targets: Vec<String> = ports.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
        format!(
            "- targets: [{}]\n  labels:\n    team: {team}\n",
            targets.join(", ")
        )
    };
    std::fs::write(cm.join("v1/fleet.yaml"), yaml("blue", &[a.port, b.port])).unwrap();
    std::fs::write(cm.join("v2/fleet.yaml"), yaml("green", &[a.port])).unwrap();
    std::os::unix::fs::symlink("v1", cm.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/fleet.yaml", cm.join("fleet.yaml")).unwrap();
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"200ms\"\ntargets_file = \"{}\"\n",
            cm.join("fleet.yaml").display()
        ),
    );
    let rp2 = Redpulse::start(&["--config", config.to_str().unwrap()]);
    let b_name = format!("127.0.0.1:{}", b.port);
    rp2.wait_status(&b_name, "ok", None);
    let (_, v) = rp2.wait_status(&a_name, "ok", None);
    assert_eq!(v["labels"]["team"], "blue");
    let a_conns = connections(&mut watch_a);
    let swapped = Instant::now();
    std::os::unix::fs::symlink("v2", cm.join("..data_tmp")).unwrap();
    std::fs::rename(cm.join("..data_tmp"), cm.join("..data")).unwrap();
    let took = within(swapped, "the ConfigMap swap to apply", || {
        let (_, v) = fleet_json(&rp2, "");
        let (_, a_json) = rp2.health(&a_name);
        names(&v) == vec![a_name.clone()] && a_json["labels"]["team"] == "green"
    });
    println!("ConfigMap swap applied in {took:?}");
    assert_eq!(
        connections(&mut watch_a),
        a_conns,
        "the swap reconnected a relabeled server"
    );
    let (_, metrics) = rp2.get("/metrics");
    assert!(metrics.contains(&format!(
        "redis_up{{instance=\"{a_name}\",team=\"green\"}} 1\n"
    )));
    assert!(
        !metrics.contains(&b_name),
        "a removed instance still has series"
    );

    // A broken file: the running set stays, and the metric says so.
    let before = rp2.get("/metrics").1;
    assert!(before.contains("redpulse_config_last_reload_successful 1\n"));
    std::fs::write(cm.join("v2/fleet.yaml"), "- targets: [\n").unwrap();
    wait_for(WAIT, "the failed reload to show", || {
        rp2.get("/metrics")
            .1
            .contains("redpulse_config_last_reload_successful 0\n")
            .then_some(())
    });
    assert_eq!(rp2.health(&a_name).0, 200);
}

#[test]
fn reloads_that_change_interval_timeout_or_thresholds_never_answer_503() {
    let server = RedisServer::start(&[]);
    let dir = temp_dir("no-flap");
    let config = |interval: &str, timeout: &str, memory_critical: f64| {
        format!(
            "interval = \"{interval}\"\ntimeout = \"{timeout}\"\n\
             [[instance]]\nname = \"steady\"\nurl = \"{url}\"\n\
             [[instance]]\nname = \"tuned\"\nurl = \"{url}\"\n\
             [instance.thresholds]\nmemory_critical = {memory_critical}\n",
            url = server.url()
        )
    };
    let path = write_file(&dir, "redpulse.toml", &config("300ms", "1s", 0.95));
    let rp = Redpulse::start(&["--config", path.to_str().unwrap()]);
    rp.wait_status("steady", "ok", None);
    rp.wait_status("tuned", "ok", None);

    // Sample both every 50 ms across a series of reloads.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let port = rp.port;
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut samples = 0;
            while !stop.load(Ordering::Relaxed) {
                for name in ["steady", "tuned"] {
                    let (code, body) = http_get(port, &format!("/health/redis/{name}")).unwrap();
                    samples += 1;
                    if code != 200 {
                        bad.push(format!("{name}: {code} {body}"));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (samples, bad)
        })
    };
    let reload_count = |rp: &Redpulse| rp.log_text().matches("config reloaded").count();
    for (i, (interval, timeout, mem)) in [
        ("1500ms", "1s", 0.95), // a longer interval
        ("100ms", "1s", 0.95),  // a much shorter one: old verdicts keep their limit
        ("100ms", "300ms", 0.95),
        ("2s", "2s", 0.95),
        // One target's thresholds, at a long interval: its new poller's
        // first poll may be a second away, and its last verdict stands
        // until then.
        ("2s", "2s", 0.99),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&path, config(interval, timeout, mem)).unwrap();
        if i % 2 == 0 {
            signal(rp.pid(), "HUP");
        }
        wait_for(WAIT, "the reload", || (reload_count(&rp) > i).then_some(()));
        std::thread::sleep(Duration::from_millis(1500));
    }
    stop.store(true, Ordering::Relaxed);
    let (samples, bad) = sampler.join().unwrap();
    println!("{samples} samples across 5 reloads");
    assert!(samples > 100, "{samples}");
    assert!(
        bad.is_empty(),
        "{} answers were not 200:\n{}",
        bad.len(),
        bad.join("\n")
    );
    let log = rp.log_text();
    assert!(
        log.contains("changed=1"),
        "the thresholds change restarted one target:\n{log}"
    );
}
