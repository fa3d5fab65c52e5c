//! Topology replies, bytes in and values out: `CLUSTER INFO` text,
//! `CLUSTER NODES` text (Redis 6.2 has nothing else), `CLUSTER SHARDS`
//! (Redis >= 7, Valkey) and Sentinel's tables (`SENTINEL MASTERS`,
//! `REPLICAS`, `SENTINELS`, as RESP2 flat key/value arrays or RESP3 maps).
//!
//! Like `info`, nothing here touches a socket, and nothing trusts the
//! wire: node counts and slot ranges are bounded, malformed entries are
//! errors that name what was wrong, and no input panics.

use super::lines::for_each_field;
use super::resp::Frame;

/// Hash slots in a Redis Cluster.
pub const CLUSTER_SLOTS: u32 = 16_384;
/// Most nodes one topology reply may describe. Redis Cluster's own
/// recommended ceiling is 1,000 nodes; a reply past this is treated as
/// garbage rather than grown into.
pub const MAX_NODES: usize = 4_096;
/// Most slot ranges one node may own (every slot its own range).
pub const MAX_RANGES: usize = CLUSTER_SLOTS as usize;

/// The fields of `CLUSTER INFO` the cluster verdict reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    /// `cluster_state:ok` (true) or `fail` (false).
    pub state_ok: Option<bool>,
    pub slots_assigned: Option<u32>,
    pub slots_ok: Option<u32>,
    pub slots_pfail: Option<u32>,
    pub slots_fail: Option<u32>,
    pub known_nodes: Option<u32>,
    /// Masters serving at least one slot.
    pub size: Option<u32>,
    pub current_epoch: Option<u64>,
}

impl ClusterInfo {
    /// Read `CLUSTER INFO` text; unknown lines are ignored, missing ones
    /// stay unknown.
    pub fn parse(text: &[u8]) -> ClusterInfo {
        let mut c = ClusterInfo::default();
        for_each_field(text, |key, value| {
            let n = || std::str::from_utf8(value).ok()?.parse::<u32>().ok();
            match key {
                b"cluster_state" => {
                    c.state_ok = match value {
                        b"ok" => Some(true),
                        b"fail" => Some(false),
                        _ => None,
                    }
                }
                b"cluster_slots_assigned" => c.slots_assigned = n(),
                b"cluster_slots_ok" => c.slots_ok = n(),
                b"cluster_slots_pfail" => c.slots_pfail = n(),
                b"cluster_slots_fail" => c.slots_fail = n(),
                b"cluster_known_nodes" => c.known_nodes = n(),
                b"cluster_size" => c.size = n(),
                b"cluster_current_epoch" => {
                    c.current_epoch = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok())
                }
                _ => {}
            }
        });
        c
    }
}

/// A node's role in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeRole {
    Master,
    Replica,
}

/// One node as a topology reply describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// The 40-hex-digit node id.
    pub id: String,
    /// Where clients reach it (the announced IP, or hostname/endpoint).
    pub host: String,
    pub port: u16,
    pub role: NodeRole,
    /// A replica's master id (CLUSTER NODES names it; CLUSTER SHARDS
    /// groups the two in one shard instead, filled in from that).
    pub master_id: Option<String>,
    /// Not flagged `fail`/`pfail` (NODES) or `health` is `online` (SHARDS).
    pub healthy: bool,
    /// Slot ranges (inclusive) a master serves, sorted.
    pub slots: Vec<(u16, u16)>,
}

/// Why a topology reply could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyError(pub String);

impl std::fmt::Display for TopologyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T, TopologyError> {
    Err(TopologyError(msg.into()))
}

