//! redpulse read by the real tools operators use: Prometheus (Debian's
//! package) scraping /metrics, and the status page rendered by headless
//! Chromium (Debian's package). scripts/test.sh installs both.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// Debian's Prometheus with `config` (YAML), its data under `dir`, on a
/// free port: the process (killed on drop) and the port.
fn prometheus(dir: &std::path::Path, config: &str) -> (Guard, u16) {
    let config_path = write_file(dir, "prometheus.yml", config);
    let port = held_port();
    let child = Command::new("prometheus")
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
        .unwrap();
    (Guard(child), port)
}

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
    let closed = held_port();
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
    let (_prom, port) = prometheus(&dir, &config);
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
        .cmd(&["REPLICAOF", "127.0.0.1", &held_port().to_string()]);
    let closed = held_port();
    let dir = temp_dir("status-page");
    let fleet_file = write_file(
        &dir,
        "fleet.json",
        &format!(
            r#"[{{"targets":["{}"],"labels":{{"name":"a-ok","team":"cache"}}}},
               {{"targets":["{}"],"labels":{{"name":"b-replica","team":"queue"}}}},
               {{"targets":["redis://127.0.0.1:{closed}"],"labels":{{"name":"c-gone","team":"cache"}}}}]"#,
            ok.url(),
            replica.url()
        ),
    );
    let rp = Redpulse::start(&[
        "--interval",
        "200ms",
        "--targets-file",
        fleet_file.to_str().unwrap(),
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

    assert!(dom.contains("team:queue"), "labels are shown: {dom}");
    // The page's ?label= filter narrows the rows and the counts.
    let out = chromium(
        &[
            "--virtual-time-budget=5000",
            "--dump-dom",
            &format!("{url}?label=team:cache"),
        ],
        &profile,
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("2 instances: 1 ok, 0 degraded, 0 critical, 1 down"),
        "{dom}"
    );
    assert!(!dom.contains("data-instance=\"b-replica\""), "{dom}");

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
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The page as a person sees it: the degraded and down rows' tints and
    // the down badge (status.html's colours), and no critical row's tint,
    // as no instance is critical.
    let shot = support::png::Image::read(&png);
    assert_eq!((shot.width, shot.height), (1100, 500));
    for (what, colour) in [
        ("degraded row", "#fff8e1"),
        ("down row", "#ffd7d5"),
        ("down badge", "#cf222e"),
    ] {
        assert!(
            shot.count(colour) > 200,
            "no {what} ({colour}) in {}",
            png.display()
        );
    }
    assert_eq!(
        shot.count("#ffebe9"),
        0,
        "a critical row's tint in {}",
        png.display()
    );
}

/// The value part of a rule expression: each side of a top-level
/// `and`/`or`/`unless`, without its trailing comparison against a
/// threshold. Those parts have data whenever the series exist, firing or
/// not.
fn value_parts(expr: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0i32;
    let tokens: Vec<&str> = expr.split(' ').collect();
    for t in &tokens {
        if depth == 0 && matches!(*t, "and" | "or" | "unless") {
            parts.push(String::new());
            continue;
        }
        depth +=
            t.matches(['(', '{', '[']).count() as i32 - t.matches([')', '}', ']']).count() as i32;
        let p = parts.last_mut().unwrap();
        if !p.is_empty() {
            p.push(' ');
        }
        p.push_str(t);
    }
    parts
        .into_iter()
        .map(|p| {
            // Cut at the last comparison outside brackets.
            let mut depth = 0i32;
            let mut cut = p.len();
            let b = p.as_bytes();
            for i in 0..b.len() {
                match b[i] {
                    b'(' | b'{' | b'[' => depth += 1,
                    b')' | b'}' | b']' => depth -= 1,
                    b'>' | b'<' | b'=' | b'!' if depth == 0 && i > 0 && b[i - 1] == b' ' => cut = i,
                    _ => {}
                }
            }
            let p = p[..cut].trim();
            // A vector-matching modifier belongs to the operator, not the part.
            match p
                .strip_prefix("on(")
                .or_else(|| p.strip_prefix("ignoring("))
            {
                Some(rest) => rest
                    .split_once(')')
                    .map_or(p, |(_, r)| r)
                    .trim()
                    .to_string(),
                None => p.to_string(),
            }
        })
        .collect()
}

/// Every `expr:` of a rules file, in order.
fn rule_exprs(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(str::to_string)
        .collect()
}

/// Every target expression of a Grafana dashboard, with the dashboard's
/// variables as Grafana would fill them for "All".
fn dashboard_exprs(json: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in json["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*");
            out.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    out
}

#[test]
fn dashboard_and_alert_rules_have_data_in_prometheus_and_master_alerts_follow_a_promotion() {
    need("prometheus");
    let dir = temp_dir("dashboard");
    let ca = support::pki::Ca::new(&dir, "ca");
    let cert = ca.leaf(&dir, "replica", &["localhost", "127.0.0.1"], -1, 365);
    let master = RedisServer::start(&[]);
    // The replica also serves TLS, so the TLS series have data.
    let tls_port = held_port();
    let mut replica = RedisServer::start(&[
        "--replicaof",
        "127.0.0.1",
        &master.port.to_string(),
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        cert.0.to_str().unwrap(),
        "--tls-key-file",
        cert.1.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]);
    let mut c = master.client();
    for i in 0..50 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
        c.cmd(&["GET", &format!("k{i}")]);
    }
    c.cmd(&["NOSUCHCOMMAND"]);
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"200ms\"\nmetrics_interval = \"500ms\"\n\
             [[instance]]\nname = \"master\"\nurl = \"{}\"\nlabels = {{ team = \"cache\" }}\n\
             [[instance]]\nname = \"replica\"\nurl = \"rediss://127.0.0.1:{tls_port}\"\n\
             [instance.tls]\nca_file = \"{}\"\n\
             [[group]]\nname = \"pair\"\nmembers = [\"master\", \"replica\"]\nlabels = {{ env = \"test\" }}\n",
            master.url(),
            ca.pem_path.display()
        ),
    );
    let rp = Redpulse::start(&["--config", config.to_str().unwrap()]);
    rp.wait_status("master", "ok", None);
    rp.wait_status("replica", "ok", None);

    let mixin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mixin");
    let (rules, records) = (mixin.join("alerts.yml"), mixin.join("rules.yml"));
    let prom_config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n  - {}\n\
         scrape_configs:\n  - job_name: redpulse\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        rules.display(),
        records.display(),
        rp.port
    );
    let (_prom, port) = prometheus(&dir, &prom_config);
    // Rates need a few scrapes.
    wait_for(Duration::from_secs(60), "five scrapes of redpulse", || {
        let r = query(port, "count_over_time(redis_up{instance=\"master\"}[1m])")?;
        (r.first()?.1.parse::<f64>().ok()? >= 5.0).then_some(())
    });

    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(mixin.join("dashboard.json")).unwrap())
            .unwrap();
    let mut empty = Vec::new();
    let panels = dashboard_exprs(&dashboard);
    for (title, expr) in &panels {
        match query(port, expr) {
            Some(r) if !r.is_empty() => {}
            other => empty.push(format!("dashboard {title:?}: {expr} -> {other:?}")),
        }
    }
    let rules_text =
        std::fs::read_to_string(&rules).unwrap() + &std::fs::read_to_string(&records).unwrap();
    let exprs = rule_exprs(&rules_text);
    let mut parts_checked = 0;
    for expr in &exprs {
        for part in value_parts(expr) {
            parts_checked += 1;
            match query(port, &part) {
                Some(r) if !r.is_empty() => {}
                other => empty.push(format!("rule {expr}: part {part} -> {other:?}")),
            }
        }
    }
    println!(
        "{} dashboard queries and {} rule parts ({} rules) returned data",
        panels.len() - empty.len().min(panels.len()),
        parts_checked,
        exprs.len()
    );
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );
    // Prometheus loaded and evaluated every rule without error.
    let (_, body) = http_get(port, "/api/v1/rules").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    let loaded: Vec<&Value> = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), exprs.len());
    for r in &loaded {
        assert_eq!(r["health"], "ok", "{r}");
    }
    // Labels from the config reach Prometheus, and the group's JSON.
    assert_eq!(
        query(port, "redis_up{team=\"cache\"}").unwrap(),
        vec![("master".into(), "1".into())]
    );
    let (_, group) = rp.get("/health/group/pair");
    let group: Value = serde_json::from_str(&group).unwrap();
    assert_eq!(group["labels"], serde_json::json!({"env": "test"}));
    let (_, replica_json) = rp.health("replica");
    assert_eq!(
        replica_json["labels"],
        serde_json::json!({"env": "test"}),
        "members inherit"
    );

    // The community's master alerts, exactly as written, on a real pair.
    let expr_of = |alert: &str| {
        let lines: Vec<&str> = rules_text.lines().collect();
        let i = lines
            .iter()
            .position(|l| l.trim() == format!("- alert: {alert}"))
            .unwrap();
        lines[i + 1]
            .trim()
            .strip_prefix("expr: ")
            .unwrap()
            .to_string()
    };
    let missing_master = expr_of("RedisMissingMaster");
    let too_many = expr_of("RedisTooManyMasters");
    assert_eq!(query(port, &missing_master).unwrap(), vec![]);
    assert_eq!(query(port, &too_many).unwrap(), vec![]);
    // Promote the replica: two masters.
    replica.client().cmd(&["REPLICAOF", "NO", "ONE"]);
    wait_for(
        Duration::from_secs(30),
        "RedisTooManyMasters to fire",
        || (query(port, &too_many)? == vec![(String::new(), "2".into())]).then_some(()),
    );
    assert_eq!(query(port, &missing_master).unwrap(), vec![]);
    // The old master follows the new one: one master again.
    master
        .client()
        .cmd(&["REPLICAOF", "127.0.0.1", &replica.port.to_string()]);
    wait_for(
        Duration::from_secs(30),
        "RedisTooManyMasters to clear",
        || query(port, &too_many)?.is_empty().then_some(()),
    );
    assert_eq!(query(port, &missing_master).unwrap(), vec![]);
    // The new master dies: no master left.
    replica.kill();
    wait_for(
        Duration::from_secs(30),
        "RedisMissingMaster to fire",
        || (query(port, &missing_master)? == vec![(String::new(), "0".into())]).then_some(()),
    );
    // The group's own history followed all of it: a first verdict, ok
    // once both were polled, worse after the promotion (critical while two
    // masters answer, or a replica following the wrong master: the group
    // is looked at once a second, and which of the two it catches depends
    // on timing), down with no master left.
    let h: Value = wait_for(WAIT, "the group's transitions", || {
        let (code, body) = rp.get("/history/group/pair?window=1h");
        let v: Value = serde_json::from_str(&body).ok()?;
        let last = v["transitions"].as_array()?.last()?.clone();
        (code == 200 && last["reason"] == "no_master").then_some(v)
    });
    let moves = h["transitions"].as_array().unwrap();
    assert!(moves[0]["from"].is_null(), "{h}");
    let seen = |to: &str, reason: Option<&str>| {
        moves
            .iter()
            .any(|t| t["to"] == to && reason.is_none_or(|r| t["reason"] == r))
    };
    assert!(seen("ok", None), "{h}");
    assert!(
        seen("critical", Some("multiple_masters"))
            || seen("degraded", Some("replica_wrong_master")),
        "{h}"
    );
    assert_eq!(moves.last().unwrap()["to"], "down", "{h}");
}

