//! redpulse's own door, from outside: a web config (the exporter-toolkit
//! format) with basic auth users hashed by htpasswd, extra headers and a
//! rate limit, applied to a real process; reloaded on change (a broken
//! file keeps the running one); refused at start and by check-config with
//! one line naming the file and the key.

mod support;

use std::process::Command;
use support::*;

fn get(rp: &Redpulse, path: &str, auth: Option<&str>) -> (u16, Vec<String>, String) {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    http_with(([127, 0, 0, 1], rp.port).into(), "GET", path, &headers).unwrap()
}

#[test]
fn basic_auth_guards_everything_but_the_probes_and_reloads_with_the_file() {
    let server = RedisServer::start(&[]);
    let dir = temp_dir("web-auth");
    let hash = htpasswd_hash("correct horse");
    let web = write_file(
        &dir,
        "web.yml",
        &format!(
            "basic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        ),
    );
    let toml = format!(
        "interval = \"100ms\"\nwatch_interval = \"100ms\"\nweb_config_file = \"{}\"\n\n\
         [[instance]]\nname = \"cache\"\nurl = \"{}\"\n\n[[heartbeat]]\nname = \"job\"\ninterval = \"1h\"\n",
        web.display(),
        server.url()
    );
    let rp = Redpulse::start_with_config(&toml, &[]);
    let good = basic_auth("prometheus", "correct horse");
    wait_for(WAIT, "cache to be ok", || {
        let (code, _, body) = get(&rp, "/health/redis/cache", Some(&good));
        (code == 200 && body.contains("\"status\":\"ok\"")).then_some(())
    });
    // Probes: open.
    for path in ["/healthz", "/-/healthy", "/readyz", "/-/ready"] {
        assert_eq!(get(&rp, path, None).0, 200, "{path}");
    }
    // Everything else: 401 without a valid credential, unknown paths too.
    for (path, auth) in [
        ("/health/redis/cache", None),
        (
            "/health/redis/cache",
            Some(basic_auth("prometheus", "wrong")),
        ),
        (
            "/health/redis/cache",
            Some(basic_auth("nobody", "correct horse")),
        ),
        (
            "/health/redis/cache",
            Some("Bearer correct horse".to_string()),
        ),
        ("/metrics", None),
        ("/", None),
        ("/events", None),
        ("/no/such/path", None),
    ] {
        let (code, headers, body) = get(&rp, path, auth.as_deref());
        assert_eq!(code, 401, "{path} {auth:?}");
        assert!(
            headers.contains(&"www-authenticate: basic realm=\"redpulse\"".to_string()),
            "{headers:?}"
        );
        assert_eq!(body, "{\"error\":\"unauthorized\"}");
    }
    assert_eq!(get(&rp, "/no/such/path", Some(&good)).0, 404);
    // A ping without auth is refused and not recorded.
    let addr = ([127, 0, 0, 1], rp.port).into();
    assert_eq!(
        http_with(addr, "POST", "/heartbeat/job", &[]).unwrap().0,
        401
    );
    let (code, _, body) = get(&rp, "/health/heartbeat/job", Some(&good));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"last_ping\":null"), "recorded: {body}");
    // Claiming to be a peer does not help.
    let forged = http_with(
        addr,
        "GET",
        "/health/redis/cache",
        &[("x-redpulse-forwarded", "1")],
    )
    .unwrap();
    assert_eq!(forged.0, 401);
    // Every answer carries the security headers and the file's own.
    let (_, headers, _) = get(&rp, "/healthz", None);
    for h in [
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "x-frame-options: deny",
    ] {
        assert!(headers.contains(&h.to_string()), "{h}: {headers:?}");
    }
    let (code, _, metrics) = get(&rp, "/metrics", Some(&good));
    assert_eq!(code, 200);
    // Counted by hand: the 8 refusals above, the ping, the forged peer.
    assert_eq!(
        metric_value(&metrics, "redpulse_http_auth_failures_total"),
        10.0
    );
    assert_eq!(
        metric_value(&metrics, "redpulse_web_config_last_reload_successful"),
        1.0
    );

    // A broken file: the running config stays, the metric says so.
    std::fs::write(&web, "basic_auth_users:\n  prometheus: not-a-hash\n").unwrap();
    wait_for(WAIT, "the broken web config to be noticed", || {
        let (_, _, m) = get(&rp, "/metrics", Some(&good));
        (metric_value(&m, "redpulse_web_config_last_reload_successful") == 0.0).then_some(())
    });
    assert_eq!(get(&rp, "/health/redis/cache", Some(&good)).0, 200);
    // The other mistakes a reload can meet keep the running config too:
    // an unknown key, a certificate that does not exist, a key that does
    // not match its certificate.
    let ca = support::pki::Ca::new(&dir, "ca");
    ca.leaf(&dir, "one", &["localhost"], -1, 30);
    ca.leaf(&dir, "two", &["localhost"], -1, 30);
    for broken in [
        format!("basic_auth_users:\n  prometheus: {hash}\nbasic_auth_userz: {{}}\n"),
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: two.key\n".to_string(),
        "tls_server_config:\n  cert_file: one.crt\n  key_file: two.key\n".to_string(),
    ] {
        // Good first, so each broken file is a change that is noticed.
        std::fs::write(&web, format!("basic_auth_users:\n  prometheus: {hash}\n")).unwrap();
        wait_for(WAIT, "the good web config", || {
            let (_, _, m) = get(&rp, "/metrics", Some(&good));
            (metric_value(&m, "redpulse_web_config_last_reload_successful") == 1.0).then_some(())
        });
        std::fs::write(&web, &broken).unwrap();
        wait_for(WAIT, "the broken web config to be noticed", || {
            let (_, _, m) = get(&rp, "/metrics", Some(&good));
            (metric_value(&m, "redpulse_web_config_last_reload_successful") == 0.0).then_some(())
        });
        // Still plain HTTP, still the same user.
        assert_eq!(
            get(&rp, "/health/redis/cache", Some(&good)).0,
            200,
            "{broken}"
        );
    }
    // A new user: new requests use it, the old credential is refused.
    let other = htpasswd_hash("battery staple");
    std::fs::write(&web, format!("basic_auth_users:\n  grafana: {other}\n")).unwrap();
    let new = basic_auth("grafana", "battery staple");
    wait_for(WAIT, "the new web config to apply", || {
        (get(&rp, "/health/redis/cache", Some(&new)).0 == 200).then_some(())
    });
    assert_eq!(get(&rp, "/health/redis/cache", Some(&good)).0, 401);
    let (_, _, m) = get(&rp, "/metrics", Some(&new));
    assert_eq!(
        metric_value(&m, "redpulse_web_config_last_reload_successful"),
        1.0
    );
    // No secret in the log.
    let log = rp.log_text();
    for secret in ["correct horse", "battery staple", &hash, &other] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn the_rate_limit_answers_429_but_never_to_probes() {
    let dir = temp_dir("web-rate");
    let web = write_file(&dir, "web.yml", "rate_limit:\n  interval: 1h\n  burst: 3\n");
    let rp = Redpulse::start(&[
        "--web.config.file",
        web.to_str().unwrap(),
        "--target",
        "x=redis://127.0.0.1:1",
    ]);
    let codes: Vec<u16> = (0..5).map(|_| get(&rp, "/health/redis", None).0).collect();
    assert_eq!(&codes[3..], [429, 429], "{codes:?}");
    assert!(codes[..3].iter().all(|&c| c != 429), "{codes:?}");
    assert_eq!(get(&rp, "/-/healthy", None).0, 200);
}

