//! INFO reply text into a [`Snapshot`]: the fields the health rules use.
//!
//! Lines are walked with memchr and matched by key into a fixed struct: no
//! map, no string per field. Several sections in one reply and several
//! pipelined replies merge into one snapshot. A field the server did not
//! send stays `None` ("unknown"), never zero.

use super::lines::for_each_field;
use crate::wire::resp::Frame;
use memchr::memchr;

/// A server version, `major.minor.patch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Parse `7.0.15`; missing trailing parts are 0.
    pub fn parse(s: &[u8]) -> Option<Version> {
        let mut parts = s
            .split(|&b| b == b'.')
            .map(|p| parse_u64(p).and_then(|n| u32::try_from(n).ok()));
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let patch = parts.next().unwrap_or(Some(0))?;
        Some(Version {
            major,
            minor,
            patch,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Which server software answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    #[default]
    Redis,
    Valkey,
}

/// `role:` from the replication section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    /// INFO says `slave`; redpulse reports `replica`.
    Replica,
}

/// What INFO's `server` section says about the process. Learned once per
/// connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerInfo {
    pub flavor: Flavor,
    /// `redis_version` (on Valkey this is the Redis compatibility version).
    pub redis_version: Option<Version>,
    /// `valkey_version`, only on Valkey.
    pub valkey_version: Option<Version>,
    /// `run_id`: 40 hex characters, new on every server start.
    pub run_id: Option<[u8; 40]>,
    pub uptime_in_seconds: Option<u64>,
}

impl ServerInfo {
    /// The version users know the server by (Valkey's own for Valkey).
    pub fn version(&self) -> Option<Version> {
        match self.flavor {
            Flavor::Valkey => self.valkey_version.or(self.redis_version),
            Flavor::Redis => self.redis_version,
        }
    }

    /// Whether `INFO a b c` works (Redis 7.0 and later, every Valkey).
    /// Redis 6.x answers it with `-ERR syntax error`.
    pub fn multi_section_info(&self) -> bool {
        self.flavor == Flavor::Valkey || self.redis_version.is_some_and(|v| v.major >= 7)
    }
}

/// The fields of one poll's INFO replies that the health rules and the
/// health JSON use. `None` means the server did not report it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub server: ServerInfo,
    // clients
    pub connected_clients: Option<u64>,
    pub maxclients: Option<u64>,
    pub blocked_clients: Option<u64>,
    // memory
    pub used_memory: Option<u64>,
    pub maxmemory: Option<u64>,
    /// The host's memory as the server sees it (Redis >= 3.2).
    pub total_system_memory: Option<u64>,
    // stats
    pub total_connections_received: Option<u64>,
    pub total_commands_processed: Option<u64>,
    pub instantaneous_ops_per_sec: Option<u64>,
    pub rejected_connections: Option<u64>,
    pub evicted_keys: Option<u64>,
    pub keyspace_hits: Option<u64>,
    pub keyspace_misses: Option<u64>,
    // replication
    pub role: Option<Role>,
    /// Replica side: `master_link_status:up`.
    pub master_link_up: Option<bool>,
    /// Replica side: the master it follows (`master_host` when it is an IP
    /// address, and `master_port`).
    pub master_ip: Option<std::net::IpAddr>,
    pub master_port: Option<u16>,
    pub master_last_io_seconds_ago: Option<i64>,
    pub master_link_down_since_seconds: Option<i64>,
    pub connected_slaves: Option<u64>,
    pub master_repl_offset: Option<i64>,
    /// Replica side: how far this replica has applied the stream.
    pub slave_repl_offset: Option<i64>,
    /// Replica side (Redis >= 7, Valkey): how far it has read the stream.
    pub slave_read_repl_offset: Option<i64>,
    /// Master side: number of `slaveN:` lines seen.
    pub replica_lines: u32,
    /// Master side: the smallest `offset=` among the `slaveN:` lines.
    pub min_replica_offset: Option<i64>,
    // persistence
    pub loading: Option<bool>,
    pub rdb_last_bgsave_ok: Option<bool>,
    pub aof_last_write_ok: Option<bool>,
    /// Writes since the last successful RDB save.
    pub rdb_changes_since_last_save: Option<u64>,
    /// Unix time of the last successful RDB save (server start if none).
    pub rdb_last_save_time: Option<u64>,
    /// The server's own clock (INFO server), in microseconds since 1970.
    pub server_time_usec: Option<u64>,
    /// A cluster node's CLUSTER INFO, read in the same poll.
    pub cluster: Option<crate::wire::cluster::ClusterInfo>,
}

