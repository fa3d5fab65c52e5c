//! Servers redpulse does not control, misbehaving on purpose on loopback:
//! each instance must go down with the right reason, the process must stay
//! under a fixed memory bound, and a healthy instance watched alongside
//! must stay fresh. Plus the HTTP side under abuse.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// Largest peak RSS (VmHWM, so a spike between samples counts too) the
/// redpulse process may reach while watching the hostile fleet: it holds a
/// few KiB per instance plus bounded buffers (4 MiB per reply, 64 Ki
/// elements per reply).
const RSS_BOUND_KB: u64 = 48 * 1024;

/// How a hostile server treats a connection after reading its handshake.
type Behaviour = fn(&mut TcpStream, &AtomicBool);

/// Serve every connection with `behave` on its own thread until `stop`.
fn hostile(stop: &Arc<AtomicBool>, behave: Behaviour) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = stop.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(200)))
                            .unwrap();
                        // Wait for the handshake so replies follow a request.
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        behave(&mut s, &stop);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    port
}

fn random_bytes(s: &mut TcpStream, _: &AtomicBool) {
    // xorshift noise after a byte that is no RESP type.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = vec![0xffu8];
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    let _ = s.write_all(&out);
    std::thread::sleep(Duration::from_secs(2));
}

fn huge_bulk_length(s: &mut TcpStream, _: &AtomicBool) {
    let _ = s.write_all(b"$99999999999\r\n");
    std::thread::sleep(Duration::from_secs(2));
}

fn endless_line(s: &mut TcpStream, stop: &AtomicBool) {
    let _ = s.write_all(b"+");
    let chunk = [b'a'; 8192];
    // Bounded: at most 64 MiB per connection, and only while the test runs.
    for _ in 0..8192 {
        if stop.load(Ordering::Relaxed) || s.write_all(&chunk).is_err() {
            return;
        }
    }
}

