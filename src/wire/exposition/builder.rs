//! One INFO reply (and a cluster node's CLUSTER INFO) into an
//! [`Exposition`]: every field mapped as redis_exporter maps it, samples
//! sorted by family and packed. Each instance may use at most
//! [`MAX_DYNAMIC_FAMILIES`] families whose names the server chose.

use super::registry::{lookup, plain_fields, register};
use super::tables::fixed_id;
use super::{Exposition, Kind, MAX_DYNAMIC_FAMILIES, MAX_LABEL_VALUE, MAX_SAMPLES};
/// The fields `redis_instance_info` is made of, in its label order.
use crate::config::labels::INSTANCE_INFO_KEYS as INSTANCE_INFO;
/// Valkey's optional `redis_instance_info` labels, after the fixed ones.
use crate::config::labels::VALKEY_INFO_KEYS as VALKEY_INFO;
use crate::wire::lines::for_each_line;
use crate::wire::prom_text::{push_label, write_decimal, write_value};
use memchr::memchr;
use Kind::Gauge;

/// One sample while building: family, and its label and value text as
/// ranges of the builder's buffer (samples with the same labels, such as
/// a command's counts, share one label range).
struct Pending {
    family: u16,
    labels: (u32, u32),
    value: (u32, u32),
}

/// The builder's working buffers, kept per thread between metrics polls:
/// each poll used to grow them from nothing and shrink the result into
/// place, leaving holes between the instances' long-lived samples; now the
/// result is the one allocation a poll keeps, of its exact size.
#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    samples: Vec<Pending>,
    text: Vec<u8>,
    families: Vec<(u16, u16)>,
    /// The samples' order: family, then index.
    order: Vec<u64>,
}

/// Working buffers grown past this (a server with thousands of commands)
/// are freed, not kept.
const MAX_SCRATCH: usize = 1 << 20;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[derive(Default)]
pub(super) struct Builder {
    buf: Vec<u8>,
    samples: Vec<Pending>,
    /// The server-named families this instance's samples use so far.
    dynamic: Vec<u16>,
    /// Server-named families refused (each counted once).
    refused: std::collections::HashSet<Box<str>>,
    /// Samples left out past [`MAX_SAMPLES`].
    dropped: u32,
}

impl Builder {
    /// Add a sample; `labels` are (key, value) pairs.
    pub(super) fn push(&mut self, name: &str, kind: Kind, labels: &[(&str, &[u8])], value: f64) {
        if !self.room() || !publishable(labels) {
            return;
        }
        if let Some(family) = self.family(name, kind) {
            self.push_to(family, labels, value);
        }
    }

    /// Add a sample of a fixed family, by the id [`fixed_id`] gives it at
    /// compile time: no lookup by name.
    pub(super) fn push_fixed(&mut self, family: u16, labels: &[(&str, &[u8])], value: f64) {
        if self.room() && publishable(labels) {
            self.push_to(family, labels, value);
        }
    }

