//! The OCI image from `scripts/image.sh`, run the way the README says:
//! podman with runc, a read-only root filesystem and no writable /tmp, a
//! host directory on /data. Health answers for a real redis-server, the
//! process runs as uid 65532, history lands in /data, SIGTERM ends it with
//! 0, and the image holds what the contract lists within 25,000,000 bytes.
//!
//! `scripts/test.sh` builds the image before `cargo test`; run
//! `bash scripts/image.sh` first when running this test alone.

mod support;

use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::*;

/// The contract's ceiling (INTERFACE.md, Packaging).
const MAX_IMAGE_BYTES: u64 = 25_000_000;
/// The image's user and group.
const IMAGE_UID: u32 = 65532;

fn image() -> String {
    format!("localhost/redpulse:{}", env!("CARGO_PKG_VERSION"))
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
        .args(args)
        .output()
        .expect("podman runs")
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the container whatever happens to the test.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

fn need_image() {
    need("podman");
    need("runc");
    let out = podman(&["image", "exists", &image()]);
    assert!(
        out.status.success(),
        "no image {}: build it with `bash scripts/image.sh` (scripts/test.sh does)",
        image()
    );
}

#[test]
fn the_image_holds_what_the_contract_lists() {
    need_image();
    let size: u64 = podman_ok(&["image", "inspect", "--format", "{{.Size}}", &image()])
        .parse()
        .unwrap();
    println!("image {}: {size} bytes", image());
    assert!(size <= MAX_IMAGE_BYTES, "{size} bytes");
    let inspect: Value = serde_json::from_str(&podman_ok(&["image", "inspect", &image()])).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], format!("{IMAGE_UID}:{IMAGE_UID}"));
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/bin/redpulse"])
    );
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(env.contains(&"REDPULSE_LISTEN=0.0.0.0:9379"), "{env:?}");
    assert!(env.contains(&"REDPULSE_DATA_DIR=/data"), "{env:?}");
    assert!(config["Volumes"].get("/data").is_some(), "{config}");
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    for key in ["revision", "source"] {
        let v = labels[format!("org.opencontainers.image.{key}")].as_str();
        assert!(v.is_some_and(|v| !v.is_empty()), "{key}: {labels}");
    }
    // The files: a stripped binary, the CA bundle, no shell.
    let root = podman_ok(&["image", "mount", &image()]);
    let root = std::path::Path::new(&root);
    let ca = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(
        ca.matches("BEGIN CERTIFICATE").count() > 100,
        "a public root bundle"
    );
    let bin = root.join("usr/bin/redpulse");
    let sections = Command::new("readelf").arg("-S").arg(&bin).output();
    if let Ok(s) = sections {
        let s = String::from_utf8_lossy(&s.stdout);
        assert!(
            !s.contains(".debug_info") && !s.contains(".symtab"),
            "not stripped"
        );
    }
    assert!(!root.join("bin/sh").exists() && !root.join("usr/bin/sh").exists());
    let _ = podman(&["image", "unmount", &image()]);
}

#[test]
fn the_image_runs_read_only_as_65532_and_stops_cleanly() {
    need_image();
    let redis = RedisServer::start(&[]);
    let data = temp_dir("image-data");
    std::os::unix::fs::chown(&data, Some(IMAGE_UID), Some(IMAGE_UID))
        .expect("chown the data directory to the image's user (tests run as root)");
    let port = held_port();
    let name = format!("redpulse-test-{}-{port}", std::process::id());
    let volume = format!("{}:/data", data.display());
    // The listen address through the environment, as a deployment would
    // override the image's default; everything else as the image has it.
    let listen = format!("REDPULSE_LISTEN=127.0.0.1:{port}");
    let target = format!("r={}", redis.url());
    podman_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=1000:1000",
        "--read-only",
        "--read-only-tmpfs=false",
        "-v",
        &volume,
        "-e",
        &listen,
        &image(),
        "--target",
        &target,
    ]);
    let container = Container(name);
    let logs = || {
        let out = podman(&["logs", &container.0]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let health = wait_for_opt(WAIT, || {
        let (code, body) = http_get(port, "/health/redis/r").ok()?;
        (code == 200).then_some(body)
    })
    .unwrap_or_else(|| panic!("no 200 from the container; its log:\n{}", logs()));
    let v: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(http_get(port, "/-/ready").unwrap().0, 200);

    // The process's real uid, from the host's /proc.
    let pid = podman_ok(&["inspect", "--format", "{{.State.Pid}}", &container.0]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().nth(1),
        Some(IMAGE_UID.to_string().as_str()),
        "{uid}"
    );
    // History under /data, i.e. in the host directory.
    wait_for(WAIT, "history.db in the data directory", || {
        data.join("history.db").exists().then_some(())
    });

    // podman stop sends SIGTERM; the exit code is 0, well within 10 s.
    let stopping = Instant::now();
    podman_ok(&["stop", "-t", "10", &container.0]);
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    let code = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &container.0]);
    assert_eq!(code, "0", "log:\n{}", logs());
    assert!(!logs().contains("ERROR"), "{}", logs());
}
