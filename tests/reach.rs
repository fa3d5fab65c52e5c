//! Every way a server can be reached: a unix socket, a bracketed IPv6
//! literal, `localhost`, a name whose first address refuses, and a name
//! that moves to another server (a DNS failover) while redpulse runs.
//!
//! The DNS cases run redpulse in a mount namespace of its own with a
//! test-owned hosts file bind-mounted over /etc/hosts (`unshare --mount`;
//! nothing outside the test sees it). glibc reads the hosts file again on
//! every lookup when it is rewritten in place, which is how the name moves.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

#[test]
fn unix_socket_ipv6_and_localhost_targets_are_ok() {
    let dir = temp_dir("reach");
    let sock = dir.join("redis.sock");
    let unix = RedisServer::start(&[
        "--unixsocket",
        sock.to_str().unwrap(),
        "--unixsocketperm",
        "700",
    ]);
    let v6 = RedisServer::start(&["--bind", "127.0.0.1 ::1"]);
    let v4_only = RedisServer::start(&[]);
    let rp = Redpulse::start(&[
        "--interval",
        "200ms",
        "--target",
        &format!("sock=unix://{}?db=2", sock.display()),
        "--target",
        &format!("v6=redis://[::1]:{}", v6.port),
        "--target",
        &format!("local=redis://localhost:{}", v4_only.port),
    ]);
    let (_, v) = rp.wait_status("sock", "ok", None);
    assert_eq!(v["addr"], format!("unix:{}", sock.display()), "{v}");
    let (_, v) = rp.wait_status("v6", "ok", None);
    assert_eq!(v["addr"], format!("[::1]:{}", v6.port), "{v}");
    rp.wait_status("local", "ok", None);
    // The unix target really went over the socket: redpulse's client shows
    // up on that server with a unix-socket address.
    let clients = match unix.client().cmd(&["CLIENT", "LIST"]) {
        redpulse::wire::resp::Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    let line = clients
        .lines()
        .find(|l| l.contains("name=redpulse"))
        .unwrap_or_else(|| panic!("redpulse not connected: {clients}"));
    assert!(
        line.contains(&format!("laddr={}", sock.display())),
        "{line}"
    );
}

/// redpulse with `args`, in its own mount namespace whose /etc/hosts is
/// `hosts`. Killed (by PID) on drop.
struct Namespaced {
    child: Child,
    port: u16,
}

impl Namespaced {
    fn start(
        hosts: &std::path::Path,
        config: &std::path::Path,
        log: &std::path::Path,
    ) -> Namespaced {
        let port = held_port();
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--",
                "sh",
                "-c",
                "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
            ])
            .arg(hosts)
            .arg(env!("CARGO_BIN_EXE_redpulse"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(config.with_extension("data"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("unshare (util-linux) runs");
        wait_for(WAIT, "namespaced redpulse /healthz", || {
            (http_get(port, "/healthz").ok()?.0 == 200).then_some(())
        });
        Namespaced { child, port }
    }

    fn status(&self, name: &str) -> Option<String> {
        let (_, body) = http_get(self.port, &format!("/health/redis/{name}")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(v["status"].as_str()?.to_string())
    }
}

impl Drop for Namespaced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `server` has a client named redpulse.
fn watched_by_redpulse(server: &RedisServer) -> bool {
    match server.client().cmd(&["CLIENT", "LIST"]) {
        redpulse::wire::resp::Frame::Bulk(b) => {
            String::from_utf8_lossy(&b).contains("name=redpulse")
        }
        _ => false,
    }
}

#[test]
fn every_address_is_tried_and_a_moved_name_is_followed_without_a_reload() {
    let dir = temp_dir("dns");
    // Two servers on one port at two loopback addresses: the name moves
    // from the first to the second.
    let port = held_port();
    let first = RedisServer::start_at(Kind::Redis70, [127, 0, 0, 2].into(), port, &[]);
    let second = RedisServer::start_at(Kind::Redis70, [127, 0, 0, 3].into(), port, &[]);
    // Listens on 127.0.0.1 only, while its name resolves to ::1 first.
    let v4_only = RedisServer::start(&[]);
    let hosts = dir.join("hosts");
    let table = |moving: &str| {
        format!("127.0.0.1 localhost\n::1 dual.redpulse.test\n127.0.0.1 dual.redpulse.test\n{moving} moving.redpulse.test\n")
    };
    std::fs::write(&hosts, table("127.0.0.2")).unwrap();
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"200ms\"\ndns_refresh = \"1s\"\n\n[[instance]]\nname = \"moving\"\nurl = \"redis://moving.redpulse.test:{port}\"\n\n\
[[instance]]\nname = \"dual\"\nurl = \"redis://dual.redpulse.test:{}\"\n",
            v4_only.port
        ),
    );
    let log = dir.join("redpulse.log");
    let rp = Namespaced::start(&hosts, &config, &log);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(WAIT, "moving and dual ok", || {
        (rp.status("moving")? == "ok" && rp.status("dual")? == "ok").then_some(())
    });
    assert!(watched_by_redpulse(&first), "{}", log_text());
    assert!(!watched_by_redpulse(&second));

    // Rewrite the file in place (same inode: a new file would not show
    // through the bind mount). No signal, no reload.
    std::fs::write(&hosts, table("127.0.0.3")).unwrap();
    wait_for(
        WAIT,
        "redpulse to follow the name to the second server",
        || (watched_by_redpulse(&second) && !watched_by_redpulse(&first)).then_some(()),
    );
    assert_eq!(rp.status("moving").as_deref(), Some("ok"), "{}", log_text());
    assert!(log_text().contains("resolves elsewhere"), "{}", log_text());
    assert!(!log_text().contains("config reloaded"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rp.status("moving").as_deref(), Some("ok"));
}
