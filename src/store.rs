//! The latest verdict per instance, rendered once into JSON `Bytes`.
//!
//! Pollers [`Slot::publish`] after each poll; the HTTP side asks
//! [`Store::answer`], which is a hash lookup, a short lock to clone an `Arc`,
//! and splicing the request-time `age_ms` between two pre-rendered halves. A
//! verdict older than the stale limit is answered as `down`/`stale`.

use crate::health::{Health, Reason, Status};
use crate::info::Role;
use crate::resp::put_decimal;
use bytes::Bytes;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One instance's published verdict.
#[derive(Debug)]
pub struct Published {
    pub health: Health,
    /// JSON up to and including `checked_at`.
    head: Bytes,
    /// JSON from `,"reasons"` to the closing brace.
    tail: Bytes,
}

/// One watched instance as the HTTP side sees it.
#[derive(Debug)]
pub struct Slot {
    pub name: Box<str>,
    /// `host:port` as shown to operators.
    pub addr: Box<str>,
    /// The name and address as JSON, escaped once.
    ident: Box<[u8]>,
    latest: Mutex<Option<Arc<Published>>>,
}

impl Slot {
    /// A slot with nothing published yet.
    pub fn new(name: &str, addr: &str) -> Self {
        Slot {
            name: name.into(),
            addr: addr.into(),
            ident: ident_json(name, addr),
            latest: Mutex::new(None),
        }
    }

    /// Render `health` and make it the answer for this instance.
    pub fn publish(&self, health: Health) {
        let (head, tail) = render(&self.ident, &health);
        let published = Arc::new(Published { health, head, tail });
        *self
            .latest
            .lock()
            .expect("slot lock is never held across a panic") = Some(published);
    }

    /// The latest verdict, if any poll has finished.
    pub fn latest(&self) -> Option<Arc<Published>> {
        self.latest
            .lock()
            .expect("slot lock is never held across a panic")
            .clone()
    }
}

/// A health answer ready to send.
#[derive(Debug)]
pub struct Answer {
    pub status: Status,
    pub body: Bytes,
}

/// Upper bounds (seconds) of the poll-duration histogram buckets: loopback
/// polls take tens of microseconds, remote ones milliseconds, and the
/// default timeout is 1 s.
pub const POLL_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Process-wide poll counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct PollCounters {
    /// Polls that produced a snapshot.
    pub ok: AtomicU64,
    /// Polls that failed (connect, auth, I/O, protocol).
    pub error: AtomicU64,
    /// Poll durations: per-bucket counts (non-cumulative; the last slot is
    /// +Inf) and the sum in microseconds.
    pub duration_buckets: [AtomicU64; POLL_BUCKETS.len() + 1],
    pub duration_sum_us: AtomicU64,
}

