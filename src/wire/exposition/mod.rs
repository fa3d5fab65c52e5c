//! INFO ALL (and CLUSTER INFO) text into Prometheus samples with
//! redis_exporter's names, types, label keys and values, so dashboards and
//! alerts built for redis_exporter work unchanged on redpulse.
//!
//! The mapping follows redis_exporter 1.45 field by field: a fixed table of
//! INFO keys and their series names, every `cluster_*` and `db*` field,
//! per-command, per-error and per-database series, latency percentiles as a
//! summary, `redis_instance_info` and `redis_slave_info`; and, from the
//! other replies of the same metrics poll, the SLOWLOG, LATENCY LATEST,
//! CONFIG GET and CLIENT LIST series ([`beyond`]).
//!
//! An [`Exposition`] is built once per metrics poll (every
//! `metrics_interval`) and rendered by `/metrics` many times, so the work is
//! done here: every sample is kept as the text that follows the instance's
//! own labels (`,cmd="get"} 3\n`), grouped by family. Rendering is then
//! copying. Families are numbered in one process-wide registry so that every
//! instance's samples of one family can be written together, as the text
//! format requires.
//!
//! Files: [`tables`] maps INFO keys to series, [`registry`] numbers the
//! families, [`builder`] turns one reply into an `Exposition`, [`beyond`]
//! adds the other commands' replies; the text is written with
//! `wire::prom_text`.

pub mod beyond;
pub mod builder;
pub mod registry;
pub mod tables;

pub use beyond::{Beyond, Checked, GroupReading, KeyReading, StreamReading};
pub use registry::families;

/// A family's Prometheus type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Summary,
}

impl Kind {
    /// The name `# TYPE` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Summary => "summary",
        }
    }
}

/// One metric family. A summary's `_sum` and `_count` lines are families of
/// their own, numbered right after the summary and without a header, so
/// they are written inside its group.
#[derive(Debug)]
pub struct Family {
    pub name: Box<str>,
    pub kind: Kind,
    pub help: Box<str>,
    /// False for a summary's `_sum` / `_count`.
    pub header: bool,
}

/// At most this many families whose names a server chose (`cluster_*`,
/// `db*` and the like, beyond the fixed table) in one instance's samples;
/// a summary's `_sum` and `_count` count as families too. Past it the
/// instance's new names are dropped and counted
/// ([`Exposition::families_dropped`]), and are not registered, so a server
/// inventing names cannot keep another instance's new families out.
pub const MAX_DYNAMIC_FAMILIES: usize = 256;
/// At most this many samples per instance (a server with thousands of
/// command names, errors or databases is cut here). INFO's samples are
/// taken first, then CONFIG's, then the client list's.
pub const MAX_SAMPLES: usize = 4096;
/// Label values longer than this are dropped with their sample.
pub const MAX_LABEL_VALUE: usize = 256;

/// One instance's samples, grouped by family.
#[derive(Debug, Default, PartialEq)]
pub struct Exposition {
    /// Every sample's text after the instance's own labels, each ending in
    /// a newline: `} 3\n`, or `,cmd="get"} 3\n`.
    text: Box<[u8]>,
    /// (family id, bytes of its samples in `text`), ascending by id; a
    /// family with more than u16::MAX bytes of samples takes several
    /// entries in a row (4 bytes an entry instead of 8 for an offset).
    families: Box<[(u16, u16)]>,
    /// Server-named families left out: past [`MAX_DYNAMIC_FAMILIES`] for
    /// this instance, or past the process's bound.
    pub families_dropped: u32,
    /// Samples left out of this fetch past [`MAX_SAMPLES`].
    pub samples_dropped: u32,
    /// Counters the poller keeps across this instance's metrics polls,
    /// shown with these samples.
    pub counters: FetchCounters,
}

/// Per-instance counters of the metrics polls so far (since the
/// instance's poller started): cumulative, so `/metrics` shows them as
/// counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FetchCounters {
    /// Samples left out past [`MAX_SAMPLES`], over every fetch.
    pub samples_dropped: u64,
    /// Error replies per metrics-only command (lower-case name as sent),
    /// in first-seen order; empty for a server that refuses nothing.
    pub command_errors: Vec<(Box<str>, u64)>,
    /// Keys matching a checked pattern left out past `check_keys_max`,
    /// summed over metrics polls.
    pub key_checks_truncated: u64,
}

impl FetchCounters {
    /// Count one error reply to `command`.
    pub fn command_error(&mut self, command: &str) {
        match self
            .command_errors
            .iter_mut()
            .find(|(c, _)| &**c == command)
        {
            Some((_, n)) => *n += 1,
            None => self.command_errors.push((command.into(), 1)),
        }
    }
}

impl Exposition {
    /// Samples of each family, in family order: (family id, lines).
    pub fn groups(&self) -> impl Iterator<Item = (u16, &[u8])> + Clone {
        let (mut start, mut i) = (0usize, 0usize);
        std::iter::from_fn(move || {
            let &(id, len) = self.families.get(i)?;
            let mut end = start + len as usize;
            i += 1;
            // A large family's entries in a row are one group.
            while let Some(&(_, len)) = self.families.get(i).filter(|(next, _)| *next == id) {
                end += len as usize;
                i += 1;
            }
            let lines = &self.text[start..end];
            start = end;
            Some((id, lines))
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.text.iter().filter(|&&b| b == b'\n').count()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.text.len() + self.families.len() * std::mem::size_of::<(u16, u16)>()
    }

    /// The samples of INFO ALL text (and a cluster node's CLUSTER INFO).
    /// `now_unix` turns `uptime_in_seconds` into `redis_start_time_seconds`.
    pub fn from_info(info: &[u8], cluster_info: Option<&[u8]>, now_unix: u64) -> Exposition {
        Self::from_replies(info, cluster_info, &Beyond::default(), now_unix)
    }

    /// The samples of a whole metrics poll: INFO ALL, a cluster node's
    /// CLUSTER INFO, and the other commands' replies.
    pub fn from_replies(
        info: &[u8],
        cluster_info: Option<&[u8]>,
        beyond: &Beyond,
        now_unix: u64,
    ) -> Exposition {
        let mut b = builder::Builder::new();
        b.info(info, now_unix);
        if let Some(text) = cluster_info {
            b.cluster_info(text);
        }
        b.beyond(beyond, now_unix);
        b.finish()
    }
}