/// The value of `attr="..."` on the element whose opening tag contains
/// `marker`, in a dumped DOM.
fn attr_near(dom: &str, marker: &str, attr: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let tag_start = dom[..at].rfind('<')?;
    let tag_end = at + dom[at..].find('>')?;
    let tag = &dom[tag_start..tag_end];
    let v = tag.split(&format!("{attr}=\"")).nth(1)?;
    Some(v.split('"').next()?.to_string())
}

#[test]
fn status_page_shows_history_bars_uptime_and_a_detail_view_after_an_incident() {
    need("chromium");
    let mut server = RedisServer::start(&[]);
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("cache={}", server.url()),
        "--target",
        &format!("gone=redis://127.0.0.1:{}", held_port()),
    ]);
    rp.wait_status("cache", "ok", None);
    std::thread::sleep(Duration::from_millis(800));
    // The scripted incident: the server stops, and comes back.
    server.kill();
    rp.wait_status("cache", "down", None);
    std::thread::sleep(Duration::from_millis(1000));
    server.restart();
    rp.wait_status("cache", "ok", None);
    std::thread::sleep(Duration::from_millis(1500));

    let url = format!("http://127.0.0.1:{}/", rp.port);
    let profile = temp_dir("chromium-history");
    let out = chromium(
        &["--virtual-time-budget=8000", "--dump-dom", &url],
        &profile,
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(dom.contains("data-bars"), "the bars never loaded: {dom}");
    // What the page shows against what /history/bars says.
    let (_, body) = rp.get("/history/bars?window=24h&cells=96&name=cache&name=gone");
    let want: Value = serde_json::from_str(&body).unwrap();
    for name in ["cache", "gone"] {
        let row = format!("data-instance=\"{name}\"");
        let row_at = dom
            .find(&row)
            .unwrap_or_else(|| panic!("no row {name}: {dom}"));
        let rest = &dom[row_at..];
        let cells = attr_near(rest, "class=\"bar\"", "data-cells").unwrap();
        let expected = want["instances"][name]["cells"].as_str().unwrap();
        assert_eq!(cells, expected, "{name}");
        let uptime: f64 = attr_near(rest, "class=\"num uptime\"", "data-uptime")
            .unwrap()
            .parse()
            .unwrap();
        let expected = want["instances"][name]["uptime"].as_f64().unwrap();
        assert!(
            (uptime - expected).abs() < 0.05,
            "{name}: {uptime} vs {expected}"
        );
    }
    let cache_cells = want["instances"]["cache"]["cells"].as_str().unwrap();
    assert!(
        cache_cells.ends_with('d'),
        "the outage is in the last cell: {cache_cells}"
    );
    assert_eq!(want["instances"]["gone"]["uptime"], 0.0);

    // The detail view: uptime, charts, and the incident in the events.
    let detail_url = format!("{url}#instance=cache");
    let out = chromium(
        &["--virtual-time-budget=8000", "--dump-dom", &detail_url],
        &profile,
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(dom.contains("data-detail-rendered"), "{dom}");
    let (_, body) = rp.get("/history/redis/cache?window=24h");
    let h: Value = serde_json::from_str(&body).unwrap();
    let latency_minutes = |h: &Value| {
        h["minutes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| !m["latency_ms_max"].is_null())
            .count()
    };
    let shown: f64 = attr_near(&dom, "data-window=\"1h\"", "data-uptime")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (shown - h["uptime"]["1h"].as_f64().unwrap()).abs() < 0.05,
        "{shown} vs {h}"
    );
    assert!(dom.contains("ok → down"), "{dom}");
    assert!(dom.contains("down → ok"), "{dom}");
    let points: usize = attr_near(&dom, "id=\"latency-chart\"", "data-points")
        .unwrap()
        .parse()
        .unwrap();
    // The minute in progress is one of them; a minute that ended between
    // the page's fetch and this one adds one.
    let minutes = latency_minutes(&h);
    assert!(
        points == minutes || points + 1 == minutes,
        "{points} points, {minutes} minutes"
    );

    // Screenshots for a person to look at.
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&shots).unwrap();
    for (file, page) in [
        ("fleet-history.png", url.clone()),
        ("detail.png", detail_url),
    ] {
        let png = shots.join(file);
        let _ = std::fs::remove_file(&png);
        let out = chromium(
            &[
                "--virtual-time-budget=8000",
                "--window-size=1300,700",
                &format!("--screenshot={}", png.display()),
                &page,
            ],
            &profile,
        );
        assert!(
            png.exists(),
            "no screenshot {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("screenshot: {}", png.display());
        let shot = support::png::Image::read(&png);
        assert_eq!((shot.width, shot.height), (1300, 700), "{file}");
        // The outage in red (the current bar cell, the event line); the
        // fleet's down row; the detail view's chart areas.
        let mut want = vec![("down cells or event", "#cf222e")];
        match file {
            "detail.png" => want.push(("chart area", "#fcfcfc")),
            _ => want.push(("down row", "#ffd7d5")),
        }
        for (what, colour) in want {
            assert!(shot.count(colour) > 20, "{file}: no {what} ({colour})");
        }
    }
}

#[test]
fn prometheus_scrapes_over_https_with_basic_auth_and_chromium_renders_the_page_there() {
    need("chromium");
    need("openssl");
    let redis = RedisServer::start(&[]);
    let dir = temp_dir("https-integrations");
    let ca = support::pki::Ca::new(&dir, "ca");
    let (crt, _) = ca.leaf(&dir, "server", &["localhost", "127.0.0.1"], -1, 30);
    let hash = htpasswd_hash("scrape-pw");
    let web = write_file(
        &dir,
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"
        ),
    );
    let rp = Redpulse::start_tls(&[
        "--interval",
        "200ms",
        "--web.config.file",
        web.to_str().unwrap(),
        "--target",
        &format!("cache={}", redis.url()),
    ]);
    // Prometheus' own config: https, the test CA, basic auth from a file.
    let password = write_file(&dir, "password", "scrape-pw");
    let (_prom, prom_port) = prometheus(
        &dir,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: redpulse\n    honor_labels: true\n    \
             scheme: https\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: prometheus\n      \
             password_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            ca.pem_path.display(),
            password.display(),
            rp.port
        ),
    );
    wait_for(
        Duration::from_secs(30),
        "Prometheus to scrape over https",
        || {
            let up = query(prom_port, "up{job=\"redpulse\"}")?;
            (up.len() == 1 && up[0].1 == "1").then_some(())
        },
    );
    wait_for(Duration::from_secs(30), "the instance's series", || {
        let s = query(prom_port, "redis_up{instance=\"cache\"}")?;
        (s.len() == 1).then_some(())
    });

    // Chromium over https, trusting the server key by its SPKI hash, with
    // the credential in the URL; the page's own fetches must carry it.
    let spki = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            crt.display()
        ))
        .output()
        .unwrap();
    let spki = String::from_utf8(spki.stdout).unwrap();
    let url = format!("https://prometheus:scrape-pw@127.0.0.1:{}/", rp.port);
    let profile = temp_dir("chromium-https");
    let out = chromium(
        &[
            &format!("--ignore-certificate-errors-spki-list={}", spki.trim()),
            "--virtual-time-budget=5000",
            "--dump-dom",
            &url,
        ],
        &profile,
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("data-rendered"),
        "the page's script never rendered: {dom}"
    );
    assert!(
        dom.contains("data-instance=\"cache\""),
        "the fleet came through the page's fetch: {dom}"
    );
    assert!(
        dom.contains("1 instances: 1 ok") || dom.contains("1 instance"),
        "{dom}"
    );
}

