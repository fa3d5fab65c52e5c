//! The latest verdict per instance, its JSON rendered at most once.
//!
//! Pollers [`Slot::publish`] after each poll; the HTTP side asks
//! [`Store::answer`], which is a hash lookup, a short lock to clone an `Arc`,
//! and splicing the request-time `age_ms` between two rendered halves. The
//! halves are rendered by the first request that needs them and kept with
//! the verdict: most verdicts are replaced by the next poll before anyone
//! asks, and rendering on every poll was the largest piece of the poller's
//! own CPU. A verdict older than the stale limit is answered as
//! `down`/`stale`.

use super::counters::{PollCounters, ReloadStatus};
use super::render::{ident_json, json_str, render, rfc3339_millis};
use crate::cache::{prefetch, LINE};
use crate::config::Labels;
use crate::judge::outcome::{Reason, Status};
use crate::judge::rules::Health;
use crate::wire::exposition::Exposition;
use crate::wire::prom_text::{escape_label_value, push_label};
use bytes::Bytes;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// One instance's published verdict.
#[derive(Debug)]
pub struct Published {
    pub health: Health,
    /// How old this verdict may get before it is stale: the limit when it
    /// was published, so a reload that shortens the interval does not turn
    /// verdicts made under the old one stale before their next poll.
    stale_after: Duration,
    /// The JSON up to and including `checked_at`, and from `,"reasons"` to
    /// the closing brace; rendered by the first request.
    json: OnceLock<(Bytes, Bytes)>,
}

impl Published {
    /// Ask the CPU for this verdict's memory, with the counts before it:
    /// the poll that replaces it drops it. A hint: nothing is read here.
    pub fn warm(&self) {
        let start = (self as *const Self).cast::<u8>().wrapping_sub(LINE);
        prefetch(start, LINE + std::mem::size_of::<Self>());
    }
}

/// How an instance is named in answers: its JSON identity fields and
/// labels, and the start of its Prometheus series' label set.
#[derive(Debug)]
pub struct Ident {
    /// `,"instance":...,"addr":...[,"tls":true][,"labels":{...}]`
    json: Box<[u8]>,
    pub labels: Arc<Labels>,
    /// `{instance="name",k="v"` (no closing brace).
    pub prom: Box<[u8]>,
}

impl Ident {
    fn new(name: &str, addr: &str, tls: bool, labels: Labels) -> Ident {
        let mut json = ident_json(name, addr, tls).into_vec();
        if !labels.is_empty() {
            json.extend_from_slice(b",\"labels\":");
            serde_json::to_writer(&mut json, &labels).expect("writing into a Vec cannot fail");
        }
        let mut prom = b"{instance=\"".to_vec();
        escape_label_value(&mut prom, name.as_bytes());
        prom.push(b'"');
        for (k, v) in &labels {
            push_label(&mut prom, k.as_bytes(), v.as_bytes());
        }
        Ident {
            json: json.into_boxed_slice(),
            labels: Arc::new(labels),
            prom: prom.into_boxed_slice(),
        }
    }
}

/// One watched instance as the HTTP side sees it.
#[derive(Debug)]
pub struct Slot {
    /// Shared with every history sample of this instance.
    pub name: Arc<str>,
    /// `host:port` as shown to operators.
    pub addr: Box<str>,
    tls: bool,
    /// Swapped in place when only the labels change on a reload.
    ident: RwLock<Arc<Ident>>,
    latest: Mutex<Option<Arc<Published>>>,
    /// The samples of the latest metrics poll, and when they were fetched.
    exposition: Mutex<Option<(Arc<Exposition>, Instant)>>,
    /// This minute's polls, for the history.
    pub minute: Mutex<super::record::MinuteFold>,
}

