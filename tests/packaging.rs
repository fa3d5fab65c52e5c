//! What a service manager and a Prometheus see of redpulse itself: the
//! systemd notify protocol on a socket of the test's own, the standard
//! process series checked against /proc, `redpulse_build_info` and
//! `--version` against git and rustc, and the probes under their
//! Prometheus names.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

/// One datagram from the notify socket, or `None` after `timeout`.
fn recv(sock: &UnixDatagram, timeout: Duration) -> Option<String> {
    sock.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("notify socket: {e}"),
    }
}

/// The next datagram that is not a watchdog ping, within `timeout`;
/// counts the pings seen on the way.
fn next_state(sock: &UnixDatagram, timeout: Duration, pings: &mut u32) -> String {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no notification within {timeout:?}");
        match recv(sock, left) {
            Some(m) if m == "WATCHDOG=1" => *pings += 1,
            Some(m) => return m,
            None => {}
        }
    }
}

fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
}

#[test]
fn systemd_hears_ready_after_first_verdicts_then_reload_watchdog_and_stop() {
    let dir = temp_dir("notify");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let fast = RedisServer::start(&[]);
    // A frozen server accepts the connection (the kernel does) but never
    // answers, so its first verdict is the poll timeout: 1.5 s at least.
    let frozen = RedisServer::start(&[]);
    signal(frozen.pid(), "STOP");
    let timeout = Duration::from_millis(1500);
    let port = held_port();
    let started = Instant::now();
    let mut rp = Redpulse::spawn_env(
        port,
        &[
            "--interval",
            "1s",
            "--timeout",
            "1500ms",
            "--target",
            &format!("fast={}", fast.url()),
            "--target",
            &format!("frozen={}", frozen.url()),
        ],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    // Until READY=1 arrives, /readyz is seen answering 503 at least once.
    let mut not_ready_seen = false;
    let ready = loop {
        if let Some(m) = recv(&sock, Duration::from_millis(50)) {
            break m;
        }
        assert!(started.elapsed() < WAIT, "no READY=1 within {WAIT:?}");
        if let Ok((503, _)) = http_get(port, "/readyz") {
            not_ready_seen = true;
        }
    };
    let at = started.elapsed();
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(ready.contains("STATUS=watching 2 instances"), "{ready:?}");
    assert!(not_ready_seen, "/readyz never answered 503 before READY=1");
    assert!(
        at >= timeout,
        "READY=1 after {at:?}, before the frozen instance could time out"
    );
    // Both verdicts exist now: the frozen one is its poll timeout.
    assert_eq!(http_get(port, "/readyz").unwrap().0, 200);
    assert_eq!(http_get(port, "/-/ready").unwrap().0, 200);
    let (_, body) = http_get(port, "/health/redis/frozen").unwrap();
    assert!(body.contains("\"timeout\""), "{body}");
    signal(frozen.pid(), "CONT");
    rp.wait_status("frozen", "ok", None);

    // Watchdog pings every half WATCHDOG_USEC (200 ms) while polls keep up;
    // those queued while the test waited are only drained.
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    while sock.recv(&mut buf).is_ok() {}
    sock.set_nonblocking(false).unwrap();
    let mut pings = 0;
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(1500) {
        if let Some(m) = recv(&sock, Duration::from_millis(100)) {
            assert_eq!(m, "WATCHDOG=1");
            pings += 1;
        }
    }
    assert!(
        (4..=9).contains(&pings),
        "{pings} pings in 1.5 s at one per 200 ms"
    );

    // SIGHUP: RELOADING=1 with the monotonic clock, then READY=1.
    let before = monotonic_usec();
    signal(rp.pid(), "HUP");
    let reloading = next_state(&sock, WAIT, &mut pings);
    let usec: u64 = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{reloading:?}"))
        .parse()
        .unwrap();
    let after = monotonic_usec();
    assert!(
        before <= usec && usec <= after,
        "{before} <= {usec} <= {after}"
    );
    assert_eq!(next_state(&sock, WAIT, &mut pings), "READY=1");

    // SIGTERM: STOPPING=1 and a clean exit.
    signal(rp.pid(), "TERM");
    assert_eq!(next_state(&sock, WAIT, &mut pings), "STOPPING=1");
    assert_eq!(rp.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn without_notify_socket_nothing_changes_and_probes_answer() {
    let redis = RedisServer::start(&[]);
    let rp = Redpulse::start(&["--target", &format!("r={}", redis.url())]);
    rp.wait_status("r", "ok", None);
    assert_eq!(rp.get("/-/healthy").0, 200);
    assert_eq!(rp.get("/-/ready").0, 200);
    assert!(!rp.log_text().contains("systemd"), "{}", rp.log_text());
}

/// A series' value in exposition text.
fn value(text: &str, name: &str) -> f64 {
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// A field of /proc/PID/status in kB, as bytes.
fn status_kb(pid: u32, field: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        * 1024.0
}

#[test]
fn process_series_agree_with_proc() {
    let redis = RedisServer::start(&[]);
    let spawned = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let rp = Redpulse::start(&["--target", &format!("r={}", redis.url())]);
    rp.wait_status("r", "ok", None);
    let pid = rp.pid();
    let (code, text) = rp.get("/metrics");
    assert_eq!(code, 200);
    // Right after the scrape, from the kernel's own accounting.
    let rss = status_kb(pid, "VmRSS:");
    let vsz = status_kb(pid, "VmSize:");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft: f64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;

    let m_rss = value(&text, "process_resident_memory_bytes");
    assert!(
        (m_rss - rss).abs() <= rss * 0.10,
        "rss {m_rss} vs /proc {rss}"
    );
    let m_vsz = value(&text, "process_virtual_memory_bytes");
    assert!(
        (m_vsz - vsz).abs() <= vsz * 0.10,
        "vsz {m_vsz} vs /proc {vsz}"
    );
    assert_eq!(value(&text, "process_max_fds"), soft);
    let m_fds = value(&text, "process_open_fds");
    assert!(
        (m_fds - fds).abs() <= 4.0,
        "open fds {m_fds} vs /proc {fds}"
    );
    let start = value(&text, "process_start_time_seconds");
    assert!(
        (start - spawned).abs() <= 2.0,
        "start {start} vs spawned at {spawned}"
    );
    let cpu = value(&text, "process_cpu_seconds_total");
    let alive = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - spawned;
    assert!(
        (0.0..=alive * 2.0).contains(&cpu),
        "cpu {cpu} s in {alive} s on 2 threads at most"
    );
    for (name, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("redpulse_build_info", "gauge"),
    ] {
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
    }
}

fn git_revision() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn build_info_and_version_name_this_build() {
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .unwrap();
    let rustc = String::from_utf8_lossy(&rustc.stdout);
    let rustc = rustc.split_whitespace().nth(1).unwrap().to_string();
    let revision = git_revision().unwrap_or_else(|| "unknown".into());
    let version = env!("CARGO_PKG_VERSION");

    let out = Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("redpulse {version} (revision {revision}, rustc {rustc})")
    );

    let rp = Redpulse::start(&["--target", &format!("x=redis://127.0.0.1:{}", held_port())]);
    let (_, text) = rp.get("/metrics");
    let line = format!(
        "redpulse_build_info{{version=\"{version}\",revision=\"{revision}\",rustc_version=\"{rustc}\"}} 1"
    );
    assert!(text.lines().any(|l| l == line), "no {line}");
}

#[test]
fn every_example_unit_passes_systemd_analyze_verify() {
    need("systemd-analyze");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let dir = temp_dir("units");
    let mut units = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("service") {
            continue;
        }
        // The unit as shipped, with only the binary's path pointing at this
        // build (verify checks that ExecStart's program exists).
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("ExecStart=/usr/local/bin/redpulse "),
            "{}",
            path.display()
        );
        assert!(text.contains("\nType=notify\n"), "{}", path.display());
        let copy = dir.join(path.file_name().unwrap());
        std::fs::write(
            &copy,
            text.replace("/usr/local/bin/redpulse", env!("CARGO_BIN_EXE_redpulse")),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{}: {stderr}",
            path.display()
        );
        units += 1;
    }
    assert_eq!(units, 2, "redpulse.service and redpulse-shard@.service");
}

/// kubernetes-validate from the venv scripts/test.sh makes (or on PATH).
fn kubernetes_validate() -> PathBuf {
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/k8s-venv/bin/kubernetes-validate");
    if venv.exists() {
        return venv;
    }
    need("kubernetes-validate");
    PathBuf::from("kubernetes-validate")
}

#[test]
fn kubernetes_manifests_validate_and_run_the_image_as_documented() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    manifests.sort();
    assert_eq!(manifests.len(), 4, "{manifests:?}");
    // The oldest schema the contract names and the newest the tool has.
    for version in ["1.30.0", "1.37.0"] {
        let out = Command::new(kubernetes_validate())
            .args(["--strict", "-k", version])
            .args(&manifests)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert_eq!(text.matches(" passed for resource ").count(), 5, "{text}");
    }
    let sts: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join("statefulset.yaml")).unwrap())
            .unwrap();
    let pod = &sts["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["image"].as_str(),
        Some(format!("localhost/redpulse:{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/-/healthy")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/-/ready")
    );
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(65532));
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    assert!(mounts
        .iter()
        .any(|m| m["mountPath"].as_str() == Some("/data")));
    let pdb = std::fs::read_to_string(dir.join("pdb.yaml")).unwrap();
    assert!(pdb.contains("kind: PodDisruptionBudget"));
}
