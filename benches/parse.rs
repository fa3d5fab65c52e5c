//! Parsing benches on real captured replies: INFO text into a Snapshot, and
//! RESP decoding of a whole reply versus the same reply fed in 64-byte
//! chunks (equal times mean decoding is linear, with no re-scan). Every
//! iteration checks its answer, so a fast wrong parser cannot win.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use redpulse::wire::info::{info_text, Snapshot};
use redpulse::wire::resp::{Decoder, Frame};

fn corpus(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/info/{name}.resp", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The INFO text inside a captured single-reply file.
fn info_body(name: &str) -> Vec<u8> {
    let mut buf = BytesMut::from(&corpus(name)[..]);
    let frame = Decoder::new().decode(&mut buf).unwrap().unwrap();
    info_text(&frame).unwrap().to_vec()
}

/// A field's value found the obvious way: split the text into lines and
/// take the last `key:value` line's value. The answer every iteration is
/// checked against, independent of the parser under test.
fn oracle_u64(text: &[u8], key: &str) -> Option<u64> {
    std::str::from_utf8(text)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .rfind(|(k, _)| *k == key)
        .map(|(_, v)| v.trim().parse().unwrap())
}

fn bench_info(c: &mut Criterion) {
    let mut g = c.benchmark_group("info_parse");
    for name in [
        "redis-7.0_master_idle_info_multi",
        "redis-7.0_master_idle_info_everything",
        "valkey-8.1_master_info_multi",
    ] {
        let text = info_body(name);
        let field = |k| oracle_u64(&text, k);
        let expected_used = field("used_memory");
        let expected_others = [
            field("maxmemory"),
            field("connected_clients"),
            field("keyspace_hits"),
            field("keyspace_misses"),
        ];
        assert!(
            expected_used.is_some() && expected_others.iter().all(Option::is_some),
            "{name}: the oracle found every field"
        );
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("redpulse/{name}"), |b| {
            b.iter(|| {
                let mut s = Snapshot::default();
                s.merge_info(black_box(&text));
                assert_eq!(s.used_memory, expected_used);
                assert_eq!(
                    [
                        s.maxmemory,
                        s.connected_clients,
                        s.keyspace_hits,
                        s.keyspace_misses
                    ],
                    expected_others
                );
                s
            })
        });
        // The redis crate's InfoDict on the same bytes, reading a few of the
        // same fields (it needs a &str, so the UTF-8 check is counted too).
        g.bench_function(format!("redis_crate_InfoDict/{name}"), |b| {
            b.iter(|| {
                let text = std::str::from_utf8(black_box(&text)).unwrap();
                let d = redis::InfoDict::new(text);
                let used: Option<u64> = d.get("used_memory");
                assert_eq!(used, expected_used);
                let others: [Option<u64>; 4] = [
                    d.get("maxmemory"),
                    d.get("connected_clients"),
                    d.get("keyspace_hits"),
                    d.get("keyspace_misses"),
                ];
                assert_eq!(others, expected_others);
                d
            })
        });
    }
    g.finish();
}

fn decode_all(input: &[u8], chunk: usize) -> usize {
    let mut d = Decoder::new();
    let mut buf = BytesMut::with_capacity(input.len());
    let mut frames = 0;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(f) = d.decode(&mut buf).unwrap() {
            assert!(matches!(f, Frame::Bulk(_)));
            frames += 1;
        }
    }
    frames
}

fn bench_resp(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp_decode");
    // Reply counts from the corpus README: one INFO, and seven pipelined
    // single-section INFOs.
    for (name, replies) in [
        ("redis-7.0_master_idle_info_everything", 1),
        ("redis-6.2_master_pipelined_sections", 7),
    ] {
        let input = corpus(name);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(format!("{name}/whole"), |b| {
            b.iter(|| assert_eq!(decode_all(black_box(&input), input.len()), replies))
        });
        g.bench_function(format!("{name}/64B_chunks"), |b| {
            b.iter(|| assert_eq!(decode_all(black_box(&input), 64), replies))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_info, bench_resp);
criterion_main!(benches);
