//! What is judged rather than polled, handed to the history and the
//! store: every cluster's, group's and heartbeat's status once a second,
//! and the config's static replication groups.

use crate::config::{Config, Labels};
use crate::http;
use crate::judge::outcome::{Reason, Status};
use crate::shutdown::ShutdownSignal;
use crate::state::heartbeat::Heartbeats;
use crate::state::record::{Kind, Sample};
use crate::state::store::{GroupView, Store};
use std::sync::Arc;
use std::time::Duration;

/// Once a second, hand the history every cluster's, group's and
/// heartbeat's status (they are judged from their members' verdicts, not
/// polled).
pub async fn record_topology(
    store: Arc<Store>,
    heartbeats: Arc<Heartbeats>,
    mut stop: ShutdownSignal,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait() => return,
        }
        let Some(recorder) = store.recorder.get() else {
            continue;
        };
        let now = std::time::Instant::now();
        let at = std::time::SystemTime::now();
        let sample = |kind, name: &str, status, reason, labels: &Labels| Sample {
            kind,
            name: name.into(),
            at,
            status,
            reason,
            error: None,
            latency_us: None,
            mem_ratio: None,
            labels: (!labels.is_empty()).then(|| Arc::new(labels.clone())),
        };
        for (name, view) in store.clusters() {
            let v = http::views::cluster_verdict(&store, &view, now);
            let reason = v.reasons.first().map(|r| r.as_str());
            recorder.record(sample(Kind::Cluster, &name, v.status, reason, &view.labels));
        }
        for (name, view) in store.groups() {
            let v = http::views::group_verdict(&store, &view, now);
            let reason = v.reasons.first().map(|r| r.as_str());
            recorder.record(sample(Kind::Group, &name, v.status, reason, &view.labels));
        }
        for name in heartbeats.names() {
            if let Some(b) = heartbeats.state(&name, now) {
                let (status, reason) = if b.alive {
                    (Status::Ok, None)
                } else {
                    (Status::Down, Some(Reason::HeartbeatMissed.as_str()))
                };
                recorder.record(sample(
                    Kind::Heartbeat,
                    &name,
                    status,
                    reason,
                    &Labels::new(),
                ));
            }
        }
    }
}

/// The config's static groups into the store.
pub fn set_groups(store: &Store, config: &Config) {
    store.set_groups(
        None,
        config.groups.iter().map(|g| {
            (
                g.name.clone(),
                GroupView {
                    members: g.members.clone(),
                    min_replicas: g.min_replicas,
                    sentinel: None,
                    source: None,
                    labels: g.labels.clone(),
                },
            )
        }),
    );
}
