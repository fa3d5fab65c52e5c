//! Heartbeats: workers (queue consumers, cron jobs) ping redpulse after each
//! unit of work, and `/health/heartbeat/{name}` turns to 503 when pings stop.
//!
//! Only configured names exist: a ping for an unknown name is refused, so
//! nothing unconfigured is ever stored. Before the first ping the allowance
//! runs from when the heartbeat was configured, so a redpulse restart does
//! not report every worker missing at once.

use crate::config::Heartbeat;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// One configured heartbeat and its last ping.
#[derive(Debug)]
struct Entry {
    interval: Duration,
    grace: Duration,
    since: Instant,
    last: Mutex<Option<(Instant, SystemTime)>>,
}

/// What `/health/heartbeat/{name}` reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Beat {
    /// Last ping within interval + grace (or, before any ping, time since
    /// configuration within it).
    pub alive: bool,
    pub interval: Duration,
    pub grace: Duration,
    /// When the last ping arrived and how long ago, if ever.
    pub last_ping: Option<(SystemTime, Duration)>,
}

/// Every configured heartbeat by name.
#[derive(Debug, Default)]
pub struct Heartbeats {
    entries: RwLock<HashMap<Box<str>, Entry>>,
}

impl Heartbeats {
    /// Heartbeats from the config, none pinged yet.
    pub fn new(config: &[Heartbeat]) -> Self {
        let h = Heartbeats::default();
        h.configure(config, Instant::now());
        h
    }

    /// Apply a (re)loaded config: new names start fresh, removed ones go,
    /// kept ones keep their last ping with the new interval and grace.
    pub fn configure(&self, config: &[Heartbeat], now: Instant) {
        let mut entries = self
            .entries
            .write()
            .expect("heartbeat lock is never held across a panic");
        entries.retain(|name, _| config.iter().any(|c| *c.name == **name));
        for c in config {
            let e = entries
                .entry(c.name.as_str().into())
                .or_insert_with(|| Entry {
                    interval: c.interval,
                    grace: c.grace,
                    since: now,
                    last: Mutex::new(None),
                });
            e.interval = c.interval;
            e.grace = c.grace;
        }
    }

    /// Record a ping. False for an unknown name.
    pub fn ping(&self, name: &str, now: Instant, wall: SystemTime) -> bool {
        let entries = self
            .entries
            .read()
            .expect("heartbeat lock is never held across a panic");
        let Some(e) = entries.get(name) else {
            return false;
        };
        *e.last
            .lock()
            .expect("heartbeat lock is never held across a panic") = Some((now, wall));
        true
    }

    /// The state of one heartbeat at `now`, None for an unknown name.
    pub fn state(&self, name: &str, now: Instant) -> Option<Beat> {
        let entries = self
            .entries
            .read()
            .expect("heartbeat lock is never held across a panic");
        let e = entries.get(name)?;
        let last = *e
            .last
            .lock()
            .expect("heartbeat lock is never held across a panic");
        let from = last.map_or(e.since, |(at, _)| at);
        let alive = now.saturating_duration_since(from) <= e.interval + e.grace;
        let last_ping = last.map(|(at, wall)| (wall, now.saturating_duration_since(at)));
        Some(Beat {
            alive,
            interval: e.interval,
            grace: e.grace,
            last_ping,
        })
    }

    /// Every configured heartbeat's name.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .read()
            .expect("heartbeat lock is never held across a panic")
            .keys()
            .map(|k| k.to_string())
            .collect()
    }

    /// Number of configured heartbeats.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .expect("heartbeat lock is never held across a panic")
            .len()
    }

    /// Whether none is configured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(name: &str, interval: u64, grace: u64) -> Heartbeat {
        Heartbeat {
            name: name.into(),
            interval: Duration::from_secs(interval),
            grace: Duration::from_secs(grace),
            token: None,
        }
    }

    #[test]
    fn alive_within_interval_plus_grace_then_missed() {
        let t0 = Instant::now();
        let h = Heartbeats::default();
        h.configure(&[hb("worker", 60, 120)], t0);
        assert!(
            h.state("worker", t0 + Duration::from_secs(180))
                .unwrap()
                .alive,
            "allowance from configuration"
        );
        assert!(
            !h.state("worker", t0 + Duration::from_secs(181))
                .unwrap()
                .alive
        );
        assert!(h.ping("worker", t0 + Duration::from_secs(200), SystemTime::now()));
        let s = h.state("worker", t0 + Duration::from_secs(300)).unwrap();
        assert!(s.alive);
        assert_eq!(s.last_ping.unwrap().1, Duration::from_secs(100));
        assert!(
            !h.state("worker", t0 + Duration::from_secs(381))
                .unwrap()
                .alive
        );
    }

    #[test]
    fn unknown_names_are_refused_and_not_stored() {
        let h = Heartbeats::new(&[hb("a", 1, 1)]);
        assert!(!h.ping("b", Instant::now(), SystemTime::now()));
        assert!(h.state("b", Instant::now()).is_none());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn reconfigure_keeps_pings_of_kept_names() {
        let t0 = Instant::now();
        let h = Heartbeats::default();
        h.configure(&[hb("a", 10, 0), hb("b", 10, 0)], t0);
        h.ping("a", t0, SystemTime::now());
        h.configure(
            &[hb("a", 20, 0), hb("c", 10, 0)],
            t0 + Duration::from_secs(5),
        );
        let a = h.state("a", t0 + Duration::from_secs(15)).unwrap();
        assert!(a.alive && a.last_ping.is_some(), "kept ping, new interval");
        assert!(h.state("b", t0).is_none());
        assert!(h.state("c", t0).unwrap().last_ping.is_none());
    }
}