    /// Whether another sample fits under [`MAX_SAMPLES`]; one that does
    /// not is counted as dropped.
    fn room(&mut self) -> bool {
        if self.samples.len() >= MAX_SAMPLES {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        true
    }

    /// Add a sample of a family whose id is known, once [`Builder::room`]
    /// said it fits and its label values are known to be UTF-8.
    fn push_to(&mut self, family: u16, labels: &[(&str, &[u8])], value: f64) {
        let labels = self.write_labels(labels);
        let v0 = self.buf.len() as u32;
        write_value(&mut self.buf, value);
        self.pending(family, labels, v0);
    }

    /// `labels` as text in the buffer, for one sample or several that carry
    /// the same labels (a command's counts); None when not publishable.
    fn labels(&mut self, labels: &[(&str, &[u8])]) -> Option<(u32, u32)> {
        publishable(labels).then(|| self.write_labels(labels))
    }

    fn write_labels(&mut self, labels: &[(&str, &[u8])]) -> (u32, u32) {
        let l0 = self.buf.len() as u32;
        for (k, v) in labels {
            push_label(&mut self.buf, k.as_bytes(), v);
        }
        (l0, self.buf.len() as u32)
    }

    /// Add a sample whose value `write` puts in the buffer, with `labels`
    /// from [`Builder::labels`] (None when they were not publishable).
    fn push_with(
        &mut self,
        family: u16,
        labels: Option<(u32, u32)>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        if !self.room() {
            return;
        }
        if let Some(labels) = labels {
            let v0 = self.buf.len() as u32;
            write(&mut self.buf);
            self.pending(family, labels, v0);
        }
    }

    /// Add a sample of the server's number, its text and value from
    /// [`number`], divided by 10^`shift`: the text copied where
    /// [`write_decimal`] can.
    fn push_number(
        &mut self,
        family: u16,
        labels: Option<(u32, u32)>,
        (text, n): (&[u8], f64),
        shift: usize,
    ) {
        const POWERS_OF_TEN: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
        let divisor = POWERS_OF_TEN[shift];
        self.push_with(family, labels, |b| {
            write_decimal(b, text, shift, || n / divisor)
        });
    }

    /// The sample whose value text runs from `v0` to the buffer's end.
    fn pending(&mut self, family: u16, labels: (u32, u32), v0: u32) {
        self.samples.push(Pending {
            family,
            labels,
            value: (v0, self.buf.len() as u32),
        });
    }

    /// The id of family `name` for this instance: registered (as `kind`)
    /// on first sight in the process, unless this instance already uses
    /// [`MAX_DYNAMIC_FAMILIES`] server-named families; None when refused.
    fn family(&mut self, name: &str, kind: Kind) -> Option<u16> {
        let id = match lookup(name) {
            Some((id, false)) => return Some(id),
            Some((id, true)) if self.dynamic.contains(&id) => return Some(id),
            Some((id, true)) if self.dynamic.len() < MAX_DYNAMIC_FAMILIES => Some(id),
            None if self.dynamic.len() < MAX_DYNAMIC_FAMILIES => register(name, kind),
            _ => None,
        };
        match id {
            Some(id) => self.dynamic.push(id),
            None => {
                if !self.refused.contains(name) {
                    self.refused.insert(name.into());
                }
            }
        }
        id
    }

    pub(super) fn info(&mut self, text: &[u8], now_unix: u64) {
        let mut section: &[u8] = b"";
        let mut master_host: &[u8] = b"";
        let mut master_port: &[u8] = b"";
        let mut identity: [&[u8]; INSTANCE_INFO.len()] = [b""; INSTANCE_INFO.len()];
        let mut slave_read_only: &[u8] = b"";
        // Valkey's own version fields, labels of redis_instance_info when
        // present (as redis_exporter adds them).
        let mut valkey: [&[u8]; VALKEY_INFO.len()] = [b""; VALKEY_INFO.len()];
        // Per command: calls and usec (commandstats), percentiles
        // (latencystats); joined into summaries at the end.
        let mut calls: Vec<(&[u8], f64, f64)> = Vec::new();
        let mut percentiles: Vec<(&[u8], &[u8])> = Vec::new();
        for_each_line(text, |line| {
            // Surrounding spaces go, as redis_exporter trims them.
            let line = line.trim_ascii();
            if let Some(title) = line.strip_prefix(b"# ") {
                section = title;
                return;
            }
            if line.len() < 2 {
                return;
            }
            let Some(colon) = memchr(b':', line) else {
                return;
            };
            let (key, value) = (&line[..colon], &line[colon + 1..]);
            if let Some(i) = INSTANCE_INFO.iter().position(|k| k.as_bytes() == key) {
                identity[i] = value;
            }
            if let Some(i) = VALKEY_INFO.iter().position(|k| k.as_bytes() == key) {
                valkey[i] = value;
            }
            if key == b"slave_read_only" {
                slave_read_only = value;
            }
            if is_master_field(key, b"_host") {
                master_host = value;
            }
            if is_master_field(key, b"_port") {
                master_port = value;
            }
            match section {
                b"Replication" if self.replication(key, value, master_host, master_port) => return,
                b"Server" if key == b"uptime_in_seconds" => {
                    if let Some(up) = parse_float(value) {
                        self.push_fixed(
                            const { fixed_id("redis_start_time_seconds") },
                            &[],
                            now_unix as f64 - up,
                        );
                    }
                }
                b"Commandstats" => {
                    if let Some(cmd) = key.strip_prefix(b"cmdstat_") {
                        self.command_stats(cmd, value, &mut calls);
                    }
                    return;
                }
                b"Latencystats" => {
                    if let Some(cmd) = key.strip_prefix(b"latency_percentiles_usec_") {
                        percentiles.push((cmd, value));
                    }
                    return;
                }
                b"Errorstats" => {
                    if let Some(err) = key.strip_prefix(b"errorstat_") {
                        if let Some(n) = kv_number(value) {
                            self.push_fixed(
                                const { fixed_id("redis_errors_total") },
                                &[("err", err)],
                                n,
                            );
                        }
                    }
                    return;
                }
                b"Keyspace" if self.keyspace(key, value) => return,
                b"Sentinel" if self.sentinel(key, value) => return,
                _ => {}
            }
            self.plain(key, value);
        });
        for (cmd, spec) in percentiles {
            self.latency_summary(cmd, spec, &calls);
        }
        if !identity[0].is_empty() || !identity[1].is_empty() {
            let mut labels: Vec<(&str, &[u8])> =
                INSTANCE_INFO.iter().copied().zip(identity).collect();
            labels.extend(
                VALKEY_INFO
                    .iter()
                    .copied()
                    .zip(valkey)
                    .filter(|(_, v)| !v.is_empty()),
            );
            self.push_fixed(const { fixed_id("redis_instance_info") }, &labels, 1.0);
        }
        if identity[0] == b"slave" {
            self.push_fixed(
                const { fixed_id("redis_slave_info") },
                &[
                    ("master_host", master_host),
                    ("master_port", master_port),
                    ("read_only", slave_read_only),
                ],
                1.0,
            );
        }
    }

    /// A field published under its own (mapped) name, or by prefix.
    fn plain(&mut self, key: &[u8], value: &[u8]) {
        if let Some(p) = plain_fields().get(key) {
            if p.scale == 1.0 {
                // Most fields: the server's text is the sample's, unparsed.
                let none = self.labels(&[]);
                self.push_with(p.family, none, |b| {
                    write_decimal(b, value, 0, || status_value(value))
                });
            } else if self.room() {
                self.push_to(p.family, &[], status_value(value) * p.scale);
            }
        } else if key.starts_with(b"db")
            || key.starts_with(b"cmdstat_")
            || key.starts_with(b"cluster_")
        {
            let mut name = String::with_capacity(6 + key.len());
            name.push_str("redis_");
            name.extend(key.iter().map(|&b| {
                if b.is_ascii_alphanumeric() || b == b'_' {
                    b as char
                } else {
                    '_'
                }
            }));
            self.push(&name, Gauge, &[], status_value(value));
        }
    }

    /// The replica's view of its master and the master's view of its
    /// replicas. True when the field was published here.
    fn replication(&mut self, key: &[u8], value: &[u8], host: &[u8], port: &[u8]) -> bool {
        let at = [("master_host", host), ("master_port", port)];
        if is_master_field(key, b"_link_status") {
            let up = if value == b"up" { 1.0 } else { 0.0 };
            self.push_fixed(const { fixed_id("redis_master_link_up") }, &at, up);
            return true;
        }
        let direct = if is_master_field(key, b"_last_io_seconds_ago") {
            Some("redis_master_last_io_seconds_ago")
        } else if is_master_field(key, b"_sync_in_progress") {
            Some("redis_master_sync_in_progress")
        } else if key.starts_with(b"slave_repl_offset") {
            Some("redis_slave_repl_offset")
        } else {
            None
        };
        if let Some(name) = direct {
            // Whole numbers only, as the exporter reads them (else 0).
            let v = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0);
            self.push(name, Gauge, &at, v as f64);
            return true;
        }
        let numbered = key
            .strip_prefix(b"slave")
            .is_some_and(|n| n.first().is_some_and(u8::is_ascii_digit));
        if !numbered {
            return false;
        }
        let mut parts: Vec<(&[u8], &[u8])> = Vec::new();
        for part in value.split(|&b| b == b',') {
            let mut kv = part.split(|&b| b == b'=');
            match (kv.next(), kv.next(), kv.next()) {
                (Some(k), Some(v), None) => parts.push((k, v)),
                _ => return false,
            }
        }
        let get = |k: &[u8]| parts.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let Some(offset) = parse_float(get(b"offset").unwrap_or(b"")) else {
            return false;
        };
        let lag = match get(b"lag") {
            None => None,
            Some(l) => match parse_float(l) {
                Some(l) => Some(l),
                None => return false,
            },
        };
        let labels = [
            ("slave_ip", get(b"ip").unwrap_or(b"")),
            ("slave_port", get(b"port").unwrap_or(b"")),
            ("slave_state", get(b"state").unwrap_or(b"")),
        ];
        self.push_fixed(
            const { fixed_id("redis_connected_slave_offset_bytes") },
            &labels,
            offset,
        );
        if let Some(lag) = lag {
            self.push_fixed(
                const { fixed_id("redis_connected_slave_lag_seconds") },
                &labels,
                lag,
            );
        }
        true
    }

