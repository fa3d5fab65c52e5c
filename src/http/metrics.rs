//! `/metrics` in the Prometheus text format 0.0.4, rendered from the store.
//!
//! Per-instance series use redis_exporter's names (label `instance`), so
//! existing dashboards and alerts keep working; redpulse's own series say
//! how the poller itself is doing. Rendering is one pass over the slots into
//! one buffer, so it stays cheap at 10,000 instances.

use crate::cache::prefetch;
use crate::judge::outcome::Status;
use crate::state::counters::POLL_BUCKETS;
use crate::state::store::{Current, Ident, Store};
use crate::wire::exposition::{self, Exposition};
use crate::wire::prom_text::{escape_label_value, header, push_label};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// An instance as a render sees it: its labels, its current status, and
/// its INFO samples while it answers.
type Row = (Arc<Ident>, Current, Option<Arc<Exposition>>);
/// A per-instance count of what a fetch left out: name, type, help, value.
type LeftOut = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Exposition) -> u64,
);

/// Render every series for every instance into one buffer (tests and
/// benches; HTTP streams with [`render_to`]).
pub fn render(store: &Store, now: Instant) -> Vec<u8> {
    let mut all = Vec::new();
    let mut sink = |chunk: Vec<u8>| {
        all.extend_from_slice(&chunk);
        Ok(())
    };
    let mut out = Out::new(&mut sink);
    render_to(store, now, &mut out).expect("a Vec sink cannot fail");
    out.finish().expect("a Vec sink cannot fail");
    all
}

/// Bytes a chunk collects before it is handed on: big enough that the
/// hand-over costs nothing next to writing it, small enough that a scrape
/// holds little (a few chunks queued plus one being written).
pub const CHUNK: usize = 64 * 1024;

/// Where a render writes: a buffer, handed to `sink` whenever it passes
/// [`CHUNK`] (at sample boundaries, so no line is split across a check).
pub struct Out<'a> {
    /// The chunk being written.
    pub b: Vec<u8>,
    sink: &'a mut dyn FnMut(Vec<u8>) -> std::io::Result<()>,
}

