//! The history database: SQLite under `data_dir`, in WAL mode, written by
//! one thread in batched transactions and read by any number of
//! connections. Operators can open it with the sqlite3 CLI.
//!
//! Tables (schema version 1; `meta` holds the version, and [`migrate`]
//! brings older files forward):
//! - `subjects(id, kind, name)`: every instance, cluster, group and
//!   heartbeat ever seen, numbered densely.
//! - `runs(id, started_ms, last_seen_ms)`: when redpulse was running;
//!   `last_seen_ms` moves with every flush (at most a second apart), so a
//!   kill -9 leaves the run's end within that second.
//! - `transitions(subject, run, at_ms, from_status, to_status, reason,
//!   error)`: every status change after damping, and each subject's first
//!   verdict of a run with `from_status` NULL.
//! - `minutes(minute, data)`: one row per minute for the whole fleet: 4
//!   bytes per subject id (status + 1, polls, latency code, memory code; all
//!   0 when the subject had no verdict that minute) in chunks of
//!   [`CHUNK`] subjects, each deflated on its own, so a day of a
//!   10,000-instance fleet is 1,440 rows of a few KB and reading one
//!   subject's minute inflates one small chunk.
//! - `notifications`: pending deliveries (see `notify.rs`).

use crate::judge::outcome::Status;
use crate::state::record::Kind;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::time::Duration;

pub const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for the writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
  id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, name TEXT NOT NULL, UNIQUE (kind, name));
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transitions (
  subject INTEGER NOT NULL, run INTEGER NOT NULL, at_ms INTEGER NOT NULL,
  from_status INTEGER, to_status INTEGER NOT NULL, reason TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS transitions_by_subject ON transitions (subject, at_ms);
CREATE INDEX IF NOT EXISTS transitions_by_time ON transitions (at_ms);
CREATE TABLE IF NOT EXISTS minutes (minute INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS notifications (
  id TEXT PRIMARY KEY, receiver TEXT NOT NULL, seq INTEGER NOT NULL,
  payload TEXT NOT NULL, created_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (receiver, done, seq);
";

/// Open (creating if needed) the database at `path` for writing: WAL,
/// synchronous NORMAL (a committed transaction survives a crash of the
/// process; only an OS crash can lose the last ones), schema up to date.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    in_memory_temp(&c)?;
    setup(&c)?;
    migrate(&c)?;
    Ok(c)
}

/// The in-memory database used when `data_dir` cannot be written: same
/// schema, shared by every connection of this process under `name`.
pub fn memory_uri(name: &str) -> String {
    format!("file:{name}?mode=memory&cache=shared")
}

/// Open the in-memory fallback for writing.
pub fn open_memory_writer(uri: &str) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    in_memory_temp(&c)?;
    migrate(&c)?;
    Ok(c)
}

/// A read-only connection (HTTP answers).
pub fn open_reader(target: &str) -> rusqlite::Result<Connection> {
    let uri = target.starts_with("file:");
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
    flags |= if uri {
        // The shared in-memory database is read and written by one handle
        // each; read-only is not allowed on it.
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let c = Connection::open_with_flags(target, flags)?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    in_memory_temp(&c)?;
    Ok(c)
}

/// Sorts and temporary indexes in memory, never in a temp file: only
/// data_dir is written (a container's root and /tmp may be read-only).
/// Their size is bounded by the queries' own limits.
pub fn in_memory_temp(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch("PRAGMA temp_store=MEMORY;")
}

fn setup(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode is {mode}, not wal"
        )));
    }
    c.execute_batch("PRAGMA synchronous=NORMAL;")?;
    Ok(())
}

/// Create the schema, or bring an older one forward. A newer file than
/// this build knows is refused rather than misread.
pub fn migrate(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(SCHEMA)?;
    let version: Option<i64> = c
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match version {
        None => {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION],
            )?;
        }
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) if v > SCHEMA_VERSION => {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "the history database has schema version {v}, newer than this redpulse ({SCHEMA_VERSION})"
            )))
        }
        // Versions before 1 do not exist; later releases add their steps here.
        Some(_) => {}
    }
    Ok(())
}

