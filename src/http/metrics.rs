//! `/metrics` in the Prometheus text format 0.0.4, rendered from the store.
//!
//! Per-instance series use redis_exporter's names (label `instance`), so
//! existing dashboards and alerts keep working; redpulse's own series say
//! how the poller itself is doing. Rendering is one pass over the slots into
//! one buffer, so it stays cheap at 10,000 instances.

use crate::judge::outcome::Status;
use crate::state::counters::POLL_BUCKETS;
use crate::state::store::{Current, Store};
use crate::wire::info::{Role, Snapshot};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// One per-instance series: name, type, help, and how to read it.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Snapshot) -> Option<u64>,
);

const SNAPSHOT_SERIES: &[Series] = &[
    (
        "redis_memory_used_bytes",
        "gauge",
        "used_memory from INFO memory.",
        |s| s.used_memory,
    ),
    (
        "redis_memory_max_bytes",
        "gauge",
        "maxmemory from INFO memory (0 = no limit).",
        |s| s.maxmemory,
    ),
    (
        "redis_total_system_memory_bytes",
        "gauge",
        "total_system_memory from INFO memory.",
        |s| s.total_system_memory,
    ),
    (
        "redis_rdb_changes_since_last_save",
        "gauge",
        "rdb_changes_since_last_save from INFO persistence.",
        |s| s.rdb_changes_since_last_save,
    ),
    (
        "redis_rdb_last_save_timestamp_seconds",
        "gauge",
        "rdb_last_save_time from INFO persistence.",
        |s| s.rdb_last_save_time,
    ),
    (
        "redis_cluster_state",
        "gauge",
        "1 when CLUSTER INFO says cluster_state:ok (cluster nodes only).",
        |s| s.cluster?.state_ok.map(u64::from),
    ),
    (
        "redis_cluster_slots_assigned",
        "gauge",
        "cluster_slots_assigned from CLUSTER INFO.",
        |s| s.cluster?.slots_assigned.map(u64::from),
    ),
    (
        "redis_cluster_slots_ok",
        "gauge",
        "cluster_slots_ok from CLUSTER INFO.",
        |s| s.cluster?.slots_ok.map(u64::from),
    ),
    (
        "redis_cluster_slots_pfail",
        "gauge",
        "cluster_slots_pfail from CLUSTER INFO.",
        |s| s.cluster?.slots_pfail.map(u64::from),
    ),
    (
        "redis_cluster_slots_fail",
        "gauge",
        "cluster_slots_fail from CLUSTER INFO.",
        |s| s.cluster?.slots_fail.map(u64::from),
    ),
    (
        "redis_cluster_known_nodes",
        "gauge",
        "cluster_known_nodes from CLUSTER INFO.",
        |s| s.cluster?.known_nodes.map(u64::from),
    ),
    (
        "redis_cluster_size",
        "gauge",
        "cluster_size from CLUSTER INFO.",
        |s| s.cluster?.size.map(u64::from),
    ),
    (
        "redis_cluster_current_epoch",
        "gauge",
        "cluster_current_epoch from CLUSTER INFO.",
        |s| s.cluster?.current_epoch,
    ),
    (
        "redis_keyspace_hits_total",
        "counter",
        "keyspace_hits from INFO stats.",
        |s| s.keyspace_hits,
    ),
    (
        "redis_keyspace_misses_total",
        "counter",
        "keyspace_misses from INFO stats.",
        |s| s.keyspace_misses,
    ),
    (
        "redis_instantaneous_ops_per_sec",
        "gauge",
        "instantaneous_ops_per_sec from INFO stats.",
        |s| s.instantaneous_ops_per_sec,
    ),
    (
        "redis_connected_clients",
        "gauge",
        "connected_clients from INFO clients.",
        |s| s.connected_clients,
    ),
    (
        "redis_config_maxclients",
        "gauge",
        "maxclients from INFO clients.",
        |s| s.maxclients,
    ),
    (
        "redis_blocked_clients",
        "gauge",
        "blocked_clients from INFO clients.",
        |s| s.blocked_clients,
    ),
    (
        "redis_connected_slaves",
        "gauge",
        "connected_slaves from INFO replication.",
        |s| s.connected_slaves,
    ),
    (
        "redis_master_link_up",
        "gauge",
        "1 when a replica's link to its master is up.",
        |s| {
            if s.role == Some(Role::Replica) {
                s.master_link_up.map(u64::from)
            } else {
                None
            }
        },
    ),
    (
        "redis_master_repl_offset",
        "gauge",
        "master_repl_offset from INFO replication.",
        |s| s.master_repl_offset.and_then(|o| u64::try_from(o).ok()),
    ),
    (
        "redis_rejected_connections_total",
        "counter",
        "rejected_connections from INFO stats.",
        |s| s.rejected_connections,
    ),
    (
        "redis_evicted_keys_total",
        "counter",
        "evicted_keys from INFO stats.",
        |s| s.evicted_keys,
    ),
];