impl Snapshot {
    /// Bytes the slowest replica is behind the master, when known.
    /// A master that reports no replicas at all has none behind: 0.
    pub fn max_replica_lag_bytes(&self) -> Option<u64> {
        let master = self.master_repl_offset?;
        match self.min_replica_offset {
            Some(slowest) => Some(master.saturating_sub(slowest).max(0) as u64),
            None if self.connected_slaves == Some(0) && self.role == Some(Role::Master) => Some(0),
            None => None,
        }
    }

    /// Replica side: bytes this replica has read from its master but not
    /// yet applied, when the server reports both offsets.
    pub fn replica_apply_lag_bytes(&self) -> Option<u64> {
        if self.role != Some(Role::Replica) {
            return None;
        }
        let read = self.slave_read_repl_offset?;
        let applied = self.slave_repl_offset?;
        Some(read.saturating_sub(applied).max(0) as u64)
    }

    /// Merge one INFO text (any sections) into this snapshot.
    pub fn merge_info(&mut self, text: &[u8]) {
        for_each_field(text, |key, value| self.field(key, value));
    }

    fn field(&mut self, key: &[u8], value: &[u8]) {
        let u = || parse_u64(value);
        let i = || parse_i64(value);
        match key {
            b"connected_clients" => self.connected_clients = u(),
            b"maxclients" => self.maxclients = u(),
            b"blocked_clients" => self.blocked_clients = u(),
            b"used_memory" => self.used_memory = u(),
            b"maxmemory" => self.maxmemory = u(),
            b"total_system_memory" => self.total_system_memory = u(),
            b"total_connections_received" => self.total_connections_received = u(),
            b"total_commands_processed" => self.total_commands_processed = u(),
            b"instantaneous_ops_per_sec" => self.instantaneous_ops_per_sec = u(),
            b"rejected_connections" => self.rejected_connections = u(),
            b"evicted_keys" => self.evicted_keys = u(),
            b"keyspace_hits" => self.keyspace_hits = u(),
            b"keyspace_misses" => self.keyspace_misses = u(),
            b"role" => {
                self.role = match value {
                    b"master" => Some(Role::Master),
                    b"slave" | b"replica" => Some(Role::Replica),
                    _ => None,
                }
            }
            b"master_link_status" => {
                self.master_link_up = match value {
                    b"up" => Some(true),
                    b"down" => Some(false),
                    _ => None,
                }
            }
            b"master_last_io_seconds_ago" => self.master_last_io_seconds_ago = i(),
            b"master_host" => {
                self.master_ip = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok())
            }
            b"master_port" => self.master_port = u().and_then(|p| u16::try_from(p).ok()),
            b"master_link_down_since_seconds" => self.master_link_down_since_seconds = i(),
            b"connected_slaves" => self.connected_slaves = u(),
            b"master_repl_offset" => self.master_repl_offset = i(),
            b"slave_repl_offset" => self.slave_repl_offset = i(),
            b"slave_read_repl_offset" => self.slave_read_repl_offset = i(),
            b"loading" => self.loading = parse_flag(value),
            b"rdb_last_bgsave_status" => self.rdb_last_bgsave_ok = parse_status(value),
            b"aof_last_write_status" => self.aof_last_write_ok = parse_status(value),
            b"rdb_changes_since_last_save" => self.rdb_changes_since_last_save = u(),
            b"rdb_last_save_time" => self.rdb_last_save_time = u(),
            b"server_time_usec" => self.server_time_usec = u(),
            b"redis_version" => self.server.redis_version = Version::parse(value),
            b"valkey_version" => self.server.valkey_version = Version::parse(value),
            b"server_name" if value == b"valkey" => self.server.flavor = Flavor::Valkey,
            b"run_id" => self.server.run_id = value.try_into().ok(),
            b"uptime_in_seconds" => self.server.uptime_in_seconds = u(),
            _ if is_replica_line(key) => {
                let replica = ReplicaLine::parse(value);
                self.replica_lines += 1;
                if let Some(offset) = replica.offset {
                    self.min_replica_offset =
                        Some(self.min_replica_offset.map_or(offset, |m| m.min(offset)));
                }
            }
            _ => {}
        }
    }
}

/// `slave0`, `slave12`: the master's per-replica lines.
fn is_replica_line(key: &[u8]) -> bool {
    key.len() > 5 && key.starts_with(b"slave") && key[5..].iter().all(u8::is_ascii_digit)
}