/// Delete everything older than `cutoff_ms`: transitions, minutes, runs
/// that ended before it, and finished notifications. A subject's last
/// transition before the cutoff goes too, so the status at the start of the
/// kept history is unknown rather than guessed.
pub fn prune(c: &Connection, cutoff_ms: i64) -> rusqlite::Result<()> {
    c.execute("DELETE FROM transitions WHERE at_ms < ?1", [cutoff_ms])?;
    c.execute(
        "DELETE FROM minutes WHERE minute < ?1",
        [cutoff_ms / 60_000],
    )?;
    c.execute("DELETE FROM runs WHERE last_seen_ms < ?1", [cutoff_ms])?;
    c.execute(
        "DELETE FROM notifications WHERE done != 0 AND created_ms < ?1",
        [cutoff_ms],
    )?;
    Ok(())
}

/// A status as stored.
pub fn status_code(s: Status) -> i64 {
    s as i64
}

pub fn status_of(code: i64) -> Option<Status> {
    Status::ALL.into_iter().find(|s| *s as i64 == code)
}

/// One stored transition.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub kind: Kind,
    pub name: String,
    pub at_ms: i64,
    pub from: Option<Status>,
    pub to: Status,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub run: i64,
}

/// A subject's id, if it was ever recorded.
pub fn subject_id(c: &Connection, kind: Kind, name: &str) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT id FROM subjects WHERE kind = ?1 AND name = ?2",
        params![kind as i64, name],
        |r| r.get(0),
    )
    .optional()
}

fn transition_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Transition> {
    Ok(Transition {
        kind: Kind::from_i64(r.get(0)?).unwrap_or(Kind::Instance),
        name: r.get(1)?,
        at_ms: r.get(2)?,
        from: r.get::<_, Option<i64>>(3)?.and_then(status_of),
        to: status_of(r.get(4)?).unwrap_or(Status::Down),
        reason: r.get(5)?,
        error: r.get(6)?,
        run: r.get(7)?,
    })
}

const TRANSITION_COLUMNS: &str =
    "s.kind, s.name, t.at_ms, t.from_status, t.to_status, t.reason, t.error, t.run";

/// A subject's transitions from `since_ms` on, oldest first, plus the last
/// one before it (the status the window starts in).
pub fn transitions(
    c: &Connection,
    subject: i64,
    since_ms: i64,
) -> rusqlite::Result<Vec<Transition>> {
    let mut out = Vec::new();
    let before = format!(
        "SELECT {TRANSITION_COLUMNS} FROM transitions t JOIN subjects s ON s.id = t.subject \
         WHERE t.subject = ?1 AND t.at_ms < ?2 ORDER BY t.at_ms DESC, t.rowid DESC LIMIT 1"
    );
    if let Some(t) = c
        .query_row(&before, params![subject, since_ms], transition_of)
        .optional()?
    {
        out.push(t);
    }
    let mut q = c.prepare_cached(&format!(
        "SELECT {TRANSITION_COLUMNS} FROM transitions t JOIN subjects s ON s.id = t.subject \
         WHERE t.subject = ?1 AND t.at_ms >= ?2 ORDER BY t.at_ms, t.rowid"
    ))?;
    for t in q.query_map(params![subject, since_ms], transition_of)? {
        out.push(t?);
    }
    Ok(out)
}

/// Fleet-wide transitions at or after `since_ms`, newest first.
pub fn events(c: &Connection, since_ms: i64, limit: u32) -> rusqlite::Result<Vec<Transition>> {
    let mut q = c.prepare_cached(&format!(
        "SELECT {TRANSITION_COLUMNS} FROM transitions t JOIN subjects s ON s.id = t.subject \
         WHERE t.at_ms >= ?1 ORDER BY t.at_ms DESC, t.rowid DESC LIMIT ?2"
    ))?;
    let rows = q.query_map(params![since_ms, limit], transition_of)?;
    rows.collect()
}