/// Read `CLUSTER NODES` text: one line per node.
pub fn parse_cluster_nodes(text: &[u8]) -> Result<Vec<ClusterNode>, TopologyError> {
    let text = std::str::from_utf8(text)
        .map_err(|_| TopologyError("CLUSTER NODES is not UTF-8".into()))?;
    let mut nodes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if nodes.len() >= MAX_NODES {
            return bad(format!("CLUSTER NODES lists more than {MAX_NODES} nodes"));
        }
        let at = |what: &str| TopologyError(format!("CLUSTER NODES line {}: {what}", i + 1));
        let mut fields = line.split(' ');
        let id = fields
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| at("no node id"))?;
        let addr = fields.next().ok_or_else(|| at("no address"))?;
        let flags: Vec<&str> = fields
            .next()
            .ok_or_else(|| at("no flags"))?
            .split(',')
            .collect();
        let master = fields.next().ok_or_else(|| at("no master field"))?;
        // ping-sent, pong-recv, config-epoch, link-state
        let rest: Vec<&str> = fields.collect();
        if rest.len() < 4 {
            return Err(at("too few fields"));
        }
        if flags.contains(&"noaddr") || flags.contains(&"handshake") {
            // Known by id only, or not yet a member: nothing to poll.
            continue;
        }
        // ip:port@cport[,hostname]
        let (hostport, hostname) = match addr.split_once(',') {
            Some((hp, name)) => (hp, Some(name).filter(|n| !n.is_empty())),
            None => (addr, None),
        };
        let hostport = hostport.split('@').next().unwrap_or(hostport);
        let (ip, port) = hostport
            .rsplit_once(':')
            .ok_or_else(|| at("address has no port"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| at("bad port"))?;
        let role = if flags.contains(&"master") {
            NodeRole::Master
        } else if flags.contains(&"slave") || flags.contains(&"replica") {
            NodeRole::Replica
        } else {
            return Err(at("neither master nor replica"));
        };
        let mut slots = Vec::new();
        for s in &rest[4..] {
            if s.starts_with('[') {
                continue; // a slot being migrated or imported
            }
            if slots.len() >= MAX_RANGES {
                return Err(at("too many slot ranges"));
            }
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            let range = (
                slot(a).ok_or_else(|| at("bad slot"))?,
                slot(b).ok_or_else(|| at("bad slot"))?,
            );
            if range.0 > range.1 {
                return Err(at("slot range ends before it starts"));
            }
            slots.push(range);
        }
        slots.sort_unstable();
        nodes.push(ClusterNode {
            id: id.to_string(),
            host: hostname.unwrap_or(ip).to_string(),
            port,
            role,
            master_id: (master != "-").then(|| master.to_string()),
            healthy: !flags.iter().any(|f| *f == "fail" || *f == "fail?"),
            slots,
        });
    }
    Ok(nodes)
}

fn slot(s: &str) -> Option<u16> {
    s.parse::<u16>()
        .ok()
        .filter(|&n| (n as u32) < CLUSTER_SLOTS)
}

fn list(f: &Frame) -> Option<&[Frame]> {
    match f {
        Frame::Array(a) | Frame::Set(a) => Some(a),
        _ => None,
    }
}

fn int(f: &Frame) -> Option<i64> {
    match f {
        Frame::Integer(n) => Some(*n),
        other => std::str::from_utf8(other.as_text()?).ok()?.parse().ok(),
    }
}

