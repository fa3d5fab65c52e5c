//! Instance rules: a poll's [`Outcome`] (a `Snapshot` and its latency, or
//! a failure) plus the instance's history into a [`Health`] verdict.
//!
//! A [`Tracker`] per instance keeps the previous snapshot (for counter
//! deltas), a short series of hit/miss samples (for the windowed hit rate)
//! and the fail_after/recover_after damping state. Restarts reset the deltas
//! instead of producing negative rates. The JSON of a verdict is rendered in
//! `state::render`.

use crate::cache::{prefetch, LINE};
use crate::config::Thresholds;
use crate::judge::outcome::{Outcome, Reason, Status, TlsPeer};
use crate::wire::info::{Role, Snapshot};
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// The verdict on one instance after a poll, damping applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub status: Status,
    /// Every reason that applies, most severe first.
    pub reasons: Vec<Reason>,
    /// Set when down: what failed.
    pub error: Option<String>,
    /// The metrics of the latest successful poll, when there is one;
    /// shared between the published verdict and the tracker's damping.
    pub snapshot: Option<std::sync::Arc<Snapshot>>,
    /// Hit rate over the window, when the window saw lookups.
    pub hit_rate: Option<f64>,
    pub latency: Option<Duration>,
    /// The server certificate of the latest successful TLS poll.
    pub tls: Option<TlsPeer>,
    /// Whether the TCP connection was up at the last attempt.
    pub tcp_ok: bool,
    /// Wall-clock and monotonic time of the poll this verdict came from.
    pub checked_at: SystemTime,
    pub checked_mono: Instant,
}

impl Health {
    /// The most severe reason, if any.
    pub fn reason(&self) -> Option<Reason> {
        self.reasons.first().copied()
    }
}

/// A hit/miss counter sample for the windowed hit rate.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Nanoseconds since the tracker's first sample (24 bytes a sample
    /// instead of 32 with an `Instant`).
    at: u64,
    hits: u64,
    misses: u64,
}

/// At most this many samples per window: the window slides in steps of
/// window / SAMPLES_PER_WINDOW, which bounds memory per instance whatever
/// the poll interval.
const SAMPLES_PER_WINDOW: u32 = 16;
/// Samples held at most: the window's, the baseline at or before its start,
/// and the newest.
const MAX_SAMPLES: usize = SAMPLES_PER_WINDOW as usize + 2;

/// The last published verdict and metrics, as damping needs them.
#[derive(Debug)]
struct Reported {
    status: Status,
    reasons: Vec<Reason>,
    error: Option<String>,
    snapshot: Option<std::sync::Arc<Snapshot>>,
    hit_rate: Option<f64>,
    latency: Option<Duration>,
}

/// What the next poll compares with: the counters the restart check and
/// the rejected-connections rule read, not a whole snapshot (every
/// instance keeps one, so the difference is per instance).
#[derive(Clone, Copy, Debug)]
struct Counters {
    run_id: Option<[u8; 40]>,
    uptime_in_seconds: Option<u64>,
    keyspace_hits: Option<u64>,
    keyspace_misses: Option<u64>,
    rejected_connections: Option<u64>,
    total_connections_received: Option<u64>,
}

impl Counters {
    fn of(s: &Snapshot) -> Counters {
        Counters {
            run_id: s.server.run_id,
            uptime_in_seconds: s.server.uptime_in_seconds,
            keyspace_hits: s.keyspace_hits,
            keyspace_misses: s.keyspace_misses,
            rejected_connections: s.rejected_connections,
            total_connections_received: s.total_connections_received,
        }
    }
}

/// Per-instance history: everything the rules need from earlier polls.
#[derive(Debug)]
pub struct Tracker {
    thresholds: std::sync::Arc<Thresholds>,
    prev: Option<Counters>,
    samples: VecDeque<Sample>,
    /// When the first hit-rate sample was taken: samples count from here.
    origin: Option<Instant>,
    reported: Option<Reported>,
    /// Consecutive polls whose raw status was worse (or better) than reported.
    worse_streak: u32,
    better_streak: u32,
}

