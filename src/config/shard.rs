//! Shards and consensus peers: `shard = "I/N"`, `peers`, `[consensus]`.
//!
//! Every instance belongs to exactly one shard, chosen by rendezvous
//! hashing of its *key*: a cluster's or Sentinel's nodes go by the
//! cluster's or Sentinel's name (the part of a discovered node's name
//! before the first `/`), a group's members by the group's name, anything
//! else by its own name. Every shard reads the same config, so every shard
//! computes the same owner for any name without asking anyone.

use super::{Secret, TlsTarget};
use std::collections::HashMap;
use std::time::Duration;

/// Shards at most (a peer list longer than this is a typo, not a fleet).
pub const MAX_SHARDS: u32 = 1024;
/// Consensus peers at most.
pub const MAX_CONSENSUS_PEERS: usize = 16;
/// A forwarded request's budget: connect, send and read the owner's answer.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_millis(800);

/// `I/N`: this process is shard I (0-based) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    /// This process's shard, 0-based.
    pub index: u32,
    /// How many shards the fleet is split into.
    pub count: u32,
}

/// Parse `I/N`. I may be `ordinal`: the number after the last `-` of the
/// host name (a StatefulSet's pod `redpulse-2` is shard 2), which
/// `hostname` supplies.
pub fn parse_shard(s: &str, hostname: impl Fn() -> Option<String>) -> Result<ShardSpec, String> {
    let (i, n) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("shard {s:?}: expected I/N, e.g. 2/8 or ordinal/8"))?;
    let count: u32 = n
        .parse()
        .map_err(|_| format!("shard {s:?}: N must be a whole number"))?;
    if count == 0 || count > MAX_SHARDS {
        return Err(format!("shard {s:?}: N must be 1 to {MAX_SHARDS}"));
    }
    let index: u32 = if i == "ordinal" {
        let host = hostname().ok_or_else(|| {
            format!("shard {s:?}: cannot read the host name to take the ordinal from")
        })?;
        // The pod's name, also when given as an FQDN.
        let host = host.trim().split('.').next().unwrap_or("");
        let digits = host.rsplit_once('-').map(|(_, d)| d).unwrap_or("");
        digits.parse().map_err(|_| {
            format!("shard {s:?}: host name {host:?} does not end in -K (like redpulse-2)")
        })?
    } else {
        i.parse()
            .map_err(|_| format!("shard {s:?}: I must be a whole number or \"ordinal\""))?
    };
    if index >= count {
        return Err(format!(
            "shard {s:?}: I is 0-based and must be below N ({index} >= {count})"
        ));
    }
    Ok(ShardSpec { index, count })
}

/// This host's name, for `ordinal/N`: `$HOSTNAME`, else the kernel's.
pub fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
}

/// The shard that owns `key` among `count`: the highest score wins
/// (rendezvous hashing), so going from N to N+1 shards moves only the keys
/// the new shard wins, about 1/(N+1) of them, and nothing else.
pub fn owner(key: &str, count: u32) -> u32 {
    let h = fnv1a(key.as_bytes());
    (0..count)
        .max_by_key(|&k| mix(h ^ mix(u64::from(k) + 1)))
        .unwrap_or(0)
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's
/// hasher), so every shard agrees.
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64's finalizer: spreads a key-and-shard pair over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A peer's base URL, `http://` or `https://host:port[/prefix]`, and how
/// this process reaches it (`[peer_client]`: TLS, basic auth).
#[derive(Clone, Debug, PartialEq)]
pub struct PeerUrl {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Prepended to forwarded paths; empty or starting with `/`.
    pub prefix: String,
    /// `https://`.
    pub https: bool,
    /// For an `https://` peer: the client side of TLS (`[peer_client]`).
    pub tls: Option<TlsTarget>,
    /// `Basic ...` toward the peer (`[peer_client]` username and
    /// password), sent with every call.
    pub authorization: Option<Secret>,
}

impl PeerUrl {
    /// Parse `http://host:port[/prefix]` or `https://...`; TLS and
    /// credentials are added from `[peer_client]` at load.
    pub fn parse(s: &str) -> Result<PeerUrl, String> {
        let (https, rest) = match (s.strip_prefix("http://"), s.strip_prefix("https://")) {
            (Some(r), _) => (false, r),
            (_, Some(r)) => (true, r),
            _ => {
                return Err(format!(
                    "peer {s:?}: expected http://host:port or https://host:port"
                ))
            }
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("peer {s:?}: bad port {p:?}"))?,
            ),
            _ => (authority, if https { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(format!("peer {s:?}: needs a host and a port"));
        }
        if prefix.contains(['?', '#']) {
            return Err(format!("peer {s:?}: no query or fragment, please"));
        }
        Ok(PeerUrl {
            host: host.to_string(),
            port,
            prefix: prefix.to_string(),
            https,
            tls: None,
            authorization: None,
        })
    }

    /// `host:port` as the `Host` header and logs show it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.prefix)
    }
}

/// Who owns which name, and where the other shards answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardMap {
    /// This process's shard.
    pub me: u32,
    /// How many shards there are.
    pub count: u32,
    /// Index = shard; this shard's own entry is never called.
    pub peers: Vec<PeerUrl>,
    /// The budget of one call to another shard (`peer_timeout`).
    pub timeout: Duration,
    /// Group member → group name.
    member_of: HashMap<String, String>,
}

