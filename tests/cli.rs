//! The command line's contract: exit codes and one-line errors.

mod support;

use std::process::{Command, Output};
use support::*;

fn redpulse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_config_key_exits_2_naming_key_and_line() {
    let dir = temp_dir("cli-unknown");
    let path = write_file(
        &dir,
        "bad.toml",
        "listen = \"127.0.0.1:0\"\n\n[thresholds]\nmemory_critcal = 0.9\n",
    );
    let o = redpulse(&["--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("memory_critcal") && e.contains("bad.toml:4"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
}

#[test]
fn check_config_accepts_good_and_rejects_bad() {
    let dir = temp_dir("cli-check");
    let good = write_file(
        &dir,
        "good.toml",
        "[[instance]]\nname = \"a\"\nurl = \"redis://127.0.0.1:6379\"\n",
    );
    let o = redpulse(&["check-config", "--config", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 instance"));
    let bad = write_file(
        &dir,
        "bad.toml",
        "[[instance]]\nurl = \"redis://h\"\nname = \"a b\"\n",
    );
    let o = redpulse(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("instance name"), "{}", stderr(&o));
}

#[test]
fn bad_arguments_exit_2_without_echoing_the_password() {
    let o = redpulse(&["--target", "x=rediss://:topsecret@fe80::1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("redis://[fe80::1]:6379") && !stderr(&o).contains("topsecret"),
        "{}",
        stderr(&o)
    );
    let o = redpulse(&["--interval", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("interval"));
    // Once a panic on overflow (interval × 3); now a one-line exit 2.
    for (flag, value) in [
        ("--interval", "6148914691236517206s"),
        ("--interval", "25h"),
        ("--timeout", "18446744073709551615ms"),
    ] {
        let o = redpulse(&[flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        assert!(stderr(&o).contains(&flag[2..]), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    }
    let o = redpulse(&["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let o = redpulse(&["--target", "a=redis://h", "--target", "a=redis://g"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("twice"));
}

#[test]
fn taken_listen_address_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = redpulse(&["--listen", &addr, "--target", "a=redis://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot listen"), "{}", stderr(&o));
}

#[test]
fn help_explains_the_flags() {
    let o = redpulse(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--target",
        "--config",
        "--listen",
        "--interval",
        "--timeout",
        "check-config",
        "/health/redis/",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn demo_serves_a_simulated_fleet_with_healthy_and_unhealthy_instances() {
    use std::process::Stdio;
    let http = held_port();
    // Held for the simulated fleet, which binds them too.
    let base = held_block(40);
    let log = temp_dir("demo").join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .args(["demo", "--instances", "40", "--interval", "200ms"])
        .args([
            "--base-port",
            &base.to_string(),
            "--listen",
            &format!("127.0.0.1:{http}"),
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = |name: &str| -> Option<String> {
        let (_, body) = http_get(http, &format!("/health/redis/{name}")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(format!(
            "{}/{}",
            v["status"].as_str()?,
            v["reason"].as_str().unwrap_or("")
        ))
    };
    for (name, want) in [
        ("sim-00000", "ok/"),
        ("sim-00005", "ok/"),
        ("sim-00007", "critical/memory_pressure"),
        ("sim-00013", "degraded/low_hit_rate"),
        ("sim-00021", "degraded/replica_disconnected"),
    ] {
        wait_for(WAIT, name, || (status(name)? == want).then_some(()));
    }
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let banner = String::from_utf8_lossy(&out.stdout);
    assert!(
        banner.contains(&format!("http://127.0.0.1:{http}/health/redis/sim-00007")),
        "{banner}"
    );
    // First verdicts are one summary line, not a line per instance; only
    // later changes (low hit rates need a window of lookups) are logged.
    let text = std::fs::read_to_string(&log).unwrap();
    let summaries: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("first verdicts"))
        .collect();
    assert_eq!(summaries.len(), 1, "{text}");
    assert!(
        summaries[0].contains("instances=40")
            && summaries[0].contains("sim-00007 (critical: memory_pressure)"),
        "{}",
        summaries[0]
    );
    let per_instance = text
        .lines()
        .filter(|l| l.contains("instance healthy") || l.contains("instance unhealthy"))
        .count();
    assert!(
        per_instance < 10,
        "{per_instance} per-instance lines:\n{text}"
    );
}

#[test]
fn the_example_config_passes_check_config() {
    // The example names secrets under /run/secrets; point them at files here.
    let dir = temp_dir("examples");
    let root = env!("CARGO_MANIFEST_DIR");
    write_file(&dir, "redis", "pw\n");
    write_file(&dir, "sessions", "pw\n");
    let text = std::fs::read_to_string(format!("{root}/examples/redpulse.toml"))
        .unwrap()
        .replace("/run/secrets/", &format!("{}/", dir.display()))
        .replace("\"fleet.txt\"", &format!("\"{root}/examples/fleet.txt\""));
    let path = write_file(&dir, "redpulse.toml", &text);
    let o = redpulse(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary.contains("6 instance(s), 1 heartbeat(s)"),
        "{summary}"
    );
}

#[test]
fn the_kubernetes_example_gives_each_pod_its_share() {
    // The ConfigMap's files, checked as each StatefulSet pod would read them.
    let root = env!("CARGO_MANIFEST_DIR");
    let read =
        |f: &str| std::fs::read_to_string(format!("{root}/examples/kubernetes/{f}")).unwrap();
    let cm: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("configmap.yaml")).unwrap();
    let sts: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("statefulset.yaml")).unwrap();
    let replicas = sts["spec"]["replicas"].as_u64().unwrap();
    let dir = temp_dir("k8s");
    let toml = cm["data"]["redpulse.toml"].as_str().unwrap();
    // Only the data_dir differs: /data is not this test's to write.
    assert!(toml.contains("data_dir = \"/data\""), "{toml}");
    let data = format!("data_dir = {:?}", dir.join("data").display().to_string());
    let toml = toml.replace("data_dir = \"/data\"", &data);
    let path = write_file(&dir, "redpulse.toml", &toml);
    let fleet = cm["data"]["fleet.yaml"].as_str().unwrap();
    write_file(&dir, "fleet.yaml", fleet);
    let targets = fleet.matches(":6379").count();
    let mut total = 0;
    for pod in 0..replicas {
        let o = Command::new(env!("CARGO_BIN_EXE_redpulse"))
            .args(["check-config", "--config", path.to_str().unwrap()])
            .env("HOSTNAME", format!("redpulse-{pod}"))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(out.contains(&format!("shard {pod}/{replicas}")), "{out}");
        let n: usize = out
            .split(" instance(s)")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        total += n;
    }
    assert_eq!(total, targets, "every target in exactly one pod's share");
    // A pod beyond the peers list is refused, naming the problem.
    let o = Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .args(["check-config", "--config", path.to_str().unwrap()])
        .env("HOSTNAME", format!("redpulse-{replicas}"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("below N"), "{}", stderr(&o));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = temp_dir("jsonlog");
    let log = dir.join("err.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .args([
            "--log-format",
            "json",
            "--listen",
            &format!("127.0.0.1:{}", held_port()),
        ])
        .args(["--target", "gone=redis://127.0.0.1:1"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for(WAIT, "the first-verdicts log line", || {
        std::fs::read_to_string(&log)
            .ok()?
            .contains("first verdicts")
            .then_some(())
    });
    signal(child.id(), "TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{line}"
        );
    }
    // The first verdict is in the summary, at warning level since it is bad.
    let summary: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["fields"]["message"] == "first verdicts")
        .expect("a first-verdicts line");
    assert_eq!(summary["level"], "WARN", "{summary}");
    assert_eq!(summary["fields"]["down"], 1, "{summary}");
    assert_eq!(
        summary["fields"]["not_ok"], "gone (down: connection_refused)",
        "{summary}"
    );
}
