//! The one thread that writes the history: it takes samples from the
//! pollers' channel, finds transitions (a status different from the
//! subject's previous one in this run; the first verdict of a run has no
//! previous), folds each minute's samples per subject, and commits at least
//! every [`FLUSH_EVERY`] in one transaction: transitions, the finished
//! minute, pending notifications, and the run's `last_seen`. A kill -9
//! therefore loses at most the last flush interval, and SQLite's WAL keeps
//! the file consistent whatever moment it hits.

use super::db::{self, encode_cell, status_code};
use super::notify::{Event, Notifier};
use super::History;
use crate::judge::outcome::Status;
use crate::state::record::{Kind, Sample};
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::{error, info, warn};

/// Longest time between commits.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Transitions that force a commit before the interval is up.
const FLUSH_AT: usize = 5_000;
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// The in-memory fallback keeps a day at most.
const MEMORY_RETENTION: Duration = Duration::from_secs(86_400);

/// A subject's running state in the writer.
#[derive(Debug)]
struct Subject {
    id: i64,
    /// The status of its last sample in this run.
    last: Option<Status>,
    minute: Acc,
}

/// One minute's samples of one subject.
#[derive(Clone, Copy, Debug, Default)]
struct Acc {
    worst: Option<Status>,
    polls: u32,
    latency_us_max: Option<u32>,
    mem: Option<f32>,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Start the history: open (or fall back to memory), record this run,
/// and spawn the writer thread on `samples`.
pub fn start(
    data_dir: Option<&Path>,
    retention: Duration,
    samples: Receiver<Sample>,
    notifier: Option<Arc<Notifier>>,
) -> Arc<History> {
    let memory = db::memory_uri(&format!("redpulse-history-{}", std::process::id()));
    let path = data_dir.map(|d| d.join("history.db"));
    let (conn, history) = match path.as_deref().map(db::open_writer) {
        Some(Ok(c)) => {
            let target = path.as_ref().expect("opened a path").display().to_string();
            (c, Arc::new(History::new(target, true, retention)))
        }
        failed => {
            let why = match failed {
                Some(Err(e)) => format!(
                    "cannot write the history under {}: {e}",
                    data_dir.expect("a path was tried").display()
                ),
                _ => "no data_dir".to_string(),
            };
            if data_dir.is_some() {
                error!(error = %why, "HISTORY IS NOT KEPT ON DISK: keeping it in memory only until restart");
            }
            let c = db::open_memory_writer(&memory).expect("an in-memory database opens");
            let h = Arc::new(History::new(
                memory.clone(),
                false,
                retention.min(MEMORY_RETENTION),
            ));
            *h.error
                .lock()
                .expect("history lock is never held across a panic") = Some(why);
            (c, h)
        }
    };
    let mut w = Writer {
        conn,
        history: history.clone(),
        memory,
        path,
        subjects: HashMap::new(),
        pending: Vec::new(),
        minute: unix_ms(SystemTime::now()) / 60_000,
        finished: Vec::new(),
        notifier,
        _memory_keepalive: None,
    };
    if let Err(e) = w.begin_run() {
        w.fail(&e);
    }
    let spawned = std::thread::Builder::new()
        .name("redpulse-history".into())
        .spawn(move || w.run(samples));
    if let Err(e) = spawned {
        error!(error = %e, "cannot start the history writer; history is not kept");
    }
    history
}

struct Writer {
    conn: Connection,
    history: Arc<History>,
    /// The in-memory fallback's URI.
    memory: String,
    path: Option<PathBuf>,
    subjects: HashMap<(Kind, Arc<str>), Subject>,
    /// Transitions found since the last commit.
    pending: Vec<Event>,
    /// The minute being folded.
    minute: i64,
    /// Finished minutes not yet committed: (minute, blob).
    finished: Vec<(i64, Vec<u8>)>,
    notifier: Option<Arc<Notifier>>,
    /// Keeps a shared in-memory database alive while readers come and go.
    _memory_keepalive: Option<Connection>,
}

impl Writer {
    fn begin_run(&mut self) -> rusqlite::Result<()> {
        let now = unix_ms(SystemTime::now());
        self.conn.execute(
            "INSERT INTO runs (started_ms, last_seen_ms) VALUES (?1, ?1)",
            [now],
        )?;
        self.history
            .run
            .store(self.conn.last_insert_rowid(), Ordering::Relaxed);
        // A new run: every subject's next verdict is a first one.
        self.subjects.clear();
        Ok(())
    }

