//! Topology: `[[cluster]]` (nodes discovered from seeds), `[[sentinel]]`
//! (masters and replicas discovered from sentinels) and static
//! `[[group]]`s of configured instances, checked; and how a discovered
//! node inherits its cluster's or Sentinel's settings.

use super::file::FileConfig;
use super::secret::PasswordSource;
use super::targets::{make_target, Defaults, Own, Target};
use super::{
    err, labels, parse_duration, validate_name, ConfigError, Endpoint, Labels, Thresholds,
    MAX_POLL_DURATION,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a cluster's topology is read again unless configured.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// A static replication group: configured instances, one of which should
/// be the master and the rest its replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    pub members: Vec<String>,
    /// From `[thresholds]`: fewer online replicas is degraded.
    pub min_replicas: u32,
    pub labels: Labels,
}

/// A Sentinel deployment: its masters' groups are discovered from the
/// sentinels.
#[derive(Clone, Debug, PartialEq)]
pub struct SentinelSpec {
    pub name: String,
    /// The configured sentinels, asked in order.
    pub sentinels: Vec<Target>,
    /// The masters to watch; empty: every master the sentinels monitor.
    pub masters: Vec<String>,
    pub refresh: Duration,
    /// What every discovered data node inherits.
    data: Target,
    pub labels: Labels,
}

impl SentinelSpec {
    /// A data node of `master`: `{sentinel}/{master}/{host}:{port}`.
    pub fn data_node(&self, master: &str, host: &str, port: u16) -> Result<Target, String> {
        discovered(&self.data, &format!("{}/{master}", self.name), host, port)
    }

    /// A sentinel, polled as an instance: `{sentinel}/sentinel/{host}:{port}`.
    pub fn sentinel_node(&self, host: &str, port: u16) -> Result<Target, String> {
        discovered(
            &self.sentinels[0],
            &format!("{}/sentinel", self.name),
            host,
            port,
        )
    }
}

/// A discovered node: `template`'s credentials, thresholds and TLS (the
/// verified name following the node's host unless `server_name` is set),
/// at `host:port`, named `{prefix}/{host}:{port}`.
fn discovered(template: &Target, prefix: &str, host: &str, port: u16) -> Result<Target, String> {
    let endpoint = Endpoint::Tcp {
        host: host.to_string(),
        port,
    };
    let tls = match &template.tls {
        Some(t) => Some(Box::new(t.for_host(host)?)),
        None => None,
    };
    Ok(Target {
        name: format!("{prefix}/{}", endpoint.display()),
        endpoint,
        tls,
        ..template.clone()
    })
}

/// A Redis Cluster to discover from its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    pub name: String,
    /// Where discovery starts (after the nodes it already knows).
    pub seeds: Vec<Target>,
    pub refresh: Duration,
    /// What every discovered node inherits: credentials, TLS, thresholds.
    template: Target,
    pub labels: Labels,
}

impl ClusterSpec {
    /// The target of a discovered node: named `{cluster}/{host}:{port}`,
    /// polled with CLUSTER INFO in the same write.
    pub fn node(&self, host: &str, port: u16) -> Result<Target, String> {
        // The template is a seed, already marked as a cluster node.
        discovered(&self.template, &self.name, host, port)
    }
}

/// A `[[cluster]]`'s or `[[sentinel]]`'s thresholds (over the global ones)
/// and its topology `refresh` (default 30 s, at most 1 day).
fn topology_settings(
    own: &Option<super::thresholds::ThresholdOverrides>,
    refresh: &Option<String>,
    global: &Thresholds,
    where_: &str,
) -> Result<(Thresholds, Duration), ConfigError> {
    let t = match own {
        Some(over) => over.apply(global, where_)?,
        None => global.clone(),
    };
    let refresh = match refresh {
        None => DEFAULT_REFRESH,
        Some(r) => match parse_duration(r) {
            Err(e) => return err(format!("{where_}: refresh: {e}")),
            Ok(d) if d.is_zero() || d > MAX_POLL_DURATION => {
                return err(format!(
                    "{where_}: refresh must be above 0 and at most 1 day"
                ))
            }
            Ok(d) => d,
        },
    };
    Ok((t, refresh))
}

