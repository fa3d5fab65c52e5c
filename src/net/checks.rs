//! The opt-in key and stream checks, run on the kept connection after a
//! metrics poll's replies: SCAN for the patterns, then pipelined reads of
//! the checked keys (TYPE, then the size by type) and streams (XINFO).
//!
//! Bounds: at most `check_keys_max` keys and streams read per metrics
//! poll; the checked set is stable (the first keys SCAN finds, re-scanned
//! every [`RESCAN_EVERY`] metrics polls; a pass stops once the set is
//! full, and the matches its last batch returned past the cap are counted
//! as left out); no SCAN starts after half the
//! poll timeout and a SCAN pass left unfinished continues at the next
//! metrics poll; every round trip ends before [`CHECKS_SHARE`] of the
//! timeout, so the poll's verdict never waits on them. A command the
//! server refuses stops that kind of check until a reconnect or a reload.

use super::extras::Refusable;
use crate::config::metrics::KeySpec;
use crate::config::MetricsOptions;
use crate::wire::exposition::{Checked, KeyReading, StreamReading, MAX_LABEL_VALUE};
use crate::wire::resp::{encode_command, Frame};
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// The checked key set is SCANned again every this many metrics polls.
pub const RESCAN_EVERY: u32 = 10;
/// Checks end (a round trip in flight is abandoned and the connection
/// re-made) at this share of the poll timeout after the poll started.
const CHECKS_SHARE: f64 = 0.8;

/// What the checks need of a connection (the poll's `Conn`): pipelined
/// round trips, and a way to say the stream is out of step.
#[allow(async_fn_in_trait)]
pub trait RoundTrip {
    /// `cmds` in one write, then `replies` replies; Err on any I/O or
    /// decode failure (the connection is then unusable).
    async fn round_trip(&mut self, cmds: &[u8], replies: usize) -> Result<Vec<Frame>, ()>;
    /// A round trip was abandoned: the connection must be re-made.
    fn mark_broken(&mut self);
}

/// Whether `r` has not been refused (before or in this poll).
fn on(out: &CheckOutcome, r: Refusable) -> bool {
    out.refused & r as u8 == 0
}

/// One key in a database.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DbKey {
    db: u32,
    key: Bytes,
}

/// A SCAN pass over every pattern, possibly over several metrics polls.
#[derive(Debug, Default)]
struct Pass {
    /// Index into the patterns (check_keys', then check_streams').
    pattern: usize,
    cursor: Bytes,
    keys: Vec<DbKey>,
    streams: Vec<DbKey>,
    /// Matching keys seen past the cap.
    overflow: u64,
}

/// A `count_keys` pattern's SCAN, possibly over several metrics polls.
#[derive(Debug, Default)]
struct Count {
    cursor: Bytes,
    counted: u64,
    /// The count of the last whole pass.
    last: Option<u64>,
}

/// One instance's checks state, kept with its connection.
#[derive(Debug, Default)]
pub struct KeyChecks {
    keys: Vec<DbKey>,
    streams: Vec<DbKey>,
    /// Matching keys past the cap in the last whole pass: left out of
    /// every metrics poll until the next pass.
    overflow: u64,
    scanned: bool,
    polls_since_pass: u32,
    pass: Option<Pass>,
    counts: Vec<Count>,
    /// The database the connection has selected.
    selected: u32,
}

/// What one metrics poll's checks gave.
#[derive(Debug, Default)]
pub struct CheckOutcome {
    pub checked: Checked,
    /// Keys matching a pattern left out of this poll past the cap.
    pub truncated: u64,
    /// [`Refusable`] bits the server refused in this poll (with those
    /// refused before, passed in, they stop their kind of check).
    pub refused: u8,
}

impl KeyChecks {
    /// Run this metrics poll's checks on `conn` (its poll's replies all
    /// read), for a poll that started at `started` with `timeout`; the
    /// kinds of check in the connection's `refused` bits are skipped.
    pub async fn run(
        &mut self,
        conn: &mut impl RoundTrip,
        o: &MetricsOptions,
        refused: u8,
        started: Instant,
        timeout: Duration,
    ) -> CheckOutcome {
        let mut out = CheckOutcome {
            refused,
            ..CheckOutcome::default()
        };
        let end = started + timeout.mul_f64(CHECKS_SHARE);
        let scan_until = started + timeout / 2;
        if timeout_at(end, self.checks(conn, o, scan_until, &mut out))
            .await
            .is_err()
        {
            // Out of time mid-reply: the stream is out of step.
            conn.mark_broken();
        }
        // Only what this poll refused.
        out.refused &= !refused;
        out
    }

