//! Peering settings: this process's shard (`shard`, `peers`,
//! `peer_timeout`, `--shard`) and `[consensus]` with other regions,
//! checked into a shard map and a consensus spec.

use super::file::FileConfig;
use super::secret::PasswordSource;
use super::shard;
use super::text::base64_encode;
use super::tls::TlsCache;
use super::topology::GroupSpec;
use super::{err, parse_duration, validate_name, ConfigError, Overrides, Secret, TlsTable};
use std::path::Path;
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
    base_dir: &Path,
    at: &dyn Fn(&str) -> String,
    groups: &[GroupSpec],
) -> Result<Peering, ConfigError> {
    let client =
        peer_client(file, base_dir).map_err(|e| ConfigError(at(&format!("[peer_client] {e}"))))?;
    let mut tls = TlsCache::default();
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
    let mut peers = |key: &str, list: &[String]| -> Result<Vec<shard::PeerUrl>, ConfigError> {
        list.iter()
            .map(|u| {
                let mut url = shard::PeerUrl::parse(u)
                    .map_err(|e| ConfigError(at(&format!("{key}: {e}"))))?;
                if url.https {
                    url.tls =
                        Some(tls.target(&client.0, &url.host).map_err(|e| {
                            ConfigError(at(&format!("[peer_client] toward {u}: {e}")))
                        })?);
                }
                url.authorization = client.1.clone();
                Ok(url)
            })
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

/// `[peer_client]`: the TLS settings toward `https://` peers (paths from
/// the config's directory) and the `Basic` credential sent to every peer.
fn peer_client(file: &FileConfig, base_dir: &Path) -> Result<(TlsTable, Option<Secret>), String> {
    let Some(c) = &file.peer_client else {
        return Ok((TlsTable::default(), None));
    };
    let table = TlsTable {
        ca_file: c.ca_file.clone(),
        cert_file: c.cert_file.clone(),
        key_file: c.key_file.clone(),
        server_name: c.server_name.clone(),
        insecure_skip_verify: None,
    }
    .relative_to(base_dir);
    let password = PasswordSource {
        file: c.password_file.as_ref().map(|p| base_dir.join(p)),
        env: c.password_env.clone(),
    }
    .read()?;
    let authorization = match (&c.username, password) {
        (None, None) => None,
        (Some(user), Some(p)) => {
            if user.contains(':') {
                return Err("username: a basic auth user name cannot hold ':'".into());
            }
            let pair = format!("{user}:{}", p.expose());
            Some(Secret::new(format!(
                "Basic {}",
                base64_encode(pair.as_bytes())
            )))
        }
        (Some(_), None) => {
            return Err("username is set but password_file/password_env is not".into())
        }
        (None, Some(_)) => return Err("a password is set but username is not".into()),
    };
    Ok((table, authorization))
}
