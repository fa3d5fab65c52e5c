//! Notifications on real processes: a receiver that fails its first
//! requests still gets every transition exactly once (deduplicated by the
//! `id` redpulse gives it) and in order per instance, including ones still
//! pending when redpulse restarted; a receiver that is down never delays
//! another; and Debian's Alertmanager receives an alert and its resolution.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// A webhook receiver: answers 500 while `failing`, else 200; records
/// (answered code, body) of every POST.
struct Receiver {
    port: u16,
    failing: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<(u16, Value)>>>,
}

impl Receiver {
    fn start(failing: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let failing = Arc::new(AtomicBool::new(failing));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (f, g) = (failing.clone(), got.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.to_ascii_lowercase();
                    if let Some(v) = l.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let code = if f.load(Ordering::Relaxed) { 500 } else { 200 };
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    g.lock().unwrap().push((code, v));
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, failing, got }
    }

    /// The bodies it accepted (200).
    fn accepted(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| *c == 200)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn attempts(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

#[test]
fn a_failing_receiver_gets_every_transition_once_in_order_across_a_restart() {
    let mut server = RedisServer::start(&[]);
    let flaky = Receiver::start(true);
    let dead_port = held_port();
    let dir = temp_dir("notify");
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"100ms\"\n\
             [[instance]]\nname = \"cache\"\nurl = \"{}\"\nlabels = {{ team = \"a\" }}\n\
             [[instance]]\nname = \"gone\"\nurl = \"redis://127.0.0.1:{}\"\nlabels = {{ team = \"a\" }}\n\
             [[instance]]\nname = \"other-team\"\nurl = \"redis://127.0.0.1:{}\"\nlabels = {{ team = \"b\" }}\n\
             [[notify]]\nname = \"dead\"\nurl = \"http://127.0.0.1:{dead_port}/\"\nmin_status = \"down\"\nretry_for = \"10m\"\n\
             [[notify]]\nname = \"flaky\"\nurl = \"http://127.0.0.1:{}/hook?token=t0k\"\nmin_status = \"down\"\n\
             labels = {{ team = \"a\" }}\nretry_for = \"10m\"\n",
            server.url(),
            held_port(),
            held_port(),
            flaky.port
        ),
    );
    let data = dir.join("data");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let mut rp = Redpulse::start(&args);
    rp.wait_status("cache", "ok", None);
    rp.wait_status("gone", "down", None);
    server.kill();
    rp.wait_status("cache", "down", None);
    // Both pending deliveries are tried and refused at least once.
    wait_for(WAIT, "two failed attempts", || {
        (flaky.attempts() >= 2).then_some(())
    });
    // Stop redpulse with them still pending; start it again.
    signal(rp.pid(), "TERM");
    assert_eq!(rp.wait_exit(Duration::from_secs(10)), Some(0));
    server.restart();
    let rp = Redpulse::start(&args);
    rp.wait_status("cache", "ok", None);
    std::thread::sleep(Duration::from_millis(1500));
    flaky.failing.store(false, Ordering::Relaxed);
    // A fresh outage and recovery after the restart.
    server.kill();
    rp.wait_status("cache", "down", None);
    server.restart();
    rp.wait_status("cache", "ok", None);

    // Expected, per instance: gone's first verdict down (both runs),
    // cache down (run 1), cache down and back up (run 2). other-team is
    // filtered out by its label.
    wait_for(Duration::from_secs(30), "every delivery", || {
        (flaky.accepted().len() >= 5).then_some(())
    });
    // Long enough for a duplicate, if one were coming.
    std::thread::sleep(Duration::from_secs(2));
    let accepted = flaky.accepted();
    let ids: Vec<&str> = accepted.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "a transition delivered twice: {ids:?}"
    );
    let moves = |name: &str| -> Vec<(Value, Value, String)> {
        accepted
            .iter()
            .filter(|v| v["name"] == name)
            .map(|v| {
                (
                    v["from"].clone(),
                    v["to"].clone(),
                    v["at"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let cache = moves("cache");
    let gone = moves("gone");
    println!(
        "delivered: {} ({} attempts in all)",
        accepted.len(),
        flaky.attempts()
    );
    assert_eq!(
        cache
            .iter()
            .map(|m| (m.0.clone(), m.1.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("ok".into(), "down".into()),
            ("ok".into(), "down".into()),
            ("down".into(), "ok".into())
        ],
        "{accepted:?}"
    );
    assert_eq!(gone.len(), 2, "{accepted:?}");
    assert!(gone.iter().all(|m| m.0.is_null() && m.1 == "down"));
    for list in [&cache, &gone] {
        assert!(
            list.windows(2).all(|w| w[0].2 < w[1].2),
            "out of order: {list:?}"
        );
    }
    assert!(moves("other-team").is_empty());
    let metrics = rp.get("/metrics").1;
    assert!(
        metrics.contains("redpulse_notifications_total{result=\"sent\"} "),
        "{metrics}"
    );
    // The dead receiver's URL (a secret) is never logged.
    assert!(!rp.log_text().contains("t0k"));
}

#[test]
fn alertmanager_receives_an_alert_and_its_resolution() {
    need("prometheus-alertmanager");
    let mut server = RedisServer::start(&[]);
    let dir = temp_dir("alertmanager");
    let am_config = write_file(
        &dir,
        "alertmanager.yml",
        "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
    );
    let am_port = held_port();
    let _am = Guard(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", dir.join("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(WAIT, "Alertmanager to answer", || {
        (http_get(am_port, "/-/ready").ok()?.0 == 200).then_some(())
    });
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"100ms\"\n\
             [[instance]]\nname = \"cache\"\nurl = \"{}\"\nlabels = {{ team = \"payments\" }}\n\
             [[notify]]\nname = \"am\"\nurl = \"http://127.0.0.1:{am_port}\"\nformat = \"alertmanager\"\nmin_status = \"down\"\n",
            server.url()
        ),
    );
    let rp = Redpulse::start(&["--config", config.to_str().unwrap()]);
    rp.wait_status("cache", "ok", None);
    let alerts = || -> Vec<Value> {
        let (_, body) = http_get(am_port, "/api/v2/alerts?active=true").unwrap();
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["labels"]["instance"] == "cache")
            .cloned()
            .collect()
    };
    assert!(alerts().is_empty());
    server.kill();
    rp.wait_status("cache", "down", None);
    let fired = wait_for(WAIT, "the alert in Alertmanager", || {
        let a = alerts();
        (!a.is_empty()).then_some(a)
    });
    assert_eq!(fired[0]["labels"]["alertname"], "RedpulseNotOk");
    assert_eq!(fired[0]["labels"]["team"], "payments");
    assert_eq!(fired[0]["annotations"]["reason"], "connection_refused");
    assert_eq!(fired[0]["status"]["state"], "active");
    server.restart();
    rp.wait_status("cache", "ok", None);
    wait_for(WAIT, "the alert to resolve", || {
        alerts().is_empty().then_some(())
    });
}