    async fn checks(
        &mut self,
        conn: &mut impl RoundTrip,
        o: &MetricsOptions,
        scan_until: Instant,
        out: &mut CheckOutcome,
    ) {
        self.polls_since_pass = self.polls_since_pass.saturating_add(1);
        let patterns: Vec<(bool, &KeySpec)> = o
            .check_keys
            .iter()
            .filter(|k| k.is_pattern())
            .map(|k| (false, k))
            .chain(
                o.check_streams
                    .iter()
                    .filter(|k| k.is_pattern())
                    .map(|k| (true, k)),
            )
            .collect();
        let singles = o.check_single_keys.len()
            + o.check_single_streams.len()
            + o.check_keys.iter().filter(|k| !k.is_pattern()).count()
            + o.check_streams.iter().filter(|k| !k.is_pattern()).count();
        let room = (o.check_keys_max as usize).saturating_sub(singles);
        if !patterns.is_empty()
            && self.pass.is_none()
            && (!self.scanned || self.polls_since_pass >= RESCAN_EVERY)
        {
            self.pass = Some(Pass::default());
        }
        if on(out, Refusable::Scan) {
            if let Err(()) = self.scan(conn, o, &patterns, room, scan_until, out).await {
                return;
            }
            if let Err(()) = self.count(conn, o, scan_until, out).await {
                return;
            }
        }
        out.truncated = self.overflow;
        // The keys and streams read this poll: the singles, then the set.
        let max = o.check_keys_max as usize;
        let spec = |k: &KeySpec| DbKey {
            db: k.db,
            key: Bytes::copy_from_slice(k.key.as_bytes()),
        };
        let mut keys: Vec<DbKey> = o
            .check_single_keys
            .iter()
            .chain(o.check_keys.iter().filter(|k| !k.is_pattern()))
            .map(spec)
            .collect();
        keys.extend(self.keys.iter().cloned());
        let mut streams: Vec<DbKey> = o
            .check_single_streams
            .iter()
            .chain(o.check_streams.iter().filter(|k| !k.is_pattern()))
            .map(spec)
            .collect();
        streams.extend(self.streams.iter().cloned());
        keys.truncate(max);
        streams.truncate(max - keys.len());
        if on(out, Refusable::Keys) && !keys.is_empty() {
            match self.read_keys(conn, &keys).await {
                Ok(Some(k)) => out.checked.keys = k,
                Ok(None) => out.refused |= Refusable::Keys as u8,
                Err(()) => return,
            }
        }
        if on(out, Refusable::Xinfo) && !streams.is_empty() {
            match self.read_streams(conn, &streams).await {
                Ok(Some(s)) => out.checked.streams = s,
                Ok(None) => out.refused |= Refusable::Xinfo as u8,
                Err(()) => {}
            }
        }
    }

    /// SCAN the pass's patterns until it is whole or time is up.
    async fn scan(
        &mut self,
        conn: &mut impl RoundTrip,
        o: &MetricsOptions,
        patterns: &[(bool, &KeySpec)],
        room: usize,
        until: Instant,
        out: &mut CheckOutcome,
    ) -> Result<(), ()> {
        while let Some(pass) = &mut self.pass {
            let Some(&(stream, spec)) = patterns.get(pass.pattern) else {
                // Whole: the new set replaces the old.
                let pass = self.pass.take().expect("matched above");
                (self.keys, self.streams, self.overflow) = (pass.keys, pass.streams, pass.overflow);
                self.scanned = true;
                self.polls_since_pass = 0;
                break;
            };
            if Instant::now() >= until {
                break;
            }
            let cursor = pass.cursor.clone();
            let Some((next, found)) = self
                .scan_once(conn, spec, &cursor, o.check_keys_batch_size)
                .await?
            else {
                self.pass = None;
                out.refused |= Refusable::Scan as u8;
                break;
            };
            let pass = self.pass.as_mut().expect("still scanning");
            for key in found {
                let taken = pass.keys.len() + pass.streams.len();
                let fits = taken < room && key.len() <= MAX_LABEL_VALUE;
                let set = if stream {
                    &mut pass.streams
                } else {
                    &mut pass.keys
                };
                let k = DbKey { db: spec.db, key };
                if set.contains(&k) {
                    continue;
                }
                if fits {
                    set.push(k);
                } else {
                    pass.overflow += 1;
                }
            }
            if pass.keys.len() + pass.streams.len() >= room {
                // Full: the rest is left out (the batch's extra matches
                // were counted), and no further SCAN is spent on it.
                pass.pattern = patterns.len();
            } else if next.as_ref() == b"0" {
                pass.pattern += 1;
                pass.cursor = Bytes::new();
            } else {
                pass.cursor = next;
            }
        }
        Ok(())
    }

