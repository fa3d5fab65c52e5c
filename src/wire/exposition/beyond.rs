//! The metrics poll's replies beyond INFO (SLOWLOG, LATENCY LATEST, CONFIG
//! GET, CLIENT LIST) and the opt-in key and stream checks' readings into
//! samples, named and labelled as redis_exporter 1.45 does. A reply of the wrong shape adds nothing: the caller has
//! already kept error replies out, and a server that answers oddly loses
//! only these series.

use super::builder::Builder;
use super::Kind::Gauge;
use crate::wire::resp::Frame;
use bytes::Bytes;
use memchr::memchr;

/// CONFIG keys whose values are secrets: left out of
/// `redis_config_key_value` when redacting (the exporter's list).
const REDACTED_CONFIG: [&[u8]; 4] = [
    b"masterauth",
    b"requirepass",
    b"tls-key-file-pass",
    b"tls-client-key-file-pass",
];

/// The config keys published by default, and their series.
const DEFAULT_CONFIG: [(&[u8], &str); 3] = [
    (b"io-threads", "redis_config_io_threads"),
    (b"maxclients", "redis_config_maxclients"),
    (b"maxmemory", "redis_config_maxmemory"),
];

/// What the metrics poll read beyond INFO: each reply is None when the
/// command was not sent or the server refused it.
#[derive(Default)]
pub struct Beyond<'a> {
    pub slowlog_len: Option<&'a Frame>,
    pub slowlog_get: Option<&'a Frame>,
    pub latency_latest: Option<&'a Frame>,
    /// CONFIG GET replies (one, or one per key on servers that take one
    /// pattern per call): key/value arrays or RESP3 maps.
    pub config: Vec<&'a Frame>,
    /// Publish every config value too (`include_config_metrics`), secrets
    /// redacted when `redact_config` is set.
    pub include_config: bool,
    pub redact_config: bool,
    pub client_list: Option<&'a Frame>,
    /// The key and stream checks of this poll.
    pub checks: Option<&'a Checked>,
}

/// What the key and stream checks read in one metrics poll.
#[derive(Debug, Default, PartialEq)]
pub struct Checked {
    pub keys: Vec<KeyReading>,
    /// `count_keys`: (db, pattern, keys counted in the last whole SCAN).
    pub counts: Vec<(u32, Bytes, u64)>,
    pub streams: Vec<StreamReading>,
}

/// One checked key: its size by type (0 when it does not exist) and, for
/// a string, its first bytes (a number, or a short label value).
#[derive(Debug, PartialEq)]
pub struct KeyReading {
    pub db: u32,
    pub key: Bytes,
    pub size: f64,
    /// A string's value when it is at most [`super::MAX_LABEL_VALUE`]
    /// bytes.
    pub value: Option<Bytes>,
}

/// One checked stream, as XINFO STREAM / GROUPS / CONSUMERS describe it.
#[derive(Debug, Default, PartialEq)]
pub struct StreamReading {
    pub db: u32,
    pub key: Bytes,
    pub length: f64,
    pub radix_tree_keys: f64,
    pub radix_tree_nodes: f64,
    /// The millisecond part of `last-generated-id`.
    pub last_generated_ms: f64,
    pub groups: f64,
    pub group_info: Vec<GroupReading>,
}

/// One consumer group of a checked stream.
#[derive(Debug, Default, PartialEq)]
pub struct GroupReading {
    pub name: Bytes,
    pub consumers: f64,
    pub pending: f64,
    pub last_delivered_ms: f64,
    /// (name, pending, idle ms)
    pub consumer_info: Vec<(Bytes, f64, f64)>,
}

impl StreamReading {
    /// XINFO STREAM's reply (field/value pairs, RESP2 or RESP3); None when
    /// it is not one.
    pub fn from_xinfo(db: u32, key: Bytes, stream: &Frame) -> Option<StreamReading> {
        let fields = stream.as_pairs()?;
        let mut r = StreamReading {
            db,
            key,
            ..StreamReading::default()
        };
        for (k, v) in fields {
            match k {
                b"length" => r.length = number(v),
                b"radix-tree-keys" => r.radix_tree_keys = number(v),
                b"radix-tree-nodes" => r.radix_tree_nodes = number(v),
                b"groups" => r.groups = number(v),
                b"last-generated-id" => r.last_generated_ms = id_ms(v),
                _ => {}
            }
        }
        Some(r)
    }