#[test]
fn a_bad_web_config_is_one_line_naming_file_and_key_at_start_and_in_check_config() {
    let dir = temp_dir("web-bad");
    // A key that belongs to another certificate.
    let ca = support::pki::Ca::new(&dir, "ca");
    ca.leaf(&dir, "one", &["localhost"], -1, 30);
    ca.leaf(&dir, "two", &["localhost"], -1, 30);
    for (name, text, key) in [
        (
            "mismatch.yml",
            "tls_server_config:\n  cert_file: one.crt\n  key_file: two.key\n",
            "does not match",
        ),
        (
            "nocert.yml",
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: two.key\n",
            "missing.crt",
        ),
        (
            "unknown.yml",
            "tls_server_config:\n  cert_filse: a\n",
            "cert_filse",
        ),
        (
            "hash.yml",
            "basic_auth_users:\n  john: doe\n",
            "basic_auth_users",
        ),
        (
            "header.yml",
            "http_server_config:\n  headers:\n    Content-Type: x\n",
            "Content-Type",
        ),
        (
            "version.yml",
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS111\n",
            "min_version",
        ),
    ] {
        let web = write_file(&dir, name, text);
        let held = held_port();
        let out = Command::new(env!("CARGO_BIN_EXE_redpulse"))
            .args([
                "--listen",
                &format!("127.0.0.1:{held}"),
                "--target",
                "x=redis://127.0.0.1:1",
            ])
            .args(["--web.config.file", web.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(name) && err.contains(key), "{name}: {err}");
        let config = write_file(
            &dir,
            &format!("{name}.toml"),
            &format!("web_config_file = \"{name}\"\n"),
        );
        let out = Command::new(env!("CARGO_BIN_EXE_redpulse"))
            .args(["check-config", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(key), "{err}");
    }
    // A missing file, the same.
    let out = Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .args([
            "--web.config.file",
            "/nonexistent/web.yml",
            "--target",
            "x=redis://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/web.yml"));
    // A good one is summarised.
    let hash = htpasswd_hash("x");
    write_file(
        &dir,
        "good.yml",
        &format!("basic_auth_users:\n  a: {hash}\n  b: {hash}\n"),
    );
    let config = write_file(&dir, "good.toml", "web_config_file = \"good.yml\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .args(["check-config", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("TLS off, 2 user(s)"), "{said}");
}

/// A sample's value in exposition text (0 when absent is never assumed).
fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series}"))
}

/// `curl` over TLS trusting `ca`, with a client certificate when given:
/// the HTTP status, or None when the handshake failed.
fn curl_tls(
    port: u16,
    path: &str,
    ca: &std::path::Path,
    client: Option<(&std::path::Path, &std::path::Path)>,
) -> Option<u16> {
    need("curl");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        "--cacert",
    ])
    .arg(ca)
    .arg(format!("https://127.0.0.1:{port}{path}"));
    if let Some((cert, key)) = client {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    let out = cmd.output().unwrap();
    let code: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (out.status.success() && code != 0).then_some(code)
}

