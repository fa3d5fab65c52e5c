//! A full poll cycle against the in-process simulated fleet: every
//! instance's connection sends its pipelined INFO and reads the replies,
//! all instances concurrently, on one thread like the real poller. Reported
//! per instance-poll (throughput in elements). The simulator runs on its
//! own runtime threads, so its cost shows as latency, not as this thread's
//! CPU; compare with scripts/bench-fleet.sh for whole-process CPU.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redpulse::config;
use redpulse::net::conn::{Conn, Plan};
use redpulse::shutdown::Shutdown;
use redpulse::sim::{self, SimConfig};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

const INSTANCES: u32 = 100;

fn bench_poll_cycle(c: &mut Criterion) {
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let base_port = (0..90u16)
        .map(|i| 21_000 + i * 100)
        .find(|&b| {
            (b..b + INSTANCES as u16).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        })
        .expect("a free block of ports below 30000");
    let cfg = SimConfig {
        ip: [127, 0, 0, 1].into(),
        base_port,
        instances: INSTANCES,
    };
    let listeners = sim_rt.block_on(sim::bind(cfg)).unwrap();
    let shutdown = Shutdown::new();
    sim_rt.spawn(sim::serve(listeners, shutdown.signal()));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let targets: Vec<_> = (0..INSTANCES)
        .map(|i| {
            let addr = cfg.addr(i);
            config::Target::plain(&format!("sim-{i}"), &addr.ip().to_string(), addr.port())
        })
        .collect();
    let mut conns: Vec<Conn> = rt.block_on(async {
        let mut v = Vec::new();
        for t in &targets {
            v.push(
                Conn::connect(t, Instant::now() + Duration::from_secs(5))
                    .await
                    .map_err(|e| e.failure)
                    .unwrap(),
            );
        }
        v
    });

    let mut g = c.benchmark_group("poll_cycle");
    g.throughput(Throughput::Elements(INSTANCES as u64));
    g.bench_function(format!("{INSTANCES}_instances_concurrently"), |b| {
        b.iter(|| {
            conns = rt.block_on(async {
                let mut set = JoinSet::new();
                for mut conn in conns.drain(..) {
                    set.spawn(async move {
                        let deadline = Instant::now() + Duration::from_secs(5);
                        let snap = conn
                            .poll(Plan {
                                deadline,
                                metrics: false,
                            })
                            .await
                            .unwrap()
                            .snapshot;
                        assert!(snap.used_memory.is_some() && snap.role.is_some());
                        conn
                    });
                }
                let mut back = Vec::with_capacity(INSTANCES as usize);
                while let Some(conn) = set.join_next().await {
                    back.push(conn.unwrap());
                }
                back
            });
        })
    });
    g.finish();
}

criterion_group!(benches, bench_poll_cycle);
criterion_main!(benches);