fn never_answers(_: &mut TcpStream, stop: &AtomicBool) {
    for _ in 0..600 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn byte_at_a_time(s: &mut TcpStream, stop: &AtomicBool) {
    let reply = b"+OK\r\n$20\r\n# Server\r\nrun_id:x\r\n";
    for &b in reply.iter().cycle().take(2000) {
        if stop.load(Ordering::Relaxed) || s.write_all(&[b]).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn nested_arrays(s: &mut TcpStream, _: &AtomicBool) {
    let _ = s.write_all(&b"*1\r\n".repeat(100_000));
    std::thread::sleep(Duration::from_secs(2));
}

/// `*1048576` followed by a million RESP3 nulls: 3 MiB on the wire that
/// once decoded to a million frames.
fn flat_nulls(s: &mut TcpStream, stop: &AtomicBool) {
    let _ = s.write_all(b"*1048576\r\n");
    let chunk = b"_\r\n".repeat(64 * 1024);
    for _ in 0..16 {
        if stop.load(Ordering::Relaxed) || s.write_all(&chunk).is_err() {
            return;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
}

/// Arrays that each announce a million elements, nested 64 deep, then
/// leaves: the announced product is astronomical.
fn nested_wide_arrays(s: &mut TcpStream, stop: &AtomicBool) {
    let _ = s.write_all(&b"*1000000\r\n".repeat(64));
    let chunk = b":1\r\n".repeat(64 * 1024);
    for _ in 0..16 {
        if stop.load(Ordering::Relaxed) || s.write_all(&chunk).is_err() {
            return;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
}

/// An array of small bulks that runs past the reply size cap.
fn many_small_bulks(s: &mut TcpStream, stop: &AtomicBool) {
    let _ = s.write_all(b"*60000\r\n");
    let bulk = format!("$100\r\n{}\r\n", "b".repeat(100));
    let chunk = bulk.repeat(1000);
    for _ in 0..60 {
        if stop.load(Ordering::Relaxed) || s.write_all(chunk.as_bytes()).is_err() {
            return;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
}

fn closed_mid_reply(s: &mut TcpStream, _: &AtomicBool) {
    let _ = s.write_all(b"$100\r\nabc");
    // Dropping the stream closes it halfway through the bulk.
}

/// The process's peak resident set (VmHWM) in KiB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn hostile_servers_are_down_with_the_right_reason_and_harm_nobody_else() {
    let healthy = RedisServer::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let cases: [(&str, Behaviour, &str); 10] = [
        ("random", random_bytes, "protocol_error"),
        ("hugebulk", huge_bulk_length, "protocol_error"),
        ("endless", endless_line, "protocol_error"),
        ("silent", never_answers, "timeout"),
        ("trickle", byte_at_a_time, "timeout"),
        ("nested", nested_arrays, "protocol_error"),
        ("halfway", closed_mid_reply, "connection_closed"),
        ("flatnulls", flat_nulls, "protocol_error"),
        ("widenest", nested_wide_arrays, "protocol_error"),
        ("smallbulks", many_small_bulks, "protocol_error"),
    ];
    let mut args: Vec<String> = ["--interval", "200ms", "--timeout", "500ms"]
        .map(String::from)
        .to_vec();
    args.extend(["--target".to_string(), format!("healthy={}", healthy.url())]);
    for (name, behave, _) in cases {
        let port = hostile(&stop, behave);
        args.extend([
            "--target".to_string(),
            format!("{name}=redis://127.0.0.1:{port}"),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rp = Redpulse::start(&args);
    for (name, _, reason) in cases {
        let (code, v) = rp.wait_status(name, "down", Some(reason));
        assert_eq!(code, 503, "{name}: {v}");
    }
    // Keep them misbehaving for a while: the healthy instance stays fresh
    // and the process stays small the whole time.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let (code, v) = rp.health("healthy");
        assert_eq!(code, 200, "{v}");
        assert!(
            v["age_ms"].as_u64().unwrap() < 600,
            "healthy instance went stale: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak = peak_rss_kb(rp.pid());
    eprintln!("peak RSS with the hostile fleet: {peak} KiB");
    assert!(peak <= RSS_BOUND_KB, "peak RSS reached {peak} KiB");
    for (name, _, reason) in cases {
        let (_, v) = rp.health(name);
        assert_eq!(
            (v["status"].as_str(), v["reason"].as_str()),
            (Some("down"), Some(reason)),
            "{name}: {v}"
        );
    }
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn health_is_served_during_a_slowloris_and_odd_paths_are_404() {
    let redis = RedisServer::start(&[]);
    let rp = Redpulse::start(&[
        "--interval",
        "200ms",
        "--target",
        &format!("r={}", redis.url()),
    ]);
    rp.wait_status("r", "ok", None);
    // Hundreds of connections that send half a request head and stall.
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", rp.port)).unwrap();
        s.write_all(b"GET /health/redis/r HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        stalled.push(s);
    }
    for _ in 0..20 {
        let started = Instant::now();
        let (code, v) = rp.health("r");
        assert_eq!(code, 200, "{v}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "health took {:?}",
            started.elapsed()
        );
    }
    // A header that never ends is cut off at the head size limit.
    let mut big = TcpStream::connect(("127.0.0.1", rp.port)).unwrap();
    // The write may fail once the server has given up on the head.
    let _ = big.write_all(b"GET / HTTP/1.1\r\nX-Big: ");
    let _ = big.write_all(&vec![b'a'; 64 * 1024]);
    // Closed (with a 431 or nothing), not left hanging.
    let answer = read_until_closed(&mut big, Duration::from_secs(5)).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    for path in [
        "/health/redis/../../etc/passwd",
        "/health/redis/%72",
        "/health/redis/r%00",
        "//health/redis/r",
        "/health/redis/r/extra",
    ] {
        assert_eq!(rp.get(path).0, 404, "{path}");
    }
    let long = format!("/health/redis/{}", "x".repeat(8000));
    assert_eq!(rp.get(&long).0, 404);

    // A stalled head is cut off by the header read timeout (10 s).
    let mut first = stalled.swap_remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = first.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "stalled connection kept for {waited:?}"
    );
    drop(stalled);
}

#[test]
fn connections_past_the_cap_are_closed_at_once_and_service_resumes() {
    let redis = RedisServer::start(&[]);
    let rp = Redpulse::start(&[
        "--max-http-connections",
        "20",
        "--target",
        &format!("r={}", redis.url()),
    ]);
    rp.wait_status("r", "ok", None);
    // Fill every slot with kept-alive connections, each answered once so
    // the server has surely accepted it.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", rp.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"{\"status\":\"ok\"}") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        held.push(s);
    }
    let mut extra = TcpStream::connect(("127.0.0.1", rp.port)).unwrap();
    // The write may fail: the connection is closed on accept.
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let started = Instant::now();
    let answer = read_until_closed(&mut extra, Duration::from_secs(5)).unwrap();
    assert!(
        answer.is_empty(),
        "served past the cap: {}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the extra connection was not closed at once"
    );
    drop(held);
    // Slots free up as the server sees the held connections close.
    wait_for(WAIT, "service to resume", || {
        (http_get(rp.port, "/health/redis/r").ok()?.0 == 200).then_some(())
    });
}

#[test]
fn passwords_never_appear_in_any_output_even_at_trace_level() {
    const SECRET: &str = "Zebra-Quokka-7781-secret";
    let dir = temp_dir("secrets");
    // The same server also on a TLS port: AUTH then travels inside TLS.
    let ca = support::pki::Ca::new(&dir, "ca");
    let leaf = ca.leaf(&dir, "server", &["127.0.0.1"], -1, 30);
    let tls_port = held_port();
    let redis = RedisServer::start(&[
        "--requirepass",
        SECRET,
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        leaf.0.to_str().unwrap(),
        "--tls-key-file",
        leaf.1.to_str().unwrap(),
        "--tls-ca-cert-file",
        ca.pem_path.to_str().unwrap(),
        "--tls-auth-clients",
        "no",
    ]);
    let pw = write_file(&dir, "pw", &format!("{SECRET}\n"));
    let toml = format!(
        "interval = \"100ms\"\n\n[[instance]]\nname = \"url\"\nurl = \"redis://:{SECRET}@127.0.0.1:{port}\"\n\n\
[[instance]]\nname = \"file\"\nurl = \"redis://127.0.0.1:{port}\"\npassword_file = \"{}\"\n\n\
[[instance]]\nname = \"env\"\nurl = \"redis://127.0.0.1:{port}\"\npassword_env = \"REDPULSE_TEST_SECRET\"\n\n\
[[instance]]\nname = \"wrong\"\nurl = \"redis://:{SECRET}-but-wrong@127.0.0.1:{port}\"\n\n\
[[instance]]\nname = \"tls\"\nurl = \"rediss://:{SECRET}@127.0.0.1:{tls_port}\"\n\n\
[[instance]]\nname = \"tls-wrong\"\nurl = \"rediss://:{SECRET}-but-wrong@127.0.0.1:{tls_port}\"\n\n\
[tls]\nca_file = \"{}\"\n",
        pw.display(),
        ca.pem_path.display(),
        port = redis.port
    );
    let config = write_file(&dir, "redpulse.toml", &toml);
    let port = held_port();
    let log = dir.join("trace.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_redpulse"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir.join("data").to_str().unwrap(),
        ])
        .env("RUST_LOG", "trace")
        .env("REDPULSE_TEST_SECRET", SECRET)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("trace.err")).unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(child);
    let status = |name: &str| -> Option<String> {
        let (_, body) = http_get(port, &format!("/health/redis/{name}")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(v["status"].as_str()?.to_string())
    };
    for name in ["url", "file", "env", "tls"] {
        wait_for(WAIT, name, || (status(name)? == "ok").then_some(()));
    }
    for name in ["wrong", "tls-wrong"] {
        wait_for(WAIT, name, || (status(name)? == "down").then_some(()));
    }
    let mut everything = String::new();
    for path in [
        "/health/redis/url",
        "/health/redis/wrong",
        "/health/redis/tls",
        "/health/redis/tls-wrong",
        "/health/redis",
        "/health/redis?all=1",
        "/metrics",
        "/",
    ] {
        everything.push_str(&http_get(port, path).unwrap().1);
    }
    drop(child);
    everything.push_str(&std::fs::read_to_string(&log).unwrap());
    let err = std::fs::read_to_string(dir.join("trace.err")).unwrap();
    assert!(
        err.contains("TRACE") || err.contains("DEBUG"),
        "trace logging was not on"
    );
    everything.push_str(&err);
    assert!(!everything.contains(SECRET), "the password leaked");
    assert!(
        !everything.contains("Zebra-Quokka"),
        "part of the password leaked"
    );
}

/// A fake server on a loopback port: it answers the handshake, and for
/// every other read of a connection `answer(text read, INFO bulk reply)`
/// is written back. Counts the connections it accepts.
fn serve_fake(
    stop: Arc<AtomicBool>,
    accepted: Arc<std::sync::atomic::AtomicU32>,
    answer: fn(&str, &str) -> String,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            accepted.fetch_add(1, Ordering::Relaxed);
            let stop = stop.clone();
            std::thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc\r\nuptime_in_seconds:5\r\n# Clients\r\nconnected_clients:1\r\n# Replication\r\nrole:master\r\n";
                let bulk = format!("${}\r\n{info}\r\n", info.len());
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let n = match s.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => n,
                        Err(_) => continue,
                    };
                    let text = String::from_utf8_lossy(&buf[..n]);
                    // The handshake (CLIENT SETNAME, then INFO server) is
                    // answered properly by every fake.
                    let out = if text.contains("SETNAME") {
                        format!("+OK\r\n{bulk}")
                    } else {
                        answer(&text, &bulk)
                    };
                    if s.write_all(out.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A server that answers the handshake and every INFO properly (and a
/// metrics poll's other commands with an error each), then adds a stray
/// `+EXTRA` after each poll's replies: a stream out of step.
fn serve_with_trailing_bytes(
    stop: Arc<AtomicBool>,
    accepted: Arc<std::sync::atomic::AtomicU32>,
) -> u16 {
    serve_fake(stop, accepted, |text, bulk| {
        let mut out = String::new();
        if text.contains("INFO") {
            out.push_str(bulk);
            // A metrics poll's other commands, each refused as an unknown
            // command (one reply each).
            for _ in 0..text.matches("\r\n*").count() {
                out.push_str("-ERR unknown command\r\n");
            }
            out.push_str("+EXTRA\r\n");
        }
        out
    })
}

#[test]
fn bytes_left_after_the_replies_remake_the_connection_without_a_bad_verdict() {
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let port = serve_with_trailing_bytes(stop.clone(), accepted.clone());
    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("stray=redis://127.0.0.1:{port}"),
    ]);
    rp.wait_status("stray", "ok", None);
    let before = accepted.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1000));
    let after = accepted.load(Ordering::Relaxed);
    // Each poll's answer stands (ok), and each out-of-step connection is
    // re-made before the next poll rather than read from again.
    assert!(
        after - before >= 5,
        "only {} new connections over ~10 polls",
        after - before
    );
    let (code, v) = rp.health("stray");
    assert_eq!(code, 200, "{v}");
    stop.store(true, Ordering::Relaxed);
}

/// A server whose INFO replies are proper but whose LATENCY LATEST reply
/// claims a 2 MB bulk string, past the decoder's 1 MiB bound: a metrics
/// poll's other replies must not cost the verdict.
fn serve_oversized_latency(
    stop: Arc<AtomicBool>,
    accepted: Arc<std::sync::atomic::AtomicU32>,
) -> u16 {
    serve_fake(stop, accepted, |text, bulk| {
        let mut out = String::new();
        if text.contains("SLOWLOG") {
            // INFO ALL, SLOWLOG LEN, SLOWLOG GET 1, then the oversized
            // LATENCY LATEST header (and nothing for CONFIG: the stream
            // is out of step from there).
            out.push_str(bulk);
            out.push_str(":0\r\n*0\r\n$2000000\r\n");
        } else if text.contains("INFO") {
            out.push_str(bulk);
        }
        out
    })
}

#[test]
fn an_oversized_metrics_only_reply_costs_its_series_not_the_verdict() {
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let port = serve_oversized_latency(stop.clone(), accepted.clone());
    let dir = temp_dir("oversized");
    let config = write_file(
        &dir,
        "redpulse.toml",
        &format!(
            "interval = \"100ms\"\nmetrics_interval = \"300ms\"\nmetrics_fetch = \"always\"\n\
             [[instance]]\nname = \"big\"\nurl = \"redis://127.0.0.1:{port}\"\n"
        ),
    );
    let rp = Redpulse::start(&["--config", config.to_str().unwrap()]);
    rp.wait_status("big", "ok", None);
    // Metrics polls keep failing their LATENCY reply: counted, and each
    // re-makes the connection; every verdict in between stays ok.
    let body = wait_for(WAIT, "three LATENCY errors counted", || {
        let (_, body) = rp.get("/metrics");
        let n: f64 = body
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "redpulse_metrics_command_errors_total{instance=\"big\",command=\"latency\"} ",
                )
            })?
            .parse()
            .ok()?;
        let (code, v) = rp.health("big");
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["status"], "ok", "{v}");
        (n >= 3.0).then_some(body)
    });
    assert!(body.contains("redis_up{instance=\"big\"} 1\n"), "{body}");
    assert!(
        body.contains("redis_slowlog_length{instance=\"big\"} 0\n"),
        "{body}"
    );
    assert!(!body.contains("redis_latency_spike"), "{body}");
    assert!(
        accepted.load(Ordering::Relaxed) >= 3,
        "the connection is re-made"
    );
    stop.store(true, Ordering::Relaxed);
}