    fn run(mut self, samples: Receiver<Sample>) {
        let mut last_flush = Instant::now();
        let mut last_prune: Option<Instant> = None;
        loop {
            let wait = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
            match samples.recv_timeout(wait) {
                Ok(s) => {
                    self.take(s);
                    // Drain what is queued without waiting.
                    while let Ok(s) = samples.try_recv() {
                        self.take(s);
                        if self.pending.len() >= FLUSH_AT {
                            break;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.roll_minute(i64::MAX);
                    self.flush();
                    self.history.stopped.store(true, Ordering::Relaxed);
                    return;
                }
            }
            if self.history.stop.load(Ordering::Relaxed) {
                // The minute so far is kept as that minute's sample.
                let minute = self.minute;
                self.roll_minute(minute + 1);
                self.flush();
                self.history.stopped.store(true, Ordering::Relaxed);
                return;
            }
            let now_minute = unix_ms(SystemTime::now()) / 60_000;
            if now_minute > self.minute {
                self.roll_minute(now_minute);
            }
            if last_flush.elapsed() >= FLUSH_EVERY || self.pending.len() >= FLUSH_AT {
                self.flush();
                last_flush = Instant::now();
            }
            if last_prune.is_none_or(|p| p.elapsed() >= PRUNE_EVERY) {
                self.prune();
                last_prune = Some(Instant::now());
            }
        }
    }

    /// Fold one sample in.
    fn take(&mut self, s: Sample) {
        let minute = unix_ms(s.at) / 60_000;
        if minute > self.minute {
            self.roll_minute(minute);
        }
        let key = (s.kind, s.name.clone());
        if !self.subjects.contains_key(&key) {
            match self.subject_id(s.kind, &s.name) {
                Ok(id) => {
                    self.subjects.insert(
                        key.clone(),
                        Subject {
                            id,
                            last: None,
                            minute: Acc::default(),
                        },
                    );
                }
                Err(e) => {
                    self.fail(&e);
                    return;
                }
            }
        }
        let subject = self.subjects.get_mut(&key).expect("inserted above");
        let acc = &mut subject.minute;
        acc.worst = Some(acc.worst.map_or(s.status, |w| w.max(s.status)));
        acc.polls += 1;
        if let Some(l) = s.latency_us {
            acc.latency_us_max = Some(acc.latency_us_max.map_or(l, |m| m.max(l)));
        }
        if s.mem_ratio.is_some() {
            acc.mem = s.mem_ratio;
        }
        if subject.last != Some(s.status) {
            self.pending.push(Event {
                kind: s.kind,
                name: s.name.clone(),
                at_ms: unix_ms(s.at),
                from: subject.last,
                to: s.status,
                reason: s.reason,
                error: s.error.clone(),
                labels: s.labels.clone(),
            });
            subject.last = Some(s.status);
        }
    }

    fn subject_id(&self, kind: Kind, name: &str) -> rusqlite::Result<i64> {
        if let Some(id) = db::subject_id(&self.conn, kind, name)? {
            return Ok(id);
        }
        self.conn.execute(
            "INSERT INTO subjects (kind, name) VALUES (?1, ?2)",
            params![kind as i64, name],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Close the minute being folded (and any empty ones up to `next`).
    fn roll_minute(&mut self, next: i64) {
        let max_id = self.subjects.values().map(|s| s.id).max().unwrap_or(0);
        let mut blob = vec![0u8; (max_id as usize + 1) * 4];
        let mut any = false;
        for s in self.subjects.values_mut() {
            let acc = std::mem::take(&mut s.minute);
            if let Some(worst) = acc.worst {
                let cell = encode_cell(worst, acc.polls, acc.latency_us_max, acc.mem);
                let at = s.id as usize * 4;
                blob[at..at + 4].copy_from_slice(&cell);
                any = true;
            }
        }
        if any {
            self.finished.push((self.minute, db::pack_minute(&blob)));
        }
        self.minute = next;
    }

    /// Commit pending transitions, finished minutes, notifications and the
    /// run's `last_seen` in one transaction.
    fn flush(&mut self) {
        let run = self.history.run.load(Ordering::Relaxed);
        let result = (|| -> rusqlite::Result<usize> {
            let tx = self.conn.transaction()?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO transitions (subject, run, at_ms, from_status, to_status, reason, error) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for e in &self.pending {
                    let id = self
                        .subjects
                        .get(&(e.kind, e.name.clone()))
                        .map(|s| s.id)
                        .unwrap_or_default();
                    ins.execute(params![
                        id,
                        run,
                        e.at_ms,
                        e.from.map(status_code),
                        status_code(e.to),
                        e.reason,
                        e.error.as_deref()
                    ])?;
                }
                let mut min = tx.prepare_cached(
                    "INSERT OR REPLACE INTO minutes (minute, data) VALUES (?1, ?2)",
                )?;
                for (minute, blob) in &self.finished {
                    min.execute(params![minute, blob])?;
                }
                if let Some(n) = &self.notifier {
                    for e in &self.pending {
                        n.enqueue(&tx, e)?;
                    }
                }
                tx.execute(
                    "UPDATE runs SET last_seen_ms = ?1 WHERE id = ?2",
                    params![unix_ms(SystemTime::now()), run],
                )?;
            }
            tx.commit()?;
            Ok(self.pending.len())
        })();
        match result {
            Ok(n) => {
                self.history
                    .transitions
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.pending.clear();
                self.finished.clear();
                if let Some(n) = &self.notifier {
                    n.wake();
                }
            }
            Err(e) => {
                self.history.write_errors.fetch_add(1, Ordering::Relaxed);
                self.fail(&e);
            }
        }
    }

    /// A write failed: if on disk, switch to memory (loudly), else drop
    /// this batch.
    fn fail(&mut self, e: &rusqlite::Error) {
        if !self.history.is_persistent() {
            warn!(error = %e, "in-memory history write failed; dropping this batch");
            self.pending.clear();
            self.finished.clear();
            return;
        }
        let why = format!(
            "history write failed on {}: {e}",
            self.path
                .as_deref()
                .map_or("?".into(), |p| p.display().to_string())
        );
        error!(error = %why, "HISTORY IS NOT KEPT ON DISK ANY MORE: keeping it in memory only until restart");
        // This batch is lost (at most one flush interval); the subjects
        // start over in the fallback as first verdicts.
        self.pending.clear();
        self.finished.clear();
        match db::open_memory_writer(&self.memory) {
            Ok(c) => {
                self.conn = c;
                self.history.persistent.store(false, Ordering::Relaxed);
                *self
                    .history
                    .error
                    .lock()
                    .expect("history lock is never held across a panic") = Some(why);
                self.history.set_target(self.memory.clone());
                self.subjects.clear();
                if let Err(e) = self.begin_run() {
                    error!(error = %e, "the in-memory history failed too");
                }
                info!("history continues in memory");
            }
            Err(e2) => error!(error = %e2, "cannot open the in-memory history"),
        }
    }

    /// Drop rows older than the retention.
    fn prune(&mut self) {
        let retention = if self.history.is_persistent() {
            self.history.retention
        } else {
            self.history.retention.min(MEMORY_RETENTION)
        };
        let cutoff = unix_ms(SystemTime::now()) - retention.as_millis() as i64;
        if let Err(e) = db::prune(&self.conn, cutoff) {
            warn!(error = %e, "pruning the history failed");
        }
    }
}