#[test]
fn tls_serves_https_only_verifies_client_certificates_and_picks_up_a_renewal() {
    use support::pki::{self_signed, Ca};
    let dir = temp_dir("web-tls");
    let ca = Ca::new(&dir, "server-ca");
    let (crt, key) = ca.leaf(&dir, "server", &["localhost", "127.0.0.1"], -1, 30);
    let clients = Ca::new(&dir, "client-ca");
    let (good_crt, good_key) = clients.leaf(&dir, "good-client", &["scraper"], -1, 30);
    let stranger = Ca::new(&dir, "other-ca");
    let (bad_crt, bad_key) = stranger.leaf(&dir, "stranger", &["scraper"], -1, 30);
    // A self-signed client certificate listed in the client CA file, as the
    // exporter-toolkit's own tests use (Go accepts it).
    let (selfie_crt, selfie_key) = self_signed(&dir, "selfie");
    let client_cas = write_file(
        &dir,
        "client-cas.pem",
        &(std::fs::read_to_string(&clients.pem_path).unwrap()
            + &std::fs::read_to_string(&selfie_crt).unwrap()),
    );
    let web = write_file(
        &dir,
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n  min_version: TLS13\n",
            client_cas.display()
        ),
    );
    let rp = Redpulse::start_tls(&[
        "--web.config.file",
        web.to_str().unwrap(),
        "--target",
        "x=redis://127.0.0.1:1",
    ]);
    let port = rp.port;
    let good = Some((good_crt.as_path(), good_key.as_path()));
    assert_eq!(curl_tls(port, "/healthz", &ca.pem_path, good), Some(200));
    assert_eq!(
        curl_tls(
            port,
            "/healthz",
            &ca.pem_path,
            Some((selfie_crt.as_path(), selfie_key.as_path()))
        ),
        Some(200),
        "a self-signed certificate listed as a client CA"
    );
    assert_eq!(
        curl_tls(port, "/healthz", &ca.pem_path, None),
        None,
        "no client certificate"
    );
    assert_eq!(
        curl_tls(
            port,
            "/healthz",
            &ca.pem_path,
            Some((bad_crt.as_path(), bad_key.as_path()))
        ),
        None,
        "a certificate from another CA"
    );
    // TLS 1.2 only: refused under min_version TLS13.
    need("openssl");
    let s_client = |extra: &[&str]| {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-CAfile",
            ])
            .arg(&ca.pem_path)
            .arg("-cert")
            .arg(&good_crt)
            .arg("-key")
            .arg(&good_key)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok12, _) = s_client(&["-tls1_2"]);
    assert!(!ok12, "a TLS 1.2-only client was served");
    let (ok13, said) = s_client(&["-tls1_3"]);
    assert!(ok13 && said.contains("TLSv1.3"), "{said}");
    // Plain HTTP to the TLS port: no answer at all.
    let plain = http_get(port, "/healthz");
    assert!(
        plain.is_err() || plain.as_ref().is_ok_and(|(c, _)| *c == 0),
        "{plain:?}"
    );

    // The certificate renewed on disk (by another CA): new connections
    // use it within 5 s, same process.
    let pid = rp.pid();
    let renewed = Ca::new(&dir, "renewed-ca");
    let (new_crt, new_key) = renewed.leaf(&dir, "renewed", &["localhost", "127.0.0.1"], -1, 30);
    std::fs::copy(&new_key, dir.join("server.key")).unwrap();
    std::fs::copy(&new_crt, dir.join("server.crt")).unwrap();
    let t = std::time::Instant::now();
    wait_for(
        std::time::Duration::from_secs(5),
        "the renewed certificate",
        || (curl_tls(port, "/healthz", &renewed.pem_path, good) == Some(200)).then_some(()),
    );
    println!("renewal seen after {:?}", t.elapsed());
    assert_eq!(
        curl_tls(port, "/healthz", &ca.pem_path, good),
        None,
        "the old certificate"
    );
    assert_eq!(rp.pid(), pid);
    let _ = crt;
    let _ = key;
}