/// Read a `CLUSTER SHARDS` reply: each shard's slot ranges and nodes. A
/// shard's replicas get its master's id.
pub fn parse_cluster_shards(frame: &Frame) -> Result<Vec<ClusterNode>, TopologyError> {
    if let Some(e) = frame.as_error() {
        return bad(format!(
            "CLUSTER SHARDS: {}",
            String::from_utf8_lossy(&e[..e.len().min(120)])
        ));
    }
    let shards = list(frame).ok_or_else(|| TopologyError("CLUSTER SHARDS: not an array".into()))?;
    let mut nodes = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let at = |what: &str| TopologyError(format!("CLUSTER SHARDS shard {}: {what}", i + 1));
        let fields = shard.as_pairs().ok_or_else(|| at("not a key/value list"))?;
        let get = |k: &[u8]| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let bounds = list(get(b"slots").ok_or_else(|| at("no slots"))?)
            .ok_or_else(|| at("slots is not a list"))?;
        if bounds.len() % 2 != 0 || bounds.len() / 2 > MAX_RANGES {
            return Err(at("slots is not a list of start/end pairs"));
        }
        let mut slots = Vec::with_capacity(bounds.len() / 2);
        for pair in bounds.chunks(2) {
            let s = |f: &Frame| {
                int(f)
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|&n| (n as u32) < CLUSTER_SLOTS)
            };
            let range = (
                s(&pair[0]).ok_or_else(|| at("bad slot"))?,
                s(&pair[1]).ok_or_else(|| at("bad slot"))?,
            );
            if range.0 > range.1 {
                return Err(at("slot range ends before it starts"));
            }
            slots.push(range);
        }
        slots.sort_unstable();
        let members = list(get(b"nodes").ok_or_else(|| at("no nodes"))?)
            .ok_or_else(|| at("nodes is not a list"))?;
        let first = nodes.len();
        for member in members {
            if nodes.len() >= MAX_NODES {
                return bad(format!("CLUSTER SHARDS lists more than {MAX_NODES} nodes"));
            }
            let f = member
                .as_pairs()
                .ok_or_else(|| at("a node is not a key/value list"))?;
            let get = |k: &[u8]| f.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
            let string = |k: &[u8]| {
                get(k)
                    .and_then(Frame::as_text)
                    .and_then(|t| std::str::from_utf8(t).ok())
            };
            let id = string(b"id").ok_or_else(|| at("a node has no id"))?;
            // Clients use the endpoint; "?" or empty means unknown, so the IP.
            let host = string(b"endpoint")
                .filter(|e| !e.is_empty() && *e != "?")
                .or_else(|| string(b"ip"))
                .ok_or_else(|| at("a node has no address"))?;
            let port = get(b"port")
                .or_else(|| get(b"tls-port"))
                .and_then(int)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
                .ok_or_else(|| at("a node has no port"))?;
            let role = match string(b"role") {
                Some("master") => NodeRole::Master,
                Some("replica") | Some("slave") => NodeRole::Replica,
                _ => return Err(at("a node is neither master nor replica")),
            };
            nodes.push(ClusterNode {
                id: id.to_string(),
                host: host.to_string(),
                port,
                role,
                master_id: None,
                healthy: string(b"health") == Some("online"),
                slots: if role == NodeRole::Master {
                    slots.clone()
                } else {
                    Vec::new()
                },
            });
        }
        let master = nodes[first..]
            .iter()
            .find(|n| n.role == NodeRole::Master)
            .map(|n| n.id.clone());
        for n in &mut nodes[first..] {
            if n.role == NodeRole::Replica {
                n.master_id.clone_from(&master);
            }
        }
    }
    Ok(nodes)
}

/// One row of a `SENTINEL MASTERS`, `REPLICAS` or `SENTINELS` reply: its
/// fields by name, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SentinelEntry {
    pub fields: Vec<(String, String)>,
}

impl SentinelEntry {
    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric field.
    pub fn number(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }

    /// Whether `flags` (comma-separated) holds `flag` (`s_down`, `o_down`,
    /// `master`, `slave`, `disconnected`...).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.get("flags")
            .is_some_and(|f| f.split(',').any(|x| x == flag))
    }

    /// `ip` and `port` as an address.
    pub fn addr(&self) -> Option<(&str, u16)> {
        Some((
            self.get("ip")?,
            self.get("port")?.parse().ok().filter(|p| *p != 0)?,
        ))
    }
}

/// Read a Sentinel table reply (a list of rows).
pub fn parse_sentinel_table(frame: &Frame) -> Result<Vec<SentinelEntry>, TopologyError> {
    if let Some(e) = frame.as_error() {
        return bad(format!(
            "SENTINEL: {}",
            String::from_utf8_lossy(&e[..e.len().min(120)])
        ));
    }
    let rows = list(frame).ok_or_else(|| TopologyError("SENTINEL: not a list".into()))?;
    if rows.len() > MAX_NODES {
        return bad(format!("SENTINEL: more than {MAX_NODES} rows"));
    }
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let fields = row.as_pairs().ok_or_else(|| {
                TopologyError(format!("SENTINEL row {}: not a key/value list", i + 1))
            })?;
            Ok(SentinelEntry {
                fields: fields
                    .into_iter()
                    .map(|(k, v)| {
                        let v = v
                            .as_text()
                            .map(|t| String::from_utf8_lossy(t).into_owned())
                            .or_else(|| int(v).map(|n| n.to_string()));
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            v.unwrap_or_default(),
                        )
                    })
                    .collect(),
            })
        })
        .collect()
}