    /// Count `count_keys`' patterns, each a SCAN pass of its own.
    async fn count(
        &mut self,
        conn: &mut impl RoundTrip,
        o: &MetricsOptions,
        until: Instant,
        out: &mut CheckOutcome,
    ) -> Result<(), ()> {
        self.counts.resize_with(o.count_keys.len(), Count::default);
        for (i, spec) in o.count_keys.iter().enumerate() {
            loop {
                if Instant::now() >= until {
                    break;
                }
                let cursor = self.counts[i].cursor.clone();
                let Some((next, found)) = self
                    .scan_once(conn, spec, &cursor, o.check_keys_batch_size)
                    .await?
                else {
                    out.refused |= Refusable::Scan as u8;
                    return Ok(());
                };
                let c = &mut self.counts[i];
                c.counted += found.len() as u64;
                if next.as_ref() == b"0" {
                    c.last = Some(c.counted);
                    (c.counted, c.cursor) = (0, Bytes::new());
                    break;
                }
                c.cursor = next;
            }
            if let Some(n) = self.counts[i].last {
                let pattern = Bytes::copy_from_slice(spec.key.as_bytes());
                out.checked.counts.push((spec.db, pattern, n));
            }
        }
        Ok(())
    }

    /// One `SCAN cursor MATCH pattern COUNT n` (after SELECT when the
    /// database differs): the next cursor and the keys; None when refused.
    async fn scan_once(
        &mut self,
        conn: &mut impl RoundTrip,
        spec: &KeySpec,
        cursor: &[u8],
        batch: u32,
    ) -> Result<Option<(Bytes, Vec<Bytes>)>, ()> {
        let mut cmd = BytesMut::new();
        let selects = self.select(&mut cmd, spec.db);
        let cursor: &[u8] = if cursor.is_empty() { b"0" } else { cursor };
        let batch = batch.to_string();
        encode_command(
            &mut cmd,
            &[
                b"SCAN",
                cursor,
                b"MATCH",
                spec.key.as_bytes(),
                b"COUNT",
                batch.as_bytes(),
            ],
        );
        let replies = conn.round_trip(&cmd, selects + 1).await?;
        if selects == 1 && replies[0].as_error().is_some() {
            return Ok(None);
        }
        let Some(Frame::Array(parts)) = replies.last() else {
            return Ok(None);
        };
        let (Some(Frame::Bulk(next)), Some(Frame::Array(keys))) = (parts.first(), parts.get(1))
        else {
            return Ok(None);
        };
        let keys = keys
            .iter()
            .filter_map(|k| match k {
                Frame::Bulk(b) => Some(b.clone()),
                _ => None,
            })
            .collect();
        Ok(Some((next.clone(), keys)))
    }

    /// `SELECT db` into `cmd` when the connection is elsewhere: 1 reply
    /// more, else 0.
    fn select(&mut self, cmd: &mut BytesMut, db: u32) -> usize {
        if db == self.selected {
            return 0;
        }
        encode_command(cmd, &[b"SELECT", db.to_string().as_bytes()]);
        self.selected = db;
        1
    }