    /// `cmdstat_get:calls=21,usec=175,usec_per_call=8.33[,rejected_calls=0,failed_calls=0]`
    fn command_stats<'a>(
        &mut self,
        cmd: &'a [u8],
        value: &[u8],
        calls: &mut Vec<(&'a [u8], f64, f64)>,
    ) {
        // The first five fields are all that is read: no list of them.
        let mut parts: [&[u8]; 5] = [b""; 5];
        let mut count = 0;
        for (slot, part) in parts.iter_mut().zip(value.split(|&b| b == b',')) {
            *slot = part;
            count += 1;
        }
        if count < 3 {
            return;
        }
        let kv = |part| kv_value(part).and_then(number);
        let (Some(n), Some(usec)) = (kv(parts[0]), kv(parts[1])) else {
            return;
        };
        // One label text for the command's four counts.
        let label = self.labels(&[("cmd", cmd)]);
        self.push_number(const { fixed_id("redis_commands_total") }, label, n, 0);
        self.push_number(
            const { fixed_id("redis_commands_duration_seconds_total") },
            label,
            usec,
            6,
        );
        calls.push((cmd, n.1, usec.1));
        if count < 5 {
            return;
        }
        let (Some(rejected), Some(failed)) = (kv(parts[3]), kv(parts[4])) else {
            return;
        };
        self.push_number(
            const { fixed_id("redis_commands_rejected_calls_total") },
            label,
            rejected,
            0,
        );
        self.push_number(
            const { fixed_id("redis_commands_failed_calls_total") },
            label,
            failed,
            0,
        );
    }