    /// XINFO GROUPS' reply: one entry per group (consumers to be added).
    pub fn add_groups(&mut self, groups: &Frame) {
        let Frame::Array(groups) = groups else { return };
        for g in groups {
            let Some(fields) = g.as_pairs() else { continue };
            let mut group = GroupReading::default();
            for (k, v) in fields {
                match k {
                    b"name" => {
                        group.name = v.as_text().map(Bytes::copy_from_slice).unwrap_or_default()
                    }
                    b"consumers" => group.consumers = number(v),
                    b"pending" => group.pending = number(v),
                    b"last-delivered-id" => group.last_delivered_ms = id_ms(v),
                    _ => {}
                }
            }
            self.group_info.push(group);
        }
    }
}

impl GroupReading {
    /// XINFO CONSUMERS' reply for this group.
    pub fn add_consumers(&mut self, consumers: &Frame) {
        let Frame::Array(consumers) = consumers else {
            return;
        };
        for c in consumers {
            let Some(fields) = c.as_pairs() else { continue };
            let (mut name, mut pending, mut idle) = (Bytes::new(), 0.0, 0.0);
            for (k, v) in fields {
                match k {
                    b"name" => name = v.as_text().map(Bytes::copy_from_slice).unwrap_or_default(),
                    b"pending" => pending = number(v),
                    b"idle" => idle = number(v),
                    _ => {}
                }
            }
            self.consumer_info.push((name, pending, idle));
        }
    }
}

/// An integer reply, or a number in a string (0 otherwise, as the
/// exporter's struct scan leaves a field it cannot read).
fn number(f: &Frame) -> f64 {
    match f {
        Frame::Integer(n) => *n as f64,
        Frame::Double(d) => *d,
        other => other
            .as_text()
            .and_then(|t| std::str::from_utf8(t).ok()?.parse().ok())
            .unwrap_or(0.0),
    }
}