/// Every `[[cluster]]`, checked, its seeds made with `defaults`.
pub(super) fn clusters(
    file: &FileConfig,
    base_dir: &Path,
    at: &dyn Fn(&str) -> String,
    global: &Thresholds,
    defaults: &mut Defaults,
) -> Result<Vec<ClusterSpec>, ConfigError> {
    let mut clusters: Vec<ClusterSpec> = Vec::new();
    for (i, c) in file.cluster.iter().enumerate() {
        let where_ = at(&format!("[[cluster]] #{} ({})", i + 1, c.name));
        let fail = |e: String| ConfigError(format!("{where_}: {e}"));
        validate_name(&c.name).map_err(fail)?;
        if clusters.iter().any(|k| k.name == c.name) {
            return err(format!("{where_}: cluster name used twice"));
        }
        if c.seeds.is_empty() {
            return err(format!("{where_}: seeds must name at least one node"));
        }
        let (thresholds, refresh) = topology_settings(&c.thresholds, &c.refresh, global, &where_)?;
        let own_tls = c.tls.clone().map(|t| t.relative_to(base_dir));
        let mut seeds = Vec::new();
        for url in &c.seeds {
            let own = Own {
                password: PasswordSource {
                    file: c.password_file.clone().map(|p| base_dir.join(p)),
                    env: c.password_env.clone(),
                },
                tls: own_tls.as_ref(),
                labels: c.labels.clone(),
                metrics: c.metrics.as_ref(),
            };
            let mut seed = make_target(Some("seed"), url, own, thresholds.clone(), defaults)
                .map_err(|e| fail(format!("seed: {e}")))?;
            if !matches!(seed.endpoint, Endpoint::Tcp { .. }) {
                return err(format!(
                    "{where_}: seeds are host:port URLs, not unix sockets"
                ));
            }
            seed.name = format!("{}/seed:{}", c.name, seed.addr());
            seed.cluster = true;
            seeds.push(seed);
        }
        clusters.push(ClusterSpec {
            name: c.name.clone(),
            template: seeds[0].clone(),
            seeds,
            refresh,
            labels: c.labels.clone(),
        });
    }

    Ok(clusters)
}

