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
use super::{unix_ms, History};
use crate::judge::outcome::Status;
use crate::state::record::{Kind, Sample, Samples};
use crate::state::store::Store;
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::TryRecvError;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::{error, info, warn};

/// Time between commits (and between looks at the queue).
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
    /// Its last status in this run.
    last: Option<Status>,
}

/// Start the history: open (or fall back to memory), record this run,
/// and spawn the writer thread on `samples`.
pub fn start(
    data_dir: Option<&Path>,
    retention: Duration,
    store: Arc<Store>,
    samples: Samples,
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
        store,
        ids: HashMap::new(),
        next_id: 1,
        new_subjects: Vec::new(),
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
    /// Where each instance's minute is folded.
    store: Arc<Store>,
    /// Every subject id in the database, loaded once per run; new ones are
    /// numbered here and inserted with the next commit (one autocommit
    /// INSERT per new subject made a 10,000-instance start crawl).
    ids: HashMap<(Kind, Arc<str>), i64>,
    next_id: i64,
    new_subjects: Vec<(i64, Kind, Arc<str>)>,
}

impl Writer {
    fn load_ids(&mut self) -> rusqlite::Result<()> {
        self.ids.clear();
        self.new_subjects.clear();
        let mut q = self.conn.prepare("SELECT id, kind, name FROM subjects")?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut max = 0;
        for row in rows {
            let (id, kind, name) = row?;
            if let Some(kind) = Kind::from_i64(kind) {
                self.ids.insert((kind, name.into()), id);
            }
            max = max.max(id);
        }
        self.next_id = max + 1;
        Ok(())
    }

    fn begin_run(&mut self) -> rusqlite::Result<()> {
        self.load_ids()?;
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

    fn run(mut self, samples: Samples) {
        let mut last_flush = Instant::now();
        let mut last_prune: Option<Instant> = None;
        loop {
            // Sleep, then take everything queued at once: waking this
            // thread for every sample of a 10,000-instance fleet cost more
            // than all the rest of the history together.
            std::thread::sleep(FLUSH_EVERY.saturating_sub(last_flush.elapsed()));
            loop {
                match samples.try_recv() {
                    Ok(s) => {
                        self.take(s);
                        if self.pending.len() >= FLUSH_AT {
                            break;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.roll_minute(i64::MAX);
                        self.flush();
                        self.history.stopped.store(true, Ordering::Relaxed);
                        return;
                    }
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
            // A minute is closed a second after it ends, so the polls made
            // in its last moments are in.
            let now_minute = (unix_ms(SystemTime::now()) - 1_000) / 60_000;
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

    /// A status change (or a cluster's, group's or heartbeat's status,
    /// which may be unchanged) of one subject.
    fn take(&mut self, s: Sample) {
        let key = (s.kind, s.name.clone());
        if !self.subjects.contains_key(&key) {
            let id = self.subject_id(s.kind, &s.name);
            self.subjects
                .insert(key.clone(), Subject { id, last: None });
        }
        let subject = self.subjects.get_mut(&key).expect("inserted above");
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

    /// The subject's id, numbering a new one (inserted at the next commit).
    fn subject_id(&mut self, kind: Kind, name: &Arc<str>) -> i64 {
        if let Some(&id) = self.ids.get(&(kind, name.clone())) {
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert((kind, name.clone()), id);
        self.new_subjects.push((id, kind, name.clone()));
        id
    }

    /// Close minute `self.minute`: take every instance's fold of it from
    /// its slot, and move on to `next`.
    fn roll_minute(&mut self, next: i64) {
        let closing = self.minute;
        self.minute = next;
        let mut cells: Vec<(i64, [u8; 4])> = Vec::new();
        for slot in self.store.slots() {
            let Some(acc) = slot
                .minute
                .lock()
                .expect("slot lock is never held across a panic")
                .take(closing)
            else {
                continue;
            };
            let Some(worst) = acc.worst else { continue };
            let key = (Kind::Instance, slot.name.clone());
            let id = match self.subjects.get(&key) {
                Some(s) => s.id,
                None => self.subject_id(Kind::Instance, &slot.name),
            };
            cells.push((
                id,
                encode_cell(worst, acc.polls, acc.latency_us_max, acc.mem_ratio),
            ));
        }
        if cells.is_empty() {
            return;
        }
        let max_id = cells.iter().map(|c| c.0).max().unwrap_or(0);
        let mut blob = vec![0u8; (max_id as usize + 1) * 4];
        for (id, cell) in cells {
            let at = id as usize * 4;
            blob[at..at + 4].copy_from_slice(&cell);
        }
        self.finished.push((closing, db::pack_minute(&blob)));
    }

    /// Commit pending transitions, finished minutes, notifications and the
    /// run's `last_seen` in one transaction.
    fn flush(&mut self) {
        let run = self.history.run.load(Ordering::Relaxed);
        let result = (|| -> rusqlite::Result<usize> {
            let tx = self.conn.transaction()?;
            {
                let mut subject = tx.prepare_cached(
                    "INSERT OR IGNORE INTO subjects (id, kind, name) VALUES (?1, ?2, ?3)",
                )?;
                for (id, kind, name) in &self.new_subjects {
                    subject.execute(params![id, *kind as i64, &**name])?;
                }
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
                self.new_subjects.clear();
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
