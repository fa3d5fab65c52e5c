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

/// Family entries a [`Groups`] copies from its exposition at a time.
const AHEAD: usize = 16;

/// The iterator of [`Exposition::groups`]. A scrape advances one of these
/// per instance, a group at a time, across every family in turn: by an
/// instance's next turn its family list has left the cache, and reading
/// an entry through the exposition cost two cache misses per instance and
/// family (the exposition, then the list), most of the render's time. So
/// it holds the list itself and copies [`AHEAD`] entries at a time into
/// the iterator, which a scrape keeps in one array it reads in order.
#[derive(Clone, Debug)]
pub struct Groups<'a> {
    text: &'a [u8],
    /// Entries not yet copied into `ahead`.
    rest: &'a [(u16, u16)],
    ahead: [(u16, u16); AHEAD],
    /// The next entry in `ahead`; `filled` are valid.
    pos: u8,
    filled: u8,
    /// Where the next group's lines start in `text`.
    start: usize,
}

impl Groups<'_> {
    /// The next entry, without taking it.
    fn peek_entry(&mut self) -> Option<(u16, u16)> {
        if self.pos == self.filled {
            let n = self.rest.len().min(AHEAD);
            if n == 0 {
                return None;
            }
            let (now, later) = self.rest.split_at(n);
            self.ahead[..n].copy_from_slice(now);
            self.rest = later;
            self.pos = 0;
            self.filled = n as u8;
        }
        Some(self.ahead[self.pos as usize])
    }
}

impl<'a> Iterator for Groups<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let (id, len) = self.peek_entry()?;
        self.pos += 1;
        let mut end = self.start + len as usize;
        // A large family's entries in a row are one group.
        while let Some((_, len)) = self.peek_entry().filter(|(next, _)| *next == id) {
            end += len as usize;
            self.pos += 1;
        }
        let lines = &self.text[self.start..end];
        self.start = end;
        Some((id, lines))
    }
}

impl Exposition {
    /// Samples of each family, in family order: (family id, lines).
    pub fn groups(&self) -> Groups<'_> {
        Groups {
            text: &self.text,
            rest: &self.families,
            ahead: [(0, 0); AHEAD],
            pos: 0,
            filled: 0,
            start: 0,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The groups as the entries say, the obvious way: every entry's bytes
    /// in turn, entries of one id in a row joined.
    fn oracle(e: &Exposition) -> Vec<(u16, Vec<u8>)> {
        let mut out: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut start = 0;
        for &(id, len) in e.families.iter() {
            let bytes = &e.text[start..start + len as usize];
            start += len as usize;
            match out.last_mut() {
                Some((last, lines)) if *last == id => lines.extend_from_slice(bytes),
                _ => out.push((id, bytes.to_vec())),
            }
        }
        out
    }

    #[test]
    fn groups_match_the_entries_across_every_refill() {
        // Families of one to four entries (a family past 64 KiB takes
        // several), so runs of one id cross the copied batches' edges.
        for count in [0usize, 1, AHEAD - 1, AHEAD, AHEAD + 1, 3 * AHEAD + 5] {
            let mut text = Vec::new();
            let mut families = Vec::new();
            let mut id = 0u16;
            while families.len() < count {
                let run = 1 + (id as usize * 7) % 4;
                for k in 0..run.min(count - families.len()) {
                    let line = format!(",f=\"{id}\",k=\"{k}\"}} {}\n", id as usize * 10 + k);
                    text.extend_from_slice(line.as_bytes());
                    families.push((id, line.len() as u16));
                }
                id += 1;
            }
            let e = Exposition {
                text: text.into(),
                families: families.into(),
                ..Exposition::default()
            };
            let got: Vec<(u16, Vec<u8>)> = e.groups().map(|(id, l)| (id, l.to_vec())).collect();
            assert_eq!(got, oracle(&e), "{count} entries");
        }
    }
}