#[test]
fn client_allowed_sans_and_request_only_modes_judge_as_go_does() {
    use support::pki::{self_signed, Ca};
    let dir = temp_dir("web-sans");
    let ca = Ca::new(&dir, "server-ca");
    ca.leaf(&dir, "server", &["localhost", "127.0.0.1"], -1, 30);
    let clients = Ca::new(&dir, "client-ca");
    let (one_crt, one_key) = clients.leaf(&dir, "one", &["one"], -1, 30);
    let (bad_crt, bad_key) = clients.leaf(&dir, "bad", &["bad"], -1, 30);
    let (any_crt, any_key) = self_signed(&dir, "any");
    for (mode, extra, client, served) in [
        (
            "RequireAndVerifyClientCert",
            "  client_allowed_sans: [one, test3]\n",
            (&one_crt, &one_key),
            true,
        ),
        (
            "RequireAndVerifyClientCert",
            "  client_allowed_sans: [one, test3]\n",
            (&bad_crt, &bad_key),
            false,
        ),
        ("RequireAnyClientCert", "", (&any_crt, &any_key), true),
        ("RequestClientCert", "", (&any_crt, &any_key), true),
        ("VerifyClientCertIfGiven", "", (&any_crt, &any_key), false),
    ] {
        let ca_line = if mode.contains("Verify") {
            format!("  client_ca_file: {}\n", clients.pem_path.display())
        } else {
            String::new()
        };
        let web = write_file(
            &dir,
            "web.yml",
            &format!(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {mode}\n{ca_line}{extra}"
            ),
        );
        let rp = Redpulse::start_tls(&[
            "--web.config.file",
            web.to_str().unwrap(),
            "--target",
            "x=redis://127.0.0.1:1",
        ]);
        let got = curl_tls(
            rp.port,
            "/healthz",
            &ca.pem_path,
            Some((client.0.as_path(), client.1.as_path())),
        );
        assert_eq!(got == Some(200), served, "{mode} {extra}: {got:?}");
        if mode == "VerifyClientCertIfGiven" || mode == "RequestClientCert" {
            assert_eq!(
                curl_tls(rp.port, "/healthz", &ca.pem_path, None),
                Some(200),
                "{mode} without a certificate"
            );
        }
    }
}

