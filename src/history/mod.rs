//! History that survives restarts: status transitions and per-minute
//! samples of every instance, cluster, group and heartbeat in SQLite under
//! `data_dir`, written by one thread ([`writer`]) from the samples the
//! pollers hand over without waiting (`state::record`), read by the HTTP
//! side through connections of its own.
//!
//! If `data_dir` cannot be written (read-only, full, gone), the history
//! goes on in an in-memory database with a loud log line and
//! `redpulse_history_persistent 0`; polling never waits on it.

pub mod db;
pub mod lock;
pub mod notify;
pub mod uptime;
pub mod writer;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

pub use crate::config::DEFAULT_HISTORY_RETENTION as DEFAULT_RETENTION;

/// Milliseconds since 1970, as the history stores times.
pub fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Now, in the history's milliseconds.
pub fn now_ms() -> i64 {
    unix_ms(std::time::SystemTime::now())
}

/// A stored time as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    crate::state::render::rfc3339_millis(
        std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64),
    )
}

/// What the HTTP side and `/metrics` know about the history.
#[derive(Debug)]
pub struct History {
    /// What readers open: the database file, or the in-memory URI.
    target: RwLock<String>,
    /// False once the history fell back to memory.
    pub persistent: AtomicBool,
    /// Why it fell back, for the log and the JSON.
    pub error: Mutex<Option<String>>,
    /// This run's id.
    pub run: AtomicI64,
    /// Transitions written since start.
    pub transitions: AtomicU64,
    /// Flushes that failed (before falling back to memory).
    pub write_errors: AtomicU64,
    /// Notifications delivered, and given up after `retry_for`.
    pub notifications_sent: AtomicU64,
    pub notifications_expired: AtomicU64,
    pub retention: Duration,
    /// Set at shutdown: the writer commits what it has and stops.
    stop: AtomicBool,
    stopped: AtomicBool,
}

/// How long a shutdown waits for the history's last commit.
const STOP_WAIT: Duration = Duration::from_secs(2);

impl History {
    fn new(target: String, persistent: bool, retention: Duration) -> History {
        History {
            target: RwLock::new(target),
            persistent: AtomicBool::new(persistent),
            error: Mutex::new(None),
            run: AtomicI64::new(0),
            transitions: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            notifications_sent: AtomicU64::new(0),
            notifications_expired: AtomicU64::new(0),
            retention,
            stop: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }
    }

    /// A read connection to the history.
    pub fn reader(&self) -> rusqlite::Result<rusqlite::Connection> {
        let target = self
            .target
            .read()
            .expect("history lock is never held across a panic")
            .clone();
        db::open_reader(&target)
    }

    fn set_target(&self, target: String) {
        *self
            .target
            .write()
            .expect("history lock is never held across a panic") = target;
    }

    /// A read-write connection (a sender recording an attempt).
    pub fn writer_connection(&self) -> rusqlite::Result<rusqlite::Connection> {
        let target = self
            .target
            .read()
            .expect("history lock is never held across a panic")
            .clone();
        if target.starts_with("file:") {
            db::open_memory_writer(&target)
        } else {
            let c = rusqlite::Connection::open(&target)?;
            c.busy_timeout(Duration::from_secs(2))?;
            db::in_memory_temp(&c)?;
            Ok(c)
        }
    }

    /// Ask the writer to commit the partial minute and everything pending,
    /// and wait for it (at most [`STOP_WAIT`]).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let until = std::time::Instant::now() + STOP_WAIT;
        while !self.stopped.load(Ordering::Relaxed) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_persistent(&self) -> bool {
        self.persistent.load(Ordering::Relaxed)
    }
}