    /// `latency_percentiles_usec_get:p50=1.003,p99=4.015,p99.9=8.031`, with
    /// the command's calls and time as count and sum.
    fn latency_summary(&mut self, cmd: &[u8], spec: &[u8], calls: &[(&[u8], f64, f64)]) {
        let Some(&(_, count, sum)) = calls.iter().find(|(c, _, _)| *c == cmd) else {
            return;
        };
        // (quantile, value), each with its text
        let mut quantiles = Vec::with_capacity(4);
        for part in spec.split(|&b| b == b',') {
            let Some(eq) = memchr(b'=', part) else { return };
            let (q, v) = (part[..eq].get(1..).unwrap_or(b""), &part[eq + 1..]);
            let (Some(q), Some(v)) = (number(q), number(v)) else {
                return;
            };
            quantiles.push((q, v));
        }
        quantiles.sort_by(|((_, a), _), ((_, b), _)| a.total_cmp(b));
        // A summary's `_sum` and `_count` families follow it.
        let summary = const { fixed_id("redis_latency_percentiles_usec") };
        let mut qs = Vec::new();
        for ((q, qf), v) in quantiles {
            qs.clear();
            write_decimal(&mut qs, q, 0, || qf);
            let labels = self.labels(&[("cmd", cmd), ("quantile", &qs)]);
            self.push_number(summary, labels, v, 0);
        }
        let label = self.labels(&[("cmd", cmd)]);
        self.push_with(summary + 1, label, |b| write_value(b, sum));
        self.push_with(summary + 2, label, |b| write_value(b, count));
    }

    /// `db0:keys=1,expires=0,avg_ttl=0,...`, read by field name (any
    /// order, unknown fields ignored); true when it was one. `keys` and
    /// `expires` are required. The fourth field redis_exporter publishes
    /// as `redis_db_keys_cached` is Redis 6's `cached_keys` or, from Redis
    /// 7.4, `subexpiry`; it is published from whichever is present.
    fn keyspace(&mut self, key: &[u8], value: &[u8]) -> bool {
        if !key.starts_with(b"db") {
            return false;
        }
        // keys, expires, avg_ttl, cached_keys, subexpiry
        const FIELDS: [&[u8]; 5] = [
            b"keys",
            b"expires",
            b"avg_ttl",
            b"cached_keys",
            b"subexpiry",
        ];
        let mut numbers = [None; 5];
        for part in value.split(|&b| b == b',') {
            let Some(eq) = memchr(b'=', part) else {
                return false;
            };
            if let Some(i) = FIELDS.iter().position(|f| *f == &part[..eq]) {
                match number(&part[eq + 1..]) {
                    Some(n) => numbers[i] = Some(n),
                    None => return false,
                }
            }
        }
        let (Some(keys), Some(expires)) = (numbers[0], numbers[1]) else {
            return false;
        };
        let db = self.labels(&[("db", key)]);
        self.push_number(const { fixed_id("redis_db_keys") }, db, keys, 0);
        self.push_number(const { fixed_id("redis_db_keys_expiring") }, db, expires, 0);
        if let Some(cached) = numbers[3].or(numbers[4]) {
            self.push_number(const { fixed_id("redis_db_keys_cached") }, db, cached, 0);
        }
        if let Some(ttl) = numbers[2] {
            // Milliseconds, in seconds.
            self.push_number(const { fixed_id("redis_db_avg_ttl_seconds") }, db, ttl, 3);
        }
        true
    }

