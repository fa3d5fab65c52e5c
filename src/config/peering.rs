//! Peering settings: this process's shard (`shard`, `peers`,
//! `peer_timeout`, `--shard`) and `[consensus]` with other regions,
//! checked into a shard map and a consensus spec.

use super::file::FileConfig;
use super::shard;
use super::topology::GroupSpec;
use super::{err, parse_duration, validate_name, ConfigError, Overrides};
use std::time::Duration;

/// What `peering` reads: the shard map and the consensus settings.
pub(super) type Peering = (
    Option<std::sync::Arc<shard::ShardMap>>,
    Option<std::sync::Arc<shard::ConsensusSpec>>,
);

/// `shard`, `peers`, `peer_timeout` and `[consensus]`, checked.
pub(super) fn peering(
    o: &Overrides,
    file: &FileConfig,
    at: &dyn Fn(&str) -> String,
    groups: &[GroupSpec],
) -> Result<Peering, ConfigError> {
    let budget = |key: &str, v: &Option<String>| -> Result<Duration, ConfigError> {
        match v {
            None => Ok(shard::DEFAULT_PEER_TIMEOUT),
            Some(s) => match parse_duration(s) {
                Ok(d) if !d.is_zero() && d <= Duration::from_secs(10) => Ok(d),
                Ok(_) => err(at(&format!("{key} must be above 0 and at most 10s"))),
                Err(e) => err(at(&format!("{key}: {e}"))),
            },
        }
    };
    let peers = |key: &str, list: &[String]| -> Result<Vec<shard::PeerUrl>, ConfigError> {
        list.iter()
            .map(|u| shard::PeerUrl::parse(u).map_err(|e| ConfigError(at(&format!("{key}: {e}")))))
            .collect()
    };
    let spec = o.shard.as_ref().or(file.shard.as_ref());
    let shard = match spec {
        None if !file.peers.is_empty() => {
            return err(at(
                "peers is set but shard is not: add shard = \"I/N\" or --shard",
            ))
        }
        None => None,
        Some(s) => {
            let spec = shard::parse_shard(s, shard::host_name).map_err(|e| ConfigError(at(&e)))?;
            let timeout = budget("peer_timeout", &file.peer_timeout)?;
            let groups: Vec<(String, Vec<String>)> = groups
                .iter()
                .map(|g| (g.name.clone(), g.members.clone()))
                .collect();
            let map = shard::ShardMap::new(spec, peers("peers", &file.peers)?, timeout, &groups)
                .map_err(|e| ConfigError(at(&e)))?;
            Some(std::sync::Arc::new(map))
        }
    };
    let consensus = match &file.consensus {
        None => None,
        Some(c) => {
            validate_name(&c.region)
                .map_err(|e| ConfigError(at(&format!("[consensus] region: {e}"))))?;
            let list = peers("[consensus] peers", &c.peers)?;
            if list.is_empty() || list.len() > shard::MAX_CONSENSUS_PEERS {
                return err(at(&format!(
                    "[consensus] peers must list 1 to {} other regions",
                    shard::MAX_CONSENSUS_PEERS
                )));
            }
            let voters = list.len() as u32 + 1;
            if c.quorum == 0 || c.quorum > voters {
                return err(at(&format!(
                    "[consensus] quorum must be 1 to {voters} (the peers plus this region)"
                )));
            }
            Some(std::sync::Arc::new(shard::ConsensusSpec {
                peers: list,
                region: c.region.clone(),
                quorum: c.quorum,
                timeout: budget("[consensus] timeout", &c.timeout)?,
            }))
        }
    };
    Ok((shard, consensus))
}