impl Slot {
    /// A slot with nothing published yet; `tls` for `rediss://` targets.
    pub fn new(name: &str, addr: &str, tls: bool, labels: Labels) -> Self {
        Slot {
            name: name.into(),
            addr: addr.into(),
            tls,
            ident: RwLock::new(Arc::new(Ident::new(name, addr, tls, labels))),
            latest: Mutex::new(None),
            exposition: Mutex::new(None),
            minute: Mutex::new(super::record::MinuteFold::default()),
        }
    }

    /// Make `health` the answer for this instance, judged stale after the
    /// store's current limit.
    pub fn publish(&self, health: Health) {
        self.publish_for(health, Duration::ZERO);
    }

    /// Make `health` the answer for this instance, valid for at least
    /// `stale_after` whatever later reloads set. Returns it, so the poller
    /// can [`Published::warm`] it before the poll that replaces it.
    pub fn publish_for(&self, health: Health, stale_after: Duration) -> Arc<Published> {
        let published = Arc::new(Published {
            health,
            stale_after,
            json: OnceLock::new(),
        });
        *self
            .latest
            .lock()
            .expect("slot lock is never held across a panic") = Some(published.clone());
        published
    }

    /// Ask the CPU for this slot's memory, which the end of a poll writes
    /// (the verdict, this minute's fold), so a poll that starts now finds
    /// it in the cache when its reply is in. A hint: nothing is read here.
    pub fn warm(&self) {
        prefetch((self as *const Self).cast(), std::mem::size_of::<Self>());
    }

    /// The latest verdict, if any poll has finished.
    pub fn latest(&self) -> Option<Arc<Published>> {
        self.latest
            .lock()
            .expect("slot lock is never held across a panic")
            .clone()
    }

    /// Keep the samples of a metrics poll fetched at `at`.
    pub fn set_exposition(&self, e: Exposition, at: Instant) {
        *self
            .exposition
            .lock()
            .expect("slot lock is never held across a panic") = Some((Arc::new(e), at));
    }

    /// The samples of the latest metrics poll and when they were fetched.
    pub fn fetched(&self) -> Option<(Arc<Exposition>, Instant)> {
        self.exposition
            .lock()
            .expect("slot lock is never held across a panic")
            .clone()
    }

    /// The instance's labels and rendered identity.
    pub fn ident(&self) -> Arc<Ident> {
        self.ident
            .read()
            .expect("slot lock is never held across a panic")
            .clone()
    }

    /// Relabel in place (a reload changed only the labels).
    pub fn set_labels(&self, labels: Labels) {
        let ident = Arc::new(Ident::new(&self.name, &self.addr, self.tls, labels));
        *self
            .ident
            .write()
            .expect("slot lock is never held across a panic") = ident;
    }

    /// Take over `old`'s verdict and samples: a changed target keeps
    /// answering with its last verdict until its first new poll.
    pub fn inherit(&self, old: &Slot) {
        *self
            .latest
            .lock()
            .expect("slot lock is never held across a panic") = old.latest();
        *self
            .exposition
            .lock()
            .expect("slot lock is never held across a panic") = old.fetched();
    }
}

/// A health answer ready to send.
#[derive(Debug)]
pub struct Answer {
    pub status: Status,
    pub body: Bytes,
    /// Never polled yet: the status is down/stale, but nothing was seen.
    pub pending: bool,
}

/// An instance's current status as every view reports it: the published
/// verdict, or down/stale when there is none or it is too old.
#[derive(Clone, Debug)]
pub struct Current {
    pub status: Status,
    pub reason: Option<Reason>,
    /// The verdict, when one was published.
    pub published: Option<Arc<Published>>,
    /// Age of that verdict.
    pub age: Option<Duration>,
    /// True when there is no verdict or it is older than the stale limit:
    /// then the status is down/stale whatever the verdict said.
    pub stale: bool,
}

impl Current {
    /// Why the status is down/stale, when it is: no verdict yet, or one
    /// older than the stale limit. None when the published verdict stands.
    pub fn stale_error(&self) -> Option<String> {
        if !self.stale {
            return None;
        }
        Some(match self.age {
            None => "not polled yet".to_string(),
            Some(age) => format!("no poll result for {} ms", age.as_millis()),
        })
    }
}

