//! Process-wide poll counters: the pollers add to them, `/metrics` reads
//! them. Relaxed atomics: a scrape may see one poll's counts half applied,
//! which no reader can tell from a scrape a microsecond earlier.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

/// The outcome of the latest config load (the start counts as one).
#[derive(Debug, Default)]
pub struct ReloadStatus {
    /// 1 when the latest load succeeded, else 0.
    pub successful: AtomicU64,
    /// Unix time of the latest successful load, in seconds.
    pub success_at: AtomicU64,
}

impl ReloadStatus {
    /// Record a load's outcome now.
    pub fn record(&self, ok: bool) {
        self.successful.store(u64::from(ok), Ordering::Relaxed);
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            self.success_at.store(now, Ordering::Relaxed);
        }
    }
}
