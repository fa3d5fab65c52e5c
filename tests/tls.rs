//! TLS against real redis-server 7.0 (Debian's build has TLS), with
//! certificates made here by rcgen: a private CA, mutual TLS, and every
//! failure an operator meets (untrusted, expired, name mismatch, a client
//! certificate missing, a plaintext port), each as `tls_error` with an
//! error that says which; a certificate close to expiry as degraded.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::pki::{self_signed, Ca};
use support::*;

/// redis-server with a plaintext port (for the test's own client) and a
/// TLS port serving `cert`; `require_clients` turns on mutual TLS.
fn tls_server(
    cert: &(PathBuf, PathBuf),
    ca: &Path,
    require_clients: bool,
    extra: &[&str],
) -> (RedisServer, u16) {
    let tls_port = held_port().to_string();
    let mut args = vec![
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        cert.0.to_str().unwrap(),
        "--tls-key-file",
        cert.1.to_str().unwrap(),
        "--tls-ca-cert-file",
        ca.to_str().unwrap(),
        "--tls-auth-clients",
        if require_clients { "yes" } else { "no" },
    ];
    args.extend_from_slice(extra);
    let server = RedisServer::start(&args);
    (server, tls_port.parse().unwrap())
}

fn instance(name: &str, url: &str, tls: &[(&str, String)]) -> String {
    let mut t = format!("\n[[instance]]\nname = \"{name}\"\nurl = \"{url}\"\n");
    if !tls.is_empty() {
        t.push_str("[instance.tls]\n");
        for (k, v) in tls {
            t.push_str(&format!("{k} = {v}\n"));
        }
    }
    t
}