/// One `slaveN:ip=..,port=..,state=..,offset=..,lag=..[,type=..]` value.
/// Unknown keys are ignored; a missing key is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaLine<'a> {
    pub ip: Option<&'a [u8]>,
    pub port: Option<u64>,
    pub state: Option<&'a [u8]>,
    pub offset: Option<i64>,
    pub lag: Option<i64>,
}

impl<'a> ReplicaLine<'a> {
    /// Parse the comma-separated `key=value` pairs of a replica line.
    pub fn parse(value: &'a [u8]) -> Self {
        let mut r = ReplicaLine::default();
        for pair in value.split(|&b| b == b',') {
            let Some(eq) = memchr(b'=', pair) else {
                continue;
            };
            let (k, v) = (&pair[..eq], &pair[eq + 1..]);
            match k {
                b"ip" => r.ip = Some(v),
                b"port" => r.port = parse_u64(v),
                b"state" => r.state = Some(v),
                b"offset" => r.offset = parse_i64(v),
                b"lag" => r.lag = parse_i64(v),
                _ => {}
            }
        }
        r
    }
}

/// The INFO text carried by a reply: a bulk string, or a RESP3 verbatim
/// string of format `txt`. Anything else is not an INFO reply.
pub fn info_text(frame: &Frame) -> Option<&[u8]> {
    match frame {
        Frame::Bulk(b) => Some(b),
        Frame::Verbatim {
            format: [b't', b'x', b't'],
            text,
        } => Some(text),
        _ => None,
    }
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in s {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(v)
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    crate::wire::resp::parse_i64(s).ok()
}

fn parse_flag(s: &[u8]) -> Option<bool> {
    match s {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

fn parse_status(s: &[u8]) -> Option<bool> {
    match s {
        b"ok" => Some(true),
        b"err" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testdata::{frames, snapshot};

    /// The naive oracle: every `key:value` line of every INFO reply in a file.
    fn oracle(name: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in frames(name) {
            let Some(text) = info_text(&f) else { continue };
            let text = String::from_utf8_lossy(text).into_owned();
            for line in text.lines() {
                if line.starts_with('#') {
                    continue;
                }
                if let Some((k, v)) = line.split_once(':') {
                    out.push((k.to_string(), v.to_string()));
                }
            }
        }
        out
    }

    fn oracle_u64(fields: &[(String, String)], key: &str) -> Option<u64> {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.parse().unwrap())
    }

    fn oracle_i64(fields: &[(String, String)], key: &str) -> Option<i64> {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.parse().unwrap())
    }

    #[test]
    fn every_corpus_reply_matches_the_line_oracle() {
        for name in crate::testdata::names() {
            let s = snapshot(&name);
            let o = oracle(&name);
            let checks: [(&str, Option<u64>); 16] = [
                ("total_system_memory", s.total_system_memory),
                ("rdb_changes_since_last_save", s.rdb_changes_since_last_save),
                ("rdb_last_save_time", s.rdb_last_save_time),
                ("server_time_usec", s.server_time_usec),
                ("connected_clients", s.connected_clients),
                ("maxclients", s.maxclients),
                ("blocked_clients", s.blocked_clients),
                ("used_memory", s.used_memory),
                ("maxmemory", s.maxmemory),
                ("total_connections_received", s.total_connections_received),
                ("instantaneous_ops_per_sec", s.instantaneous_ops_per_sec),
                ("rejected_connections", s.rejected_connections),
                ("evicted_keys", s.evicted_keys),
                ("keyspace_hits", s.keyspace_hits),
                ("keyspace_misses", s.keyspace_misses),
                ("connected_slaves", s.connected_slaves),
            ];
            for (key, ours) in checks {
                assert_eq!(ours, oracle_u64(&o, key), "{name}: {key}");
            }
            assert_eq!(
                s.master_repl_offset,
                oracle_i64(&o, "master_repl_offset"),
                "{name}"
            );
            assert_eq!(
                s.master_last_io_seconds_ago,
                oracle_i64(&o, "master_last_io_seconds_ago"),
                "{name}"
            );
            assert_eq!(
                s.server.uptime_in_seconds,
                oracle_u64(&o, "uptime_in_seconds"),
                "{name}"
            );
            let role = o.iter().find(|(k, _)| k == "role").map(|(_, v)| v.as_str());
            assert_eq!(
                s.role,
                role.map(|r| if r == "master" {
                    Role::Master
                } else {
                    Role::Replica
                }),
                "{name}"
            );
            let link = o
                .iter()
                .find(|(k, _)| k == "master_link_status")
                .map(|(_, v)| v == "up");
            assert_eq!(s.master_link_up, link, "{name}");
            let loading = o
                .iter()
                .find(|(k, _)| k == "loading")
                .map(|(_, v)| v == "1");
            assert_eq!(s.loading, loading, "{name}");
            let bgsave = o
                .iter()
                .find(|(k, _)| k == "rdb_last_bgsave_status")
                .map(|(_, v)| v == "ok");
            assert_eq!(s.rdb_last_bgsave_ok, bgsave, "{name}");
            let replicas: Vec<i64> = o
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("slave")
                        && k[5..].chars().all(|c| c.is_ascii_digit())
                        && k.len() > 5
                })
                .map(|(_, v)| {
                    v.split(',')
                        .find_map(|kv| kv.strip_prefix("offset="))
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert_eq!(s.replica_lines as usize, replicas.len(), "{name}");
            assert_eq!(
                s.min_replica_offset,
                replicas.iter().copied().min(),
                "{name}"
            );
            let version = o
                .iter()
                .find(|(k, _)| k == "redis_version")
                .map(|(_, v)| v.clone());
            assert_eq!(
                s.server.redis_version.map(|v| v.to_string()),
                version,
                "{name}"
            );
        }
    }

    #[test]
    fn idle_master_multi_has_the_fields_of_the_text() {
        let s = snapshot("redis-7.0_master_idle_info_multi");
        assert_eq!(
            s.server.version(),
            Some(Version {
                major: 7,
                minor: 0,
                patch: 15
            })
        );
        assert_eq!(s.used_memory, Some(2853440));
        assert_eq!(s.maxmemory, Some(0));
        assert_eq!(s.connected_clients, Some(1));
        assert_eq!(s.maxclients, Some(10000));
        assert_eq!(s.role, Some(Role::Master));
        assert_eq!(s.master_link_up, None);
        assert_eq!(s.keyspace_hits, Some(6));
        assert_eq!(s.keyspace_misses, Some(0));
        assert_eq!(s.loading, Some(false));
        assert_eq!(s.rdb_last_bgsave_ok, Some(true));
        assert_eq!(s.aof_last_write_ok, Some(true));
        assert_eq!(
            &s.server.run_id.unwrap(),
            b"7e94fcd04b229628e7a50facf7a2de994d31cd3d"
        );
        assert!(s.server.multi_section_info());
        assert_eq!(
            s.max_replica_lag_bytes(),
            Some(0),
            "no replicas: none behind"
        );
        let replica = snapshot("redis-7.0_replica_online_info_multi");
        assert_eq!(
            replica.max_replica_lag_bytes(),
            None,
            "a replica has no replicas to measure"
        );
    }

    #[test]
    fn master_with_two_replicas_reports_replica_offsets() {
        let s = snapshot("redis-7.0_master_with_2_replicas_info_multi");
        assert_eq!(s.connected_slaves, Some(2));
        assert_eq!(s.replica_lines, 2);
        assert_eq!(s.min_replica_offset, Some(900023));
        assert_eq!(s.max_replica_lag_bytes(), Some(0));
    }

    #[test]
    fn replica_states_are_read() {
        let up = snapshot("redis-7.0_replica_online_info_multi");
        assert_eq!(
            (up.role, up.master_link_up),
            (Some(Role::Replica), Some(true))
        );
        let down = snapshot("redis-7.0_replica_link_down_info_multi");
        assert_eq!(
            (down.role, down.master_link_up),
            (Some(Role::Replica), Some(false))
        );
        assert_eq!(down.master_link_down_since_seconds, Some(-1));
        let lost = snapshot("redis-7.0_replica_master_lost_info_multi");
        assert_eq!(lost.master_link_up, Some(false));
        assert_eq!(lost.master_link_down_since_seconds, Some(2));
    }

    #[test]
    fn pressure_loading_and_persistence_states_are_read() {
        let full = snapshot("redis-7.0_memory_pressure_noeviction_info_multi");
        assert_eq!(
            (full.used_memory, full.maxmemory),
            (Some(13110792), Some(4194304))
        );
        assert_eq!(snapshot("redis-7.0_loading_info_multi").loading, Some(true));
        assert_eq!(
            snapshot("redis-7.0_bgsave_failing_info_persistence").rdb_last_bgsave_ok,
            Some(false)
        );
        assert_eq!(
            snapshot("redis-7.0_blocked_clients_info_multi").blocked_clients,
            Some(2)
        );
    }

    /// Which of the fields the rules read are known in a snapshot.
    fn known_fields(s: &Snapshot) -> Vec<&'static str> {
        let fields = [
            ("connected_clients", s.connected_clients.is_some()),
            ("maxclients", s.maxclients.is_some()),
            ("blocked_clients", s.blocked_clients.is_some()),
            ("used_memory", s.used_memory.is_some()),
            ("maxmemory", s.maxmemory.is_some()),
            ("rejected_connections", s.rejected_connections.is_some()),
            ("keyspace_hits", s.keyspace_hits.is_some()),
            ("keyspace_misses", s.keyspace_misses.is_some()),
            ("role", s.role.is_some()),
            ("master_repl_offset", s.master_repl_offset.is_some()),
            ("loading", s.loading.is_some()),
            ("rdb_last_bgsave", s.rdb_last_bgsave_ok.is_some()),
            ("aof_last_write", s.aof_last_write_ok.is_some()),
            ("version", s.server.version().is_some()),
        ];
        fields.iter().filter(|f| f.1).map(|f| f.0).collect()
    }

    #[test]
    fn pipelined_sections_know_the_same_fields_as_one_multi_section_reply() {
        // The Redis 7.0 and Valkey 8.1 captures of both shapes come from the
        // same servers; Redis 6.2 has no multi-section reply, so its
        // pipelined capture is held to the 7.0 multi-section field set.
        for (piped, multi) in [
            (
                "redis-7.0_master_idle_pipelined_sections",
                "redis-7.0_master_idle_info_multi",
            ),
            (
                "valkey-8.1_master_pipelined_sections",
                "valkey-8.1_master_info_multi",
            ),
            (
                "redis-6.2_master_pipelined_sections",
                "redis-7.0_master_idle_info_multi",
            ),
        ] {
            let want = known_fields(&snapshot(multi));
            assert_eq!(want.len(), 14, "{multi}: {want:?}");
            assert_eq!(known_fields(&snapshot(piped)), want, "{piped}");
        }
    }

    #[test]
    fn valkey_reports_its_own_version_and_flavor() {
        let s = snapshot("valkey-8.1_master_pipelined_sections");
        assert_eq!(s.server.flavor, Flavor::Valkey);
        assert_eq!(
            s.server.version().map(|v| v.to_string()).as_deref(),
            Some("8.1.8")
        );
        assert!(s.server.multi_section_info());
        let r = snapshot("redis-6.2_master_pipelined_sections");
        assert_eq!(r.server.version().map(|v| v.major), Some(6));
        assert!(!r.server.multi_section_info());
    }

    #[test]
    fn resp3_verbatim_info_is_parsed() {
        let s = snapshot("redis-7.0_resp3_hello_then_info_multi");
        assert!(s.used_memory.is_some() && s.connected_clients.is_some());
        let v = snapshot("valkey-8.1_resp3_info_memory");
        assert!(v.used_memory.is_some());
        assert_eq!(
            v.connected_clients, None,
            "a section not asked for stays unknown"
        );
    }

    #[test]
    fn missing_fields_are_unknown_not_zero() {
        let s = snapshot("redis-7.0_info_unknown_section");
        assert_eq!(s, Snapshot::default());
        let mut m = Snapshot::default();
        m.merge_info(b"# Memory\r\nused_memory:100\r\n");
        assert_eq!(m.maxmemory, None);
        assert_eq!(m.used_memory, Some(100));
    }

    #[test]
    fn replica_line_tolerates_unknown_and_missing_keys() {
        let r = ReplicaLine::parse(
            b"ip=10.0.0.1,port=6380,state=online,offset=42,lag=1,type=replica,future=x",
        );
        assert_eq!(r.ip, Some(&b"10.0.0.1"[..]));
        assert_eq!((r.port, r.offset, r.lag), (Some(6380), Some(42), Some(1)));
        assert_eq!(r.state, Some(&b"online"[..]));
        let partial = ReplicaLine::parse(b"state=wait_bgsave,junk,offset=");
        assert_eq!(
            (partial.offset, partial.lag, partial.port),
            (None, None, None)
        );
    }

    #[test]
    fn garbage_lines_are_ignored() {
        let mut s = Snapshot::default();
        s.merge_info(b"no colon here\nused_memory:12x\n:\nmaxmemory:-1\nslave:ip=1\nslaveX1:offset=3\nconnected_clients:5");
        assert_eq!(s.used_memory, None);
        assert_eq!(s.maxmemory, None);
        assert_eq!(s.replica_lines, 0);
        assert_eq!(s.connected_clients, Some(5));
    }

    #[test]
    fn version_parses_partial_and_rejects_junk() {
        assert_eq!(
            Version::parse(b"8.1"),
            Some(Version {
                major: 8,
                minor: 1,
                patch: 0
            })
        );
        assert_eq!(Version::parse(b"x.1"), None);
        assert_eq!(Version::parse(b""), None);
    }
}