impl<'a> Out<'a> {
    /// An empty buffer in front of `sink`.
    pub fn new(sink: &'a mut dyn FnMut(Vec<u8>) -> std::io::Result<()>) -> Out<'a> {
        Out {
            b: Vec::with_capacity(CHUNK + 16 * 1024),
            sink,
        }
    }

    /// Hand the chunk on once it is full; an error means the receiver is
    /// gone (the scraper hung up) and the render should stop.
    #[inline]
    pub fn spill(&mut self) -> std::io::Result<()> {
        if self.b.len() >= CHUNK {
            let full = std::mem::replace(&mut self.b, Vec::with_capacity(CHUNK + 16 * 1024));
            (self.sink)(full)?;
        }
        Ok(())
    }

    /// Hand on what is left.
    pub fn finish(mut self) -> std::io::Result<()> {
        if !self.b.is_empty() {
            (self.sink)(std::mem::take(&mut self.b))?;
        }
        Ok(())
    }
}

/// Render every series for every instance into `out`, chunk by chunk.
pub fn render_to(store: &Store, now: Instant, out: &mut Out) -> std::io::Result<()> {
    let slots = store.slots();
    // The oldest metrics data shown: on demand, a scrape after a quiet
    // spell answers with what was fetched before it.
    let mut oldest_fetch: Option<Instant> = None;
    // One staleness decision per instance, shared with every other view.
    let latest: Vec<Row> = slots
        .iter()
        .map(|s| {
            let c = store.current(s, now);
            // INFO series only while the instance answers: a failed or
            // stale one has `redis_up 0` and nothing else, as with
            // redis_exporter.
            let answering = !c.stale
                && c.published
                    .as_ref()
                    .is_some_and(|p| p.health.error.is_none());
            let e = answering.then(|| s.fetched()).flatten().map(|(e, at)| {
                oldest_fetch = Some(oldest_fetch.map_or(at, |o| o.min(at)));
                e
            });
            (s.ident(), c, e)
        })
        .collect();

    header(
        &mut out.b,
        "redis_up",
        "gauge",
        "1 when the instance answered its last polls (status is not down).",
    );
    for (ident, c, _) in &latest {
        sample(
            &mut out.b,
            "redis_up",
            ident,
            b"",
            u8::from(c.status != Status::Down),
        );
        out.spill()?;
    }
    info_series(out, &latest)?;
    // Per-instance counts of what a fetch left out: a series once above 0.
    let left_out: [LeftOut; 3] = [
        (
            "redpulse_metric_families_dropped",
            "gauge",
            "Families named by the server left out of this instance's last metrics fetch (past the per-instance bound).",
            |e| u64::from(e.families_dropped),
        ),
        (
            "redpulse_samples_dropped_total",
            "counter",
            "Samples of this instance left out past the per-instance cap (INFO's kept first, then CONFIG's, then the client list's, the keys' and the streams').",
            |e| e.counters.samples_dropped,
        ),
        (
            "redpulse_key_checks_truncated_total",
            "counter",
            "Keys matching a checked pattern left out of a metrics poll past check_keys_max, summed over polls.",
            |e| e.counters.key_checks_truncated,
        ),
    ];
    for (name, kind, help, count) in left_out {
        header(&mut out.b, name, kind, help);
        for (ident, _, e) in &latest {
            if let Some(n) = e.as_deref().map(count).filter(|&n| n > 0) {
                sample(&mut out.b, name, ident, b"", n);
                out.spill()?;
            }
        }
    }
    header(
        &mut out.b,
        "redpulse_metrics_command_errors_total",
        "counter",
        "Error replies to a metrics-only command (refused, unknown or renamed): only that command's series are left out, and it is not sent again until a reconnect or a reload.",
    );
    let mut extra = Vec::new();
    for (ident, _, e) in &latest {
        for (command, n) in e.iter().flat_map(|e| &e.counters.command_errors) {
            extra.clear();
            push_label(&mut extra, b"command", command.as_bytes());
            sample(
                &mut out.b,
                "redpulse_metrics_command_errors_total",
                ident,
                &extra,
                n,
            );
        }
        out.spill()?;
    }
    header(
        &mut out.b,
        "redpulse_health_status",
        "gauge",
        "1 for the instance's current health status, 0 for the others.",
    );
    let labels = Status::ALL.map(|s| format!(",status=\"{}\"", s.as_str()));
    for (ident, c, _) in &latest {
        for (s, label) in Status::ALL.iter().zip(&labels) {
            sample(
                &mut out.b,
                "redpulse_health_status",
                ident,
                label.as_bytes(),
                u8::from(*s == c.status),
            );
        }
        out.spill()?;
    }
    header(
        &mut out.b,
        "redpulse_group_status",
        "gauge",
        "1 for a cluster's or group's current status as a whole, 0 for the others.",
    );
    let clusters = store.clusters().into_iter().map(|(name, view)| {
        let status = crate::http::views::cluster_verdict(store, &view, now).status;
        (name, status, view.labels.clone())
    });
    let groups = store.groups().into_iter().map(|(name, view)| {
        let status = crate::http::views::group_verdict(store, &view, now).status;
        (name, status, view.labels.clone())
    });
    for (name, current, labels) in clusters.chain(groups) {
        let mut prefix = b"{group=\"".to_vec();
        escape_label_value(&mut prefix, name.as_bytes());
        prefix.push(b'"');
        push_labels(&mut prefix, &labels);
        for s in Status::ALL {
            out.b.extend_from_slice(b"redpulse_group_status");
            out.b.extend_from_slice(&prefix);
            let _ = writeln!(
                out.b,
                ",status=\"{}\"}} {}",
                s.as_str(),
                u8::from(s == current)
            );
        }
        out.spill()?;
    }
    header(
        &mut out.b,
        "redpulse_tls_cert_not_after_seconds",
        "gauge",
        "notAfter of a TLS instance's server certificate, as a Unix time.",
    );
    for (ident, c, _) in &latest {
        let not_after = c
            .published
            .as_ref()
            .and_then(|p| p.health.tls)
            .and_then(|peer| peer.not_after.duration_since(std::time::UNIX_EPOCH).ok());
        if let Some(t) = not_after {
            sample(
                &mut out.b,
                "redpulse_tls_cert_not_after_seconds",
                ident,
                b"",
                t.as_secs(),
            );
        }
    }
    header(
        &mut out.b,
        "redpulse_polls_total",
        "counter",
        "Polls since start, by result.",
    );
    let _ = writeln!(
        out.b,
        "redpulse_polls_total{{result=\"ok\"}} {}",
        store.polls.ok.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out.b,
        "redpulse_polls_total{{result=\"error\"}} {}",
        store.polls.error.load(Ordering::Relaxed)
    );
    header(
        &mut out.b,
        "redpulse_poll_duration_seconds",
        "histogram",
        "Duration of each poll (connect if needed, write, read).",
    );
    let polls = &store.polls;
    let mut cumulative = 0;
    for (i, le) in POLL_BUCKETS.iter().enumerate() {
        cumulative += polls.duration_buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(
            out.b,
            "redpulse_poll_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    cumulative += polls.duration_buckets[POLL_BUCKETS.len()].load(Ordering::Relaxed);
    let _ = writeln!(
        out.b,
        "redpulse_poll_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
    );
    let sum = polls.duration_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out.b, "redpulse_poll_duration_seconds_sum {sum}\nredpulse_poll_duration_seconds_count {cumulative}");
    let oldest = latest
        .iter()
        .filter_map(|(_, c, _)| c.age)
        .max()
        .unwrap_or_default();
    single(
        &mut out.b,
        "redpulse_poll_lag_seconds",
        "gauge",
        "Age of the oldest verdict: about the interval while the poller keeps up; growing means it is behind.",
        oldest.as_secs_f64(),
    );
    single(
        &mut out.b,
        "redpulse_metrics_oldest_fetch_age_seconds",
        "gauge",
        "Age of the oldest instance's metrics data in this scrape (0 when none): metrics sections are fetched while /metrics is scraped, so the first scrape after a quiet spell shows older data.",
        oldest_fetch.map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64()),
    );
    single(
        &mut out.b,
        "redpulse_targets",
        "gauge",
        "Instances being watched.",
        latest.len(),
    );
    single(
        &mut out.b,
        "redpulse_config_last_reload_successful",
        "gauge",
        "1 when the latest config load (start, SIGHUP or a watched file's change) succeeded.",
        store.reload.successful.load(Ordering::Relaxed),
    );
    single(
        &mut out.b,
        "redpulse_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Unix time of the latest successful config load.",
        store.reload.success_at.load(Ordering::Relaxed),
    );
    Ok(())
}

/// Every INFO-derived series into `b`, grouped by family as the text
/// format requires: family by family, each instance's samples of that
/// family (every instance's groups are walked in step with the families,
/// so each is read once). Of the layouts measured (BENCHMARKS.md), this
/// one was fastest: per-family buffers copy the body twice, and placing
/// families by precomputed offsets costs a zero-filled body and a bounds
/// check per piece.
///
/// A pass per family over 10,000 instances must stay out of the cold
/// per-instance data until it copies: it scans a dense array of each
/// instance's next family id (20 KB) for the instances that have this
/// family, and asks for the lines of the group [`READ_AHEAD`] matches on
/// before it copies the current one, so the cold reads overlap. Each
/// instance's label text is copied side by side first, read in order.
fn info_series(out: &mut Out, latest: &[Row]) -> std::io::Result<()> {
    let families = exposition::families();
    let answering = || {
        latest
            .iter()
            .filter_map(|(ident, _, e)| Some((ident, e.as_ref()?)))
    };
    let mut labels = Vec::new();
    let mut ends = Vec::new();
    for (ident, _) in answering() {
        labels.extend_from_slice(&ident.prom);
        ends.push(labels.len());
    }
    // Per instance: its labels and the rest of its groups; and, dense, its
    // next group's family id (DONE past the last: the registry's ids stop
    // below u16::MAX) and lines.
    const DONE: u16 = u16::MAX;
    let mut fleet = Vec::with_capacity(ends.len());
    let mut next_id = Vec::with_capacity(ends.len());
    let mut next_lines: Vec<&[u8]> = Vec::with_capacity(ends.len());
    let mut start = 0;
    for ((_, e), &end) in answering().zip(&ends) {
        let mut groups = e.groups();
        let (id, lines) = groups.next().unwrap_or((DONE, &[]));
        fleet.push((&labels[start..end], groups));
        next_id.push(id);
        next_lines.push(lines);
        start = end;
    }
    // The next instance at or after `from` with a group of family `id`.
    let find = |next_id: &[u16], from: usize, id: u16| {
        next_id
            .get(from..)?
            .iter()
            .position(|&n| n == id)
            .map(|at| from + at)
    };
    let mut group_written = false;
    for (id, family) in families.iter().enumerate() {
        let id = id as u16;
        let name = family.name.as_bytes();
        let mut wrote_header = false;
        let mut at = find(&next_id, 0, id);
        let mut ahead = at;
        for _ in 0..READ_AHEAD {
            if let Some(a) = ahead {
                prefetch(next_lines[a].as_ptr(), 1);
                ahead = find(&next_id, a + 1, id);
            }
        }
        while let Some(k) = at {
            if let Some(a) = ahead {
                prefetch(next_lines[a].as_ptr(), 1);
                ahead = find(&next_id, a + 1, id);
            }
            let (prom, groups) = &mut fleet[k];
            let lines = next_lines[k];
            let (nid, nlines) = groups.next().unwrap_or((DONE, &[]));
            next_id[k] = nid;
            next_lines[k] = nlines;
            at = find(&next_id, k + 1, id);
            if family.header && !wrote_header {
                header(&mut out.b, &family.name, family.kind.as_str(), &family.help);
                wrote_header = true;
                group_written = true;
            }
            if !group_written {
                // A summary's _sum/_count without the summary's samples.
                continue;
            }
            // Name and labels copied before each line: most groups are one
            // line (1.37 M samples in 1.2 M groups at 10,000 instances), so
            // joining them once first would copy more.
            let b = &mut out.b;
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', lines) {
                b.extend_from_slice(name);
                b.extend_from_slice(prom);
                b.extend_from_slice(&lines[start..=end]);
                start = end + 1;
            }
            out.spill()?;
        }
        if family.header && !wrote_header {
            group_written = false;
        }
    }
    Ok(())
}