fn quoted(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

#[test]
fn tls_verdicts_on_real_servers() {
    const SECRET: &str = "Tls-Walrus-5521-secret";
    let dir = temp_dir("tls");
    let ca = Ca::new(&dir, "ca");
    let other_ca = Ca::new(&dir, "other-ca");
    let good = ca.leaf(&dir, "good", &["localhost", "127.0.0.1"], -1, 365);
    let expiring = ca.leaf(&dir, "expiring", &["localhost", "127.0.0.1"], -1, 3);
    let expired = ca.leaf(&dir, "expired", &["localhost", "127.0.0.1"], -30, -1);
    let elsewhere = ca.leaf(&dir, "elsewhere", &["redis.internal"], -1, 365);
    let untrusted = other_ca.leaf(&dir, "untrusted", &["localhost", "127.0.0.1"], -1, 365);
    let client = ca.leaf(&dir, "client", &["redpulse-client"], -1, 365);
    let lonely = self_signed(&dir, "selfsigned");

    let (auth, auth_port) = tls_server(&good, &ca.pem_path, false, &["--requirepass", SECRET]);
    let (_mtls, mtls_port) = tls_server(&good, &ca.pem_path, true, &[]);
    let (_untrusted, untrusted_port) = tls_server(&untrusted, &ca.pem_path, false, &[]);
    let (_expired, expired_port) = tls_server(&expired, &ca.pem_path, false, &[]);
    let (_elsewhere, elsewhere_port) = tls_server(&elsewhere, &ca.pem_path, false, &[]);
    let (_lonely, lonely_port) = tls_server(&lonely, &ca.pem_path, false, &[]);
    let (_expiring, expiring_port) = tls_server(&expiring, &ca.pem_path, false, &[]);
    let plaintext = RedisServer::start(&[]);

    let url = |port: u16| format!("rediss://127.0.0.1:{port}");
    let mut toml = format!(
        "interval = \"100ms\"\ntimeout = \"500ms\"\n\n[tls]\nca_file = {}\n",
        quoted(&ca.pem_path)
    );
    toml += &instance(
        "auth",
        &format!("rediss://:{SECRET}@127.0.0.1:{auth_port}"),
        &[],
    );
    toml += &instance(
        "mtls",
        &url(mtls_port),
        &[
            ("cert_file", quoted(&client.0)),
            ("key_file", quoted(&client.1)),
        ],
    );
    toml += &instance("mtls-nocert", &url(mtls_port), &[]);
    toml += &instance("untrusted", &url(untrusted_port), &[]);
    toml += &instance("expired", &url(expired_port), &[]);
    toml += &instance("mismatch", &url(elsewhere_port), &[]);
    toml += &instance(
        "named",
        &url(elsewhere_port),
        &[("server_name", "\"redis.internal\"".into())],
    );
    toml += &instance(
        "insecure",
        &url(lonely_port),
        &[("insecure_skip_verify", "true".into())],
    );
    toml += &instance("plaintext", &url(plaintext.port), &[]);
    toml += &instance("expiring", &url(expiring_port), &[]);
    let rp = Redpulse::start_with_config(&toml, &[]);

    for name in ["auth", "mtls", "named", "insecure"] {
        let (code, v) = rp.wait_status(name, "ok", None);
        assert_eq!(code, 200, "{name}: {v}");
        assert_eq!(v["tls"], true, "{name}: {v}");
        let days = v["tls_cert_expires_in_days"].as_f64().unwrap();
        assert!((363.0..=366.0).contains(&days), "{name}: {v}");
    }
    for (name, words) in [
        ("mtls-nocert", "client certificate"),
        ("untrusted", "untrusted"),
        ("expired", "expired"),
        ("mismatch", "name mismatch"),
        ("plaintext", "TLS"),
    ] {
        let (code, v) = rp.wait_status(name, "down", Some("tls_error"));
        assert_eq!(code, 503, "{name}: {v}");
        let error = v["error"].as_str().unwrap();
        eprintln!("{name}: {error}");
        assert!(error.contains(words), "{name}: {error}");
        assert_eq!(v["tls"], true, "{name}: {v}");
    }
    let (code, v) = rp.wait_status("expiring", "degraded", Some("tls_cert_expiring"));
    assert_eq!(code, 503, "{v}");
    let days = v["tls_cert_expires_in_days"].as_f64().unwrap();
    assert!((2.8..=3.1).contains(&days), "{v}");

    // One handshake for the connection's life: no new connections while
    // redpulse polls over TLS 20 times and more.
    let mut watch = auth.client();
    let conns =
        |c: &mut Client| info_field(&c.info("stats"), "total_connections_received").unwrap();
    let before = conns(&mut watch);
    let polls_before = rp.metric("redpulse_polls_total{result=\"ok\"}").unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    let polls = rp.metric("redpulse_polls_total{result=\"ok\"}").unwrap() - polls_before;
    assert!(
        polls >= 20.0 * 6.0,
        "only {polls} ok polls in 3 s over 6 healthy TLS instances"
    );
    assert_eq!(conns(&mut watch), before, "redpulse reconnected");
    let (_, metrics) = rp.get("/metrics");
    assert!(
        metrics.contains("redpulse_tls_cert_not_after_seconds{instance=\"auth\"}"),
        "{metrics}"
    );

    // The password crossed only inside TLS: not in any answer or the log.
    let mut everything = rp.log_text();
    for path in ["/health/redis/auth", "/health/redis?all=1", "/metrics"] {
        everything.push_str(&rp.get(path).1);
    }
    assert!(!everything.contains(SECRET), "the password leaked");
}

#[test]
fn tls_file_problems_exit_2_naming_the_file_and_key() {
    let dir = temp_dir("tls-files");
    let ca = Ca::new(&dir, "ca");
    let a = ca.leaf(&dir, "a", &["localhost"], -1, 365);
    let b = ca.leaf(&dir, "b", &["localhost"], -1, 365);
    let not_pem = write_file(&dir, "not.pem", "just text\n");
    let cases = [
        (
            format!("ca_file = {}", quoted(&dir.join("missing.crt"))),
            "missing.crt",
        ),
        (
            format!("ca_file = {}", quoted(&not_pem)),
            "no PEM certificate",
        ),
        (
            format!("cert_file = {}\nkey_file = {}", quoted(&a.0), quoted(&b.1)),
            "does not match",
        ),
        (format!("cert_file = {}", quoted(&a.0)), "key_file"),
        (format!("key_file = {}", quoted(&not_pem)), "cert_file"),
        ("ca_fil = \"x\"".to_string(), "ca_fil"),
    ];
    for (tls, want) in cases {
        let toml =
            format!("[tls]\n{tls}\n\n[[instance]]\nname = \"x\"\nurl = \"rediss://127.0.0.1:1\"\n");
        let path = write_file(&dir, "redpulse.toml", &toml);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_redpulse"))
            .args(["check-config", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{tls}: {err}");
        assert!(err.contains(want), "{tls}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