impl ShardMap {
    /// The map of shard `spec` with its `peers` (one URL per shard, index
    /// = shard); `groups` keep each group's members on the group's shard.
    pub fn new(
        spec: ShardSpec,
        peers: Vec<PeerUrl>,
        timeout: Duration,
        groups: &[(String, Vec<String>)],
    ) -> Result<ShardMap, String> {
        if spec.count > 1 && peers.len() != spec.count as usize {
            return Err(format!(
                "peers lists {} URL(s) but there are {} shards: list every shard's URL, index = shard",
                peers.len(),
                spec.count
            ));
        }
        let mut member_of = HashMap::new();
        for (group, members) in groups {
            for m in members {
                member_of.insert(m.clone(), group.clone());
            }
        }
        Ok(ShardMap {
            me: spec.index,
            count: spec.count,
            peers,
            timeout,
            member_of,
        })
    }

    /// What decides `name`'s shard: the cluster, Sentinel or group it
    /// belongs to, else the name itself.
    pub fn key<'a>(&'a self, name: &'a str) -> &'a str {
        if let Some((prefix, _)) = name.split_once('/') {
            return prefix;
        }
        self.member_of.get(name).map_or(name, String::as_str)
    }

    /// The shard that owns `name` (rendezvous hashing).
    pub fn owner_of(&self, name: &str) -> u32 {
        owner(self.key(name), self.count)
    }

    /// Whether this shard owns `name`.
    pub fn is_mine(&self, name: &str) -> bool {
        self.owner_of(name) == self.me
    }
}

/// `[consensus]`: other regions watching the same fleet.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsensusSpec {
    /// The other regions' redpulse, asked for their own verdicts.
    pub peers: Vec<PeerUrl>,
    /// This region's name, in votes and `x-redpulse-region`.
    pub region: String,
    /// Pollers (self included) that must see a status for it to be
    /// reported.
    pub quorum: u32,
    /// A peer's budget for one answer; later counts as no vote.
    pub timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_with_clear_errors() {
        let none = || None;
        assert_eq!(
            parse_shard("2/8", none),
            Ok(ShardSpec { index: 2, count: 8 })
        );
        for bad in ["8/8", "2", "a/8", "1/0", "0/5000", "-1/3"] {
            assert!(parse_shard(bad, none).is_err(), "{bad}");
        }
        let host = |h: &'static str| move || Some(h.to_string());
        assert_eq!(
            parse_shard("ordinal/3", host("redpulse-2\n")),
            Ok(ShardSpec { index: 2, count: 3 })
        );
        assert_eq!(
            parse_shard("ordinal/3", host("web-redpulse-1.redpulse.monitoring.svc")),
            Ok(ShardSpec { index: 1, count: 3 })
        );
        assert!(parse_shard("ordinal/3", host("redpulse-3"))
            .unwrap_err()
            .contains("below N"));
        assert!(parse_shard("ordinal/3", host("redpulse"))
            .unwrap_err()
            .contains("-K"));
        assert!(parse_shard("ordinal/3", none).is_err());
    }

    #[test]
    fn owners_spread_evenly_and_a_new_shard_takes_only_its_share() {
        // Expected shares by hand: 1/N each, and going to N+1 moves 1/(N+1),
        // all of it to the new shard.
        let names: Vec<String> = (0..30_000).map(|i| format!("cache-{i}")).collect();
        let mut per = [0u32; 4];
        for n in &names {
            per[owner(n, 3) as usize] += 1;
        }
        for &c in &per[..3] {
            assert!((9_500..=10_500).contains(&c), "{per:?}");
        }
        let mut moved = 0;
        for n in &names {
            let (a, b) = (owner(n, 3), owner(n, 4));
            if a != b {
                assert_eq!(b, 3, "{n} moved between old shards");
                moved += 1;
            }
        }
        let share = f64::from(moved) / names.len() as f64;
        assert!((0.23..0.27).contains(&share), "{share}");
        // Stable across builds: pinned values computed once by hand-run FNV.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(owner("anything", 1), 0);
    }

    #[test]
    fn keys_follow_clusters_sentinels_and_groups() {
        let m = ShardMap::new(
            ShardSpec { index: 0, count: 1 },
            vec![],
            DEFAULT_PEER_TIMEOUT,
            &[("g".into(), vec!["a".into(), "b".into()])],
        )
        .unwrap();
        assert_eq!(m.key("c1/10.0.0.1:6379"), "c1");
        assert_eq!(m.key("s/mymaster/10.0.0.1:6379"), "s");
        assert_eq!(m.key("a"), "g");
        assert_eq!(m.key("z"), "z");
        assert!(ShardMap::new(
            ShardSpec { index: 0, count: 2 },
            vec![],
            DEFAULT_PEER_TIMEOUT,
            &[]
        )
        .is_err());
    }

    #[test]
    fn peer_urls_parse() {
        let p = PeerUrl::parse("http://redpulse-0.redpulse:9379").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.prefix.as_str()),
            ("redpulse-0.redpulse", 9379, "")
        );
        let p = PeerUrl::parse("http://[::1]:9/x/").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.prefix.as_str()),
            ("::1", 9, "/x")
        );
        assert_eq!(p.to_string(), "http://[::1]:9/x");
        assert_eq!(PeerUrl::parse("http://h").unwrap().port, 80);
        let s = PeerUrl::parse("https://h").unwrap();
        assert_eq!(
            (s.port, s.https, s.to_string()),
            (443, true, "https://h:443".to_string())
        );
        for bad in [
            "ftp://h:1",
            "h:1",
            "http://:1",
            "http://h:x",
            "http://h:1/?a",
        ] {
            assert!(PeerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
