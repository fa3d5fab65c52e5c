//! What the history keeps, handed over without waiting: a status change of
//! an instance (and of a cluster, group or heartbeat, looked at once a
//! second) goes to the history writer as a [`Sample`] through a bounded
//! channel; a full channel drops it and counts it, so the poller never
//! blocks on the history, its disk or its database. Per-minute samples are
//! folded by each poller into its slot ([`MinuteFold`]) and taken by the
//! writer when the minute is over: no message per poll.

use crate::judge::outcome::Status;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::SystemTime;

/// What a history subject is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A polled instance.
    Instance = 0,
    /// A Redis Cluster, judged from its nodes.
    Cluster = 1,
    /// A replication group (static or Sentinel-managed).
    Group = 2,
    /// A worker's heartbeat.
    Heartbeat = 3,
}

impl Kind {
    /// Every kind, in their stored order.
    pub const ALL: [Kind; 4] = [Kind::Instance, Kind::Cluster, Kind::Group, Kind::Heartbeat];

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Instance => "instance",
            Kind::Cluster => "cluster",
            Kind::Group => "group",
            Kind::Heartbeat => "heartbeat",
        }
    }

    /// The kind stored as `v` in the database.
    pub fn from_i64(v: i64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as i64 == v)
    }
}

/// One verdict of one subject.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// What the subject is.
    pub kind: Kind,
    /// Its name.
    pub name: Arc<str>,
    /// When the verdict was made.
    pub at: SystemTime,
    /// The verdict.
    pub status: Status,
    /// The most severe reason's name.
    pub reason: Option<&'static str>,
    /// What failed, when down.
    pub error: Option<Arc<str>>,
    /// The poll's round trip (instances only).
    pub latency_us: Option<u32>,
    /// used_memory / maxmemory, when there is a limit (instances only).
    pub mem_ratio: Option<f32>,
    /// The subject's labels, for notification filters.
    pub labels: Option<Arc<crate::config::Labels>>,
}

/// One minute of one instance's polls, folded by its poller: the history
/// writer takes it when the minute is over.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MinuteAcc {
    /// The worst status seen in the minute.
    pub worst: Option<Status>,
    /// Polls folded in.
    pub polls: u32,
    /// The slowest poll's round trip, in microseconds.
    pub latency_us_max: Option<u32>,
    /// The highest used_memory / maxmemory seen.
    pub mem_ratio: Option<f32>,
}

impl MinuteAcc {
    /// Fold one poll in.
    pub fn add(&mut self, status: Status, latency_us: Option<u32>, mem_ratio: Option<f32>) {
        self.worst = Some(self.worst.map_or(status, |w| w.max(status)));
        self.polls += 1;
        if let Some(l) = latency_us {
            self.latency_us_max = Some(self.latency_us_max.map_or(l, |m| m.max(l)));
        }
        if mem_ratio.is_some() {
            self.mem_ratio = mem_ratio;
        }
    }
}

/// A slot's minutes: the one being folded, and the last finished one until
/// the writer takes it.
#[derive(Debug, Default)]
pub struct MinuteFold {
    minute: i64,
    current: MinuteAcc,
    finished: Option<(i64, MinuteAcc)>,
}

impl MinuteFold {
    /// Add a poll made in `minute` (Unix minutes).
    pub fn add(&mut self, minute: i64, status: Status, latency_us: Option<u32>, mem: Option<f32>) {
        if minute != self.minute {
            if self.current.polls > 0 {
                self.finished = Some((self.minute, self.current));
            }
            self.minute = minute;
            self.current = MinuteAcc::default();
        }
        self.current.add(status, latency_us, mem);
    }

    /// The folds the writer has not taken yet, oldest first: the last
    /// finished minute (if any) and the one in progress (if it has polls).
    /// For answers that show the current, incomplete minute.
    pub fn unwritten(&self) -> Vec<(i64, MinuteAcc)> {
        let current = (self.current.polls > 0).then_some((self.minute, self.current));
        self.finished.into_iter().chain(current).collect()
    }