impl Tracker {
    /// A tracker with no history.
    pub fn new(thresholds: impl Into<std::sync::Arc<Thresholds>>) -> Self {
        Tracker {
            thresholds: thresholds.into(),
            prev: None,
            samples: VecDeque::new(),
            origin: None,
            reported: None,
            worse_streak: 0,
            better_streak: 0,
        }
    }

    /// Ask the CPU for the memory [`Tracker::observe`] reads outside this
    /// struct (the hit-rate window, the thresholds, the last reported
    /// snapshot), so a poll that starts now finds it in the cache when its
    /// reply is in. A hint: nothing is read here.
    pub fn warm(&self) {
        let (front, back) = self.samples.as_slices();
        for half in [front, back] {
            prefetch(half.as_ptr().cast(), std::mem::size_of_val(half));
        }
        prefetch(
            std::sync::Arc::as_ptr(&self.thresholds).cast(),
            std::mem::size_of::<Thresholds>(),
        );
        if let Some(snapshot) = self.reported.as_ref().and_then(|r| r.snapshot.as_ref()) {
            // Its counts sit just before it: dropping a reference writes
            // them. All of it: this poll's end frees it, and the allocator
            // hands that memory to the next poll's snapshot, which then
            // writes its 600 bytes into cached lines.
            prefetch(
                std::sync::Arc::as_ptr(snapshot)
                    .cast::<u8>()
                    .wrapping_sub(LINE),
                LINE + std::mem::size_of::<Snapshot>(),
            );
        }
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Fold one poll outcome into the history and return the verdict to
    /// publish.
    pub fn observe(&mut self, outcome: Outcome, now: Instant, wall: SystemTime) -> Health {
        let raw = match outcome {
            Outcome::Polled {
                snapshot,
                latency,
                tls,
            } => self.evaluate(snapshot, latency, tls, now, wall),
            Outcome::Failed {
                failure,
                tcp_connected,
            } => Health {
                status: Status::Down,
                reasons: vec![failure.reason],
                error: Some(failure.error),
                snapshot: None,
                hit_rate: None,
                latency: None,
                tls: None,
                tcp_ok: tcp_connected,
                checked_at: wall,
                checked_mono: now,
            },
        };
        let health = self.damp(raw);
        self.remember(&health);
        health
    }

    /// The rules on a successful poll, before damping.
    fn evaluate(
        &mut self,
        snap: std::sync::Arc<Snapshot>,
        latency: Duration,
        tls: Option<TlsPeer>,
        now: Instant,
        wall: SystemTime,
    ) -> Health {
        if let Some(prev) = &self.prev {
            if restarted(prev, &snap) {
                self.samples.clear();
                self.prev = None;
            }
        }
        let hit_rate = self.windowed_hit_rate(&snap, now);
        let t = &self.thresholds;
        let mut reasons = Vec::new();

        if snap.loading == Some(true) {
            reasons.push(Reason::Loading);
        }
        if snap.rdb_last_bgsave_ok == Some(false) || snap.aof_last_write_ok == Some(false) {
            reasons.push(Reason::PersistenceFailing);
        }
        if let (Some(used), Some(max)) = (snap.used_memory, snap.maxmemory) {
            if max > 0 && used as f64 / max as f64 > t.memory_critical {
                reasons.push(Reason::MemoryPressure);
            }
        }
        if let (Some(used), Some(0), Some(host)) =
            (snap.used_memory, snap.maxmemory, snap.total_system_memory)
        {
            // No maxmemory: mem_ratio is 0 and nothing else would fire
            // while the host runs out of memory.
            if host > 0 && used as f64 / host as f64 > t.system_memory_critical {
                reasons.push(Reason::SystemMemoryPressure);
            }
        }
        if let (Some(changes), Some(saved_at)) =
            (snap.rdb_changes_since_last_save, snap.rdb_last_save_time)
        {
            // On the server's own clock when INFO server came along (no
            // skew between hosts), else on ours.
            let server_now = snap
                .server_time_usec
                .map_or(wall, |us| std::time::UNIX_EPOCH + Duration::from_micros(us));
            let since_save = server_now
                .duration_since(std::time::UNIX_EPOCH + Duration::from_secs(saved_at))
                .unwrap_or_default();
            if !t.backup_max_age.is_zero() && changes > 0 && since_save > t.backup_max_age {
                reasons.push(Reason::BackupStale);
            }
        }
        if let Some((rate, lookups)) = hit_rate {
            if lookups >= t.hit_rate_min_lookups && rate < t.hit_rate_min {
                reasons.push(Reason::LowHitRate);
            }
        }
        if snap.role == Some(Role::Replica) && snap.master_link_up == Some(false) {
            reasons.push(Reason::ReplicaDisconnected);
        }
        // Master side: the slowest replica's offset; replica side: what it
        // has read but not applied.
        let lag = snap
            .max_replica_lag_bytes()
            .max(snap.replica_apply_lag_bytes());
        if lag.is_some_and(|lag| lag > t.replication_lag_bytes) {
            reasons.push(Reason::ReplicationLag);
        }
        if let (Some(clients), Some(max)) = (snap.connected_clients, snap.maxclients) {
            if max > 0 && clients as f64 >= t.clients_near_limit * max as f64 {
                reasons.push(Reason::ClientsNearLimit);
            }
        }
        if let (Some(prev), Some(now_rejected)) = (
            self.prev.and_then(|p| p.rejected_connections),
            snap.rejected_connections,
        ) {
            if now_rejected > prev {
                reasons.push(Reason::RejectedConnections);
            }
        }
        if t.blocked_clients_max >= 0
            && snap
                .blocked_clients
                .is_some_and(|b| b as i64 > t.blocked_clients_max)
        {
            reasons.push(Reason::BlockedClients);
        }
        if latency > t.latency_critical {
            reasons.push(Reason::SlowResponseCritical);
        } else if latency > t.latency_warn {
            reasons.push(Reason::SlowResponseWarn);
        }
        if tls.is_some_and(|peer| cert_days_left(peer, wall) < t.tls_expiry_warn_days as f64) {
            reasons.push(Reason::TlsCertExpiring);
        }
        reasons.sort_by_key(|r| std::cmp::Reverse(r.rank()));
        self.prev = Some(Counters::of(&snap));
        Health {
            status: reasons.first().map_or(Status::Ok, |r| r.status()),
            reasons,
            error: None,
            snapshot: Some(snap),
            hit_rate: hit_rate.map(|(rate, _)| rate),
            latency: Some(latency),
            tls,
            tcp_ok: true,
            checked_at: wall,
            checked_mono: now,
        }
    }

    /// Hit rate and lookups between the oldest sample still in the window
    /// and this poll. None without counters or without lookups.
    fn windowed_hit_rate(&mut self, snap: &Snapshot, now: Instant) -> Option<(f64, u64)> {
        let (hits, misses) = (snap.keyspace_hits?, snap.keyspace_misses?);
        let window = self.thresholds.hit_rate_window;
        let step = (window / SAMPLES_PER_WINDOW).as_nanos() as u64;
        let window = window.as_nanos() as u64;
        let origin = *self.origin.get_or_insert(now);
        let at = now.saturating_duration_since(origin).as_nanos() as u64;
        let current = Sample { at, hits, misses };
        // Keep the newest sample at or before the window start as baseline.
        while self.samples.len() >= 2 && at.saturating_sub(self.samples[1].at) >= window {
            self.samples.pop_front();
        }
        let result = self.samples.front().and_then(|base| {
            let dh = hits.checked_sub(base.hits)?;
            let dm = misses.checked_sub(base.misses)?;
            let lookups = dh + dm;
            (lookups > 0).then(|| (dh as f64 / lookups as f64, lookups))
        });
        if self
            .samples
            .back()
            .is_none_or(|last| at.saturating_sub(last.at) >= step)
        {
            if self.samples.len() == self.samples.capacity() {
                // Grown by doubling, but never past the most it holds (the
                // window's samples, the baseline before it, the newest):
                // doubling alone ends at room for 32 (1 KiB per instance).
                let room = (self.samples.capacity() * 2).clamp(4, MAX_SAMPLES);
                self.samples
                    .reserve_exact(room.saturating_sub(self.samples.len()).max(1));
            }
            self.samples.push_back(current);
        }
        result
    }

    /// Keep what damping needs of the published verdict, reusing the
    /// previous allocations: a steady instance allocates nothing here.
    fn remember(&mut self, h: &Health) {
        let r = self.reported.get_or_insert_with(|| Reported {
            status: h.status,
            reasons: Vec::new(),
            error: None,
            snapshot: None,
            hit_rate: None,
            latency: None,
        });
        r.status = h.status;
        r.reasons.clone_from(&h.reasons);
        r.error.clone_from(&h.error);
        r.snapshot.clone_from(&h.snapshot);
        r.hit_rate = h.hit_rate;
        r.latency = h.latency;
    }

    /// fail_after / recover_after: a status change is reported only after
    /// enough consecutive polls agree. While held, the previous verdict is
    /// kept with this poll's time and metrics.
    fn damp(&mut self, raw: Health) -> Health {
        let Some(prev) = &self.reported else {
            return raw;
        };
        let needed = if raw.status > prev.status {
            self.better_streak = 0;
            self.worse_streak += 1;
            self.thresholds.fail_after
        } else if raw.status < prev.status {
            self.worse_streak = 0;
            self.better_streak += 1;
            self.thresholds.recover_after
        } else {
            self.worse_streak = 0;
            self.better_streak = 0;
            return raw;
        };
        let streak = self.worse_streak.max(self.better_streak);
        if streak >= needed {
            self.worse_streak = 0;
            self.better_streak = 0;
            return raw;
        }
        Health {
            status: prev.status,
            reasons: prev.reasons.clone(),
            error: prev.error.clone(),
            snapshot: raw.snapshot.or_else(|| prev.snapshot.clone()),
            hit_rate: raw.hit_rate.or(prev.hit_rate),
            latency: raw.latency.or(prev.latency),
            ..raw
        }
    }
}

/// Days from `now` until the certificate expires (negative once expired).
pub fn cert_days_left(peer: TlsPeer, now: SystemTime) -> f64 {
    match peer.not_after.duration_since(now) {
        Ok(left) => left.as_secs_f64() / 86_400.0,
        Err(past) => -past.duration().as_secs_f64() / 86_400.0,
    }
}

/// A new run_id, or counters or uptime going backwards: the server
/// restarted (or was flushed with CONFIG RESETSTAT) since `prev`.
fn restarted(prev: &Counters, now: &Snapshot) -> bool {
    let back = |a: Option<u64>, b: Option<u64>| matches!((a, b), (Some(a), Some(b)) if b < a);
    (prev.run_id.is_some() && now.server.run_id.is_some() && prev.run_id != now.server.run_id)
        || back(prev.uptime_in_seconds, now.server.uptime_in_seconds)
        || back(prev.keyspace_hits, now.keyspace_hits)
        || back(prev.keyspace_misses, now.keyspace_misses)
        || back(prev.rejected_connections, now.rejected_connections)
        || back(
            prev.total_connections_received,
            now.total_connections_received,
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::outcome::Failure;

    use crate::testdata::snapshot as corpus;

    fn polled(snapshot: Snapshot) -> Outcome {
        Outcome::Polled {
            snapshot: snapshot.into(),
            latency: Duration::from_micros(300),
            tls: None,
        }
    }

    fn failed(reason: Reason) -> Outcome {
        Outcome::Failed {
            failure: Failure::new(reason, "x"),
            tcp_connected: false,
        }
    }

    fn names(h: &Health) -> Vec<&'static str> {
        h.reasons.iter().map(|r| r.as_str()).collect()
    }

    /// One poll of a corpus reply with fresh history.
    fn first_verdict(name: &str, t: Thresholds) -> Health {
        Tracker::new(t).observe(polled(corpus(name)), Instant::now(), SystemTime::now())
    }

    #[test]
    fn corpus_states_give_the_contract_reasons() {
        let lag_t = Thresholds {
            replication_lag_bytes: 0,
            ..Thresholds::default()
        };
        let blocked_t = Thresholds {
            blocked_clients_max: 1,
            ..Thresholds::default()
        };
        let cases: &[(&str, Thresholds, Status, &[&str])] = &[
            (
                "redis-7.0_master_idle_info_multi",
                Thresholds::default(),
                Status::Ok,
                &[],
            ),
            (
                "valkey-8.1_master_info_multi",
                Thresholds::default(),
                Status::Ok,
                &[],
            ),
            (
                "redis-6.2_master_pipelined_sections",
                Thresholds::default(),
                Status::Ok,
                &[],
            ),
            (
                "redis-7.0_replica_online_info_multi",
                Thresholds::default(),
                Status::Ok,
                &[],
            ),
            (
                "redis-7.0_master_with_2_replicas_info_multi",
                Thresholds::default(),
                Status::Ok,
                &[],
            ),
            (
                "redis-7.0_master_with_2_replicas_info_multi",
                lag_t,
                Status::Ok,
                &[],
            ),
            (
                "redis-7.0_memory_pressure_noeviction_info_multi",
                Thresholds::default(),
                Status::Critical,
                &["memory_pressure"],
            ),
            (
                "redis-7.0_replica_link_down_info_multi",
                Thresholds::default(),
                Status::Degraded,
                &["replica_disconnected"],
            ),
            (
                "redis-7.0_replica_master_lost_info_multi",
                Thresholds::default(),
                Status::Degraded,
                &["replica_disconnected"],
            ),
            (
                "redis-7.0_loading_info_multi",
                Thresholds::default(),
                Status::Down,
                &["loading"],
            ),
            (
                "redis-7.0_bgsave_failing_info_persistence",
                // INFO persistence alone carries no server clock, so the
                // backup's age would be measured against today's: the
                // backup rule has its own test.
                Thresholds {
                    backup_max_age: Duration::ZERO,
                    ..Thresholds::default()
                },
                Status::Critical,
                &["persistence_failing"],
            ),
            (
                "redis-7.0_blocked_clients_info_multi",
                Thresholds::default(),
                Status::Ok,
                &[],
            ),
            (
                "redis-7.0_blocked_clients_info_multi",
                blocked_t,
                Status::Degraded,
                &["blocked_clients"],
            ),
            // Counters since server start say ~0 % hits, but one poll has no window yet.
            (
                "redis-7.0_low_hit_rate_info_multi",
                Thresholds::default(),
                Status::Ok,
                &[],
            ),
        ];
        for (name, t, status, reasons) in cases {
            let h = first_verdict(name, t.clone());
            assert_eq!(
                (h.status, names(&h).as_slice()),
                (*status, *reasons),
                "{name}"
            );
        }
    }

    #[test]
    fn low_hit_rate_comes_from_the_window_not_server_start() {
        let mut tr = Tracker::new(Thresholds {
            fail_after: 1,
            ..Thresholds::default()
        });
        let t0 = Instant::now();
        let mut s = corpus("redis-7.0_master_idle_info_multi");
        s.keyspace_hits = Some(1_000_000);
        s.keyspace_misses = Some(0);
        let h = tr.observe(polled(s), t0, SystemTime::now());
        assert_eq!((h.status, h.hit_rate), (Status::Ok, None));
        // 2000 misses in the next second: windowed rate 0 although the
        // lifetime rate is still above 99 %.
        s.keyspace_misses = Some(2000);
        let h = tr.observe(polled(s), t0 + Duration::from_secs(1), SystemTime::now());
        assert_eq!(h.status, Status::Degraded);
        assert_eq!(names(&h), ["low_hit_rate"]);
        assert_eq!(h.hit_rate, Some(0.0));
        // Too few lookups in the window: no verdict on the rate.
        let mut tr = Tracker::new(Thresholds {
            fail_after: 1,
            ..Thresholds::default()
        });
        s.keyspace_misses = Some(0);
        tr.observe(polled(s), t0, SystemTime::now());
        s.keyspace_misses = Some(999);
        let h = tr.observe(polled(s), t0 + Duration::from_secs(1), SystemTime::now());
        assert_eq!(h.status, Status::Ok);
        assert_eq!(h.hit_rate, Some(0.0));
    }

    #[test]
    fn hit_rate_window_slides_and_forgets_old_misses() {
        let t = Thresholds {
            fail_after: 1,
            recover_after: 1,
            ..Thresholds::default()
        };
        let window = t.hit_rate_window;
        let mut tr = Tracker::new(t);
        let t0 = Instant::now();
        let mut s = corpus("redis-7.0_master_idle_info_multi");
        s.keyspace_hits = Some(0);
        s.keyspace_misses = Some(0);
        tr.observe(polled(s), t0, SystemTime::now());
        s.keyspace_misses = Some(5000);
        let h = tr.observe(polled(s), t0 + Duration::from_secs(1), SystemTime::now());
        assert_eq!(h.status, Status::Degraded);
        // Then only hits, one poll a second, for longer than the window.
        let mut last = h;
        for i in 2..=(window.as_secs() + 10) {
            s.keyspace_hits = Some(i * 100);
            last = tr.observe(polled(s), t0 + Duration::from_secs(i), SystemTime::now());
        }
        assert_eq!(
            last.status,
            Status::Ok,
            "misses older than the window still count"
        );
        assert_eq!(last.hit_rate, Some(1.0));
        assert!(
            tr.samples.len() <= SAMPLES_PER_WINDOW as usize + 2,
            "{}",
            tr.samples.len()
        );
    }

    #[test]
    fn hit_rate_samples_never_take_room_past_their_bound() {
        let mut tr = Tracker::new(Thresholds::default());
        let window = tr.thresholds().hit_rate_window;
        let t0 = Instant::now();
        let mut s = Snapshot {
            keyspace_hits: Some(0),
            keyspace_misses: Some(0),
            ..Snapshot::default()
        };
        // Polls every 250 ms for three windows: a sample every step
        // (window / 16), so the window holds 16 and the baseline one more
        // (the count by hand); doubling would have made room for 32.
        let mut most = 0;
        for i in 0..(window.as_millis() as u64 * 3 / 250) {
            s.keyspace_hits = Some(i);
            tr.observe(
                polled(s),
                t0 + Duration::from_millis(250 * i),
                SystemTime::now(),
            );
            most = most.max(tr.samples.len());
        }
        assert_eq!(most, SAMPLES_PER_WINDOW as usize + 1);
        assert!(
            tr.samples.capacity() <= MAX_SAMPLES,
            "{}",
            tr.samples.capacity()
        );
    }

    #[test]
    fn restart_resets_deltas_instead_of_negative_rates() {
        let mut tr = Tracker::new(Thresholds {
            fail_after: 1,
            ..Thresholds::default()
        });
        let t0 = Instant::now();
        let mut s = corpus("redis-7.0_master_idle_info_multi");
        s.keyspace_hits = Some(100);
        s.keyspace_misses = Some(50_000);
        s.rejected_connections = Some(10);
        tr.observe(polled(s), t0, SystemTime::now());
        // Restarted server: counters back near zero, new run_id.
        let mut r = s;
        r.server.run_id = Some([b'f'; 40]);
        r.keyspace_hits = Some(5);
        r.keyspace_misses = Some(0);
        r.rejected_connections = Some(0);
        let h = tr.observe(polled(r), t0 + Duration::from_secs(1), SystemTime::now());
        assert_eq!(h.status, Status::Ok);
        assert_eq!(h.hit_rate, None);
        // Counters going backwards without a run_id change also reset.
        let mut tr = Tracker::new(Thresholds {
            fail_after: 1,
            ..Thresholds::default()
        });
        tr.observe(polled(s), t0, SystemTime::now());
        s.keyspace_misses = Some(10);
        let h = tr.observe(polled(s), t0 + Duration::from_secs(1), SystemTime::now());
        assert_eq!((h.status, h.hit_rate), (Status::Ok, None));
    }

    #[test]
    fn replication_lag_from_either_side() {
        let t = Thresholds {
            replication_lag_bytes: 1000,
            ..Thresholds::default()
        };
        let mut master = corpus("redis-7.0_master_with_2_replicas_info_multi");
        assert_eq!(first_verdict_of(master, t.clone()).status, Status::Ok);
        master.master_repl_offset = master.min_replica_offset.map(|o| o + 1001);
        let h = first_verdict_of(master, t.clone());
        assert_eq!(
            (h.status, names(&h).as_slice()),
            (Status::Degraded, &["replication_lag"][..])
        );
        let mut replica = corpus("redis-7.0_replica_online_info_multi");
        assert_eq!(first_verdict_of(replica, t.clone()).status, Status::Ok);
        replica.slave_read_repl_offset = replica.slave_repl_offset.map(|o| o + 5000);
        let h = first_verdict_of(replica, t);
        assert_eq!(names(&h), ["replication_lag"]);
    }

    #[test]
    fn rejected_connections_flag_only_growth() {
        let mut tr = Tracker::new(Thresholds {
            fail_after: 1,
            ..Thresholds::default()
        });
        let t0 = Instant::now();
        let mut s = corpus("redis-7.0_master_idle_info_multi");
        s.rejected_connections = Some(7);
        assert_eq!(
            tr.observe(polled(s), t0, SystemTime::now()).status,
            Status::Ok
        );
        s.rejected_connections = Some(9);
        let h = tr.observe(polled(s), t0 + Duration::from_secs(1), SystemTime::now());
        assert_eq!(names(&h), ["rejected_connections"]);
    }

    #[test]
    fn one_bad_poll_does_not_flip_the_status_with_fail_after_2() {
        let mut tr = Tracker::new(Thresholds::default());
        let ok = corpus("redis-7.0_master_idle_info_multi");
        let t0 = Instant::now();
        let at = |i: u64| t0 + Duration::from_secs(i);
        assert_eq!(
            tr.observe(polled(ok), at(0), SystemTime::now()).status,
            Status::Ok
        );
        let held = tr.observe(failed(Reason::Timeout), at(1), SystemTime::now());
        assert_eq!((held.status, held.reasons.len()), (Status::Ok, 0));
        assert_eq!(held.checked_mono, at(1));
        assert_eq!(
            tr.observe(polled(ok), at(2), SystemTime::now()).status,
            Status::Ok
        );
        // Two in a row do flip it.
        tr.observe(failed(Reason::Timeout), at(3), SystemTime::now());
        let down = tr.observe(failed(Reason::ConnectionRefused), at(4), SystemTime::now());
        assert_eq!(down.status, Status::Down);
        assert_eq!(names(&down), ["connection_refused"]);
        // And recovery needs two good polls too.
        let still = tr.observe(polled(ok), at(5), SystemTime::now());
        assert_eq!(still.status, Status::Down);
        assert!(
            still.snapshot.is_some(),
            "held verdict carries fresh metrics"
        );
        assert_eq!(
            tr.observe(polled(ok), at(6), SystemTime::now()).status,
            Status::Ok
        );
    }

    #[test]
    fn first_poll_is_reported_without_damping() {
        let mut tr = Tracker::new(Thresholds {
            fail_after: 5,
            ..Thresholds::default()
        });
        let h = tr.observe(
            failed(Reason::AuthFailed),
            Instant::now(),
            SystemTime::now(),
        );
        assert_eq!(
            (h.status, names(&h).as_slice()),
            (Status::Down, &["auth_failed"][..])
        );
    }

    #[test]
    fn reasons_are_sorted_most_severe_first() {
        let mut s = corpus("redis-7.0_memory_pressure_noeviction_info_multi");
        s.rdb_last_bgsave_ok = Some(false);
        s.connected_clients = Some(9500);
        s.maxclients = Some(10000);
        let mut tr = Tracker::new(Thresholds::default());
        let h = tr.observe(
            Outcome::Polled {
                snapshot: s.into(),
                latency: Duration::from_millis(300),
                tls: None,
            },
            Instant::now(),
            SystemTime::now(),
        );
        assert_eq!(h.status, Status::Critical);
        assert_eq!(
            names(&h),
            [
                "persistence_failing",
                "memory_pressure",
                "clients_near_limit",
                "slow_response"
            ]
        );
        assert_eq!(h.reason(), Some(Reason::PersistenceFailing));
    }

    #[test]
    fn latency_thresholds_pick_warn_or_critical() {
        let s = corpus("redis-7.0_master_idle_info_multi");
        for (ms, status) in [
            (150, Status::Ok),
            (250, Status::Degraded),
            (1500, Status::Critical),
        ] {
            let h = Tracker::new(Thresholds::default()).observe(
                Outcome::Polled {
                    snapshot: s.into(),
                    latency: Duration::from_millis(ms),
                    tls: None,
                },
                Instant::now(),
                SystemTime::now(),
            );
            assert_eq!(h.status, status, "{ms} ms");
        }
    }

    #[test]
    fn memory_ratio_boundary_is_strictly_above() {
        let mut s = corpus("redis-7.0_master_idle_info_multi");
        s.maxmemory = Some(1000);
        s.used_memory = Some(950);
        assert_eq!(
            first_verdict_of(s, Thresholds::default()).status,
            Status::Ok
        );
        s.used_memory = Some(951);
        assert_eq!(
            first_verdict_of(s, Thresholds::default()).status,
            Status::Critical
        );
        // No maxmemory: never memory_pressure; the host's memory decides.
        s.maxmemory = Some(0);
        s.total_system_memory = Some(1000);
        s.used_memory = Some(900);
        assert_eq!(
            first_verdict_of(s, Thresholds::default()).status,
            Status::Ok
        );
        s.used_memory = Some(901);
        let h = first_verdict_of(s, Thresholds::default());
        assert_eq!(
            (h.status, names(&h)),
            (Status::Critical, vec!["system_memory_pressure"])
        );
        s.total_system_memory = None;
        s.used_memory = Some(u64::MAX);
        assert_eq!(
            first_verdict_of(s, Thresholds::default()).status,
            Status::Ok,
            "host memory unknown: nothing to compare"
        );
    }

    #[test]
    fn backup_age_is_measured_on_the_servers_clock() {
        let mut s = corpus("redis-7.0_master_idle_info_multi");
        let saved = 1_795_000_000;
        s.rdb_last_save_time = Some(saved);
        s.rdb_changes_since_last_save = Some(1);
        let t = Thresholds {
            backup_max_age: Duration::from_secs(3600),
            ..Thresholds::default()
        };
        // The server says an hour has passed: not yet stale.
        s.server_time_usec = Some((saved + 3600) * 1_000_000);
        assert_eq!(first_verdict_of(s, t.clone()).status, Status::Ok);
        s.server_time_usec = Some((saved + 3601) * 1_000_000);
        let h = first_verdict_of(s, t.clone());
        assert_eq!(
            (h.status, names(&h)),
            (Status::Degraded, vec!["backup_stale"])
        );
        // Nothing unsaved, or the rule off: never stale.
        s.rdb_changes_since_last_save = Some(0);
        assert_eq!(first_verdict_of(s, t.clone()).status, Status::Ok);
        s.rdb_changes_since_last_save = Some(1);
        let off = Thresholds {
            backup_max_age: Duration::ZERO,
            ..t
        };
        assert_eq!(first_verdict_of(s, off).status, Status::Ok);
    }

    fn first_verdict_of(s: Snapshot, t: Thresholds) -> Health {
        Tracker::new(t).observe(polled(s), Instant::now(), SystemTime::now())
    }
}
