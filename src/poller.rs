//! One task per instance: poll on a jittered interval over one kept
//! connection, fold each outcome into the instance's `Tracker`, publish the
//! verdict to its store `Slot`.
//!
//! Polls start at a random phase within the interval so a fleet's polls
//! spread over the second. A failed connection is dropped and re-made with
//! jittered exponential backoff capped at the interval, so a dead fleet never
//! becomes a connect storm. Only status changes are logged.

use crate::config::Target;
use crate::conn::Conn;
use crate::health::{Health, Outcome, Status, Tracker};
use crate::store::{Slot, Store};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

/// First reconnect delay after a failure; doubles up to the interval.
const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// How often and how long to poll.
#[derive(Clone, Copy, Debug)]
pub struct PollSettings {
    pub interval: Duration,
    /// A whole poll: connect + write + read.
    pub timeout: Duration,
}

/// Start polling `target`, publishing into its store slot, until `shutdown`
/// turns true.
/// Poll outcomes are counted into `store.polls`.
pub fn spawn(
    target: Target,
    store: &Arc<Store>,
    settings: PollSettings,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let slot = store.insert(&target.name, &target.addr());
    tokio::spawn(run(target, slot, store.clone(), settings, shutdown))
}

async fn run(
    target: Target,
    slot: Arc<Slot>,
    store: Arc<Store>,
    settings: PollSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let polls = &store.polls;
    let mut rng = Jitter::seeded(&target.name);
    let mut tracker = Tracker::new(target.thresholds.clone());
    let mut conn: Option<Conn> = None;
    let mut failures: u32 = 0;
    let mut last_status: Option<Status> = None;
    let mut next = Instant::now() + settings.interval.mul_f64(rng.unit());

    loop {
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let started = Instant::now();
        let deadline = started + settings.timeout;
        let outcome = tokio::select! {
            outcome = poll_once(&target, &mut conn, deadline) => outcome,
            _ = shutdown.changed() => return,
        };
        let ok = matches!(outcome, Outcome::Polled { .. });
        let counter = if ok { &polls.ok } else { &polls.error };
        counter.fetch_add(1, Ordering::Relaxed);
        let health = tracker.observe(outcome, started.into_std(), SystemTime::now());
        log_transition(&target, &health, &mut last_status);
        slot.publish(health);

        next = if ok {
            failures = 0;
            // ±5 % keeps instances from drifting into lockstep.
            started + settings.interval.mul_f64(0.95 + 0.1 * rng.unit())
        } else {
            failures = failures.saturating_add(1);
            let exp = BACKOFF_BASE.saturating_mul(1u32 << (failures - 1).min(16));
            Instant::now() + exp.min(settings.interval).mul_f64(0.5 + 0.5 * rng.unit())
        };
    }
}

/// One poll: reuse the connection, or make one first. A connection that
/// failed mid-poll is dropped.
pub async fn poll_once(target: &Target, conn: &mut Option<Conn>, deadline: Instant) -> Outcome {
    if conn.is_none() {
        match Conn::connect(target, deadline).await {
            Ok(c) => *conn = Some(c),
            Err((failure, tcp_connected)) => {
                return Outcome::Failed {
                    failure,
                    tcp_connected,
                }
            }
        }
    }
    let c = conn.as_mut().expect("connection made above");
    let result = c.poll(deadline).await;
    let usable = c.is_usable();
    if !usable {
        *conn = None;
    }
    match result {
        Ok((snapshot, latency)) => Outcome::Polled { snapshot, latency },
        Err(failure) => Outcome::Failed {
            failure,
            tcp_connected: usable,
        },
    }
}

fn log_transition(target: &Target, h: &Health, last: &mut Option<Status>) {
    if *last == Some(h.status) {
        return;
    }
    let reason = h.reason().map(|r| r.as_str());
    let error = h.error.as_deref();
    if h.status == Status::Ok {
        info!(instance = %target.name, addr = %target.addr(), status = h.status.as_str(), "instance healthy");
    } else {
        warn!(instance = %target.name, addr = %target.addr(), status = h.status.as_str(), reason, error, "instance unhealthy");
    }
    *last = Some(h.status);
}

/// A tiny xorshift generator: jitter needs spread, not quality, and this
/// keeps the poller free of a random-number dependency.
struct Jitter(u64);

impl Jitter {
    fn seeded(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        // FNV-1a of the name, mixed with the clock: distinct per instance
        // and per run.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        Jitter((h ^ ((nanos as u64) << 17)) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_in_range_and_spread() {
        let mut j = Jitter::seeded("cache-1");
        let samples: Vec<f64> = (0..10_000).map(|_| j.unit()).collect();
        assert!(samples.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        let low = samples.iter().filter(|&&x| x < 0.1).count();
        assert!((800..1200).contains(&low), "{low} of 10000 below 0.1");
    }

    #[test]
    fn different_names_get_different_phases() {
        let a = Jitter::seeded("a").unit();
        let b = Jitter::seeded("b").unit();
        assert_ne!(a, b);
    }
}