    /// Take minute `m`'s fold, if there is one (finished, or still current
    /// because no poll came after it).
    pub fn take(&mut self, m: i64) -> Option<MinuteAcc> {
        if let Some((fm, acc)) = self.finished {
            if fm == m {
                self.finished = None;
                return Some(acc);
            }
            if fm < m {
                self.finished = None;
            }
        }
        if self.minute == m && self.current.polls > 0 {
            self.minute = m + 1;
            return Some(std::mem::take(&mut self.current));
        }
        None
    }
}

/// Transitions waiting for the writer at most (the first verdicts of a
/// 10,000-instance fleet fit several times).
pub const QUEUE: usize = 50_000;

/// The pollers' end of the channel.
#[derive(Debug)]
pub struct Recorder {
    tx: Sender<Sample>,
    /// Samples handed over and not yet taken, at most [`QUEUE`]. Counted
    /// beside an unbounded channel rather than a bounded one, which would
    /// allocate room for all of them up front (5 MB held by every process
    /// for a burst that may never come).
    queued: Arc<AtomicUsize>,
    /// Samples dropped because the writer fell behind.
    pub dropped: AtomicU64,
}

/// The writer's end of the channel.
#[derive(Debug)]
pub struct Samples {
    rx: Receiver<Sample>,
    queued: Arc<AtomicUsize>,
}

impl Samples {
    /// The next sample without waiting; `Disconnected` once every
    /// recorder is gone and the queue is empty.
    pub fn try_recv(&self) -> Result<Sample, TryRecvError> {
        let s = self.rx.try_recv()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Ok(s)
    }
}

impl Recorder {
    /// A recorder and the writer's end.
    pub fn new() -> (Recorder, Samples) {
        let (tx, rx) = std::sync::mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            Recorder {
                tx,
                queued: queued.clone(),
                dropped: AtomicU64::new(0),
            },
            Samples { rx, queued },
        )
    }

    /// Hand a sample over, or count it dropped (the writer is [`QUEUE`]
    /// behind, or gone); never waits.
    pub fn record(&self, s: Sample) {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= QUEUE {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.tx.send(s).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: usize) -> Sample {
        Sample {
            kind: Kind::Instance,
            name: format!("i{i}").into(),
            at: SystemTime::now(),
            status: Status::Ok,
            reason: None,
            error: None,
            latency_us: None,
            mem_ratio: None,
            labels: None,
        }
    }

    #[test]
    fn the_queue_holds_at_most_queue_samples_and_counts_the_rest() {
        let (r, samples) = Recorder::new();
        for i in 0..QUEUE + 10 {
            r.record(sample(i));
        }
        assert_eq!(r.dropped.load(Ordering::Relaxed), 10);
        // Taking one makes room for one more, in order.
        assert_eq!(&*samples.try_recv().unwrap().name, "i0");
        r.record(sample(0));
        assert_eq!(r.dropped.load(Ordering::Relaxed), 10);
        r.record(sample(1));
        assert_eq!(r.dropped.load(Ordering::Relaxed), 11);
        let mut n = 0;
        while samples.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, QUEUE);
        drop(r);
        assert_eq!(samples.try_recv().unwrap_err(), TryRecvError::Disconnected);
    }

    #[test]
    fn minutes_fold_and_are_taken_once() {
        let mut f = MinuteFold::default();
        f.add(10, Status::Ok, Some(100), None);
        f.add(10, Status::Down, Some(900), Some(0.5));
        assert_eq!(f.take(9), None);
        // Minute 10 is still current (no poll in 11 yet): taken as it is.
        let m = f.take(10).unwrap();
        assert_eq!(
            (m.worst, m.polls, m.latency_us_max, m.mem_ratio),
            (Some(Status::Down), 2, Some(900), Some(0.5))
        );
        assert_eq!(f.take(10), None);
        f.add(11, Status::Ok, Some(5), None);
        f.add(12, Status::Degraded, Some(7), None);
        // 11 finished before the writer came for it.
        assert_eq!(f.take(11).unwrap().polls, 1);
        assert_eq!(f.take(12).unwrap().worst, Some(Status::Degraded));
    }
}