/// Render every series for every instance.
pub fn render(store: &Store, now: Instant) -> Vec<u8> {
    let slots = store.slots();
    // One staleness decision per instance, shared with every other view.
    let latest: Vec<(&str, Current)> = slots
        .iter()
        .map(|s| (&*s.name, store.current(s, now)))
        .collect();
    let mut b = Vec::with_capacity(256 + latest.len() * 1200);

    header(
        &mut b,
        "redis_up",
        "gauge",
        "1 when the instance answered its last polls (status is not down).",
    );
    for (name, c) in &latest {
        let _ = writeln!(
            b,
            "redis_up{{instance=\"{name}\"}} {}",
            u8::from(c.status != Status::Down)
        );
    }
    for (metric, kind, help, read) in SNAPSHOT_SERIES {
        header(&mut b, metric, kind, help);
        for (name, c) in &latest {
            let value = c
                .published
                .as_ref()
                .and_then(|p| p.health.snapshot.as_ref())
                .and_then(read);
            if let Some(v) = value {
                let _ = writeln!(b, "{metric}{{instance=\"{name}\"}} {v}");
            }
        }
    }
    header(
        &mut b,
        "redpulse_health_status",
        "gauge",
        "1 for the instance's current health status, 0 for the others.",
    );
    for (name, c) in &latest {
        let current = c.status;
        for s in Status::ALL {
            let _ = writeln!(
                b,
                "redpulse_health_status{{instance=\"{name}\",status=\"{}\"}} {}",
                s.as_str(),
                u8::from(s == current)
            );
        }
    }
    header(
        &mut b,
        "redpulse_group_status",
        "gauge",
        "1 for a cluster's or group's current status as a whole, 0 for the others.",
    );
    let clusters = store.clusters().into_iter().map(|(name, view)| {
        (
            name,
            crate::http::views::cluster_verdict(store, &view, now).status,
        )
    });
    let groups = store.groups().into_iter().map(|(name, view)| {
        (
            name,
            crate::http::views::group_verdict(store, &view, now).status,
        )
    });
    for (name, current) in clusters.chain(groups) {
        for s in Status::ALL {
            let _ = writeln!(
                b,
                "redpulse_group_status{{group=\"{name}\",status=\"{}\"}} {}",
                s.as_str(),
                u8::from(s == current)
            );
        }
    }
    header(
        &mut b,
        "redpulse_tls_cert_not_after_seconds",
        "gauge",
        "notAfter of a TLS instance's server certificate, as a Unix time.",
    );
    for (name, c) in &latest {
        let not_after = c
            .published
            .as_ref()
            .and_then(|p| p.health.tls)
            .and_then(|peer| peer.not_after.duration_since(std::time::UNIX_EPOCH).ok());
        if let Some(t) = not_after {
            let _ = writeln!(
                b,
                "redpulse_tls_cert_not_after_seconds{{instance=\"{name}\"}} {}",
                t.as_secs()
            );
        }
    }
    header(
        &mut b,
        "redpulse_polls_total",
        "counter",
        "Polls since start, by result.",
    );
    let _ = writeln!(
        b,
        "redpulse_polls_total{{result=\"ok\"}} {}",
        store.polls.ok.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        b,
        "redpulse_polls_total{{result=\"error\"}} {}",
        store.polls.error.load(Ordering::Relaxed)
    );
    header(
        &mut b,
        "redpulse_poll_duration_seconds",
        "histogram",
        "Duration of each poll (connect if needed, write, read).",
    );
    let polls = &store.polls;
    let mut cumulative = 0;
    for (i, le) in POLL_BUCKETS.iter().enumerate() {
        cumulative += polls.duration_buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(
            b,
            "redpulse_poll_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    cumulative += polls.duration_buckets[POLL_BUCKETS.len()].load(Ordering::Relaxed);
    let _ = writeln!(
        b,
        "redpulse_poll_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
    );
    let sum = polls.duration_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(b, "redpulse_poll_duration_seconds_sum {sum}\nredpulse_poll_duration_seconds_count {cumulative}");
    header(
        &mut b,
        "redpulse_poll_lag_seconds",
        "gauge",
        "Age of the oldest verdict: about the interval while the poller keeps up; growing means it is behind.",
    );
    let oldest = latest
        .iter()
        .filter_map(|(_, c)| c.age)
        .max()
        .unwrap_or_default();
    let _ = writeln!(b, "redpulse_poll_lag_seconds {}", oldest.as_secs_f64());
    header(
        &mut b,
        "redpulse_targets",
        "gauge",
        "Instances being watched.",
    );
    let _ = writeln!(b, "redpulse_targets {}", latest.len());
    b
}

fn header(b: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    let _ = writeln!(b, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Thresholds;
    use crate::judge::outcome::Outcome;
    use crate::judge::rules::Tracker;
    use std::time::{Duration, SystemTime};

    use crate::testdata::snapshot as corpus;

    #[test]
    fn metrics_carry_exporter_names_and_statuses() {
        let store = Store::new(Duration::from_secs(3));
        let now = Instant::now();
        let h = Tracker::new(Thresholds::default()).observe(
            Outcome::Polled {
                snapshot: corpus("redis-7.0_replica_online_info_multi"),
                latency: Duration::ZERO,
                tls: None,
            },
            now,
            SystemTime::now(),
        );
        store.insert("r1", "127.0.0.1:1").publish(h);
        store.insert("never", "127.0.0.1:2");
        for _ in 0..3 {
            store.polls.record(true, Duration::from_micros(300));
        }
        let text = String::from_utf8(render(&store, now)).unwrap();
        assert!(text.contains("redis_up{instance=\"r1\"} 1\n"), "{text}");
        assert!(text.contains("redis_up{instance=\"never\"} 0\n"));
        assert!(text.contains("redis_master_link_up{instance=\"r1\"} 1\n"));
        assert!(text.contains("redpulse_health_status{instance=\"r1\",status=\"ok\"} 1\n"));
        assert!(text.contains("redpulse_health_status{instance=\"never\",status=\"down\"} 1\n"));
        assert!(text.contains("redpulse_polls_total{result=\"ok\"} 3\n"));
        assert!(text.contains("redpulse_targets 2\n"));
        assert!(
            text.contains("redpulse_poll_duration_seconds_bucket{le=\"0.00025\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("redpulse_poll_duration_seconds_bucket{le=\"0.0005\"} 3\n"));
        assert!(text.contains("redpulse_poll_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("redpulse_poll_duration_seconds_count 3\n"));
        assert!(text.contains("redpulse_poll_lag_seconds 0\n"));
        assert!(
            !text.contains("redis_memory_used_bytes{instance=\"never\"}"),
            "unknown is omitted, not 0"
        );
        // Every sample line belongs to a family announced by # TYPE.
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                // Histogram samples carry a suffix on the family's name.
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                    .unwrap_or(name);
                assert!(typed.contains(family), "untyped {line}");
            }
        }
    }
}