/// How many instances ahead of its copying a render pass asks for the
/// lines it will copy: about a cold read's latency in copies. The render
/// of 10,000 instances spent 65 % of its time on these cold reads; a
/// plain read instead of the prefetch was no faster than none.
const READ_AHEAD: usize = 8;

/// One sample of an instance: `name{instance="x",labels<extra>} value`.
fn sample(b: &mut Vec<u8>, name: &str, ident: &Ident, extra: &[u8], value: impl std::fmt::Display) {
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(&ident.prom);
    b.extend_from_slice(extra);
    let _ = writeln!(b, "}} {value}");
}

/// `,k="v"` for every label.
fn push_labels(b: &mut Vec<u8>, labels: &crate::config::Labels) {
    for (k, v) in labels {
        push_label(b, k.as_bytes(), v.as_bytes());
    }
}

/// The history's own series, appended to a render.
pub fn history_series(b: &mut Vec<u8>, h: &crate::history::History, dropped: u64) {
    use std::sync::atomic::Ordering::Relaxed;
    single(
        b,
        "redpulse_history_persistent",
        "gauge",
        "1 while the history is written to data_dir, 0 when it fell back to memory (see the log).",
        u8::from(h.is_persistent()),
    );
    single(
        b,
        "redpulse_history_transitions_total",
        "counter",
        "Status transitions written to the history.",
        h.transitions.load(Relaxed),
    );
    single(
        b,
        "redpulse_history_write_errors_total",
        "counter",
        "History commits that failed.",
        h.write_errors.load(Relaxed),
    );
    single(
        b,
        "redpulse_history_dropped_samples_total",
        "counter",
        "Verdicts not recorded because the history writer fell behind.",
        dropped,
    );
    header(
        b,
        "redpulse_notifications_total",
        "counter",
        "Notifications by outcome: sent, or expired after retry_for.",
    );
    let _ = writeln!(
        b,
        "redpulse_notifications_total{{result=\"sent\"}} {}",
        h.notifications_sent.load(Relaxed)
    );
    let _ = writeln!(
        b,
        "redpulse_notifications_total{{result=\"expired\"}} {}",
        h.notifications_expired.load(Relaxed)
    );
}