/// Every run overlapping [since_ms, ∞): (id, started_ms, last_seen_ms).
pub fn runs(c: &Connection, since_ms: i64) -> rusqlite::Result<Vec<(i64, i64, i64)>> {
    let mut q = c.prepare_cached(
        "SELECT id, started_ms, last_seen_ms FROM runs WHERE last_seen_ms >= ?1 ORDER BY id",
    )?;
    let rows = q.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// One stored minute of one subject.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Minute {
    /// Unix minute (seconds / 60).
    pub minute: i64,
    pub status: Status,
    pub polls: u8,
    pub latency_ms_max: Option<f64>,
    pub mem_ratio: Option<f64>,
}

/// A subject's minutes in [from_minute, to_minute].
pub fn minutes(
    c: &Connection,
    subject: i64,
    from_minute: i64,
    to_minute: i64,
) -> rusqlite::Result<Vec<Minute>> {
    let mut q = c.prepare_cached(
        "SELECT minute, data FROM minutes WHERE minute BETWEEN ?1 AND ?2 ORDER BY minute",
    )?;
    let rows = q.query_map(params![from_minute, to_minute], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (minute, blob) = row?;
        if let Some(m) = cell_of(&blob, subject).and_then(|c| decode_cell(minute, &c)) {
            out.push(m);
        }
    }
    Ok(out)
}

/// Subjects per separately deflated chunk of a minute row.
pub const CHUNK: usize = 256;

/// A minute row from every subject's 4-byte cell (index = subject id):
/// the number of chunks, each chunk's end offset, then the chunks.
pub fn pack_minute(cells: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let chunks: Vec<Vec<u8>> = cells
        .chunks(CHUNK * 4)
        .map(|raw| {
            let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(raw).expect("writing into a Vec cannot fail");
            z.finish().expect("writing into a Vec cannot fail")
        })
        .collect();
    let mut out =
        Vec::with_capacity(4 + chunks.len() * 4 + chunks.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    let mut end = 0u32;
    for c in &chunks {
        end += c.len() as u32;
        out.extend_from_slice(&end.to_le_bytes());
    }
    for c in &chunks {
        out.extend_from_slice(c);
    }
    out
}

/// One subject's 4-byte cell of a packed minute row (None: out of range or
/// not decodable).
pub fn cell_of(blob: &[u8], subject: i64) -> Option<[u8; 4]> {
    use std::io::Read;
    let word = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes(blob.get(i * 4..i * 4 + 4)?.try_into().ok()?) as usize)
    };
    let n = word(0)?;
    let chunk = usize::try_from(subject).ok()? / CHUNK;
    if chunk >= n {
        return None;
    }
    let data = 4 + n * 4;
    let start = if chunk == 0 { 0 } else { word(chunk)? };
    let end = word(chunk + 1)?;
    let z = blob.get(data + start..data + end)?;
    let mut raw = Vec::with_capacity(CHUNK * 4);
    flate2::read::DeflateDecoder::new(z)
        .take((CHUNK * 4) as u64)
        .read_to_end(&mut raw)
        .ok()?;
    let at = (subject as usize % CHUNK) * 4;
    raw.get(at..at + 4)?.try_into().ok()
}

/// Latency as one byte: 8 steps per doubling from 1 µs (about 9 % apart),
/// up to 2^31 µs.
pub fn latency_code(us: u32) -> u8 {
    if us <= 1 {
        return 1;
    }
    ((us as f64).log2() * 8.0).round().clamp(1.0, 254.0) as u8
}

pub fn latency_ms(code: u8) -> Option<f64> {
    (code != 0).then(|| (2f64.powf(code as f64 / 8.0) / 1000.0 * 1000.0).round() / 1000.0)
}