/// Every `[[sentinel]]`, checked; names must differ from the clusters'.
pub(super) fn sentinels(
    file: &FileConfig,
    base_dir: &Path,
    at: &dyn Fn(&str) -> String,
    global: &Thresholds,
    defaults: &mut Defaults,
    clusters: &[ClusterSpec],
) -> Result<Vec<SentinelSpec>, ConfigError> {
    let mut sentinels: Vec<SentinelSpec> = Vec::new();
    for (i, c) in file.sentinel.iter().enumerate() {
        let where_ = at(&format!("[[sentinel]] #{} ({})", i + 1, c.name));
        let fail = |e: String| ConfigError(format!("{where_}: {e}"));
        validate_name(&c.name).map_err(fail)?;
        if sentinels.iter().any(|k| k.name == c.name) || clusters.iter().any(|k| k.name == c.name) {
            return err(format!(
                "{where_}: the name is used by another cluster or sentinel"
            ));
        }
        if c.sentinels.is_empty() {
            return err(format!(
                "{where_}: sentinels must name at least one sentinel"
            ));
        }
        for m in &c.masters {
            validate_name(m).map_err(|e| fail(format!("master {m:?}: {e}")))?;
        }
        let (thresholds, refresh) = topology_settings(&c.thresholds, &c.refresh, global, &where_)?;
        let own_tls = c.tls.clone().map(|t| t.relative_to(base_dir));
        let source = |file: &Option<PathBuf>, env: &Option<String>| PasswordSource {
            file: file.clone().map(|p| base_dir.join(p)),
            env: env.clone(),
        };
        let mut nodes = Vec::new();
        for url in &c.sentinels {
            let own = Own {
                password: source(&c.sentinel_password_file, &c.sentinel_password_env),
                tls: own_tls.as_ref(),
                labels: c.labels.clone(),
                metrics: c.metrics.as_ref(),
            };
            let mut s = make_target(Some("sentinel"), url, own, thresholds.clone(), defaults)
                .map_err(|e| fail(format!("sentinel: {e}")))?;
            if !matches!(s.endpoint, Endpoint::Tcp { .. }) {
                return err(format!("{where_}: sentinels are host:port URLs"));
            }
            // Sentinels use their own password, or none: not the default.
            if c.sentinel_password_file.is_none()
                && c.sentinel_password_env.is_none()
                && !url.contains('@')
            {
                s.password = None;
            }
            s.name = format!("{}/sentinel/{}", c.name, s.addr());
            nodes.push(s);
        }
        let own = Own {
            password: source(&c.password_file, &c.password_env),
            tls: own_tls.as_ref(),
            labels: c.labels.clone(),
            metrics: c.metrics.as_ref(),
        };
        let data = make_target(Some("data"), &c.sentinels[0], own, thresholds, defaults)
            .map_err(|e| fail(format!("data nodes: {e}")))?;
        let data = Target {
            username: None,
            password: match data.password {
                // The URL's password is the sentinel's, not the data nodes'.
                Some(_) if c.password_file.is_none() && c.password_env.is_none() => {
                    defaults.password.read().map_err(fail)?
                }
                p => p,
            },
            ..data
        };
        sentinels.push(SentinelSpec {
            name: c.name.clone(),
            sentinels: nodes,
            masters: c.masters.clone(),
            refresh,
            data,
            labels: c.labels.clone(),
        });
    }

    Ok(sentinels)
}

/// Every `[[group]]`, checked against the targets; members inherit the
/// group's labels.
pub(super) fn groups(
    file: &FileConfig,
    at: &dyn Fn(&str) -> String,
    global: &Thresholds,
    global_metrics: &super::MetricsOptions,
    targets: &mut [Target],
    clusters: &[ClusterSpec],
) -> Result<Vec<GroupSpec>, ConfigError> {
    let mut groups: Vec<GroupSpec> = Vec::new();
    for (i, g) in file.group.iter().enumerate() {
        let where_ = at(&format!("[[group]] #{} ({})", i + 1, g.name));
        validate_name(&g.name).map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        if groups.iter().any(|k| k.name == g.name) || clusters.iter().any(|c| c.name == g.name) {
            return err(format!(
                "{where_}: the name is used by another group or cluster"
            ));
        }
        if g.members.is_empty() {
            return err(format!("{where_}: members must name at least one instance"));
        }
        for m in &g.members {
            if !targets.iter().any(|t| &t.name == m) {
                return err(format!(
                    "{where_}: member {m:?} is not a configured instance"
                ));
            }
        }
        labels::validate(&g.labels).map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        // Members inherit the group's labels and [group.metrics]; their
        // own win. The file's instances are the first targets, in order.
        let group_metrics = match &g.metrics {
            Some(over) => Some(over.apply(global_metrics, &format!("{where_}: metrics"))?),
            None => None,
        };
        for (i, t) in targets.iter_mut().enumerate() {
            if !g.members.contains(&t.name) {
                continue;
            }
            t.labels = labels::merged(&g.labels, &t.labels);
            if let Some(base) = &group_metrics {
                let own = file.instance.get(i).and_then(|inst| inst.metrics.as_ref());
                t.metrics = std::sync::Arc::new(match own {
                    Some(over) => {
                        over.apply(base, &format!("{where_}: member {:?}: metrics", t.name))?
                    }
                    None => base.clone(),
                });
            }
        }
        groups.push(GroupSpec {
            name: g.name.clone(),
            members: g.members.clone(),
            min_replicas: global.min_replicas,
            labels: g.labels.clone(),
        });
    }

    Ok(groups)
}