/// `SENTINEL CKQUORUM`: `+OK ...` when the quorum can be reached, the
/// error text otherwise.
pub fn quorum_reachable(frame: &Frame) -> Result<(), String> {
    match frame {
        Frame::Simple(_) => Ok(()),
        other => Err(match other.as_error() {
            Some(e) => String::from_utf8_lossy(&e[..e.len().min(200)]).into_owned(),
            None => "unexpected reply to SENTINEL CKQUORUM".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::info::info_text;
    use crate::wire::resp::Decoder;
    use bytes::BytesMut;

    fn reply(name: &str) -> Frame {
        let path = format!(
            "{}/testdata/topology/{name}.resp",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = Decoder::new().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "{name}: one reply per capture");
        frame
    }

    fn bulk(name: &str) -> Vec<u8> {
        info_text(&reply(name))
            .unwrap_or_else(|| panic!("{name}: not text"))
            .to_vec()
    }

    /// A node's (host, port, role, slots, master's port).
    type Shape = (String, u16, NodeRole, Vec<(u16, u16)>, Option<u16>);

    /// Every node's shape, sorted, for comparing two replies.
    fn shape(nodes: &[ClusterNode]) -> Vec<Shape> {
        let port_of = |id: &str| nodes.iter().find(|n| n.id == id).map(|n| n.port);
        let mut v: Vec<_> = nodes
            .iter()
            .map(|n| {
                (
                    n.host.clone(),
                    n.port,
                    n.role,
                    n.slots.clone(),
                    n.master_id.as_deref().and_then(port_of),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn cluster_info_reads_state_and_slot_counts() {
        for prefix in ["redis-7.0", "redis-6.2", "valkey-8.1"] {
            let ok = ClusterInfo::parse(&bulk(&format!("{prefix}_cluster_info_ok")));
            assert_eq!(ok.state_ok, Some(true), "{prefix}");
            assert_eq!(
                (
                    ok.slots_assigned,
                    ok.slots_ok,
                    ok.slots_pfail,
                    ok.slots_fail
                ),
                (Some(16384), Some(16384), Some(0), Some(0)),
                "{prefix}"
            );
            assert_eq!((ok.known_nodes, ok.size), (Some(6), Some(3)), "{prefix}");
            // Three slots deleted by hand: nobody serves them.
            let missing =
                ClusterInfo::parse(&bulk(&format!("{prefix}_cluster_info_slots_missing")));
            assert_eq!(missing.state_ok, Some(false), "{prefix}");
            assert_eq!(missing.slots_assigned, Some(16381), "{prefix}");
        }
    }

    #[test]
    fn cluster_nodes_and_cluster_shards_describe_the_same_cluster() {
        for prefix in ["redis-7.0", "valkey-8.1"] {
            let from_nodes =
                parse_cluster_nodes(&bulk(&format!("{prefix}_cluster_nodes"))).unwrap();
            let from_shards =
                parse_cluster_shards(&reply(&format!("{prefix}_cluster_shards"))).unwrap();
            assert_eq!(shape(&from_nodes), shape(&from_shards), "{prefix}");
        }
    }

    #[test]
    fn a_created_cluster_has_three_masters_covering_every_slot_and_a_replica_each() {
        for prefix in ["redis-7.0", "redis-6.2", "valkey-8.1"] {
            let nodes = parse_cluster_nodes(&bulk(&format!("{prefix}_cluster_nodes"))).unwrap();
            assert_eq!(nodes.len(), 6, "{prefix}");
            assert!(
                nodes.iter().all(|n| n.healthy && n.host == "127.0.0.1"),
                "{prefix}"
            );
            let masters: Vec<_> = nodes
                .iter()
                .filter(|n| n.role == NodeRole::Master)
                .collect();
            assert_eq!(masters.len(), 3, "{prefix}");
            let covered: u32 = masters
                .iter()
                .flat_map(|m| &m.slots)
                .map(|(a, b)| (*b - *a) as u32 + 1)
                .sum();
            assert_eq!(covered, CLUSTER_SLOTS, "{prefix}");
            for m in masters {
                let replicas = nodes
                    .iter()
                    .filter(|n| n.master_id.as_deref() == Some(m.id.as_str()))
                    .count();
                assert_eq!(replicas, 1, "{prefix}: {}", m.id);
            }
        }
    }

    #[test]
    fn redis_6_2_has_no_cluster_shards_and_says_so() {
        let e = parse_cluster_shards(&reply("redis-6.2_cluster_shards")).unwrap_err();
        assert!(e.0.contains("Unknown subcommand"), "{e}");
        for prefix in ["redis-7.0", "redis-6.2", "valkey-8.1"] {
            let f = reply(&format!("{prefix}_cluster_info_not_cluster"));
            assert!(
                f.as_error().is_some_and(
                    |e| e.starts_with(b"ERR This instance has cluster support disabled")
                ),
                "{prefix}"
            );
        }
    }

    #[test]
    fn deleted_slots_leave_a_gap_in_cluster_shards() {
        let nodes = parse_cluster_shards(&reply("redis-7.0_cluster_shards_slots_missing")).unwrap();
        let covered: u32 = nodes
            .iter()
            .filter(|n| n.role == NodeRole::Master)
            .flat_map(|m| &m.slots)
            .map(|(a, b)| (*b - *a) as u32 + 1)
            .sum();
        assert_eq!(covered, CLUSTER_SLOTS - 3);
    }

    #[test]
    fn sentinel_tables_name_the_master_its_replicas_and_the_other_sentinels() {
        let masters = parse_sentinel_table(&reply("redis-7.0_sentinel_masters")).unwrap();
        assert_eq!(masters.len(), 1);
        let m = &masters[0];
        assert_eq!(m.get("name"), Some("mymaster"));
        assert!(m.has_flag("master") && !m.has_flag("s_down") && !m.has_flag("o_down"));
        assert_eq!(
            (
                m.number("quorum"),
                m.number("num-slaves"),
                m.number("num-other-sentinels")
            ),
            (Some(2), Some(2), Some(2))
        );
        assert_eq!(m.addr().map(|a| a.0), Some("127.0.0.1"));
        let replicas = parse_sentinel_table(&reply("redis-7.0_sentinel_replicas")).unwrap();
        assert_eq!(replicas.len(), 2);
        assert!(replicas
            .iter()
            .all(|r| r.has_flag("slave") && r.get("master-link-status") == Some("ok")));
        assert!(replicas
            .iter()
            .all(|r| r.get("master-port") == m.get("port")));
        let sentinels = parse_sentinel_table(&reply("redis-7.0_sentinel_sentinels")).unwrap();
        assert_eq!(sentinels.len(), 2);
        assert!(quorum_reachable(&reply("redis-7.0_sentinel_ckquorum_ok")).is_ok());
        let lost = quorum_reachable(&reply("redis-7.0_sentinel_ckquorum_lost")).unwrap_err();
        assert!(lost.starts_with("NOQUORUM"), "{lost}");
    }

    #[test]
    fn after_a_failover_the_promoted_replica_masters_the_shard() {
        // Captured a few seconds after SIGKILL of the master of 0-5460.
        let nodes =
            parse_cluster_shards(&reply("redis-7.0_cluster_shards_after_failover")).unwrap();
        let owner: Vec<_> = nodes
            .iter()
            .filter(|n| n.role == NodeRole::Master && n.slots == vec![(0, 5460)])
            .collect();
        assert_eq!(owner.len(), 1, "{nodes:?}");
        assert!(owner[0].healthy);
        assert!(
            nodes.iter().any(|n| !n.healthy),
            "the dead master is still listed, failed"
        );
    }

    #[test]
    fn malformed_topology_is_an_error_not_a_panic() {
        for text in [
            &b"abc"[..],
            b"id 127.0.0.1 master - 0 0 1 connected",
            b"id 127.0.0.1:0@1 master - 0 0 1 connected",
            b"id 127.0.0.1:7000@17000 master - 0 0 1 connected 99999",
            b"id 127.0.0.1:7000@17000 master - 0 0 1 connected 9-3",
            b"id 127.0.0.1:7000@17000 weird - 0 0 1 connected",
            b"\xff\xfe",
        ] {
            assert!(
                parse_cluster_nodes(text).is_err(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let odd = Frame::Array(vec![Frame::Array(vec![Frame::Bulk("slots".into())])]);
        assert!(parse_cluster_shards(&odd).is_err());
        assert!(parse_cluster_shards(&Frame::Integer(1)).is_err());
        assert!(parse_sentinel_table(&Frame::Array(vec![Frame::Integer(3)])).is_err());
    }
}