    /// A sentinel's own INFO section; true when the field was published.
    fn sentinel(&mut self, key: &[u8], value: &[u8]) -> bool {
        match key {
            b"sentinel_masters"
            | b"sentinel_tilt"
            | b"sentinel_running_scripts"
            | b"sentinel_scripts_queue_length"
            | b"sentinel_simulate_failure_flags" => {
                let v = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0);
                let name = format!("redis_{}", String::from_utf8_lossy(key));
                self.push(&name, Gauge, &[], v as f64);
                return true;
            }
            _ => {}
        }
        // master0:name=mymaster,status=ok,address=127.0.0.1:6379,slaves=1,sentinels=3
        if !key.starts_with(b"master") {
            return false;
        }
        let mut f: [&[u8]; 5] = [b""; 5];
        for part in value.split(|&b| b == b',') {
            let Some(eq) = memchr(b'=', part) else {
                return false;
            };
            let keys: [&[u8]; 5] = [b"name", b"status", b"address", b"slaves", b"sentinels"];
            if let Some(i) = keys.iter().position(|k| *k == &part[..eq]) {
                f[i] = &part[eq + 1..];
            }
        }
        let (Some(slaves), Some(sentinels)) = (parse_float(f[3]), parse_float(f[4])) else {
            return false;
        };
        let ok = if f[1] == b"ok" { 1.0 } else { 0.0 };
        self.push_fixed(
            const { fixed_id("redis_sentinel_master_status") },
            &[
                ("master_name", f[0]),
                ("master_address", f[2]),
                ("master_status", f[1]),
            ],
            ok,
        );
        let at = [("master_name", f[0]), ("master_address", f[2])];
        self.push_fixed(
            const { fixed_id("redis_sentinel_master_slaves") },
            &at,
            slaves,
        );
        self.push_fixed(
            const { fixed_id("redis_sentinel_master_sentinels") },
            &at,
            sentinels,
        );
        true
    }

    /// CLUSTER INFO: every `key:value` line (exactly one colon) that the
    /// exporter would publish.
    pub(super) fn cluster_info(&mut self, text: &[u8]) {
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut parts = line.split(|&b| b == b':');
            if let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) {
                self.plain(key, value);
            }
        }
    }

    /// Sort by family (keeping each family's samples in label order), drop
    /// repeated series (a server repeating a field), and pack.
    pub(super) fn finish(mut self) -> Exposition {
        let buf = &self.buf;
        let slice = |(a, b): (u32, u32)| &buf[a as usize..b as usize];
        let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let (text, families, order) =
            (&mut scratch.text, &mut scratch.families, &mut scratch.order);
        text.clear();
        families.clear();
        // The order as whole numbers, family then push order, cheap to sort
        // (unstable: a stable sort allocates its scratch on every call);
        // then the runs of one family (a command's samples, a database's)
        // by label text, ties still in push order.
        order.clear();
        order.extend(
            self.samples
                .iter()
                .enumerate()
                .map(|(i, s)| u64::from(s.family) << 32 | i as u64),
        );
        order.sort_unstable();
        let sample = |key: u64| &self.samples[key as u32 as usize];
        for run in order.chunk_by_mut(|x, y| x >> 32 == y >> 32) {
            if run.len() > 1 {
                run.sort_unstable_by(|x, y| {
                    slice(sample(*x).labels)
                        .cmp(slice(sample(*y).labels))
                        .then(x.cmp(y))
                });
            }
        }
        let mut kept: Option<&Pending> = None;
        for &key in order.iter() {
            let s = sample(key);
            // A repeated series (a server repeating a field): the first stays.
            if kept.is_some_and(|k| k.family == s.family && slice(k.labels) == slice(s.labels)) {
                continue;
            }
            kept = Some(s);
            let start = text.len();
            text.extend_from_slice(slice(s.labels));
            text.extend_from_slice(b"} ");
            text.extend_from_slice(slice(s.value));
            text.push(b'\n');
            // One line is far below u16::MAX: its label values are bounded
            // by MAX_LABEL_VALUE and there are a handful of them.
            let len = (text.len() - start) as u16;
            match families.last_mut() {
                Some((id, n)) if *id == s.family && n.checked_add(len).is_some() => *n += len,
                _ => families.push((s.family, len)),
            }
        }
        let e = Exposition {
            text: Box::from(&text[..]),
            families: Box::from(&families[..]),
            families_dropped: self.refused.len() as u32,
            samples_dropped: self.dropped,
            ..Exposition::default()
        };
        self.samples.clear();
        self.buf.clear();
        scratch.samples = std::mem::take(&mut self.samples);
        scratch.buf = std::mem::take(&mut self.buf);
        let bytes = scratch.buf.capacity()
            + scratch.text.capacity()
            + scratch.samples.capacity() * std::mem::size_of::<Pending>()
            + scratch.order.capacity() * 8;
        if bytes <= MAX_SCRATCH {
            SCRATCH.with(|s| *s.borrow_mut() = scratch);
        }
        e
    }

    /// A builder with this thread's kept working buffers.
    pub(super) fn new() -> Builder {
        let (buf, samples) = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            (std::mem::take(&mut s.buf), std::mem::take(&mut s.samples))
        });
        Builder {
            buf,
            samples,
            ..Builder::default()
        }
    }
}