#[test]
fn a_heartbeat_with_a_token_takes_pings_that_carry_it_and_no_secret_is_ever_shown() {
    const TOKEN: &str = "tok-Zq7uniqueHEARTBEATsecret";
    const PASSWORD: &str = "pw-Xk9uniqueBASICAUTHsecret";
    let dir = temp_dir("web-token");
    let token_file = write_file(&dir, "job.token", &format!("{TOKEN}\n"));
    let hash = htpasswd_hash(PASSWORD);
    let web = write_file(
        &dir,
        "web.yml",
        &format!("basic_auth_users:\n  ops: {hash}\n"),
    );
    let toml = format!(
        "web_config_file = \"{}\"\n\n[[heartbeat]]\nname = \"job\"\ninterval = \"1h\"\ntoken_file = \"{}\"\n\n\
         [[heartbeat]]\nname = \"open\"\ninterval = \"1h\"\n\n[[instance]]\nname = \"x\"\nurl = \"redis://127.0.0.1:1\"\n",
        web.display(),
        token_file.display()
    );
    let config = write_file(&dir, "redpulse.toml", &toml);
    let rp = {
        // At trace level, so every line redpulse could write is written.
        let port = held_port();
        let log = dir.join("redpulse.log");
        let child = Command::new(env!("CARGO_BIN_EXE_redpulse"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "trace")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        wait_for(WAIT, "redpulse /healthz", || {
            (http_get(port, "/healthz").ok()?.0 == 200).then_some(())
        });
        (Guard(child), port)
    };
    let addr = ([127, 0, 0, 1], rp.1).into();
    let ops = basic_auth("ops", PASSWORD);
    let last_ping = || {
        let (_, _, body) = http_with(
            addr,
            "GET",
            "/health/heartbeat/job",
            &[("Authorization", &ops)],
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["last_ping"].clone()
    };
    // No token, a wrong one, and basic auth alone: 401, nothing recorded.
    let bearer_wrong = format!("Bearer {TOKEN}x");
    for headers in [
        vec![],
        vec![("Authorization", bearer_wrong.as_str())],
        vec![("Authorization", ops.as_str())],
    ] {
        assert_eq!(
            http_with(addr, "POST", "/heartbeat/job", &headers)
                .unwrap()
                .0,
            401,
            "{headers:?}"
        );
    }
    assert_eq!(
        http_with(addr, "POST", "/heartbeat/job?token=nope", &[])
            .unwrap()
            .0,
        401
    );
    assert!(last_ping().is_null());
    // The token as a bearer, and in the query (percent-encoding allowed).
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        http_with(
            addr,
            "POST",
            "/heartbeat/job",
            &[("Authorization", &bearer)]
        )
        .unwrap()
        .0,
        200
    );
    assert!(!last_ping().is_null());
    let encoded = TOKEN.replace('-', "%2D");
    assert_eq!(
        http_with(addr, "GET", &format!("/heartbeat/job?token={encoded}"), &[])
            .unwrap()
            .0,
        200
    );
    // A heartbeat without a token is a write like any other: basic auth.
    assert_eq!(
        http_with(addr, "POST", "/heartbeat/open", &[]).unwrap().0,
        401
    );
    assert_eq!(
        http_with(addr, "POST", "/heartbeat/open", &[("Authorization", &ops)])
            .unwrap()
            .0,
        200
    );
    // Nothing anywhere shows a secret: answers, metrics, the trace log
    // (once it has a poll's trace line).
    wait_for(WAIT, "a trace line", || {
        std::fs::read_to_string(dir.join("stderr.log"))
            .ok()?
            .contains("TRACE")
            .then_some(())
    });
    let mut seen = String::new();
    for path in [
        "/health/heartbeat/job",
        "/metrics",
        "/health/redis?all=1",
        "/events",
        "/history/heartbeat/job",
    ] {
        seen.push_str(
            &http_with(addr, "GET", path, &[("Authorization", &ops)])
                .unwrap()
                .2,
        );
    }
    seen.push_str(&std::fs::read_to_string(dir.join("redpulse.log")).unwrap());
    seen.push_str(&std::fs::read_to_string(dir.join("stderr.log")).unwrap());
    assert!(
        seen.contains("TRACE") && seen.contains("redpulse started"),
        "the trace log is there"
    );
    for secret in [TOKEN, PASSWORD, &hash] {
        assert!(!seen.contains(secret), "a secret was shown");
    }
}

#[test]
fn shards_and_regions_talk_over_https_with_basic_auth_and_a_forged_peer_is_refused() {
    use support::pki::Ca;
    let dir = temp_dir("web-peers");
    let ca = Ca::new(&dir, "ca");
    ca.leaf(&dir, "server", &["localhost", "127.0.0.1"], -1, 30);
    let ops_hash = htpasswd_hash("ops-password");
    let peer_hash = htpasswd_hash("peer-password");
    write_file(
        &dir,
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  ops: {ops_hash}\n  peer: {peer_hash}\n"
        ),
    );
    write_file(&dir, "peer.password", "peer-password\n");
    let names: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
    let fleet: String = names
        .iter()
        .map(|n| format!("{n}=redis://127.0.0.1:{}\n", held_port()))
        .collect();
    write_file(&dir, "fleet.txt", &fleet);
    let ports = [held_port(), held_port()];
    let common = format!(
        "interval = \"200ms\"\ntargets_file = \"fleet.txt\"\nweb_config_file = \"web.yml\"\n\
         peers = [\"https://127.0.0.1:{}\", \"https://127.0.0.1:{}\"]\n\n\
         [peer_client]\nca_file = \"{}\"\nusername = \"peer\"\npassword_file = \"peer.password\"\n",
        ports[0],
        ports[1],
        ca.pem_path.display()
    );
    let shards: Vec<Redpulse> = (0..2)
        .map(|k| {
            let config = write_file(
                &dir,
                &format!("shard{k}.toml"),
                &format!("shard = \"{k}/2\"\n{common}"),
            );
            Redpulse::start_tls_at(ports[k], &["--config", config.to_str().unwrap()])
        })
        .collect();
    let ops = Some(("ops", "ops-password"));
    // Every name answers from either shard, the other's through a forward.
    let mut forwarded = 0;
    for shard in &shards {
        for n in &names {
            let (code, headers, body) = wait_for(WAIT, "a verdict", || {
                let r = curl_https(
                    shard.port,
                    &format!("/health/redis/{n}"),
                    &ca.pem_path,
                    ops,
                    &[],
                );
                r.2.contains("\"status\":\"down\"").then_some(r)
            });
            assert_eq!(code, 503, "{n}: {body}");
            assert!(body.contains(&format!("\"instance\":\"{n}\"")), "{body}");
            forwarded += headers
                .iter()
                .filter(|h| h.starts_with("x-redpulse-shard:"))
                .count();
        }
    }
    assert_eq!(
        forwarded,
        names.len(),
        "each name is forwarded from the shard that does not own it"
    );
    // The fleet view gathers both shards.
    let (_, _, fleet_view) = curl_https(shards[0].port, "/health/redis", &ca.pem_path, ops, &[]);
    assert!(
        fleet_view.contains("\"instances\":12") && fleet_view.contains("\"shards\":2"),
        "{fleet_view}"
    );
    // Claiming to be a peer without credentials: refused.
    let (code, _, _) = curl_https(
        shards[1].port,
        "/health/redis/n0",
        &ca.pem_path,
        None,
        &["x-redpulse-forwarded: 1"],
    );
    assert_eq!(code, 401);
    // Two regions voting over https, each authenticating to the other.
    let closed = held_port();
    let region_ports = [held_port(), held_port()];
    let regions: Vec<Redpulse> = (0..2)
        .map(|k| {
            let config = write_file(
                &dir,
                &format!("region{k}.toml"),
                &format!(
                    "interval = \"200ms\"\nweb_config_file = \"web.yml\"\n\n\
                     [[instance]]\nname = \"c\"\nurl = \"redis://127.0.0.1:{closed}\"\n\n\
                     [consensus]\npeers = [\"https://127.0.0.1:{}\"]\nregion = \"r{k}\"\nquorum = 2\n\n\
                     [peer_client]\nca_file = \"{}\"\nusername = \"peer\"\npassword_file = \"peer.password\"\n",
                    region_ports[1 - k],
                    ca.pem_path.display()
                ),
            );
            Redpulse::start_tls_at(region_ports[k], &["--config", config.to_str().unwrap()])
        })
        .collect();
    let body = wait_for(WAIT, "both regions' votes", || {
        let (_, _, b) = curl_https(regions[0].port, "/health/redis/c", &ca.pem_path, ops, &[]);
        b.contains("\"votes\":{\"r0\":\"down\",\"r1\":\"down\"}")
            .then_some(b)
    });
    assert!(body.contains("\"quorum\":2"), "{body}");
    // The peer password is shown nowhere.
    for s in shards.iter().chain(&regions) {
        assert!(!s.log_text().contains("peer-password"));
    }
}