/// The millisecond part of a stream id `ms-seq`, as the exporter reads it.
fn id_ms(f: &Frame) -> f64 {
    f.as_text()
        .and_then(|t| {
            std::str::from_utf8(t.split(|&b| b == b'-').next()?)
                .ok()?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

impl Builder {
    /// Every series of `beyond`, after INFO's (the per-instance sample cap
    /// keeps INFO's first, then CONFIG's, then the client list's).
    pub(super) fn beyond(&mut self, beyond: &Beyond, now_unix: u64) {
        self.slowlog(beyond.slowlog_len, beyond.slowlog_get);
        self.latency(beyond.latency_latest);
        for reply in &beyond.config {
            for (k, v) in pairs(reply) {
                self.config(k, v, beyond);
            }
        }
        if let Some(list) = beyond.client_list.and_then(Frame::as_text) {
            self.client_list(list, now_unix);
        }
        if let Some(checked) = beyond.checks {
            self.checks(checked);
        }
    }

    /// The key checks' series, then the streams'.
    fn checks(&mut self, c: &Checked) {
        let mut db = Vec::with_capacity(12);
        let mut label = |n: u32| -> Vec<u8> {
            db.clear();
            db.extend_from_slice(format!("db{n}").as_bytes());
            db.clone()
        };
        for k in &c.keys {
            let d = label(k.db);
            let at = [("db", &d[..]), ("key", &k.key[..])];
            self.push("redis_key_size", Gauge, &at, k.size);
            if let Some(v) = &k.value {
                match parse_go_float(v) {
                    Some(n) => self.push("redis_key_value", Gauge, &at, n),
                    None => self.push(
                        "redis_key_value_as_string",
                        Gauge,
                        &[("db", &d[..]), ("key", &k.key[..]), ("val", &v[..])],
                        1.0,
                    ),
                }
            }
        }
        for (n, pattern, count) in &c.counts {
            let d = label(*n);
            self.push(
                "redis_keys_count",
                Gauge,
                &[("db", &d[..]), ("key", &pattern[..])],
                *count as f64,
            );
        }
        for s in &c.streams {
            let d = label(s.db);
            let at = [("db", &d[..]), ("stream", &s.key[..])];
            self.push("redis_stream_length", Gauge, &at, s.length);
            self.push(
                "redis_stream_radix_tree_keys",
                Gauge,
                &at,
                s.radix_tree_keys,
            );
            self.push(
                "redis_stream_radix_tree_nodes",
                Gauge,
                &at,
                s.radix_tree_nodes,
            );
            self.push(
                "redis_stream_last_generated_id",
                Gauge,
                &at,
                s.last_generated_ms,
            );
            self.push("redis_stream_groups", Gauge, &at, s.groups);
            for g in &s.group_info {
                let at = [
                    ("db", &d[..]),
                    ("stream", &s.key[..]),
                    ("group", &g.name[..]),
                ];
                self.push("redis_stream_group_consumers", Gauge, &at, g.consumers);
                self.push("redis_stream_group_messages_pending", Gauge, &at, g.pending);
                self.push(
                    "redis_stream_group_last_delivered_id",
                    Gauge,
                    &at,
                    g.last_delivered_ms,
                );
                for (name, pending, idle) in &g.consumer_info {
                    let at = [
                        ("db", &d[..]),
                        ("stream", &s.key[..]),
                        ("group", &g.name[..]),
                        ("consumer", &name[..]),
                    ];
                    self.push(
                        "redis_stream_group_consumer_messages_pending",
                        Gauge,
                        &at,
                        *pending,
                    );
                    self.push(
                        "redis_stream_group_consumer_idle_seconds",
                        Gauge,
                        &at,
                        idle / 1e3,
                    );
                }
            }
        }
    }

    /// `SLOWLOG LEN` and `SLOWLOG GET 1`: an empty log has id and duration
    /// 0, as the exporter writes them.
    fn slowlog(&mut self, len: Option<&Frame>, get: Option<&Frame>) {
        if let Some(Frame::Integer(n)) = len {
            self.push("redis_slowlog_length", Gauge, &[], *n as f64);
        }
        let Some(Frame::Array(entries)) = get else {
            return;
        };
        let (mut id, mut duration_us) = (0, 0);
        if let Some(Frame::Array(entry)) = entries.first() {
            if let Some(Frame::Integer(n)) = entry.first() {
                id = *n;
            }
            if let Some(Frame::Integer(n)) = entry.get(2) {
                duration_us = *n;
            }
        }
        self.push("redis_slowlog_last_id", Gauge, &[], id as f64);
        self.push(
            "redis_last_slow_execution_duration_seconds",
            Gauge,
            &[],
            duration_us as f64 / 1e6,
        );
    }

    /// `LATENCY LATEST`: per event, [name, last spike's unix time, its
    /// duration in ms, the max]; entries of another shape are skipped.
    fn latency(&mut self, reply: Option<&Frame>) {
        let Some(Frame::Array(events)) = reply else {
            return;
        };
        for event in events {
            let Frame::Array(f) = event else { continue };
            let (Some(name), Some(Frame::Integer(last)), Some(Frame::Integer(ms))) =
                (f.first().and_then(Frame::as_text), f.get(1), f.get(2))
            else {
                continue;
            };
            let at = [("event_name", name)];
            self.push("redis_latency_spike_last", Gauge, &at, *last as f64);
            self.push(
                "redis_latency_spike_duration_seconds",
                Gauge,
                &at,
                *ms as f64 / 1e3,
            );
        }
    }

    /// One CONFIG key and value.
    fn config(&mut self, key: &[u8], value: &[u8], beyond: &Beyond) {
        if beyond.include_config && !(beyond.redact_config && REDACTED_CONFIG.contains(&key)) {
            self.push(
                "redis_config_key_value",
                Gauge,
                &[("key", key), ("value", value)],
                1.0,
            );
            if let Some(v) = parse_go_float(value) {
                self.push("redis_config_value", Gauge, &[("key", key)], v);
            }
        }
        if let Some((_, name)) = DEFAULT_CONFIG.iter().find(|(k, _)| *k == key) {
            if let Some(v) = parse_go_float(value) {
                self.push(name, Gauge, &[], v);
            }
        }
    }

    /// CLIENT LIST: one `redis_connected_clients_details` per client line
    /// the exporter accepts (`id=N addr=host:port ...`, every field
    /// `key=value`), with `created_at` and `idle_since` as unix times.
    fn client_list(&mut self, list: &[u8], now_unix: u64) {
        for line in list.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(labels) = client_labels(line, now_unix) {
                let [name, created, idle, flags, db, omem, cmd, host] = &labels;
                self.push(
                    "redis_connected_clients_details",
                    Gauge,
                    &[
                        ("name", name.as_slice()),
                        ("created_at", created),
                        ("idle_since", idle),
                        ("flags", flags),
                        ("db", db),
                        ("omem", omem),
                        ("cmd", cmd),
                        ("host", host),
                    ],
                    1.0,
                );
            }
        }
    }
}

/// A client line's label values, in the exporter's order (name,
/// created_at, idle_since, flags, db, omem, cmd, host), or None where the
/// exporter skips the line.
fn client_labels(line: &[u8], now_unix: u64) -> Option<[Vec<u8>; 8]> {
    // The exporter's `^id=\d+ addr=\d+`.
    let rest = line.strip_prefix(b"id=")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = rest[digits..].strip_prefix(b" addr=")?;
    if digits == 0 || !rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    const KEYS: [&[u8]; 8] = [
        b"name", b"age", b"idle", b"flags", b"db", b"omem", b"cmd", b"addr",
    ];
    let mut found: [&[u8]; 8] = [b""; 8];
    for part in line.split(|&b| b == b' ') {
        let eq = memchr(b'=', part)?;
        let (k, v) = (&part[..eq], &part[eq + 1..]);
        if memchr(b'=', v).is_some() {
            return None;
        }
        if let Some(i) = KEYS.iter().position(|key| *key == k) {
            found[i] = v;
        }
    }
    let since = |secs: &[u8]| -> Option<Vec<u8>> {
        let s: i64 = std::str::from_utf8(secs).ok()?.parse().ok()?;
        Some((now_unix as i64 - s).to_string().into_bytes())
    };
    // `host:port`, exactly one colon (the exporter skips IPv6 peers).
    let addr = found[7];
    let colon = memchr(b':', addr)?;
    if memchr(b':', &addr[colon + 1..]).is_some() {
        return None;
    }
    Some([
        found[0].to_vec(),
        since(found[1])?,
        since(found[2])?,
        found[3].to_vec(),
        found[4].to_vec(),
        found[5].to_vec(),
        found[6].to_vec(),
        addr[..colon].to_vec(),
    ])
}

/// The key/value pairs of a CONFIG GET reply (a flat RESP2 array or a
/// RESP3 map); nothing when it is neither.
fn pairs(reply: &Frame) -> Vec<(&[u8], &[u8])> {
    match reply {
        Frame::Array(items) if items.len() % 2 == 0 => items
            .chunks_exact(2)
            .filter_map(|kv| Some((kv[0].as_text()?, kv[1].as_text()?)))
            .collect(),
        Frame::Map(items) => items
            .iter()
            .filter_map(|(k, v)| Some((k.as_text()?, v.as_text()?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A number as Go's strconv.ParseFloat reads a config value (the
/// exporter's test for "numeric"): decimal or exponent, `inf`, `nan`.
fn parse_go_float(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{metrics_bytes, metrics_frames};
    use crate::wire::exposition::{families, Exposition};
    use crate::wire::info::info_text;

    /// Every server in testdata/metrics (README.md there says which).
    const SERVERS: [&str; 4] = [
        "redis-6.2",
        "redis-7.0",
        "valkey-8.1",
        "redis-unstable-4f8cdc2a1",
    ];
    const NOW: u64 = 2_000_000_000;

    fn render(e: &Exposition) -> String {
        let fams = families();
        let mut out = String::new();
        for (id, lines) in e.groups() {
            for line in String::from_utf8_lossy(lines).lines() {
                out.push_str(&format!("{}{{i=\"x\"{line}\n", fams[id as usize].name));
            }
        }
        out
    }

    /// The RESP lines of a capture, as text: the naive oracle.
    fn lines(name: &str) -> Vec<String> {
        String::from_utf8(metrics_bytes(name))
            .unwrap()
            .split("\r\n")
            .map(str::to_string)
            .collect()
    }

    fn exposition(server: &str, include_config: bool, client_list: bool) -> Exposition {
        let info = metrics_frames(&format!("{server}_info_all"));
        let one = |what: &str| metrics_frames(&format!("{server}_{what}")).remove(0);
        let (len, get, latency) = (
            one("slowlog_len"),
            one("slowlog_get_1"),
            one("latency_latest"),
        );
        let config = metrics_frames(&format!(
            "{server}_config_get_{}",
            if include_config { "all" } else { "default" }
        ));
        let clients = one("client_list");
        let beyond = Beyond {
            slowlog_len: Some(&len),
            slowlog_get: Some(&get),
            latency_latest: Some(&latency),
            config: config.iter().collect(),
            include_config,
            redact_config: true,
            client_list: client_list.then_some(&clients),
            checks: None,
        };
        Exposition::from_replies(info_text(&info[0]).unwrap(), None, &beyond, NOW)
    }

    #[test]
    fn captured_replies_give_the_exporters_series_with_the_servers_values() {
        for server in SERVERS {
            let text = render(&exposition(server, false, false));
            let len = &lines(&format!("{server}_slowlog_len"))[0][1..];
            // *1, *6, :id, :time, :duration_us
            let get = lines(&format!("{server}_slowlog_get_1"));
            let (id, us): (f64, f64) = (get[2][1..].parse().unwrap(), get[4][1..].parse().unwrap());
            assert!(us > 1000.0, "{server}: the slow EVAL took {us} us");
            // *1, *N, $7, command, :time, :ms
            let lat = lines(&format!("{server}_latency_latest"));
            assert_eq!(lat[3], "command", "{server}");
            let ms: f64 = lat[5][1..].parse().unwrap();
            for want in [
                format!("redis_slowlog_length{{i=\"x\"}} {len}\n"),
                format!("redis_slowlog_last_id{{i=\"x\"}} {id}\n"),
                format!(
                    "redis_last_slow_execution_duration_seconds{{i=\"x\"}} {}\n",
                    us / 1e6
                ),
                format!(
                    "redis_latency_spike_last{{i=\"x\",event_name=\"command\"}} {}\n",
                    &lat[4][1..]
                ),
                format!(
                    "redis_latency_spike_duration_seconds{{i=\"x\",event_name=\"command\"}} {}\n",
                    ms / 1e3
                ),
                "redis_config_maxclients{i=\"x\"} 10000\n".into(),
                "redis_config_maxmemory{i=\"x\"} 0\n".into(),
                "redis_config_io_threads{i=\"x\"} 1\n".into(),
            ] {
                assert!(text.contains(&want), "{server}: missing {want}in\n{text}");
            }
            assert!(
                !text.contains("redis_config_key_value"),
                "{server}: opt-in only"
            );
            assert!(
                !text.contains("redis_connected_clients_details"),
                "{server}"
            );
        }
    }

    #[test]
    fn every_config_value_is_published_on_request_without_secrets() {
        for server in SERVERS {
            let text = render(&exposition(server, true, false));
            // Every pair of CONFIG GET *, read from the capture's lines
            // (`*N`, then `$len`, text for each key and value), less the
            // exporter's four secrets where the server has them.
            let l = lines(&format!("{server}_config_get_all"));
            let n: usize = l[0][1..].parse().unwrap();
            let keys: Vec<&str> = (0..n / 2).map(|i| l[2 + 4 * i].as_str()).collect();
            let secrets = [
                "masterauth",
                "requirepass",
                "tls-key-file-pass",
                "tls-client-key-file-pass",
            ];
            let expected = keys.iter().filter(|k| !secrets.contains(k)).count();
            assert!(
                keys.contains(&"requirepass") && expected > 100,
                "{server}: {keys:?}"
            );
            let published = text.matches("redis_config_key_value{").count();
            assert_eq!(published, expected, "{server}");
            assert!(!text.contains("key=\"requirepass\""), "{server}");
            assert!(text.contains("redis_config_key_value{i=\"x\",key=\"maxmemory-policy\",value=\"noeviction\"} 1\n"), "{server}");
            assert!(
                text.contains("redis_config_value{i=\"x\",key=\"maxclients\"} 10000\n"),
                "{server}"
            );
            assert!(
                !text.contains("redis_config_value{i=\"x\",key=\"maxmemory-policy\""),
                "{server}"
            );
        }
    }

    #[test]
    fn the_client_list_gives_one_series_per_client_with_unix_times() {
        for server in SERVERS {
            let text = render(&exposition(server, false, true));
            let list = String::from_utf8(metrics_bytes(&format!("{server}_client_list"))).unwrap();
            let clients = list.lines().filter(|l| l.starts_with("id=")).count();
            assert_eq!(clients, 3, "{server}: the capture has three clients");
            assert_eq!(
                text.matches("redis_connected_clients_details{").count(),
                clients,
                "{server}"
            );
            // age=0 idle=0 at capture time: both are NOW.
            let want = format!(
                "redis_connected_clients_details{{i=\"x\",name=\"idle-worker\",created_at=\"{NOW}\",idle_since=\"{NOW}\",flags=\"N\",db=\"0\",omem=\"0\",cmd=\"client|setname\",host=\"127.0.0.1\"}} 1\n"
            );
            let want = if server == "redis-6.2" {
                want.replace("client|setname", "client")
            } else {
                want
            };
            assert!(text.contains(&want), "{server}: {want} in\n{text}");
            assert!(
                text.contains("db=\"1\""),
                "{server}: the client that selected db 1"
            );
        }
    }

    #[test]
    fn keyspace_lines_are_read_by_field_name_whatever_the_server() {
        for server in SERVERS {
            let info = metrics_bytes(&format!("{server}_info_all"));
            let info = String::from_utf8_lossy(&info);
            // The naive oracle: the db0 line's fields by name.
            let db0 = info.lines().find_map(|l| l.strip_prefix("db0:")).unwrap();
            let field = |k: &str| -> Option<f64> {
                db0.split(',')
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
            };
            let text = render(&exposition(server, false, false));
            assert!(
                text.contains(&format!(
                    "redis_db_keys{{i=\"x\",db=\"db0\"}} {}\n",
                    field("keys").unwrap()
                )),
                "{server}"
            );
            assert!(
                text.contains(&format!(
                    "redis_db_keys_expiring{{i=\"x\",db=\"db0\"}} {}\n",
                    field("expires").unwrap()
                )),
                "{server}"
            );
            // Redis 7.4+'s subexpiry is published where the exporter puts
            // the fourth field.
            match field("subexpiry").or(field("cached_keys")) {
                Some(v) => assert!(
                    text.contains(&format!("redis_db_keys_cached{{i=\"x\",db=\"db0\"}} {v}\n")),
                    "{server}"
                ),
                None => assert!(!text.contains("redis_db_keys_cached"), "{server}"),
            }
        }
        assert!(
            String::from_utf8_lossy(&metrics_bytes("redis-unstable-4f8cdc2a1_info_all"))
                .contains(",subexpiry=")
        );
        // Any order, unknown fields ignored, keys and expires required (a
        // line without them falls through to a plain gauge, as the
        // exporter's parser does).
        let e = Exposition::from_info(b"# Keyspace\r\ndb2:future=7,expires=1,subexpiry=2,keys=5\r\ndb3:expires=1\r\ndb4:keys=x,expires=1\r\n", None, 0);
        assert_eq!(
            render(&e),
            "redis_db_keys{i=\"x\",db=\"db2\"} 5\nredis_db_keys_expiring{i=\"x\",db=\"db2\"} 1\nredis_db_keys_cached{i=\"x\",db=\"db2\"} 2\nredis_db3{i=\"x\"} 0\nredis_db4{i=\"x\"} 0\n"
        );
    }

    #[test]
    fn valkey_adds_its_version_labels_to_instance_info() {
        let text = render(&exposition("valkey-8.1", false, false));
        let info = text
            .lines()
            .find(|l| l.starts_with("redis_instance_info{"))
            .unwrap();
        assert!(info.contains(",redis_version=\"7.2.4\","), "{info}");
        assert!(
            info.contains(",valkey_version=\"8.1.8\",valkey_release_stage=\"ga\"} 1"),
            "{info}"
        );
        let redis = render(&exposition("redis-7.0", false, false));
        assert!(!redis.contains("valkey_version"));
    }

    #[test]
    fn client_lines_the_exporter_skips_are_skipped() {
        for line in [
            "id=1 addr=/tmp/redis.sock:0 fd=8 name= age=1 idle=1 flags=N db=0 omem=0 cmd=ping",
            "id=1 addr=[::1]:5000 fd=8 name= age=1 idle=1 flags=N db=0 omem=0 cmd=ping",
            "id=1 addr=::1:5000 fd=8 name= age=1 idle=1 flags=N db=0 omem=0 cmd=ping",
            "id=x addr=1.2.3.4:5 age=1 idle=1",
            "id=1 addr=1.2.3.4:5 age=old idle=1",
            "id=1 addr=1.2.3.4:5 name=a=b age=1 idle=1",
            "",
        ] {
            assert!(client_labels(line.as_bytes(), NOW).is_none(), "{line}");
        }
        let ok = client_labels(b"id=1 addr=1.2.3.4:5 age=10 idle=3", NOW).unwrap();
        assert_eq!(ok[1], (NOW - 10).to_string().into_bytes());
        assert_eq!(ok[2], (NOW - 3).to_string().into_bytes());
        assert_eq!(ok[7], b"1.2.3.4");
    }

    #[test]
    fn info_keeps_the_shared_cap_first_and_what_is_cut_is_counted() {
        use crate::wire::exposition::MAX_SAMPLES;
        // INFO naming more commands than the cap: 2 samples each
        // (calls, duration) for MAX_SAMPLES commands.
        let mut info = b"# Commandstats\r\n".to_vec();
        for i in 0..MAX_SAMPLES {
            info.extend_from_slice(
                format!("cmdstat_c{i}:calls=1,usec=1,usec_per_call=1.00\r\n").as_bytes(),
            );
        }
        let config = metrics_frames("redis-7.0_config_get_default");
        let beyond = Beyond {
            config: config.iter().collect(),
            ..Beyond::default()
        };
        let e = Exposition::from_replies(&info, None, &beyond, NOW);
        assert_eq!(e.len(), MAX_SAMPLES);
        let text = render(&e);
        assert!(text.contains("redis_commands_total{i=\"x\",cmd=\"c0\"} 1\n"));
        assert!(
            !text.contains("redis_config_"),
            "CONFIG's samples come after INFO's"
        );
        // Every command's two samples, less the cap, plus the 3 config.
        assert_eq!(
            e.samples_dropped as usize,
            2 * MAX_SAMPLES - MAX_SAMPLES + 3
        );
    }

    #[test]
    fn odd_replies_add_nothing_and_an_empty_slowlog_is_zero() {
        let empty = Frame::Array(vec![]);
        let junk = Frame::Array(vec![
            Frame::Integer(1),
            Frame::Null,
            Frame::Array(vec![Frame::Integer(1)]),
        ]);
        let odd_config = Frame::Array(vec![Frame::Bulk("maxclients".into())]);
        let beyond = Beyond {
            slowlog_len: Some(&Frame::Bulk("3".into())),
            slowlog_get: Some(&empty),
            latency_latest: Some(&junk),
            config: vec![&odd_config, &junk],
            client_list: Some(&Frame::Integer(3)),
            ..Beyond::default()
        };
        let text = render(&Exposition::from_replies(b"", None, &beyond, NOW));
        assert_eq!(
            text,
            "redis_slowlog_last_id{i=\"x\"} 0\nredis_last_slow_execution_duration_seconds{i=\"x\"} 0\n"
        );
    }
}
