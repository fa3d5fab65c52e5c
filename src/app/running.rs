//! The running service's target set: the configured instances and every
//! node discovered from a cluster or Sentinel, applied to the poller as a
//! diff; discovery tasks (one per cluster or Sentinel); and a reload
//! applied as a diff, or refused whole when the new config failed to load.

use super::topology;
use crate::config::{ClusterSpec, Config, ConfigError, Target};
use crate::http::peers;
use crate::poll::discovery::{self, Discovery, Found};
use crate::poll::fleet::{log_first_verdicts, Changes, Fleet, PollSettings};
use crate::shutdown::ShutdownSignal;
use crate::state::heartbeat::Heartbeats;
use crate::state::store::{ClusterView, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Past interval + timeout, before an instance's first verdict is called
/// late: timer and scheduling delay of a busy start.
const FIRST_VERDICT_SLACK: Duration = Duration::from_millis(500);

/// Say loudly which TLS targets are not verified at all.
pub fn warn_insecure(config: &Config) {
    let insecure: Vec<&str> = config
        .targets
        .iter()
        .filter(|t| {
            t.tls
                .as_ref()
                .is_some_and(|t| t.settings.insecure_skip_verify)
        })
        .map(|t| t.name.as_str())
        .collect();
    if !insecure.is_empty() {
        let shown = insecure
            .iter()
            .take(10)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        warn!(
            count = insecure.len(),
            instances = %shown,
            "insecure_skip_verify: these TLS servers' certificates are not verified at all"
        );
    }
}

/// How long an instance may take to its first verdict: a poll starts at a
/// random phase within the interval and takes up to the timeout.
pub fn first_verdicts_within(settings: PollSettings) -> Duration {
    settings.interval + settings.timeout + FIRST_VERDICT_SLACK
}

/// The poller and what decides its target set: the config's instances,
/// every discovered node, the discovery tasks, and what a reload changes.
pub struct Running {
    fleet: Fleet,
    store: Arc<Store>,
    heartbeats: Arc<Heartbeats>,
    listen: std::net::SocketAddr,
    settings: PollSettings,
    /// The config's own instances.
    /// Shared with the poller's tasks: one copy of each target.
    configured: Vec<Arc<Target>>,
    /// Each cluster's or Sentinel's discovered nodes, by its name.
    discovered: BTreeMap<String, Vec<Target>>,
    /// One discovery task per cluster or Sentinel.
    discovery: Vec<tokio::task::JoinHandle<()>>,
    discovered_tx: mpsc::Sender<Discovery>,
    shutdown: ShutdownSignal,
    /// Other shards and regions, as the HTTP side sees them.
    peering: Arc<peers::PeeringCell>,
}

/// A cluster known from the config whose topology has not been read yet:
/// judged as nothing reachable.
fn unread_cluster(spec: &ClusterSpec) -> ClusterView {
    ClusterView {
        shards: Vec::new(),
        nodes: Vec::new(),
        min_replicas: spec.seeds.first().map_or(1, |s| s.thresholds.min_replicas),
        error: Some("the topology has not been read yet".into()),
        labels: spec.labels.clone(),
    }
}

/// Each target behind an `Arc`, for the running set and the poller.
fn shared(targets: &[Target]) -> Vec<Arc<Target>> {
    targets.iter().map(|t| Arc::new(t.clone())).collect()
}

/// Discoveries waiting to be applied at most; a discovery task waits
/// when the loop is behind.
const DISCOVERIES_QUEUED: usize = 64;

impl Running {
    /// Poll `config`'s targets on `fleet`, start its discovery tasks and
    /// set its groups. Discovered topologies arrive on the receiver, for
    /// [`Running::apply_discovery`].
    pub fn start(
        fleet: Fleet,
        store: Arc<Store>,
        heartbeats: Arc<Heartbeats>,
        peering: Arc<peers::PeeringCell>,
        config: &Config,
        shutdown: ShutdownSignal,
    ) -> (Running, mpsc::Receiver<Discovery>) {
        let (discovered_tx, discovered_rx) = mpsc::channel(DISCOVERIES_QUEUED);
        let mut running = Running {
            fleet,
            store,
            heartbeats,
            listen: config.listen,
            settings: PollSettings::of(config),
            configured: shared(&config.targets),
            discovered: BTreeMap::new(),
            discovery: Vec::new(),
            discovered_tx,
            shutdown,
            peering,
        };
        running.apply_targets(first_verdicts_within(running.settings));
        running.start_discovery(config);
        topology::set_groups(&running.store, config);
        (running, discovered_rx)
    }

    /// Stop the discovery tasks and hand back the poller, to be joined.
    pub fn stop(self) -> Fleet {
        for task in &self.discovery {
            task.abort();
        }
        self.fleet
    }

    /// Every target to poll: the configured ones and every discovered node.
    pub fn targets(&self) -> Vec<Arc<Target>> {
        let mut all = self.configured.clone();
        all.extend(
            self.discovered
                .values()
                .flatten()
                .map(|t| Arc::new(t.clone())),
        );
        all
    }

    /// Apply the target set to the fleet as a diff; log the new ones'
    /// first verdicts as one line.
    pub fn apply_targets(&mut self, within: Duration) -> Changes {
        let c = self.fleet.apply(&self.targets(), self.settings);
        tokio::spawn(log_first_verdicts(
            self.store.clone(),
            c.fresh.clone(),
            within,
        ));
        c
    }

    /// (Re)start one discovery task per cluster; forget the nodes of
    /// clusters no longer configured.
    pub fn start_discovery(&mut self, config: &Config) {
        let clusters = &config.clusters;
        for task in self.discovery.drain(..) {
            task.abort();
        }
        let store = self.store.clone();
        self.discovered.retain(|name, _| {
            let kept = clusters.iter().any(|c| &c.name == name)
                || config.sentinels.iter().any(|s| &s.name == name);
            if !kept {
                store.set_cluster(name, None);
                store.set_groups(Some(name), []);
            }
            kept
        });
        for spec in &config.sentinels {
            self.discovery.push(tokio::spawn(discovery::run_sentinel(
                spec.clone(),
                self.settings.timeout,
                self.discovered_tx.clone(),
                self.shutdown.clone(),
            )));
        }
        for spec in clusters {
            // Until the first read: known, judged as nothing reachable yet.
            if !self.discovered.contains_key(&spec.name) {
                self.store
                    .set_cluster(&spec.name, Some(unread_cluster(spec)));
            }
            self.discovery.push(tokio::spawn(discovery::run(
                spec.clone(),
                self.settings.timeout,
                self.store.clone(),
                self.discovered_tx.clone(),
                self.shutdown.clone(),
            )));
        }
    }

    /// A cluster's topology was read: poll exactly its nodes.
    pub fn apply_discovery(&mut self, found: Discovery) {
        match found.found {
            Found::Sentinel(groups) => self.store.set_groups(Some(&found.cluster), groups),
            Found::Cluster(view) => self.store.set_cluster(&found.cluster, Some(view)),
        }
        if self.discovered.get(&found.cluster) == Some(&found.nodes) {
            return;
        }
        let cluster = found.cluster.clone();
        self.discovered.insert(found.cluster, found.nodes);
        let c = self.apply_targets(first_verdicts_within(self.settings));
        info!(
            cluster = %cluster,
            added = c.added,
            removed = c.removed,
            unchanged = c.unchanged,
            "cluster nodes applied"
        );
    }

    /// Apply a freshly loaded config as a diff, or keep the running one
    /// when it failed to load.
    pub fn apply_reload(&mut self, loaded: Result<Config, ConfigError>) -> Option<Changes> {
        let new = match loaded {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "reload failed; keeping the running config");
                self.store.reload.record(false);
                return None;
            }
        };
        self.store.reload.record(true);
        // A reload may have fixed what a server refused (an ACL, a renamed
        // CONFIG): every connection asks once more.
        crate::net::extras::retry_refused();
        if new.listen != self.listen {
            warn!(listen = %new.listen, "the listen address changes only on restart");
        }
        self.settings = PollSettings::of(&new);
        self.store.set_stale_after(new.stale_after());
        warn_insecure(&new);
        self.configured = shared(&new.targets);
        self.start_discovery(&new);
        topology::set_groups(&self.store, &new);
        let c = self.apply_targets(first_verdicts_within(self.settings));
        self.heartbeats
            .configure(&new.heartbeats, std::time::Instant::now());
        let (shard, consensus) = (new.shard.as_ref(), new.consensus.as_ref());
        if !self.peering.get().same_as(shard, consensus, new.interval) {
            self.peering
                .set(peers::Peering::new(shard, consensus, new.interval));
        }
        info!(
            added = c.added,
            removed = c.removed,
            changed = c.changed,
            relabeled = c.relabeled,
            unchanged = c.unchanged,
            heartbeats = new.heartbeats.len(),
            "config reloaded"
        );
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::shutdown::Shutdown;
    use std::sync::atomic::Ordering;

    fn config(targets: &[&str], interval: &str, timeout: &str) -> Result<Config, ConfigError> {
        crate::config::load(&Overrides {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            interval: Some(interval.into()),
            timeout: Some(timeout.into()),
            ..Overrides::default()
        })
    }

    #[test]
    fn first_verdicts_are_due_after_one_interval_and_one_timeout() {
        let c = config(&["a=redis://127.0.0.1:1"], "2s", "750ms").unwrap();
        // 2 s + 0.75 s + the 0.5 s slack, computed by hand.
        assert_eq!(
            first_verdicts_within(PollSettings::of(&c)),
            Duration::from_millis(3_250)
        );
    }

    #[tokio::test]
    async fn a_reload_applies_as_a_diff_and_a_failed_one_keeps_the_running_config() {
        let shutdown = Shutdown::new();
        let first = config(
            &[
                "a=redis://127.0.0.1:1",
                "b=redis://127.0.0.1:2",
                "c=redis://127.0.0.1:4",
            ],
            "1s",
            "1s",
        )
        .unwrap();
        let store = Arc::new(Store::new(first.stale_after()));
        let fleet =
            Fleet::start(store.clone(), PollSettings::of(&first), shutdown.signal()).unwrap();
        let peering = Arc::new(peers::PeeringCell::new(peers::Peering::new(
            None,
            None,
            first.interval,
        )));
        let heartbeats = Arc::new(Heartbeats::new(&first.heartbeats));
        let (mut running, _discovered) = Running::start(
            fleet,
            store.clone(),
            heartbeats,
            peering,
            &first,
            shutdown.signal(),
        );
        let names = |r: &Running| {
            r.targets()
                .into_iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&running), ["a", "b", "c"]);
        // a removed, b moved to another port, c kept, d added; the new
        // interval and timeout become the poller's settings.
        let second = config(
            &[
                "b=redis://127.0.0.1:3",
                "c=redis://127.0.0.1:4",
                "d=redis://127.0.0.1:5",
            ],
            "2s",
            "500ms",
        );
        let c = running.apply_reload(second).unwrap();
        assert_eq!(
            (c.added, c.removed, c.changed, c.unchanged),
            (1, 1, 1, 1),
            "{c:?}"
        );
        assert_eq!(c.fresh, ["b", "d"]);
        assert_eq!(names(&running), ["b", "c", "d"]);
        assert_eq!(running.settings.interval, Duration::from_secs(2));
        assert_eq!(store.reload.successful.load(Ordering::Relaxed), 1);
        // A config that fails to load changes nothing and says so.
        let bad = config(&["e=http://127.0.0.1:6"], "1s", "1s");
        assert!(bad.is_err());
        assert_eq!(running.apply_reload(bad), None);
        assert_eq!(names(&running), ["b", "c", "d"]);
        assert_eq!(running.settings.interval, Duration::from_secs(2));
        assert_eq!(store.reload.successful.load(Ordering::Relaxed), 0);
        shutdown.trigger();
        let fleet = running.stop();
        tokio::task::spawn_blocking(move || fleet.join())
            .await
            .unwrap();
    }
}