#[test]
fn the_readme_example_is_the_one_in_examples_and_check_config_accepts_it() {
    need("openssl");
    let readme = include_str!("../README.md");
    let section = &readme[readme.find("### Securing redpulse").unwrap()..];
    let section = &section[..section.find("### Heartbeats for queue workers").unwrap()];
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/secure");
    let dir = temp_dir("web-readme");
    for file in ["web.yml", "redpulse.toml", "prometheus.yml"] {
        let text = std::fs::read_to_string(examples.join(file)).unwrap();
        assert!(
            section.contains(&text),
            "README shows examples/secure/{file} as it is"
        );
        write_file(&dir, file, &text);
    }
    // The README's own certificate commands, run as written.
    let script = section
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    write_file(&dir, "fleet.txt", "cache=redis://127.0.0.1:6379\n");
    write_file(&dir, "payments-worker.token", "a-token\n");
    write_file(&dir, "peer.password", "change-me\n");
    let out = Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .args(["check-config", "--config"])
        .arg(dir.join("redpulse.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("TLS on, 2 user(s)") && !said.contains("warning"),
        "{said}"
    );
}

#[test]
fn a_flood_of_wrong_passwords_does_not_stop_anyone_elses_answers() {
    let dir = temp_dir("web-flood");
    // Cost 10, as htpasswd makes by default: each wrong password is a
    // real bcrypt check.
    let hash = htpasswd_hash_cost("right", 10);
    let web = write_file(
        &dir,
        "web.yml",
        &format!("basic_auth_users:\n  ops: {hash}\n"),
    );
    let rp = Redpulse::start(&[
        "--web.config.file",
        web.to_str().unwrap(),
        "--target",
        "x=redis://127.0.0.1:1",
    ]);
    let port = rp.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..8)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut refused = 0u32;
                // Bounded: at most 10,000 requests or until told to stop.
                for n in 0..10_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    // Never the same password twice: no cache helps.
                    let auth = basic_auth("ops", &format!("wrong-{t}-{n}"));
                    let addr = ([127, 0, 0, 1], port).into();
                    if let Ok((401, _, _)) =
                        http_with(addr, "GET", "/health/redis", &[("Authorization", &auth)])
                    {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    let good = basic_auth("ops", "right");
    let addr = ([127, 0, 0, 1], port).into();
    let mut answered = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(4) {
        // Every answer arrives (each request has the helper's 5 s read
        // budget); the first pays bcrypt once, the rest are cached.
        let (code, _, body) = http_with(addr, "GET", "/health/redis", &[("Authorization", &good)])
            .expect("an authenticated answer during the flood");
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("\"instances\":1"), "{body}");
        answered += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let refused: u32 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    println!("{answered} authenticated answers during {refused} refused wrong passwords");
    assert!(refused >= 8, "the flood ran: {refused}");
    assert!(answered >= 20, "answers kept flowing: {answered}");
    // Probes too.
    assert_eq!(http_get(port, "/-/healthy").unwrap().0, 200);
}

/// What a client sees of one exporter-toolkit case.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// redpulse refuses the file: exit 2, the line holding this.
    LoadError(&'static str),
    /// The client's request got this HTTP status.
    Status(u16),
    /// No HTTP answer (TLS handshake refused, or plain HTTP to TLS).
    NoAnswer,
}

/// How a case's client connects: plain HTTP, or curl over TLS with these
/// extra arguments.
enum Client {
    Plain,
    Tls(&'static [&'static str]),
}