/// A cluster's topology as discovery last read it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterView {
    pub shards: Vec<crate::judge::groups::Shard>,
    /// Every node's instance name.
    pub nodes: Vec<String>,
    pub min_replicas: u32,
    /// The `[[cluster]]`'s, `[[sentinel]]`'s or `[[group]]`'s labels.
    pub labels: Labels,
    /// Why the latest topology read failed, when it did (the view is then
    /// the last one read).
    pub error: Option<String>,
}

/// A replication group: its members' instance names, and for a
/// Sentinel-managed one what the sentinels say.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupView {
    pub members: Vec<String>,
    pub min_replicas: u32,
    /// The `[[cluster]]`'s, `[[sentinel]]`'s or `[[group]]`'s labels.
    pub labels: Labels,
    pub sentinel: Option<crate::judge::groups::SentinelFacts>,
    /// The `[[sentinel]]` it was discovered from; None for `[[group]]`.
    pub source: Option<String>,
}

/// All instances by name.
#[derive(Debug)]
pub struct Store {
    groups: RwLock<std::collections::BTreeMap<String, Arc<GroupView>>>,
    slots: RwLock<HashMap<Box<str>, Arc<Slot>>>,
    clusters: RwLock<std::collections::BTreeMap<String, Arc<ClusterView>>>,
    /// In milliseconds, so a reload can change it while HTTP reads it.
    stale_after_ms: AtomicU64,
    /// Poll outcomes since start.
    pub polls: PollCounters,
    /// The latest config load's outcome.
    pub reload: ReloadStatus,
    /// Where verdicts go for the history, once it is running.
    pub recorder: OnceLock<super::record::Recorder>,
    /// When `/metrics` was last scraped: milliseconds after `epoch`, plus
    /// one (0 is never).
    last_scrape: AtomicU64,
    epoch: Instant,
}

impl Store {
    /// An empty store; verdicts older than `stale_after` are reported stale.
    pub fn new(stale_after: Duration) -> Self {
        Store {
            slots: RwLock::new(HashMap::new()),
            clusters: RwLock::new(std::collections::BTreeMap::new()),
            groups: RwLock::new(std::collections::BTreeMap::new()),
            stale_after_ms: AtomicU64::new(stale_after.as_millis() as u64),
            polls: PollCounters::default(),
            reload: ReloadStatus::default(),
            recorder: OnceLock::new(),
            last_scrape: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// `/metrics` was scraped (a GET answered 200) at `now`: pollers fetch
    /// the metrics sections again while scrapes keep coming.
    pub fn note_scrape(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
        self.last_scrape.fetch_max(ms, Ordering::Relaxed);
    }

    /// Whether `/metrics` was scraped within `window` before `now`.
    pub fn scraped_within(&self, now: Instant, window: Duration) -> bool {
        match self.last_scrape.load(Ordering::Relaxed) {
            0 => false,
            at => {
                let at = self.epoch + Duration::from_millis(at - 1);
                now.saturating_duration_since(at) <= window
            }
        }
    }

    /// How old a verdict may get before it is answered as stale.
    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_after_ms.load(Ordering::Relaxed))
    }

