//! A server that answers like Redis 6.2 (captured replies from the corpus)
//! and records every read: redpulse must send the single-section INFOs of a
//! poll back to back in one write, since 6.2 refuses multi-section INFO.

mod support;

use bytes::BytesMut;
use redpulse::wire::resp::{Decoder, Frame};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// The captured 6.2 replies, one per section, keyed by lower-case section name.
fn sections_6_2() -> Vec<(String, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/info/redis-6.2_master_pipelined_sections.resp"
    );
    let mut buf = BytesMut::from(&std::fs::read(path).unwrap()[..]);
    let mut d = Decoder::new();
    let mut out = Vec::new();
    while let Some(Frame::Bulk(text)) = d.decode(&mut buf).unwrap() {
        let name =
            String::from_utf8_lossy(&text[2..text.iter().position(|&b| b == b'\r').unwrap()])
                .to_lowercase();
        let mut reply = format!("${}\r\n", text.len()).into_bytes();
        reply.extend_from_slice(&text);
        reply.extend_from_slice(b"\r\n");
        out.push((name, reply));
    }
    assert_eq!(out.len(), 7);
    out
}

/// Serve one connection: answer each command, record the commands of each read.
fn fake_redis_6_2(listener: TcpListener, reads: Arc<Mutex<Vec<Vec<Vec<String>>>>>) {
    let sections = sections_6_2();
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = BytesMut::new();
    let mut d = Decoder::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut cmds = Vec::new();
        let mut out = BytesMut::new();
        while let Some(Frame::Array(args)) = d.decode(&mut buf).unwrap() {
            let args: Vec<String> = args
                .iter()
                .map(|a| match a {
                    Frame::Bulk(b) => String::from_utf8_lossy(b).to_lowercase(),
                    other => panic!("argument {other:?}"),
                })
                .collect();
            match args[0].as_str() {
                // One reply with every section, as 6.2 answers INFO ALL.
                "info" if args.len() == 2 && args[1] == "all" => {
                    let mut text = Vec::new();
                    for (_, reply) in &sections {
                        let body = &reply
                            [reply.iter().position(|&b| b == b'\n').unwrap() + 1..reply.len() - 2];
                        if !text.is_empty() {
                            text.extend_from_slice(b"\r\n");
                        }
                        text.extend_from_slice(body);
                    }
                    out.extend_from_slice(format!("${}\r\n", text.len()).as_bytes());
                    out.extend_from_slice(&text);
                    out.extend_from_slice(b"\r\n");
                }
                "info" if args.len() == 2 => {
                    let reply = &sections
                        .iter()
                        .find(|(name, _)| *name == args[1])
                        .unwrap()
                        .1;
                    out.extend_from_slice(reply);
                }
                // What 6.2 answers to INFO with several sections.
                "info" => out.extend_from_slice(b"-ERR syntax error\r\n"),
                "client" => out.extend_from_slice(b"+OK\r\n"),
                // The metrics poll's other commands: refused here, which
                // must cost nothing but their own series.
                "slowlog" | "latency" | "config" => {
                    out.extend_from_slice(b"-ERR unknown command\r\n")
                }
                other => panic!("unexpected command {other}"),
            }
            cmds.push(args);
        }
        reads.lock().unwrap().push(cmds);
        s.write_all(&out).unwrap();
    }
}

#[test]
fn redis_6_2_gets_single_section_infos_in_one_write_per_poll() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reads = Arc::new(Mutex::new(Vec::new()));
    let recorded = reads.clone();
    std::thread::spawn(move || fake_redis_6_2(listener, recorded));

    let rp = Redpulse::start(&[
        "--interval",
        "100ms",
        "--target",
        &format!("old=redis://127.0.0.1:{port}"),
    ]);
    let (code, v) = rp.wait_status("old", "ok", None);
    assert_eq!(code, 200);
    assert_eq!(v["version"], "6.2.14");
    // Fields from every section made it into the answer.
    for key in [
        "connected_clients",
        "used_memory",
        "ops_per_sec",
        "connected_replicas",
    ] {
        assert!(v[key].is_number(), "{key} missing: {v}");
    }
    wait_for(WAIT, "five polls", || {
        (reads.lock().unwrap().len() >= 6).then_some(())
    });

    let reads = reads.lock().unwrap();
    // First read: the handshake, in one write.
    assert_eq!(
        reads[0],
        vec![
            vec!["client", "setname", "redpulse"],
            vec!["info", "server"]
        ]
    );
    // The first poll fetches every section for /metrics (one INFO ALL,
    // which 6.2 answers in one reply) and the commands beyond INFO in the
    // same write (6.2's CONFIG GET takes one key each); every later one is
    // a whole health poll in one write: five single-section INFOs.
    assert_eq!(
        reads[1],
        [
            &["info", "all"][..],
            &["slowlog", "len"],
            &["slowlog", "get", "1"],
            &["latency", "latest"],
            &["config", "get", "maxclients"],
            &["config", "get", "maxmemory"],
            &["config", "get", "io-threads"],
        ]
    );
    let poll: Vec<Vec<&str>> = ["clients", "memory", "stats", "replication", "persistence"]
        .iter()
        .map(|s| vec!["info", *s])
        .collect();
    for (i, cmds) in reads[2..].iter().enumerate() {
        assert_eq!(cmds, &poll, "read {} was not exactly one poll", i + 2);
    }
    // The metrics poll's INFO ALL reached /metrics.
    let (_, metrics) = rp.get("/metrics");
    assert!(
        metrics.contains(
            "redis_instance_info{instance=\"old\",role=\"master\",redis_version=\"6.2.14\""
        ),
        "{metrics}"
    );
}