/// Memory ratio as one byte: 1/250 steps, 255 unknown.
pub fn mem_code(ratio: Option<f32>) -> u8 {
    match ratio {
        Some(r) if r.is_finite() => (r * 250.0).round().clamp(0.0, 254.0) as u8,
        _ => 255,
    }
}

pub fn mem_ratio(code: u8) -> Option<f64> {
    (code != 255).then_some(code as f64 / 250.0)
}

/// Encode one subject's minute.
pub fn encode_cell(
    status: Status,
    polls: u32,
    latency_us_max: Option<u32>,
    mem: Option<f32>,
) -> [u8; 4] {
    [
        status as u8 + 1,
        polls.min(255) as u8,
        latency_us_max.map_or(0, latency_code),
        mem_code(mem),
    ]
}

fn decode_cell(minute: i64, c: &[u8]) -> Option<Minute> {
    if c.len() != 4 || c[0] == 0 {
        return None;
    }
    Some(Minute {
        minute,
        status: status_of(c[0] as i64 - 1)?,
        polls: c[1],
        latency_ms_max: latency_ms(c[2]),
        mem_ratio: mem_ratio(c[3]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_within_their_precision() {
        for us in [1u32, 300, 1000, 25_000, 1_000_000] {
            let back = latency_ms(latency_code(us)).unwrap() * 1000.0;
            assert!(
                (back - us as f64).abs() <= us as f64 * 0.05 + 1.0,
                "{us} -> {back}"
            );
        }
        assert_eq!(mem_ratio(mem_code(Some(0.42))), Some(0.42));
        assert_eq!(mem_ratio(mem_code(None)), None);
        let cell = encode_cell(Status::Critical, 300, Some(2000), Some(0.5));
        let m = decode_cell(7, &cell).unwrap();
        assert_eq!(
            (m.status, m.polls, m.mem_ratio),
            (Status::Critical, 255, Some(0.5))
        );
        assert!(decode_cell(7, &[0, 0, 0, 0]).is_none());
    }

    #[test]
    fn packed_minutes_give_back_every_cell() {
        let n = 1000;
        let cells: Vec<u8> = (0..n * 4).map(|i| (i * 7 % 251) as u8).collect();
        let blob = pack_minute(&cells);
        assert!(blob.len() < cells.len());
        for id in [0usize, 1, 255, 256, 511, 999] {
            let want: [u8; 4] = cells[id * 4..id * 4 + 4].try_into().unwrap();
            assert_eq!(cell_of(&blob, id as i64), Some(want), "{id}");
        }
        assert_eq!(cell_of(&blob, 1024), None);
        assert_eq!(cell_of(&blob, -1), None);
        assert_eq!(cell_of(b"\xff\xff", 0), None);
        assert_eq!(cell_of(&[9, 0, 0, 0, 1], 0), None);
    }

    #[test]
    fn retention_prunes_what_is_older() {
        let c = Connection::open_in_memory().unwrap();
        migrate(&c).unwrap();
        c.execute_batch(
            "INSERT INTO subjects (id, kind, name) VALUES (1, 0, 'a');
             INSERT INTO runs (id, started_ms, last_seen_ms) VALUES (1, 0, 60000), (2, 200000, 400000);
             INSERT INTO transitions (subject, run, at_ms, to_status) VALUES (1, 1, 1000, 0), (1, 2, 250000, 3);
             INSERT INTO minutes (minute, data) VALUES (0, x''), (4, x'');",
        )
        .unwrap();
        prune(&c, 180_000).unwrap();
        let count = |t: &str| -> i64 {
            c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(
            (count("transitions"), count("runs"), count("minutes")),
            (1, 1, 1)
        );
        let at: i64 = c
            .query_row("SELECT at_ms FROM transitions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(at, 250_000);
    }

    #[test]
    fn schema_versions_are_checked() {
        let c = Connection::open_in_memory().unwrap();
        migrate(&c).unwrap();
        migrate(&c).unwrap();
        c.execute(
            "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        let e = migrate(&c).unwrap_err().to_string();
        assert!(e.contains("newer than this redpulse"), "{e}");
    }
}