/// Certificates as the toolkit's testdata has them, made here with
/// openssl: an RSA server certificate (its cipher cases are ECDHE_RSA)
/// from a CA, and two self-signed client certificates, the second with
/// the SAN "test3".
fn toolkit_certificates(dir: &std::path::Path) {
    let script = r#"
set -e
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=toolkit CA" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout server.key -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -days 30 -copy_extensions copy -out server.crt 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=test" -addext "subjectAltName=DNS:test" \
  -keyout client_selfsigned.key -out client_selfsigned.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=test2" -addext "subjectAltName=DNS:test3" \
  -keyout client2_selfsigned.key -out client2_selfsigned.pem 2>/dev/null
"#;
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_exporter_toolkits_own_cases_come_out_as_in_the_toolkit() {
    need("openssl");
    need("curl");
    let dir = temp_dir("web-toolkit");
    toolkit_certificates(&dir);
    let key_inline: String = std::fs::read_to_string(dir.join("server.key"))
        .unwrap()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let verify_if_given = format!("{tls}  client_auth_type: VerifyClientCertIfGiven\n");
    let some_ciphers = format!(
        "{verify_if_given}  cipher_suites:\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  min_version: TLS12\n  max_version: TLS12\n"
    );
    let users = format!(
        "{tls}basic_auth_users:\n  alice: {}\n",
        htpasswd_hash("alice123")
    );
    use Client::*;
    use Outcome::*;
    // Every case of the toolkit's TestServerBehaviour (web/tls_config_test.go
    // at 19a7c2d), its file re-created here, and the toolkit's outcome;
    // where redpulse differs on purpose, the comment says which rule.
    let cases: Vec<(&str, String, Client, Outcome)> = vec![
        ("empty", String::new(), Plain, Status(200)),
        ("junk", "hWkNKCp3fvIx3jKnsaBI\nTuEjdwNS8A2vYdFbiKqr\n".into(), Plain, LoadError("invalid type")),
        ("junk_key", "tls_server_config:\n  cert_filse: server.crt\n".into(), Plain, LoadError("cert_filse")),
        ("certPath_empty", "tls_server_config:\n  cert_file: \"\"\n  key_file: server.key\n".into(), Plain, LoadError("cert or cert_file")),
        ("cert_empty", "tls_server_config:\n  cert: \"\"\n  key_file: server.key\n".into(), Plain, LoadError("cert or cert_file")),
        ("keyPath_empty", "tls_server_config:\n  cert_file: server.crt\n  key_file: \"\"\n".into(), Plain, LoadError("key or key_file")),
        ("key_empty", "tls_server_config:\n  cert_file: server.crt\n  key: \"\"\n".into(), Plain, LoadError("key or key_file")),
        ("certPath_keyPath_empty", "tls_server_config:\n  cert_file: \"\"\n  key_file: \"\"\n  client_auth_type: \"x\"\n".into(), Plain, LoadError("cert or cert_file")),
        ("certPath_invalid", "tls_server_config:\n  cert_file: somefile\n  key_file: server.key\n".into(), Plain, LoadError("No such file")),
        ("keyPath_invalid", "tls_server_config:\n  cert_file: server.crt\n  key_file: somefile\n".into(), Plain, LoadError("No such file")),
        ("certPath_keyPath_invalid", "tls_server_config:\n  cert_file: somefile\n  key_file: somefile\n".into(), Plain, LoadError("No such file")),
        ("noAuth.bad", format!("{tls}  client_ca_file: /dev/null\n"), Plain, LoadError("without a client_auth_type")),
        ("clientCAs_invalid", format!("{tls}  client_ca_file: somefile\n  client_auth_type: VerifyClientCertIfGiven\n"), Plain, LoadError("No such file")),
        ("user_list_invalid", format!("{tls}basic_auth_users:\n  john: doe\n"), Plain, LoadError("not a bcrypt hash")),
        ("inventedCiphers", format!("{verify_if_given}  cipher_suites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048\n"), Plain, LoadError("unknown cipher")),
        ("inventedCurves", format!("{verify_if_given}  curve_preferences:\n    - CurveP257\n"), Plain, LoadError("unknown curve")),
        ("wrongTLSVersion", format!("{verify_if_given}  min_version: TLS111\n"), Plain, LoadError("unknown TLS version")),
        // The toolkit answers plain HTTP on a TLS port with a 400; no answer here.
        ("noAuth.good plain client", verify_if_given.clone(), Plain, NoAnswer),
        ("noAuth.good", verify_if_given.clone(), Tls(&[]), Status(200)),
        ("tlsInline", format!("tls_server_config:\n  cert: |\n{}  key: |\n{key_inline}  client_auth_type: VerifyClientCertIfGiven\n",
            std::fs::read_to_string(dir.join("server.crt")).unwrap().lines().map(|l| format!("    {l}\n")).collect::<String>()), Tls(&[]), Status(200)),
        ("noAuth.good, a TLS 1.1 client", verify_if_given.clone(), Tls(&["--tls-max", "1.1"]), NoAnswer),
        ("allCiphers", format!("{verify_if_given}  cipher_suites:\n  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  - TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA\n  - TLS_AES_128_GCM_SHA256\n"), Tls(&[]), Status(200)),
        ("someCiphers", some_ciphers.clone(), Tls(&["--ciphers", "ECDHE-RSA-AES128-GCM-SHA256"]), Status(200)),
        ("someCiphers, a CBC-only client", some_ciphers.clone(), Tls(&["--ciphers", "ECDHE-RSA-AES256-SHA", "--tls-max", "1.2"]), NoAnswer),
        ("allCurves", format!("{verify_if_given}  curve_preferences:\n    - CurveP256\n    - CurveP384\n    - CurveP521\n    - X25519\n"), Tls(&[]), Status(200)),
        ("someCurves, a P-384 client", format!("{verify_if_given}  min_version: TLS13\n  curve_preferences:\n  - CurveP384\n"), Tls(&["--curves", "secp384r1"]), Status(200)),
        ("someCurves, no common curve", format!("{verify_if_given}  min_version: TLS13\n  curve_preferences:\n  - CurveP256\n"), Tls(&["--curves", "secp384r1"]), NoAnswer),
        ("noHTTP2", format!("{verify_if_given}  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  max_version: TLS12\nhttp_server_config:\n  http2: false\n"), Tls(&[]), Status(200)),
        // Go refuses HTTP/2 without AES-128-GCM; redpulse serves HTTP/1.1 only.
        ("noHTTP2Cipher", format!("{verify_if_given}  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  max_version: TLS12\n"), Tls(&[]), Status(200)),
        ("headers", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000; includeSubDomains\n    X-Content-Type-Options: nosniff\n    X-XSS-Protection: 1\n    Content-Security-Policy: \"default-src 'self' *.test.example.net\"\n".into(), Plain, Status(200)),
        ("headers_content_type_options", "http_server_config:\n  headers:\n    X-Content-Type-Options: foo\n".into(), Plain, LoadError("invalid value")),
        ("headers_frame_options", "http_server_config:\n  headers:\n    X-Frame-Options: foo\n".into(), Plain, LoadError("invalid value")),
        ("headers_extra_header", "http_server_config:\n  headers:\n    Content-Type: foo\n".into(), Plain, LoadError("can not be configured")),
        ("requireanyclientcert", format!("{tls}  client_auth_type: RequireAnyClientCert\n"), Tls(&["--cert", "client_selfsigned.pem", "--key", "client_selfsigned.key"]), Status(200)),
        ("requireandverifyclientcert", format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client_selfsigned.pem\n"), Tls(&["--cert", "client_selfsigned.pem", "--key", "client_selfsigned.key"]), Status(200)),
        ("client_san.good", format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client2_selfsigned.pem\n  client_allowed_sans:\n    - one\n    - test3\n    - two\n"), Tls(&["--cert", "client2_selfsigned.pem", "--key", "client2_selfsigned.key"]), Status(200)),
        ("client_san.bad", format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client2_selfsigned.pem\n  client_allowed_sans:\n    - bad\n"), Tls(&["--cert", "client2_selfsigned.pem", "--key", "client2_selfsigned.key"]), NoAnswer),
        ("rate_limiter_nonblocking", "rate_limit:\n  interval: 0\n  burst: 0\n".into(), Plain, Status(200)),
        ("rate_limiter_one_second", "rate_limit:\n  interval: \"1s\"\n  burst: 0\n".into(), Plain, Status(429)),
        ("users, no credential", users.clone(), Tls(&[]), Status(401)),
        ("users, alice", users.clone(), Tls(&["-u", "alice:alice123"]), Status(200)),
        ("users, a wrong password", users.clone(), Tls(&["-u", "alice:alice1234"]), Status(401)),
    ];
    for (i, (name, yaml, client, want)) in cases.into_iter().enumerate() {
        let web = write_file(&dir, &format!("case{i}.yml"), &yaml);
        let port = held_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_redpulse"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--target",
                "x=redis://127.0.0.1:1",
                "--data-dir",
            ])
            .arg(dir.join(format!("data{i}")))
            .arg("--web.config.file")
            .arg(&web)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Up (it accepts), or refused the file (it exited).
        let exited = wait_for(WAIT, "redpulse to start or refuse", || {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Some(status));
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| None)
        });
        let got = match exited {
            Some(status) => {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert_eq!(status.code(), Some(2), "{name}: {err}");
                match want {
                    LoadError(fragment) if err.contains(fragment) => LoadError(fragment),
                    _ => panic!("{name}: refused with {err}"),
                }
            }
            None => {
                let got = match client {
                    Plain => match http_get(port, "/health/redis") {
                        Ok((code, _)) => Status(code),
                        Err(_) => NoAnswer,
                    },
                    Tls(args) => {
                        let out = Command::new("curl")
                            .args([
                                "-s",
                                "-o",
                                "/dev/null",
                                "-w",
                                "%{http_code}",
                                "--max-time",
                                "5",
                                "--cacert",
                                "ca.crt",
                            ])
                            .args(args)
                            .arg(format!("https://127.0.0.1:{port}/health/redis"))
                            .current_dir(&dir)
                            .output()
                            .unwrap();
                        match String::from_utf8_lossy(&out.stdout).trim().parse::<u16>() {
                            Ok(code) if code > 0 => Status(code),
                            _ => NoAnswer,
                        }
                    }
                };
                let _ = child.kill();
                let _ = child.wait();
                got
            }
        };
        // The instance is down (a closed port), so a served fleet view is 503.
        let want = match want {
            Status(200) => Status(503),
            w => w,
        };
        assert_eq!(got, want, "{name}");
    }
}