#[test]
fn a_new_instance_shows_its_minute_in_progress_within_seconds() {
    need("chromium");
    let server = RedisServer::start(&[]);
    let rp = Redpulse::start(&[
        "--interval",
        "200ms",
        "--target",
        &format!("fresh={}", server.url()),
    ]);
    rp.wait_status("fresh", "ok", None);
    // Nothing is in the database yet (minutes are written when they end),
    // but the minute so far is answered, marked partial.
    let h: Value = wait_for(WAIT, "the minute in progress", || {
        let (_, body) = rp.get("/history/redis/fresh?window=1h");
        let h: Value = serde_json::from_str(&body).ok()?;
        h["minutes"].as_array()?.last()?["partial"]
            .as_bool()?
            .then_some(h)
    });
    let last = h["minutes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "ok", "{last}");
    assert!(last["polls"].as_u64().unwrap() >= 1, "{last}");
    let latency = last["latency_ms_max"].as_f64().unwrap();
    assert!(latency > 0.0 && latency < 1000.0, "{last}");
    let minute_start = chrono_free_minute(last["at"].as_str().unwrap());
    assert_eq!(minute_start % 60, 0, "{last}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (0..120).contains(&(now - minute_start)),
        "{last} is not this minute"
    );

    // The detail view draws it: one point at least, with its dot.
    let url = format!("http://127.0.0.1:{}/#instance=fresh", rp.port);
    let profile = temp_dir("chromium-fresh");
    let out = chromium(
        &["--virtual-time-budget=8000", "--dump-dom", &url],
        &profile,
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(dom.contains("data-detail-rendered"), "{dom}");
    let points: usize = attr_near(&dom, "id=\"latency-chart\"", "data-points")
        .unwrap()
        .parse()
        .unwrap();
    assert!(points >= 1, "{dom}");
    let chart = &dom[dom.find("id=\"latency-chart\"").unwrap()..];
    let chart = &chart[..chart.find("</svg>").unwrap()];
    assert!(chart.contains("class=\"newest\""), "{chart}");
}

/// Seconds since the epoch of an RFC 3339 UTC time such as
/// 2026-12-03T16:41:00.000Z (the days from a civil date, by hand).
fn chrono_free_minute(at: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| at[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// GET /metrics with `Accept-Encoding: gzip` over a raw socket: (header
/// lines, the body unchunked and gunzipped).
fn gzipped_metrics(port: u16) -> (Vec<String>, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head: Vec<String> = String::from_utf8_lossy(&raw[..split])
        .lines()
        .map(|l| l.to_ascii_lowercase())
        .collect();
    let gz = dechunk_bytes(&raw[split + 4..]);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    (head, text)
}

fn samples_in(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

#[test]
fn prometheus_ingests_a_streamed_gzipped_scrape_of_a_thousand_instances() {
    need("prometheus");
    const N: u16 = 1000;
    let base = held_block(N);
    let _sim = Guard(
        Command::new(env!("CARGO_BIN_EXE_redpulse"))
            .args(["simulate", "--instances", &N.to_string(), "--listen"])
            .arg(format!("127.0.0.1:{base}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening("127.0.0.1", base + N - 1);
    let dir = temp_dir("streamed");
    let fleet: String = (0..N)
        .map(|i| format!("sim-{i:04}=redis://127.0.0.1:{}\n", base + i))
        .collect();
    write_file(&dir, "fleet.txt", &fleet);
    let config = write_file(
        &dir,
        "redpulse.toml",
        "interval = \"1s\"\nmetrics_interval = \"2s\"\ntargets_file = \"fleet.txt\"\n",
    );
    let rp = Redpulse::start(&["--config", config.to_str().unwrap()]);
    wait_for(WAIT, "first verdicts for the whole fleet", || {
        (rp.get("/readyz").0 == 200).then_some(())
    });

    // The body is streamed (chunked, no length) and gzipped, and holds
    // what the plain body holds: every instance's INFO series.
    let (head, text) = gzipped_metrics(rp.port);
    assert!(
        head.iter().any(|h| h == "transfer-encoding: chunked"),
        "{head:?}"
    );
    assert!(
        head.iter().any(|h| h == "content-encoding: gzip"),
        "{head:?}"
    );
    assert!(
        !head.iter().any(|h| h.starts_with("content-length")),
        "{head:?}"
    );
    let up_lines = text.lines().filter(|l| l.starts_with("redis_up{")).count();
    assert_eq!(up_lines, N as usize);
    let info_lines = text
        .lines()
        .filter(|l| l.starts_with("redis_connected_clients{"))
        .count();
    assert_eq!(info_lines, N as usize, "every instance's INFO series");
    assert!(text.ends_with("\n") && text.contains("process_start_time_seconds "));

    let prom_dir = temp_dir("prometheus-streamed");
    let prom_config = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n  - job_name: redpulse\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        rp.port
    );
    let (_prom, port) = prometheus(&prom_dir, &prom_config);
    // Prometheus's count of one scrape against the samples of a plain
    // scrape taken just before (the fleet's series do not change).
    let (scraped, expected) = wait_for(
        Duration::from_secs(60),
        "a scrape Prometheus counted",
        || {
            let expected = samples_in(&rp.get("/metrics").1);
            let up = query(port, "up{job=\"redpulse\"}")?;
            if up.first()?.1 != "1" {
                return None;
            }
            let n: usize = query(port, "scrape_samples_scraped{job=\"redpulse\"}")?
                .first()?
                .1
                .parse()
                .ok()?;
            (n == expected).then_some((n, expected))
        },
    );
    println!(
        "Prometheus ingested {scraped} samples per scrape of {N} instances (expected {expected})"
    );
    assert!(scraped > N as usize * 100, "{scraped}");
}