/// This process's shard and how its calls to other shards and regions
/// went; nothing without `shard` or `[consensus]`.
pub fn peer_series(b: &mut Vec<u8>, p: &super::peers::Peering) {
    if let Some(s) = &p.shards {
        header(
            b,
            "redpulse_shard",
            "gauge",
            "1, labelled with this process's shard (0-based) and the number of shards.",
        );
        let _ = writeln!(
            b,
            "redpulse_shard{{shard=\"{}\",shards=\"{}\"}} 1",
            s.map.me, s.map.count
        );
    }
    let shards = p.shards.iter().flat_map(|s| {
        let me = s.map.me as usize;
        s.peers
            .iter()
            .enumerate()
            .filter(move |(k, _)| *k != me)
            .map(|(_, peer)| ("shard", peer))
    });
    let regions = p
        .consensus
        .iter()
        .flat_map(|c| c.peers.iter().map(|peer| ("region", peer)));
    let mut any = false;
    for (kind, peer) in shards.chain(regions) {
        if !any {
            header(
                b,
                "redpulse_peer_requests_total",
                "counter",
                "Requests to other shards and regions by outcome: answered, or failed (refused, timed out, cut off).",
            );
            any = true;
        }
        let mut url = Vec::new();
        escape_label_value(&mut url, peer.url.to_string().as_bytes());
        let url = String::from_utf8_lossy(&url);
        let (answered, failed) = peer.outcomes();
        for (result, n) in [("answered", answered), ("failed", failed)] {
            let _ = writeln!(
                b,
                "redpulse_peer_requests_total{{peer=\"{url}\",kind=\"{kind}\",result=\"{result}\"}} {n}"
            );
        }
    }
}