    /// Change the stale limit (after a reload changed interval or timeout).
    pub fn set_stale_after(&self, d: Duration) {
        self.stale_after_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// Every slot, sorted by name.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        let mut v: Vec<_> = self
            .slots
            .read()
            .expect("store lock is never held across a panic")
            .values()
            .cloned()
            .collect();
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Instances without a first verdict yet (what `/readyz` waits for).
    pub fn pending(&self) -> usize {
        self.slots().iter().filter(|s| s.latest().is_none()).count()
    }

    /// Age of the oldest verdict, as `redpulse_poll_lag_seconds` reports
    /// it: about one interval while the poller keeps up.
    pub fn poll_lag(&self, now: Instant) -> Duration {
        self.slots()
            .iter()
            .filter_map(|s| self.current(s, now).age)
            .max()
            .unwrap_or_default()
    }

    /// Add a plaintext instance without labels (or return the existing
    /// slot of that name).
    pub fn insert(&self, name: &str, addr: &str) -> Arc<Slot> {
        self.insert_slot(Slot::new(name, addr, false, Labels::new()))
    }

    /// Add an instance (or return the existing slot of that name).
    pub fn insert_slot(&self, slot: Slot) -> Arc<Slot> {
        let mut slots = self
            .slots
            .write()
            .expect("store lock is never held across a panic");
        slots
            .entry(Box::from(&*slot.name))
            .or_insert_with(|| Arc::new(slot))
            .clone()
    }

    /// Put `slot` in place of its name's slot, if there is one, in one
    /// write: readers find the old slot or the new, never neither.
    pub fn replace_slot(&self, slot: Slot) -> Arc<Slot> {
        let slot = Arc::new(slot);
        self.slots
            .write()
            .expect("store lock is never held across a panic")
            .insert(Box::from(&*slot.name), slot.clone());
        slot
    }

    /// The slot of an instance.
    pub fn get(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots
            .read()
            .expect("store lock is never held across a panic")
            .get(name)
            .cloned()
    }

    /// Set (or with None, forget) a cluster's view.
    pub fn set_cluster(&self, name: &str, view: Option<ClusterView>) {
        let mut clusters = self
            .clusters
            .write()
            .expect("store lock is never held across a panic");
        match view {
            Some(v) => {
                clusters.insert(name.to_string(), Arc::new(v));
            }
            None => {
                clusters.remove(name);
            }
        }
    }

    /// Replace every group that came from `source` (None: the static
    /// `[[group]]`s) with `groups`.
    pub fn set_groups(
        &self,
        source: Option<&str>,
        groups: impl IntoIterator<Item = (String, GroupView)>,
    ) {
        let mut all = self
            .groups
            .write()
            .expect("store lock is never held across a panic");
        all.retain(|_, g| g.source.as_deref() != source);
        all.extend(groups.into_iter().map(|(k, v)| (k, Arc::new(v))));
    }

    /// Every static group, by name.
    pub fn groups(&self) -> Vec<(String, Arc<GroupView>)> {
        self.groups
            .read()
            .expect("store lock is never held across a panic")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every cluster's view, by name.
    pub fn clusters(&self) -> Vec<(String, Arc<ClusterView>)> {
        self.clusters
            .read()
            .expect("store lock is never held across a panic")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.slots
            .read()
            .expect("store lock is never held across a panic")
            .len()
    }

    /// Whether no instance is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stop reporting an instance (it was removed from the config).
    pub fn remove(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots
            .write()
            .expect("store lock is never held across a panic")
            .remove(name)
    }

    /// The status of a slot at `now`, staleness applied.
    pub fn current(&self, slot: &Slot, now: Instant) -> Current {
        let published = slot.latest();
        let age = published
            .as_ref()
            .map(|p| now.saturating_duration_since(p.health.checked_mono));
        let verdict = published.as_ref().filter(|p| {
            let limit = self.stale_after().max(p.stale_after);
            age.is_some_and(|a| a <= limit)
        });
        let (status, reason) = match verdict {
            Some(p) => (p.health.status, p.health.reason()),
            None => (Status::Down, Some(Reason::Stale)),
        };
        let stale = verdict.is_none();
        Current {
            status,
            reason,
            published,
            age,
            stale,
        }
    }

    /// The JSON answer for one instance at time `now`, None if unknown.
    pub fn answer(&self, name: &str, now: Instant) -> Option<Answer> {
        let slot = self.get(name)?;
        let c = self.current(&slot, now);
        let (Some(p), Some(age), None) = (&c.published, c.age, c.stale_error()) else {
            let error = c.stale_error().unwrap_or_default();
            let last = c.published.as_deref().zip(c.age);
            return Some(Answer {
                status: Status::Down,
                body: stale_body(&slot, last, &error),
                pending: c.published.is_none(),
            });
        };
        let (head, tail) = p.json.get_or_init(|| render(&slot.ident().json, &p.health));
        let mut body = Vec::with_capacity(head.len() + tail.len() + 24);
        body.extend_from_slice(head);
        // u64, not the u128 as_millis() gives: half the formatting cost.
        let _ = write!(body, ",\"age_ms\":{}", age.as_millis() as u64);
        body.extend_from_slice(tail);
        Some(Answer {
            status: p.health.status,
            body: body.into(),
            pending: false,
        })
    }
}

fn stale_body(slot: &Slot, last: Option<(&Published, Duration)>, error: &str) -> Bytes {
    let mut b = Vec::with_capacity(256);
    let _ = write!(
        b,
        "{{\"status\":\"down\",\"reason\":\"{}\"",
        Reason::Stale.as_str()
    );
    // Name, address, TLS and labels, as in every other answer.
    b.extend_from_slice(&slot.ident().json);
    b.extend_from_slice(b",\"error\":");
    json_str(&mut b, error);
    if let Some((p, age)) = last {
        let _ = write!(
            b,
            ",\"checked_at\":\"{}\",\"age_ms\":{}",
            rfc3339_millis(p.health.checked_at),
            age.as_millis()
        );
    }
    let _ = write!(b, ",\"reasons\":[\"{}\"]}}", Reason::Stale.as_str());
    b.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Thresholds;
    use crate::judge::outcome::{Failure, Outcome};
    use crate::judge::rules::Tracker;
    use std::time::SystemTime;

    use serde_json::Value;

    use crate::testdata::snapshot as corpus;

    fn published(h: Health) -> (Store, Instant) {
        let store = Store::new(Duration::from_secs(3));
        let at = h.checked_mono;
        store.insert("cache-1", "127.0.0.1:6379").publish(h);
        (store, at)
    }

    #[test]
    fn ok_json_has_the_contract_fields_as_numbers() {
        let s = corpus("redis-7.0_master_idle_info_multi");
        let h = Tracker::new(Thresholds::default()).observe(
            Outcome::Polled {
                snapshot: s.into(),
                latency: Duration::from_micros(310),
                tls: None,
            },
            Instant::now(),
            SystemTime::now(),
        );
        let (store, at) = published(h);
        let a = store
            .answer("cache-1", at + Duration::from_millis(412))
            .unwrap();
        let text = std::str::from_utf8(&a.body).unwrap();
        assert!(
            text.starts_with("{\"status\":\"ok\",\"instance\":\"cache-1\""),
            "{text}"
        );
        assert!(
            !text.contains(' ') || text.contains("\"error\""),
            "compact JSON: {text}"
        );
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["addr"], "127.0.0.1:6379");
        assert_eq!(v["role"], "master");
        assert_eq!(v["version"], "7.0.15");
        assert_eq!(v["mem_ratio"], 0.0);
        assert_eq!(v["used_memory"], 2853440);
        assert_eq!(v["maxmemory"], 0);
        assert_eq!(v["ops_per_sec"], 6);
        assert_eq!(v["connected_clients"], 1);
        assert_eq!(v["maxclients"], 10000);
        assert_eq!(v["blocked_clients"], 0);
        assert_eq!(v["connected_replicas"], 0);
        assert_eq!(v["latency_ms"], 0.31);
        assert_eq!(v["age_ms"], 412);
        assert_eq!(v["reasons"], serde_json::json!([]));
        assert!(v.get("hit_rate").is_none(), "no lookups in the window yet");
        assert!(v.get("master_link_status").is_none());
        assert!(v.get("reason").is_none());
        assert_eq!(a.status, Status::Ok);
    }

    #[test]
    fn replica_json_has_link_fields_and_replica_role() {
        let s = corpus("redis-7.0_replica_master_lost_info_multi");
        let h = Tracker::new(Thresholds::default()).observe(
            Outcome::Polled {
                snapshot: s.into(),
                latency: Duration::from_millis(1),
                tls: None,
            },
            Instant::now(),
            SystemTime::now(),
        );
        let (store, at) = published(h);
        let v: Value = serde_json::from_slice(&store.answer("cache-1", at).unwrap().body).unwrap();
        assert_eq!(v["role"], "replica");
        assert_eq!(v["status"], "degraded");
        assert_eq!(v["reason"], "replica_disconnected");
        assert_eq!(v["reasons"], serde_json::json!(["replica_disconnected"]));
        assert_eq!(v["master_link_status"], "down");
        assert_eq!(v["master_last_io_seconds_ago"], -1);
        assert!(v.get("connected_replicas").is_none());
    }

    #[test]
    fn down_json_has_error_and_reason() {
        let h = Tracker::new(Thresholds::default()).observe(
            Outcome::Failed {
                failure: Failure::new(
                    Reason::ConnectionRefused,
                    "connect 127.0.0.1:1: connection refused",
                ),
                tcp_connected: false,
            },
            Instant::now(),
            SystemTime::now(),
        );
        let (store, at) = published(h);
        let v: Value = serde_json::from_slice(&store.answer("cache-1", at).unwrap().body).unwrap();
        assert_eq!(v["status"], "down");
        assert_eq!(v["reason"], "connection_refused");
        assert_eq!(v["error"], "connect 127.0.0.1:1: connection refused");
        assert_eq!(v["reasons"], serde_json::json!(["connection_refused"]));
    }

    #[test]
    fn old_verdict_is_answered_as_stale() {
        let h = Tracker::new(Thresholds::default()).observe(
            Outcome::Polled {
                snapshot: corpus("redis-7.0_master_idle_info_multi").into(),
                latency: Duration::ZERO,
                tls: None,
            },
            Instant::now(),
            SystemTime::now(),
        );
        let (store, at) = published(h);
        assert_eq!(
            store
                .answer("cache-1", at + Duration::from_secs(3))
                .unwrap()
                .status,
            Status::Ok
        );
        let a = store
            .answer("cache-1", at + Duration::from_millis(3001))
            .unwrap();
        assert_eq!(a.status, Status::Down);
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(
            (v["reason"].as_str(), v["age_ms"].as_u64()),
            (Some(Reason::Stale.as_str()), Some(3001))
        );
        assert!(store.answer("nope", at).is_none());
    }

    #[test]
    fn unpolled_instance_is_down_and_names_json_escaped() {
        let store = Store::new(Duration::from_secs(3));
        store.insert("a\"b", "h:1");
        let v: Value =
            serde_json::from_slice(&store.answer("a\"b", Instant::now()).unwrap().body).unwrap();
        assert_eq!(v["instance"], "a\"b");
        assert_eq!(v["error"], "not polled yet");
    }

    #[test]
    fn labels_are_in_every_answer_and_can_change_in_place() {
        let store = Store::new(Duration::from_secs(3));
        let labels: Labels = [("team".to_string(), "a".to_string())].into();
        let slot = store.insert_slot(Slot::new("c1", "h:1", true, labels));
        // Not polled yet: the stale answer still says who it is.
        let a = store.answer("c1", Instant::now()).unwrap();
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(
            (&v["status"], &v["tls"], &v["labels"]),
            (
                &"down".into(),
                &true.into(),
                &serde_json::json!({"team": "a"})
            )
        );
        slot.set_labels(Labels::new());
        let a = store.answer("c1", Instant::now()).unwrap();
        let v: Value = serde_json::from_slice(&a.body).unwrap();
        assert!(v.get("labels").is_none(), "{v}");
        assert_eq!(&*slot.ident().prom, b"{instance=\"c1\"");
    }
}
