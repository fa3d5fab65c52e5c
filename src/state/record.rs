//! What the history keeps, handed over without waiting: every verdict of
//! an instance (and, once a second, of every cluster, group and heartbeat)
//! goes to the history writer as a [`Sample`] through a bounded channel.
//! A full channel drops the sample and counts it; the poller never blocks
//! on the history, its disk or its database.

use crate::judge::outcome::Status;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::SystemTime;

/// What a history subject is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Instance = 0,
    Cluster = 1,
    Group = 2,
    Heartbeat = 3,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Instance, Kind::Cluster, Kind::Group, Kind::Heartbeat];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Instance => "instance",
            Kind::Cluster => "cluster",
            Kind::Group => "group",
            Kind::Heartbeat => "heartbeat",
        }
    }

    pub fn from_i64(v: i64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as i64 == v)
    }
}

/// One verdict of one subject.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub kind: Kind,
    pub name: Arc<str>,
    pub at: SystemTime,
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

/// Samples waiting for the writer at most: about 5 s of a 10,000-instance
/// fleet at 1 s.
pub const QUEUE: usize = 50_000;

/// The pollers' end of the channel.
#[derive(Debug)]
pub struct Recorder {
    tx: SyncSender<Sample>,
    /// Samples dropped because the writer fell behind.
    pub dropped: AtomicU64,
}

impl Recorder {
    /// A recorder and the writer's end.
    pub fn new() -> (Recorder, Receiver<Sample>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        (
            Recorder {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Hand a sample over, or count it dropped; never waits.
    pub fn record(&self, s: Sample) {
        match self.tx.try_send(s) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