    /// TYPE of every key (one round trip), then its size, and a short
    /// string's value (another). None when the server refused TYPE.
    async fn read_keys(
        &mut self,
        conn: &mut impl RoundTrip,
        keys: &[DbKey],
    ) -> Result<Option<Vec<KeyReading>>, ()> {
        let mut cmd = BytesMut::new();
        let mut expect = Vec::with_capacity(keys.len());
        for k in keys {
            let selects = self.select(&mut cmd, k.db);
            encode_command(&mut cmd, &[b"TYPE", &k.key]);
            expect.push(selects);
        }
        let n = expect.iter().map(|s| s + 1).sum();
        let replies = conn.round_trip(&cmd, n).await?;
        let mut types = Vec::with_capacity(keys.len());
        let mut at = 0;
        for s in expect {
            if replies[at..at + s + 1]
                .iter()
                .any(|f| f.as_error().is_some())
            {
                return Ok(None);
            }
            types.push(match &replies[at + s] {
                Frame::Simple(t) | Frame::Bulk(t) => t.clone(),
                _ => Bytes::new(),
            });
            at += s + 1;
        }
        // The size by type, and up to MAX_LABEL_VALUE bytes of a string
        // (PFCOUNT first: STRLEN of a HyperLogLog is its encoding's size).
        let mut cmd = BytesMut::new();
        let mut plan: Vec<(usize, usize)> = Vec::with_capacity(keys.len());
        let range_end = (MAX_LABEL_VALUE).to_string();
        for (k, t) in keys.iter().zip(&types) {
            let selects = self.select(&mut cmd, k.db);
            let sent = match t.as_ref() {
                b"string" => {
                    encode_command(&mut cmd, &[b"PFCOUNT", &k.key]);
                    encode_command(&mut cmd, &[b"STRLEN", &k.key]);
                    encode_command(&mut cmd, &[b"GETRANGE", &k.key, b"0", range_end.as_bytes()]);
                    3
                }
                b"list" | b"set" | b"zset" | b"hash" | b"stream" => {
                    let size: &[u8] = match t.as_ref() {
                        b"list" => b"LLEN",
                        b"set" => b"SCARD",
                        b"zset" => b"ZCARD",
                        b"hash" => b"HLEN",
                        _ => b"XLEN",
                    };
                    encode_command(&mut cmd, &[size, &k.key]);
                    1
                }
                _ => 0,
            };
            plan.push((selects, sent));
        }
        let n = plan.iter().map(|(s, c)| s + c).sum();
        let replies = if n == 0 {
            Vec::new()
        } else {
            conn.round_trip(&cmd, n).await?
        };
        let int = |f: &Frame| match f {
            Frame::Integer(n) => Some(*n as f64),
            _ => None,
        };
        let mut out = Vec::with_capacity(keys.len());
        let mut at = 0;
        for ((k, t), (selects, sent)) in keys.iter().zip(&types).zip(plan) {
            let r = &replies[at + selects..at + selects + sent];
            at += selects + sent;
            let reading = |size, value| KeyReading {
                db: k.db,
                key: k.key.clone(),
                size,
                value,
            };
            match (t.as_ref(), r) {
                // A key that does not exist: size 0, as the exporter says.
                (b"none", _) => out.push(reading(0.0, None)),
                (b"string", [hll, len, value]) => {
                    let size = int(hll).or_else(|| int(len)).unwrap_or(0.0);
                    let short = int(len).is_some_and(|l| l <= MAX_LABEL_VALUE as f64);
                    let value = match value {
                        Frame::Bulk(v) if short => Some(v.clone()),
                        _ => None,
                    };
                    out.push(reading(size, value));
                }
                (_, [size]) => out.push(reading(int(size).unwrap_or(0.0), None)),
                // A type redis_exporter does not size (a module's): skipped.
                _ => {}
            }
        }
        Ok(Some(out))
    }

