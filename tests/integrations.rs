//! redpulse read by the real tools operators use: Prometheus (Debian's
//! package) scraping /metrics, and the status page rendered by headless
//! Chromium (Debian's package). scripts/test.sh installs both.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// Percent-encode a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// instance label -> value of each series a PromQL query returns.
fn query(port: u16, q: &str) -> Option<Vec<(String, String)>> {
    let (code, body) = http_get(port, &format!("/api/v1/query?query={}", encode(q))).ok()?;
    if code != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    let mut out: Vec<(String, String)> = v["data"]["result"]
        .as_array()?
        .iter()
        .map(|s| {
            (
                s["metric"]["instance"].as_str().unwrap_or("").to_string(),
                s["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    Some(out)
}

#[test]
fn prometheus_scrapes_every_instance_under_its_own_name() {
    need("prometheus");
    let redis = RedisServer::start(&[]);
    let closed = free_port();
    let rp = Redpulse::start(&[
        "--interval",
        "200ms",
        "--target",
        &format!("cache={}", redis.url()),
        "--target",
        &format!("gone=redis://127.0.0.1:{closed}"),
    ]);
    rp.wait_status("cache", "ok", None);
    rp.wait_status("gone", "down", None);

    let dir = temp_dir("prometheus");
    // honor_labels keeps redpulse's `instance` label (the watched
    // instance's name), as examples/prometheus.yml does.
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: redpulse\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        rp.port
    );
    let config_path = write_file(&dir, "prometheus.yml", &config);
    let port = free_port();
    let _prom = Guard(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let up = wait_for(
        Duration::from_secs(60),
        "Prometheus to have redis_up for both",
        || query(port, "redis_up").filter(|r| r.len() == 2),
    );
    assert_eq!(
        up,
        vec![("cache".into(), "1".into()), ("gone".into(), "0".into())]
    );
    let ok = query(port, "redpulse_health_status{status=\"ok\"}").unwrap();
    assert_eq!(
        ok,
        vec![("cache".into(), "1".into()), ("gone".into(), "0".into())]
    );
    let down = query(port, "redpulse_health_status{status=\"down\"}").unwrap();
    assert_eq!(
        down,
        vec![("cache".into(), "0".into()), ("gone".into(), "1".into())]
    );
    let targets = query(port, "redpulse_targets").unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].1, "2");
}

fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn status_page_renders_the_fleet_worst_first() {
    need("chromium");
    let ok = RedisServer::start(&[]);
    let replica = RedisServer::start(&[]);
    replica
        .client()
        .cmd(&["REPLICAOF", "127.0.0.1", &free_port().to_string()]);
    let closed = free_port();
    let rp = Redpulse::start(&[
        "--interval",
        "200ms",
        "--target",
        &format!("a-ok={}", ok.url()),
        "--target",
        &format!("b-replica={}", replica.url()),
        "--target",
        &format!("c-gone=redis://127.0.0.1:{closed}"),
    ]);
    rp.wait_status("a-ok", "ok", None);
    rp.wait_status("b-replica", "degraded", None);
    rp.wait_status("c-gone", "down", None);

    let url = format!("http://127.0.0.1:{}/", rp.port);
    let profile = temp_dir("chromium-profile");
    let out = chromium(
        &["--virtual-time-budget=5000", "--dump-dom", &url],
        &profile,
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("data-rendered"),
        "the page's script never rendered: {dom}"
    );
    // Rows in page order: (instance, status class).
    let rows: Vec<(String, String)> = dom
        .split("<tr class=\"row-")
        .skip(1)
        .map(|chunk| {
            let status = chunk.split('"').next().unwrap().to_string();
            let name = chunk
                .split("data-instance=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string();
            (name, status)
        })
        .collect();
    // The same instances and statuses as the fleet endpoint, worst first.
    let (_, body) = rp.get("/health/redis?all=1");
    let fleet: Value = serde_json::from_str(&body).unwrap();
    let rank = |s: &str| {
        ["ok", "degraded", "critical", "down"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    let mut expected: Vec<(String, String)> = fleet["all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["instance"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    expected.sort_by(|a, b| rank(&b.1).cmp(&rank(&a.1)).then(a.0.cmp(&b.0)));
    assert_eq!(rows, expected);
    assert_eq!(rows[0], ("c-gone".to_string(), "down".to_string()));
    assert!(
        dom.contains("3 instances: 1 ok, 1 degraded, 0 critical, 1 down"),
        "{dom}"
    );

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("status.png");
    let _ = std::fs::remove_file(&png);
    let out = chromium(
        &[
            "--virtual-time-budget=5000",
            "--window-size=1100,500",
            &format!("--screenshot={}", png.display()),
            &url,
        ],
        &profile,
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 1000,
        "no screenshot ({size} bytes): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
