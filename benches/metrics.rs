//! `/metrics` at fleet scale: 10,000 instances, each with the samples of a
//! real Redis 7.0 `INFO ALL` reply (testdata) and two labels, rendered
//! in full, and gzipped. Also the cost of turning one INFO ALL reply into
//! samples, which every metrics poll pays. Each iteration checks its
//! output's line count against a count made the plain way, so a renderer
//! that skips work cannot win.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use redpulse::config::Thresholds;
use redpulse::http::metrics::{gzip, render, render_to, Out};
use redpulse::judge::outcome::Outcome;
use redpulse::judge::rules::Tracker;
use redpulse::state::store::{Slot, Store};
use redpulse::wire::exposition::Exposition;
use redpulse::wire::info::{info_text, Snapshot};
use redpulse::wire::resp::Decoder;
use std::time::{Duration, Instant, SystemTime};

const INSTANCES: usize = 10_000;

fn info_all() -> Vec<u8> {
    let path = format!(
        "{}/testdata/info/redis-7.0_master_idle_info_all.resp",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut buf = BytesMut::from(&std::fs::read(path).unwrap()[..]);
    let frame = Decoder::new().decode(&mut buf).unwrap().unwrap();
    info_text(&frame).unwrap().to_vec()
}

fn fleet(text: &[u8]) -> Store {
    let store = Store::new(Duration::from_secs(3600));
    let mut snapshot = Snapshot::default();
    snapshot.merge_info(text);
    for i in 0..INSTANCES {
        let labels = [
            ("team".to_string(), format!("team-{}", i % 7)),
            ("env".to_string(), "prod".to_string()),
        ];
        let slot = store.insert_slot(Slot::new(
            &format!("cache-{i:05}"),
            &format!("10.0.{}.{}:6379", i / 256, i % 256),
            false,
            labels.into(),
        ));
        let h = Tracker::new(Thresholds::default()).observe(
            Outcome::Polled {
                snapshot: snapshot.into(),
                latency: Duration::from_micros(300),
                tls: None,
            },
            Instant::now(),
            SystemTime::now(),
        );
        slot.publish(h);
        slot.set_exposition(
            Exposition::from_info(text, None, 1_800_000_000),
            std::time::Instant::now(),
        );
    }
    store
}

fn bench_metrics(c: &mut Criterion) {
    let text = info_all();
    let one = Exposition::from_info(&text, None, 1_800_000_000);
    let store = fleet(&text);
    let body = render(&store, Instant::now());
    // The oracle: samples per instance counted on one instance's render,
    // times the fleet, plus redpulse's own series (counted by name).
    let lines = |b: &[u8]| {
        b.split(|&c| c == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count()
    };
    let per_instance = one.len() + 1 + 4; // INFO samples, redis_up, 4 statuses
    let own = lines(&body) - per_instance * INSTANCES;
    assert!(own < 40, "unexpected extra lines: {own}");
    let z = gzip(&body).unwrap();
    eprintln!(
        "metrics at {INSTANCES} instances: {} samples, {:.1} MB, gzip {:.1} MB ({:.1}x)",
        lines(&body),
        body.len() as f64 / 1e6,
        z.len() as f64 / 1e6,
        body.len() as f64 / z.len() as f64
    );

    let mut g = c.benchmark_group("metrics");
    g.sample_size(20);
    g.bench_function("exposition_from_info_all", |b| {
        b.iter(|| {
            let e = Exposition::from_info(black_box(&text), None, 1_800_000_000);
            assert_eq!(e.len(), one.len());
            e
        })
    });
    g.bench_function("render_10k", |b| {
        b.iter(|| {
            let out = render(black_box(&store), Instant::now());
            assert_eq!(out.len() / 1000, body.len() / 1000);
            out
        })
    });
    // What a plain scrape costs: chunks handed on as they fill, never
    // joined (render_10k above also copies them into one buffer).
    g.bench_function("render_10k_streamed", |b| {
        b.iter(|| {
            let mut bytes = 0;
            let mut sink = |chunk: Vec<u8>| {
                bytes += chunk.len();
                drop(black_box(chunk));
                Ok(())
            };
            let mut out = Out::new(&mut sink);
            render_to(black_box(&store), Instant::now(), &mut out).unwrap();
            out.finish().unwrap();
            assert_eq!(bytes / 1000, body.len() / 1000);
            bytes
        })
    });
    g.bench_function("gzip_10k", |b| b.iter(|| gzip(black_box(&body)).unwrap()));
    g.finish();
}

criterion_group!(benches, bench_metrics);
criterion_main!(benches);