    /// XINFO STREAM and GROUPS of every stream (one round trip), then
    /// XINFO CONSUMERS of every group (another). None when refused.
    async fn read_streams(
        &mut self,
        conn: &mut impl RoundTrip,
        streams: &[DbKey],
    ) -> Result<Option<Vec<StreamReading>>, ()> {
        let mut cmd = BytesMut::new();
        let mut expect = Vec::with_capacity(streams.len());
        for s in streams {
            let selects = self.select(&mut cmd, s.db);
            encode_command(&mut cmd, &[b"XINFO", b"STREAM", &s.key]);
            encode_command(&mut cmd, &[b"XINFO", b"GROUPS", &s.key]);
            expect.push(selects);
        }
        let n = expect.iter().map(|s| s + 2).sum();
        let replies = conn.round_trip(&cmd, n).await?;
        let mut out = Vec::new();
        let mut at = 0;
        for (s, selects) in streams.iter().zip(expect) {
            let (stream, groups) = (&replies[at + selects], &replies[at + selects + 1]);
            at += selects + 2;
            if let Some(e) = stream.as_error() {
                // A key that is missing or not a stream is skipped, as the
                // exporter skips it; anything else is a refusal.
                if e.starts_with(b"ERR") || e.starts_with(b"WRONGTYPE") {
                    continue;
                }
                return Ok(None);
            }
            if let Some(mut r) = StreamReading::from_xinfo(s.db, s.key.clone(), stream) {
                r.add_groups(groups);
                out.push(r);
            }
        }
        let mut cmd = BytesMut::new();
        let mut n = 0;
        for r in &out {
            let selects = self.select(&mut cmd, r.db);
            n += selects;
            for g in &r.group_info {
                encode_command(&mut cmd, &[b"XINFO", b"CONSUMERS", &r.key, &g.name]);
                n += 1;
            }
        }
        if n == 0 {
            return Ok(Some(out));
        }
        let replies = conn.round_trip(&cmd, n).await?;
        let mut replies = replies
            .iter()
            .filter(|f| !matches!(f, Frame::Simple(ok) if ok.as_ref() == b"OK"));
        for r in &mut out {
            for g in &mut r.group_info {
                if let Some(c) = replies.next() {
                    g.add_consumers(c);
                }
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::resp::Decoder;

    /// A server with an endless keyspace (`key:N`, SCAN's cursor never
    /// comes back to 0), answering each round trip after `step`, and
    /// recording when each SCAN began.
    struct Endless {
        step: Duration,
        next: u64,
        scans: Vec<Instant>,
        types: usize,
    }

    impl RoundTrip for Endless {
        async fn round_trip(&mut self, cmds: &[u8], replies: usize) -> Result<Vec<Frame>, ()> {
            let sent = Instant::now();
            tokio::time::sleep(self.step).await;
            let mut buf = BytesMut::from(cmds);
            let mut d = Decoder::new();
            let mut out = Vec::new();
            while let Some(Frame::Array(args)) = d.decode(&mut buf).unwrap() {
                let word = |i: usize| match &args[i] {
                    Frame::Bulk(b) => b.clone(),
                    _ => panic!(),
                };
                out.push(match &word(0)[..] {
                    b"SCAN" => {
                        self.scans.push(sent);
                        let keys = (0..10)
                            .map(|_| {
                                self.next += 1;
                                Frame::Bulk(format!("key:{}", self.next).into())
                            })
                            .collect();
                        Frame::Array(vec![Frame::Bulk("7".into()), Frame::Array(keys)])
                    }
                    b"TYPE" => {
                        self.types += 1;
                        Frame::Simple("list".into())
                    }
                    b"LLEN" => Frame::Integer(3),
                    other => panic!("{other:?}"),
                });
            }
            assert_eq!(out.len(), replies);
            Ok(out)
        }

        fn mark_broken(&mut self) {}
    }

    fn options(lines: &str) -> MetricsOptions {
        let o: crate::config::metrics::MetricsOverrides = toml::from_str(lines).unwrap();
        o.apply(&MetricsOptions::default(), "[metrics]").unwrap()
    }

    #[tokio::test]
    async fn no_scan_starts_after_half_the_timeout_and_no_part_of_a_pass_is_published() {
        let o = options("count_keys = [\"key:*\"]");
        let mut server = Endless {
            step: Duration::from_millis(20),
            next: 0,
            scans: Vec::new(),
            types: 0,
        };
        let mut checks = KeyChecks::default();
        let timeout = Duration::from_millis(200);
        for _ in 0..3 {
            let started = Instant::now();
            let out = checks.run(&mut server, &o, 0, started, timeout).await;
            assert!(started.elapsed() <= timeout.mul_f64(CHECKS_SHARE) + Duration::from_millis(20));
            let late: Vec<_> = server
                .scans
                .iter()
                .filter(|&&t| t >= started + timeout / 2)
                .collect();
            assert!(late.is_empty(), "a SCAN began after half the timeout");
            // Never a whole pass: no count is published, and none is
            // made up from a part of one.
            assert!(out.checked.counts.is_empty());
        }
        assert!(server.scans.len() >= 6, "{} SCANs", server.scans.len());
    }

    #[tokio::test]
    async fn the_checked_set_is_bounded_stable_and_rescanned_every_ten_polls() {
        let o =
            options("check_keys = [\"key:*\"]\ncheck_single_keys = [\"one\"]\ncheck_keys_max = 25");
        let mut server = Endless {
            step: Duration::from_millis(1),
            next: 0,
            scans: Vec::new(),
            types: 0,
        };
        let mut checks = KeyChecks::default();
        let mut first = None;
        for poll in 0..RESCAN_EVERY + 1 {
            let before = server.types;
            let out = checks
                .run(&mut server, &o, 0, Instant::now(), Duration::from_secs(1))
                .await;
            let keys: Vec<Bytes> = out.checked.keys.iter().map(|k| k.key.clone()).collect();
            // The single key, then the first 24 keys SCAN found: three
            // SCANs of 10 (the last one's 6 extra matches left out).
            assert_eq!(keys.len(), 25);
            assert_eq!(&keys[0][..], b"one");
            assert_eq!(server.types - before, 25, "poll {poll}");
            assert_eq!(out.truncated, 6);
            match &first {
                None => first = Some(keys),
                Some(f) if poll < RESCAN_EVERY => assert_eq!(f, &keys, "poll {poll}"),
                // The endless keyspace answers new names to the re-scan.
                Some(f) => assert_ne!(f, &keys),
            }
        }
        assert_eq!(
            server.scans.len(),
            6,
            "one pass of 3 SCANs, then one re-scan"
        );
    }
}