/// The gzip encoder every compressed scrape goes through: the fastest
/// level, at which a 10,000-instance body shrinks about tenfold for a
/// fraction of the default level's cost (BENCHMARKS.md).
pub fn gzip_encoder(out: Vec<u8>) -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(out, flate2::Compression::fast())
}

/// A whole body gzipped as a scrape would send it (benches).
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut z = gzip_encoder(Vec::with_capacity(body.len() / 8));
    z.write_all(body)?;
    z.finish()
}

/// A family of one sample without labels.
/// The web config's series: refusals and whether its last load worked.
pub fn web_series(b: &mut Vec<u8>, gate: &super::auth::Gate) {
    use std::sync::atomic::Ordering::Relaxed;
    single(
        b,
        "redpulse_http_auth_failures_total",
        "counter",
        "HTTP requests refused: no or wrong credentials (401), or past the rate limit (429).",
        gate.failures.load(Relaxed),
    );
    single(
        b,
        "redpulse_web_config_last_reload_successful",
        "gauge",
        "1 when the latest web config load (start or reload) succeeded; 0 keeps the previous one.",
        gate.last_reload_ok.load(Relaxed),
    );
}

fn single(b: &mut Vec<u8>, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(b, name, kind, help);
    let _ = writeln!(b, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Thresholds;
    use crate::judge::outcome::Outcome;
    use crate::judge::rules::Tracker;
    use std::time::{Duration, SystemTime};

    use crate::testdata::snapshot as corpus;

    /// The INFO series the obvious way: every family in turn, every
    /// instance's groups walked in step, name and labels before each line.
    fn plain_info_series(latest: &[Row]) -> Vec<u8> {
        let mut b = Vec::new();
        let mut fleet: Vec<_> = latest
            .iter()
            .filter_map(|(ident, _, e)| Some((ident, e.as_ref()?.groups().peekable())))
            .collect();
        let mut group_written = false;
        for (id, family) in exposition::families().iter().enumerate() {
            let mut wrote_header = false;
            for (ident, g) in fleet.iter_mut() {
                let Some((_, lines)) = g.next_if(|(gid, _)| *gid == id as u16) else {
                    continue;
                };
                if family.header && !wrote_header {
                    header(&mut b, &family.name, family.kind.as_str(), &family.help);
                    wrote_header = true;
                    group_written = true;
                }
                if !group_written {
                    continue;
                }
                for line in lines.split_inclusive(|&c| c == b'\n') {
                    b.extend_from_slice(family.name.as_bytes());
                    b.extend_from_slice(&ident.prom);
                    b.extend_from_slice(line);
                }
            }
            if family.header && !wrote_header {
                group_written = false;
            }
        }
        b
    }

    #[test]
    fn info_series_match_a_plain_walk_of_every_instance() {
        let frames = crate::testdata::frames("redis-7.0_master_idle_info_all");
        let full = crate::wire::info::info_text(&frames[0]).unwrap();
        let lines: Vec<&[u8]> = full.split_inclusive(|&b| b == b'\n').collect();
        let store = Store::new(Duration::from_secs(3));
        // More instances than the read-ahead, with different families
        // each (every k-th field left out) and some never fetched.
        for k in 0..40usize {
            let slot = store.insert(&format!("r{k:02}"), "127.0.0.1:1");
            if k % 7 == 3 {
                continue;
            }
            let every = k % 5 + 2;
            let text: Vec<u8> = lines
                .iter()
                .enumerate()
                .filter(|(i, l)| l.starts_with(b"#") || i % every != 0)
                .flat_map(|(_, l)| l.iter().copied())
                .collect();
            slot.set_exposition(Exposition::from_info(&text, None, 0), Instant::now());
        }
        let now = Instant::now();
        let rows: Vec<Row> = store
            .slots()
            .iter()
            .map(|s| {
                (
                    s.ident(),
                    store.current(s, now),
                    s.fetched().map(|(e, _)| e),
                )
            })
            .collect();
        let mut body = Vec::new();
        let mut sink = |chunk: Vec<u8>| {
            body.extend_from_slice(&chunk);
            Ok(())
        };
        let mut out = Out::new(&mut sink);
        info_series(&mut out, &rows).unwrap();
        out.finish().unwrap();
        let expected = plain_info_series(&rows);
        assert!(
            expected.split(|&b| b == b'\n').count() > 2_000,
            "too few samples to tell"
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }

    #[test]
    fn metrics_carry_exporter_names_and_statuses() {
        let store = Store::new(Duration::from_secs(3));
        let now = Instant::now();
        let h = Tracker::new(Thresholds::default()).observe(
            Outcome::Polled {
                snapshot: corpus("redis-7.0_replica_online_info_multi").into(),
                latency: Duration::ZERO,
                tls: None,
            },
            now,
            SystemTime::now(),
        );
        let slot = store.insert_slot(crate::state::store::Slot::new(
            "r1",
            "127.0.0.1:1",
            false,
            [("team".to_string(), "a\"b".to_string())].into(),
        ));
        slot.publish(h);
        let frames = crate::testdata::frames("redis-7.0_master_idle_info_all");
        let text = crate::wire::info::info_text(&frames[0]).unwrap();
        slot.set_exposition(Exposition::from_info(text, None, 0), Instant::now());
        store.insert("never", "127.0.0.1:2");
        for _ in 0..3 {
            store.polls.record(true, Duration::from_micros(300));
        }
        let text = String::from_utf8(render(&store, now)).unwrap();
        let r1 = "instance=\"r1\",team=\"a\\\"b\"";
        assert!(text.contains(&format!("redis_up{{{r1}}} 1\n")), "{text}");
        assert!(text.contains("redis_up{instance=\"never\"} 0\n"));
        // INFO ALL's series come with the instance's labels.
        assert!(
            text.contains(&format!("redis_connected_clients{{{r1}}} 1\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("redis_commands_total{{{r1},cmd=\"info\"}} ")),
            "{text}"
        );
        assert!(text.contains(&format!("redpulse_health_status{{{r1},status=\"ok\"}} 1\n")));
        assert!(text.contains("redpulse_health_status{instance=\"never\",status=\"down\"} 1\n"));
        assert!(text.contains("redpulse_polls_total{result=\"ok\"} 3\n"));
        assert!(text.contains("redpulse_targets 2\n"));
        assert!(
            text.contains("redpulse_poll_duration_seconds_bucket{le=\"0.00025\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("redpulse_poll_duration_seconds_bucket{le=\"0.0005\"} 3\n"));
        assert!(text.contains("redpulse_poll_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("redpulse_poll_duration_seconds_count 3\n"));
        assert!(text.contains("redpulse_poll_lag_seconds 0\n"));
        assert!(
            !text.contains("redis_memory_used_bytes{instance=\"never\"}"),
            "unknown is omitted, not 0"
        );
        // Every sample line belongs to a family announced by # TYPE.
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                // Histogram samples carry a suffix on the family's name.
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                    .unwrap_or(name);
                assert!(typed.contains(family), "untyped {line}");
            }
        }
    }
}