impl PollCounters {
    /// Count one poll and how long it took.
    pub fn record(&self, ok: bool, took: Duration) {
        let counter = if ok { &self.ok } else { &self.error };
        counter.fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let bucket = POLL_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(POLL_BUCKETS.len());
        self.duration_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
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

/// All instances by name.
#[derive(Debug)]
pub struct Store {
    slots: RwLock<HashMap<Box<str>, Arc<Slot>>>,
    /// In milliseconds, so a reload can change it while HTTP reads it.
    stale_after_ms: AtomicU64,
    /// Poll outcomes since start.
    pub polls: PollCounters,
}

impl Store {
    /// An empty store; verdicts older than `stale_after` are reported stale.
    pub fn new(stale_after: Duration) -> Self {
        Store {
            slots: RwLock::new(HashMap::new()),
            stale_after_ms: AtomicU64::new(stale_after.as_millis() as u64),
            polls: PollCounters::default(),
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

    /// Add an instance (or return the existing slot of that name).
    pub fn insert(&self, name: &str, addr: &str) -> Arc<Slot> {
        let mut slots = self
            .slots
            .write()
            .expect("store lock is never held across a panic");
        slots
            .entry(name.into())
            .or_insert_with(|| Arc::new(Slot::new(name, addr)))
            .clone()
    }

    /// The slot of an instance.
    pub fn get(&self, name: &str) -> Option<Arc<Slot>> {
        self.slots
            .read()
            .expect("store lock is never held across a panic")
            .get(name)
            .cloned()
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
        let verdict = published
            .as_ref()
            .filter(|_| age.is_some_and(|a| a <= self.stale_after()));
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
            });
        };
        let mut body = Vec::with_capacity(p.head.len() + p.tail.len() + 24);
        body.extend_from_slice(&p.head);
        let _ = write!(body, ",\"age_ms\":{}", age.as_millis());
        body.extend_from_slice(&p.tail);
        Some(Answer {
            status: p.health.status,
            body: body.into(),
        })
    }
}

fn stale_body(slot: &Slot, last: Option<(&Published, Duration)>, error: &str) -> Bytes {
    let mut b = Vec::with_capacity(256);
    let _ = write!(
        b,
        "{{\"status\":\"down\",\"reason\":\"{}\",\"instance\":",
        Reason::Stale.as_str()
    );
    json_str(&mut b, &slot.name);
    b.extend_from_slice(b",\"addr\":");
    json_str(&mut b, &slot.addr);
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

/// `,"instance":...,"addr":...` for a slot, escaped once.
fn ident_json(name: &str, addr: &str) -> Box<[u8]> {
    let mut b = Vec::with_capacity(32 + name.len() + addr.len());
    b.extend_from_slice(b",\"instance\":");
    json_str(&mut b, name);
    b.extend_from_slice(b",\"addr\":");
    json_str(&mut b, addr);
    b.into_boxed_slice()
}

/// Render the contract's JSON for one verdict, split around `age_ms`.
/// Runs once per poll, so it writes digits by hand instead of going
/// through `fmt`.
pub fn render(ident: &[u8], h: &Health) -> (Bytes, Bytes) {
    let mut b = Vec::with_capacity(512);
    b.extend_from_slice(b"{\"status\":\"");
    b.extend_from_slice(h.status.as_str().as_bytes());
    b.push(b'"');
    if let Some(r) = h.reason() {
        b.extend_from_slice(b",\"reason\":\"");
        b.extend_from_slice(r.as_str().as_bytes());
        b.push(b'"');
    }
    b.extend_from_slice(ident);
    if let Some(s) = &h.snapshot {
        match s.role {
            Some(Role::Master) => b.extend_from_slice(b",\"role\":\"master\""),
            Some(Role::Replica) => b.extend_from_slice(b",\"role\":\"replica\""),
            None => {}
        }
        if let Some(v) = s.server.version() {
            b.extend_from_slice(b",\"version\":\"");
            put_decimal(&mut b, v.major as u64);
            b.push(b'.');
            put_decimal(&mut b, v.minor as u64);
            b.push(b'.');
            put_decimal(&mut b, v.patch as u64);
            b.push(b'"');
        }
        if let (Some(used), Some(max)) = (s.used_memory, s.maxmemory) {
            let ratio = if max == 0 {
                0.0
            } else {
                used as f64 / max as f64
            };
            milli(&mut b, "mem_ratio", ratio);
        }
        num(&mut b, "used_memory", s.used_memory);
        num(&mut b, "maxmemory", s.maxmemory);
        if let Some(rate) = h.hit_rate {
            milli(&mut b, "hit_rate", rate);
        }
        num(&mut b, "ops_per_sec", s.instantaneous_ops_per_sec);
        num(&mut b, "connected_clients", s.connected_clients);
        num(&mut b, "maxclients", s.maxclients);
        num(&mut b, "blocked_clients", s.blocked_clients);
        match s.role {
            Some(Role::Master) => {
                num(&mut b, "connected_replicas", s.connected_slaves);
                num(&mut b, "max_replica_lag_bytes", s.max_replica_lag_bytes());
            }
            Some(Role::Replica) => {
                match s.master_link_up {
                    Some(true) => b.extend_from_slice(b",\"master_link_status\":\"up\""),
                    Some(false) => b.extend_from_slice(b",\"master_link_status\":\"down\""),
                    None => {}
                }
                if let Some(io) = s.master_last_io_seconds_ago {
                    key(&mut b, "master_last_io_seconds_ago");
                    if io < 0 {
                        b.push(b'-');
                    }
                    put_decimal(&mut b, io.unsigned_abs());
                }
            }
            None => {}
        }
    }
    if let Some(l) = h.latency {
        milli(&mut b, "latency_ms", l.as_secs_f64() * 1000.0);
    }
    if let Some(e) = &h.error {
        b.extend_from_slice(b",\"error\":");
        json_str(&mut b, e);
    }
    b.extend_from_slice(b",\"checked_at\":\"");
    push_rfc3339_millis(&mut b, h.checked_at);
    b.push(b'"');
    let head = Bytes::from(b);

    let mut t = Vec::with_capacity(16 + 24 * h.reasons.len());
    t.extend_from_slice(b",\"reasons\":[");
    for (i, r) in h.reasons.iter().enumerate() {
        if i > 0 {
            t.push(b',');
        }
        t.push(b'"');
        t.extend_from_slice(r.as_str().as_bytes());
        t.push(b'"');
    }
    t.extend_from_slice(b"]}");
    (head, Bytes::from(t))
}

fn key(b: &mut Vec<u8>, key: &str) {
    b.extend_from_slice(b",\"");
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(b"\":");
}

fn num(b: &mut Vec<u8>, k: &str, v: Option<u64>) {
    if let Some(v) = v {
        key(b, k);
        put_decimal(b, v);
    }
}

/// A non-negative number rounded to three decimals, written as the
/// shortest decimal (0.42, not 0.420; 1, not 1.000). Non-finite is 0.
fn milli(b: &mut Vec<u8>, k: &str, x: f64) {
    key(b, k);
    let m = if x.is_finite() && x > 0.0 {
        (x * 1000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    };
    put_decimal(b, m / 1000);
    let mut frac = m % 1000;
    if frac != 0 {
        b.push(b'.');
        let mut digits = 3;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let text = [
            b'0' + (frac / 100 % 10) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        b.extend_from_slice(&text[3 - digits..]);
    }
}

/// Append `s` as a JSON string with escapes.
pub fn json_str(b: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(b, s).expect("writing a str into a Vec cannot fail");
}

/// `2026-11-26T12:00:00.123Z`
pub fn rfc3339_millis(t: SystemTime) -> String {
    let mut b = Vec::with_capacity(24);
    push_rfc3339_millis(&mut b, t);
    String::from_utf8(b).expect("only ASCII digits and separators are written")
}

/// Append `2026-11-26T12:00:00.123Z` (UTC, milliseconds).
pub fn push_rfc3339_millis(b: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    push_digits(b, y.clamp(0, 9999) as u64, 4, b'-');
    push_digits(b, m as u64, 2, b'-');
    push_digits(b, day as u64, 2, b'T');
    push_digits(b, rem / 3600, 2, b':');
    push_digits(b, rem % 3600 / 60, 2, b':');
    push_digits(b, rem % 60, 2, b'.');
    push_digits(b, d.subsec_millis() as u64, 3, b'Z');
}

/// `v` zero-padded to `width` digits (v must fit), then `after`.
fn push_digits(b: &mut Vec<u8>, mut v: u64, width: usize, after: u8) {
    let start = b.len();
    b.resize(start + width, b'0');
    for i in (start..start + width).rev() {
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    b.push(after);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Failure, Outcome, Thresholds, Tracker};

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
                snapshot: s,
                latency: Duration::from_micros(310),
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
                snapshot: s,
                latency: Duration::from_millis(1),
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
                snapshot: corpus("redis-7.0_master_idle_info_multi"),
                latency: Duration::ZERO,
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
    fn milli_matches_the_rounded_float_printed_by_std() {
        let mut values = vec![
            0.0, 0.0004, 0.0005, 0.001, 0.1, 0.31, 0.42, 0.999, 0.9995, 1.0, 2.5, 123.456789, 1e9,
        ];
        let mut x = 0.000_123_f64;
        while x < 5000.0 {
            values.push(x);
            x *= 1.37;
        }
        for v in values {
            let mut b = Vec::new();
            milli(&mut b, "k", v);
            let ours: f64 = std::str::from_utf8(&b[5..]).unwrap().parse().unwrap();
            assert_eq!(
                ours,
                (v * 1000.0).round() / 1000.0,
                "{v} rendered as {}",
                String::from_utf8_lossy(&b)
            );
            assert!(
                !b.ends_with(b"0") || !b.contains(&b'.'),
                "trailing zero in {}",
                String::from_utf8_lossy(&b)
            );
        }
        let mut b = Vec::new();
        milli(&mut b, "k", f64::NAN);
        assert_eq!(b, b",\"k\":0");
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        let t = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(rfc3339_millis(t(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(t(951_782_400, 5)),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            rfc3339_millis(t(1_795_694_400, 123)),
            "2026-11-26T12:00:00.123Z"
        );
        assert_eq!(
            rfc3339_millis(t(4_102_444_799, 999)),
            "2099-12-31T23:59:59.999Z"
        );
    }
}