/// Whether a sample with these labels may be published. Label values
/// must be UTF-8 (Prometheus refuses a scrape with one that is not;
/// client_golang drops such a sample, and so does this): binary key names
/// and values stay out, as do values past [`MAX_LABEL_VALUE`].
fn publishable(labels: &[(&str, &[u8])]) -> bool {
    labels
        .iter()
        .all(|(_, v)| v.len() <= MAX_LABEL_VALUE && std::str::from_utf8(v).is_ok())
}

/// `master_host`, `master_1_host` (KeyDB's multi-master), ... with `suffix`.
fn is_master_field(key: &[u8], suffix: &[u8]) -> bool {
    let Some(rest) = key.strip_prefix(b"master") else {
        return false;
    };
    let Some(rest) = rest.strip_suffix(suffix) else {
        return false;
    };
    rest.is_empty()
        || rest
            .strip_prefix(b"_")
            .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
}

/// A number, as Go's ParseFloat reads one. Most are whole numbers of a
/// few digits, read here directly: up to 19 digits fit a u64, and its
/// conversion rounds to the nearest f64 as the parse does.
fn parse_float(s: &[u8]) -> Option<f64> {
    if !s.is_empty() && s.len() <= 19 && s.iter().all(u8::is_ascii_digit) {
        let n = s.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        return Some(n as f64);
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// A number's text with its value ([`parse_float`]), for a sample that
/// copies the text where it can ([`Builder::push_number`]).
fn number(text: &[u8]) -> Option<(&[u8], f64)> {
    parse_float(text).map(|n| (text, n))
}

/// The exporter's reading of a plain field: ok/true 1, err/fail/false 0,
/// else the number (0 when it is not one).
fn status_value(v: &[u8]) -> f64 {
    match v {
        b"ok" | b"true" => 1.0,
        b"err" | b"fail" | b"false" => 0.0,
        _ => parse_float(v).unwrap_or(0.0),
    }
}

/// The number of `key=number`.
fn kv_number(part: &[u8]) -> Option<f64> {
    kv_value(part).and_then(parse_float)
}

/// The value of `key=value` (exactly one `=`).
fn kv_value(part: &[u8]) -> Option<&[u8]> {
    let mut kv = part.split(|&b| b == b'=');
    match (kv.next(), kv.next(), kv.next()) {
        (Some(_), Some(v), None) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::exposition::families;

    fn render(e: &Exposition) -> String {
        let fams = families();
        let mut out = String::new();
        for (id, lines) in e.groups() {
            for line in String::from_utf8_lossy(lines).lines() {
                out.push_str(&fams[id as usize].name);
                out.push('{');
                out.push_str("instance=\"x\"");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    #[test]
    fn whole_numbers_read_directly_are_what_std_reads() {
        // Every length up to past the direct path's 19 digits, leading
        // zeros and all-nines included, from a fixed-seed xorshift.
        let mut next = crate::testdata::xorshift(0x2545_f491_4f6c_dd1d);
        let mut texts = vec![String::new(), "0".into(), "-1".into(), "1.5".into()];
        for len in 1..=22 {
            texts.push("9".repeat(len));
            texts.push(format!("0{}", "9".repeat(len)));
            for _ in 0..2_000 {
                texts.push(
                    (0..len)
                        .map(|_| char::from(b'0' + (next() % 10) as u8))
                        .collect(),
                );
            }
        }
        for t in &texts {
            let std = t.parse::<f64>().ok();
            assert_eq!(
                parse_float(t.as_bytes()).map(f64::to_bits),
                std.map(f64::to_bits),
                "{t:?}"
            );
        }
    }

    #[test]
    fn fields_map_to_exporter_series() {
        let info = b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nos:Linux\r\nprocess_id:42\r\nrun_id:abc\r\ntcp_port:6379\r\nuptime_in_seconds:100\r\n\
# Memory\r\nused_memory:1000\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\
# Persistence\r\nrdb_last_bgsave_status:ok\r\naof_last_write_status:err\r\n\
# Stats\r\nlatest_fork_usec:1500\r\nkeyspace_hits:7\r\n\
# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.2,port=6380,state=online,offset=99,lag=1\r\n\
# Commandstats\r\ncmdstat_get:calls=21,usec=175,usec_per_call=8.33,rejected_calls=1,failed_calls=2\r\ncmdstat_client|setname:calls=1,usec=2,usec_per_call=2.00\r\n\
# Errorstats\r\nerrorstat_ERR:count=4\r\n\
# Latencystats\r\nlatency_percentiles_usec_get:p50=1.003,p99=4.015,p99.9=8.031\r\n\
# Cluster\r\ncluster_enabled:0\r\n\
# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=1500\r\ndb3:keys=5,expires=0,avg_ttl=0\r\n";
        let e = Exposition::from_info(info, None, 1000);
        let text = render(&e);
        for want in [
            "redis_memory_used_bytes{instance=\"x\"} 1000\n",
            "redis_memory_max_bytes{instance=\"x\"} 0\n",
            "redis_start_time_seconds{instance=\"x\"} 900\n",
            "redis_rdb_last_bgsave_status{instance=\"x\"} 1\n",
            "redis_aof_last_write_status{instance=\"x\"} 0\n",
            "redis_latest_fork_seconds{instance=\"x\"} 0.0015\n",
            "redis_keyspace_hits_total{instance=\"x\"} 7\n",
            "redis_connected_slave_offset_bytes{instance=\"x\",slave_ip=\"10.0.0.2\",slave_port=\"6380\",slave_state=\"online\"} 99\n",
            "redis_connected_slave_lag_seconds{instance=\"x\",slave_ip=\"10.0.0.2\",slave_port=\"6380\",slave_state=\"online\"} 1\n",
            "redis_commands_total{instance=\"x\",cmd=\"get\"} 21\n",
            "redis_commands_total{instance=\"x\",cmd=\"client|setname\"} 1\n",
            "redis_commands_duration_seconds_total{instance=\"x\",cmd=\"get\"} 0.000175\n",
            "redis_commands_rejected_calls_total{instance=\"x\",cmd=\"get\"} 1\n",
            "redis_commands_failed_calls_total{instance=\"x\",cmd=\"get\"} 2\n",
            "redis_errors_total{instance=\"x\",err=\"ERR\"} 4\n",
            "redis_latency_percentiles_usec{instance=\"x\",cmd=\"get\",quantile=\"99.9\"} 8.031\n",
            "redis_latency_percentiles_usec_sum{instance=\"x\",cmd=\"get\"} 175\n",
            "redis_latency_percentiles_usec_count{instance=\"x\",cmd=\"get\"} 21\n",
            "redis_cluster_enabled{instance=\"x\"} 0\n",
            "redis_db_keys{instance=\"x\",db=\"db0\"} 2\n",
            "redis_db_keys_expiring{instance=\"x\",db=\"db0\"} 1\n",
            "redis_db_avg_ttl_seconds{instance=\"x\",db=\"db0\"} 1.5\n",
            "redis_db_keys{instance=\"x\",db=\"db3\"} 5\n",
            "redis_instance_info{instance=\"x\",role=\"master\",redis_version=\"7.0.15\",redis_build_id=\"\",redis_mode=\"standalone\",os=\"Linux\",maxmemory_policy=\"noeviction\",tcp_port=\"6379\",run_id=\"abc\",process_id=\"42\"} 1\n",
        ] {
            assert!(text.contains(want), "missing {want}in\n{text}");
        }
        // Old-format commandstats have no rejected/failed calls.
        assert!(!text.contains("rejected_calls_total{instance=\"x\",cmd=\"client|setname\"}"));
        assert!(!text.contains("redis_slave_info"));
        // Families come out in id order, each once.
        let ids: Vec<u16> = e.groups().map(|(id, _)| id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }

    #[test]
    fn a_replica_reports_its_master() {
        let info = b"# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:down\r\n\
master_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:5\r\nslave_repl_offset:5\r\nslave_priority:100\r\nslave_read_only:1\r\n";
        let text = render(&Exposition::from_info(info, None, 0));
        for want in [
            "redis_master_link_up{instance=\"x\",master_host=\"10.0.0.1\",master_port=\"6379\"} 0\n",
            "redis_master_last_io_seconds_ago{instance=\"x\",master_host=\"10.0.0.1\",master_port=\"6379\"} -1\n",
            "redis_slave_repl_offset{instance=\"x\",master_host=\"10.0.0.1\",master_port=\"6379\"} 5\n",
            "redis_slave_priority{instance=\"x\"} 100\n",
            "redis_slave_info{instance=\"x\",master_host=\"10.0.0.1\",master_port=\"6379\",read_only=\"1\"} 1\n",
        ] {
            assert!(text.contains(want), "missing {want}in\n{text}");
        }
        assert!(!text.contains("slave_read_repl_offset"));
    }

    #[test]
    fn a_server_inventing_families_cannot_keep_another_instances_new_one_out() {
        // One server invents 5,000 db* fields (as gauges of their own name).
        let mut invented = b"# Stats\r\n".to_vec();
        for i in 0..5_000 {
            invented.extend_from_slice(format!("dbinvented{i}:1\r\n").as_bytes());
        }
        let hostile = Exposition::from_info(&invented, None, 0);
        let fams = families();
        let named: Vec<&str> = hostile
            .groups()
            .map(|(id, _)| &*fams[id as usize].name)
            .filter(|n| n.starts_with("redis_dbinvented"))
            .collect();
        assert_eq!(named.len(), MAX_DYNAMIC_FAMILIES);
        assert_eq!(
            hostile.families_dropped,
            5_000 - MAX_DYNAMIC_FAMILIES as u32
        );
        // What it was refused was never registered.
        assert!(!fams.iter().any(|f| &*f.name == "redis_dbinvented4999"));
        // A good server gains a cluster field after that: it gets its family.
        let good = Exposition::from_info(
            b"# Server\r\nredis_version:7.0.15\r\n",
            Some(b"cluster_gained_after_the_flood:7\r\n"),
            0,
        );
        assert_eq!(good.families_dropped, 0);
        let text = render(&good);
        assert!(
            text.contains("redis_cluster_gained_after_the_flood{instance=\"x\"} 7\n"),
            "{text}"
        );
        // The hostile server again: its own share, no more, and the same one.
        let again = Exposition::from_info(&invented, None, 0);
        assert_eq!(again.families_dropped, hostile.families_dropped);
        assert_eq!(render(&again), render(&hostile));
    }

    #[test]
    fn a_family_past_64_kib_is_still_one_group_in_order() {
        // 1,500 commands with long names: the cmd families' samples are
        // far more than one 64 KiB entry holds.
        let mut info = b"# Commandstats\r\n".to_vec();
        for i in 0..1_500 {
            info.extend_from_slice(
                format!(
                    "cmdstat_{i:04}{}:calls={i},usec=1,usec_per_call=1.00\r\n",
                    "x".repeat(40)
                )
                .as_bytes(),
            );
        }
        let e = Exposition::from_info(&info, None, 0);
        let fams = families();
        let calls: Vec<&[u8]> = e
            .groups()
            .filter(|(id, _)| &*fams[*id as usize].name == "redis_commands_total")
            .map(|(_, lines)| lines)
            .collect();
        assert_eq!(calls.len(), 1, "one group per family");
        assert!(calls[0].len() > usize::from(u16::MAX));
        // Every line, whole, in the order the names sort (the oracle: the
        // lines written here by hand).
        let mut want = Vec::new();
        for i in 0..1_500 {
            want.extend_from_slice(format!(",cmd=\"{i:04}{}\"}} {i}\n", "x".repeat(40)).as_bytes());
        }
        assert_eq!(
            String::from_utf8_lossy(calls[0]),
            String::from_utf8_lossy(&want)
        );
        // The groups cover the text exactly, ids ascending.
        let ids: Vec<u16> = e.groups().map(|(id, _)| id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let total: usize = e.groups().map(|(_, l)| l.len()).sum();
        assert_eq!(total, e.heap_bytes() - e.families.len() * 4);
    }

    #[test]
    fn cluster_info_and_hostile_fields() {
        let e = Exposition::from_info(
            b"# Stats\r\nkeyspace_hits:x\r\n# Errorstats\r\nerrorstat_a\"b\\c:count=1\r\n",
            Some(b"cluster_state:ok\r\ncluster_slots_ok:16384\r\ncluster_stats_messages_sent:9\r\nweird:1:2\r\n"),
            0,
        );
        let text = render(&e);
        for want in [
            "redis_cluster_state{instance=\"x\"} 1\n",
            "redis_cluster_slots_ok{instance=\"x\"} 16384\n",
            "redis_cluster_messages_sent_total{instance=\"x\"} 9\n",
            // Not a number: 0, as the exporter reads it.
            "redis_keyspace_hits_total{instance=\"x\"} 0\n",
            "redis_errors_total{instance=\"x\",err=\"a\\\"b\\\\c\"} 1\n",
        ] {
            assert!(text.contains(want), "missing {want}in\n{text}");
        }
        // Thousands of invented commands stop at the cap.
        let mut big = b"# Commandstats\r\n".to_vec();
        for i in 0..10_000 {
            big.extend_from_slice(
                format!("cmdstat_c{i}:calls=1,usec=1,usec_per_call=1\r\n").as_bytes(),
            );
        }
        let e = Exposition::from_info(&big, None, 0);
        assert_eq!(e.len(), MAX_SAMPLES);
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        for (v, want) in [
            (3.0, "3"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (1e20, "100000000000000000000"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ] {
            let mut out = Vec::new();
            write_value(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), want);
            if !v.is_nan() {
                let back: f64 = want.replace("+Inf", "inf").parse().unwrap();
                assert_eq!(back, v);
            }
        }
    }
}
