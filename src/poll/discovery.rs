//! Cluster discovery: one task per `[[cluster]]` reads the topology from
//! any node that answers (the nodes it already knows first, then the
//! seeds) every `refresh`, and hands the node list to the fleet as targets
//! named `{cluster}/{host}:{port}`. The fleet applies it through the same
//! diff as a reload, so nodes that stay keep their connection and history.
//!
//! `CLUSTER SHARDS` where the server has it (Redis >= 7, Valkey), `CLUSTER
//! NODES` otherwise. A read that fails keeps the last known topology and
//! says so; it never empties the node list. Between refreshes the task
//! watches its nodes' verdicts and reads again at once when a node's role
//! no longer matches the topology (a failover) or the cluster's epoch
//! moved.

use crate::config::{ClusterSpec, SentinelSpec, Target};
use crate::judge::groups::SentinelFacts;
use crate::judge::groups::Shard;
use crate::net::conn::Conn;
use crate::shutdown::ShutdownSignal;
use crate::state::store::Store;
use crate::state::store::{ClusterView, GroupView};
use crate::wire::cluster::{parse_cluster_nodes, parse_cluster_shards, ClusterNode, NodeRole};
use crate::wire::cluster::{parse_sentinel_table, quorum_reachable};
use crate::wire::info::{info_text, Role};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

/// One topology read's result for a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovery {
    /// The `[[cluster]]`'s or `[[sentinel]]`'s name.
    pub cluster: String,
    /// The nodes to poll: the new topology, or the last known one when
    /// this read failed.
    pub nodes: Vec<Target>,
    /// What the read found, by kind of topology.
    pub found: Found,
}

/// A topology read's result, by what was read.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    /// A Redis Cluster: its shards, threshold, labels and the read's error.
    Cluster(ClusterView),
    /// A Sentinel deployment: its masters' replication groups.
    Sentinel(Vec<(String, GroupView)>),
}

/// How often the nodes' verdicts are checked for a change that calls for
/// reading the topology before the next refresh.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// Re-reads prompted by a change are at most this frequent, so a node
/// flapping between roles cannot turn discovery into a connect storm.
const MIN_REREAD: Duration = Duration::from_secs(2);

/// Read `spec`'s topology now, every `refresh`, and at once after a change,
/// until `shutdown`, sending each result on `tx`. `timeout` bounds each
/// node's read; `store` holds the nodes' verdicts.
pub async fn run(
    spec: ClusterSpec,
    timeout: Duration,
    store: Arc<Store>,
    tx: mpsc::Sender<Discovery>,
    mut shutdown: ShutdownSignal,
) {
    let mut known: Vec<Target> = Vec::new();
    let mut shards: Vec<Shard> = Vec::new();
    let min_replicas = spec.seeds.first().map_or(1, |s| s.thresholds.min_replicas);
    loop {
        let error = match discover_once(&spec, &known, timeout).await {
            Ok((nodes, read_shards)) => {
                if nodes != known {
                    info!(cluster = %spec.name, nodes = nodes.len(), "cluster topology read");
                }
                known = nodes;
                shards = read_shards;
                None
            }
            Err(e) => {
                warn!(cluster = %spec.name, error = %e, nodes = known.len(), "cluster topology read failed; keeping the last known nodes");
                Some(e)
            }
        };
        let discovery = Discovery {
            cluster: spec.name.clone(),
            nodes: known.clone(),
            found: Found::Cluster(ClusterView {
                shards: shards.clone(),
                nodes: known.iter().map(|t| t.name.clone()).collect(),
                min_replicas,
                error,
                labels: spec.labels.clone(),
            }),
        };
        if tx.send(discovery).await.is_err() {
            return;
        }
        let read_at = Instant::now();
        let epoch = max_epoch(&store, &known);
        let next = read_at + spec.refresh;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(WATCH_EVERY) => {}
                _ = shutdown.wait() => return,
            }
            let now = Instant::now();
            if now >= next {
                break;
            }
            if now >= read_at + MIN_REREAD && changed(&store, &shards, epoch, &known) {
                info!(cluster = %spec.name, "a node reports a topology change; reading it now");
                break;
            }
        }
    }
}

/// The highest cluster epoch any node's latest CLUSTER INFO reports.
fn max_epoch(store: &Store, nodes: &[Target]) -> Option<u64> {
    nodes
        .iter()
        .filter_map(|t| store.get(&t.name)?.latest())
        .filter_map(|p| p.health.snapshot.as_ref()?.cluster?.current_epoch)
        .max()
}

/// Whether a node's role disagrees with the shards, or the epoch moved.
fn changed(store: &Store, shards: &[Shard], epoch: Option<u64>, nodes: &[Target]) -> bool {
    let role_of = |name: &str| {
        store
            .get(name)
            .and_then(|s| s.latest())
            .and_then(|p| p.health.snapshot.as_ref()?.role)
    };
    let roles_moved = shards.iter().any(|s| {
        s.master
            .as_deref()
            .is_some_and(|m| role_of(m) == Some(Role::Replica))
            || s.replicas.iter().any(|r| role_of(r) == Some(Role::Master))
    });
    roles_moved || (epoch.is_some() && max_epoch(store, nodes) > epoch)
}
/// Ask the known nodes, then the seeds, until one answers with a topology.
async fn discover_once(
    spec: &ClusterSpec,
    known: &[Target],
    timeout: Duration,
) -> Result<(Vec<Target>, Vec<Shard>), String> {
    let mut last_error = String::from("no seed or known node to ask");
    for candidate in known.iter().chain(&spec.seeds) {
        match read_topology(candidate, timeout).await {
            Ok(nodes) if !nodes.is_empty() => {
                let targets = nodes
                    .iter()
                    .map(|n| spec.node(&n.host, n.port))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok((targets.clone(), shards_of(&nodes, &targets)));
            }
            Ok(_) => last_error = format!("{}: the topology lists no nodes", candidate.addr()),
            Err(e) => last_error = format!("{}: {e}", candidate.addr()),
        }
    }
    Err(last_error)
}

/// The shards of a topology, by node name: every master (with or without
/// slots) and the replicas that follow it. `targets[i]` is `nodes[i]`'s.
fn shards_of(nodes: &[ClusterNode], targets: &[Target]) -> Vec<Shard> {
    let name = |i: usize| targets[i].name.clone();
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.role == NodeRole::Master)
        .map(|(i, m)| Shard {
            slots: m.slots.clone(),
            master: Some(name(i)),
            replicas: nodes
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.role == NodeRole::Replica && r.master_id.as_deref() == Some(m.id.as_str())
                })
                .map(|(j, _)| name(j))
                .collect(),
        })
        .collect()
}

/// One node's view of the topology, over a connection of its own.
async fn read_topology(node: &Target, timeout: Duration) -> Result<Vec<ClusterNode>, String> {
    let deadline = Instant::now() + timeout;
    let mut conn = Conn::connect(node, deadline)
        .await
        .map_err(|e| e.failure.error)?;
    let has_shards = conn.server.multi_section_info();
    if has_shards {
        let reply = conn
            .command(&[b"CLUSTER", b"SHARDS"], deadline)
            .await
            .map_err(|f| f.error)?;
        return parse_cluster_shards(&reply).map_err(|e| e.0);
    }
    let reply = conn
        .command(&[b"CLUSTER", b"NODES"], deadline)
        .await
        .map_err(|f| f.error)?;
    match info_text(&reply) {
        Some(text) => parse_cluster_nodes(text).map_err(|e| e.0),
        None => Err(match reply.as_error() {
            Some(e) => format!(
                "CLUSTER NODES: {}",
                String::from_utf8_lossy(&e[..e.len().min(120)])
            ),
            None => "CLUSTER NODES: not a text reply".into(),
        }),
    }
}

/// Read a `[[sentinel]]`'s groups now and every `refresh` until
/// `shutdown`: from the first sentinel that answers, every watched
/// master's address, replicas, fellow sentinels and quorum.
pub async fn run_sentinel(
    spec: SentinelSpec,
    timeout: Duration,
    tx: mpsc::Sender<Discovery>,
    mut shutdown: ShutdownSignal,
) {
    let mut known: (Vec<Target>, Vec<(String, GroupView)>) = (Vec::new(), Vec::new());
    let min_replicas = spec
        .sentinels
        .first()
        .map_or(1, |s| s.thresholds.min_replicas);
    loop {
        match read_sentinels(&spec, timeout, min_replicas).await {
            Ok(found) => {
                if found.0 != known.0 {
                    info!(sentinel = %spec.name, nodes = found.0.len(), groups = found.1.len(), "sentinel topology read");
                }
                known = found;
            }
            Err(e) => {
                warn!(sentinel = %spec.name, error = %e, "sentinel read failed; keeping the last known nodes");
            }
        }
        let discovery = Discovery {
            cluster: spec.name.clone(),
            nodes: known.0.clone(),
            found: Found::Sentinel(known.1.clone()),
        };
        if tx.send(discovery).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(spec.refresh) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Every node to poll (data nodes and sentinels) and every group, from
/// the first configured sentinel that answers.
async fn read_sentinels(
    spec: &SentinelSpec,
    timeout: Duration,
    min_replicas: u32,
) -> Result<(Vec<Target>, Vec<(String, GroupView)>), String> {
    let mut last_error = String::from("no sentinel to ask");
    for sentinel in &spec.sentinels {
        match read_one_sentinel(spec, sentinel, timeout, min_replicas).await {
            Ok(found) => return Ok(found),
            Err(e) => last_error = format!("{}: {e}", sentinel.addr()),
        }
    }
    Err(last_error)
}

async fn read_one_sentinel(
    spec: &SentinelSpec,
    sentinel: &Target,
    timeout: Duration,
    min_replicas: u32,
) -> Result<(Vec<Target>, Vec<(String, GroupView)>), String> {
    let deadline = Instant::now() + timeout;
    let mut conn = Conn::connect(sentinel, deadline)
        .await
        .map_err(|e| e.failure.error)?;
    let masters = conn
        .command(&[b"SENTINEL", b"MASTERS"], deadline)
        .await
        .map_err(|f| f.error)?;
    let masters = parse_sentinel_table(&masters).map_err(|e| e.0)?;
    let mut nodes: Vec<Target> = Vec::new();
    let mut groups = Vec::new();
    let (host, port) = match &sentinel.endpoint {
        crate::config::Endpoint::Tcp { host, port } => (host.clone(), *port),
        crate::config::Endpoint::Unix { .. } => return Err("a sentinel is a host:port".into()),
    };
    let push = |nodes: &mut Vec<Target>, t: Target| {
        if !nodes.iter().any(|n| n.name == t.name) {
            nodes.push(t);
        }
    };
    push(&mut nodes, spec.sentinel_node(&host, port)?);
    for m in masters {
        let Some(name) = m.get("name").map(str::to_string) else {
            continue;
        };
        if !spec.masters.is_empty() && !spec.masters.contains(&name) {
            continue;
        }
        let replicas = conn
            .command(&[b"SENTINEL", b"REPLICAS", name.as_bytes()], deadline)
            .await
            .map_err(|f| f.error)?;
        let replicas = parse_sentinel_table(&replicas).map_err(|e| e.0)?;
        let others = conn
            .command(&[b"SENTINEL", b"SENTINELS", name.as_bytes()], deadline)
            .await
            .map_err(|f| f.error)?;
        let others = parse_sentinel_table(&others).map_err(|e| e.0)?;
        let ckquorum = conn
            .command(&[b"SENTINEL", b"CKQUORUM", name.as_bytes()], deadline)
            .await
            .map_err(|f| f.error)?;
        let mut members = Vec::new();
        let master_addr = m.addr();
        for entry in std::iter::once(&m).chain(&replicas) {
            if let Some((ip, p)) = entry.addr() {
                let t = spec.data_node(&name, ip, p)?;
                members.push(t.name.clone());
                push(&mut nodes, t);
            }
        }
        for other in &others {
            if let Some((ip, p)) = other.addr() {
                push(&mut nodes, spec.sentinel_node(ip, p)?);
            }
        }
        let reachable = 1 + others
            .iter()
            .filter(|o| !o.has_flag("s_down") && !o.has_flag("disconnected"))
            .count() as u32;
        let facts = SentinelFacts {
            master: master_addr
                .and_then(|(ip, p)| Some(std::net::SocketAddr::new(ip.parse().ok()?, p))),
            odown: m.has_flag("o_down"),
            quorum: m
                .number("quorum")
                .and_then(|q| u32::try_from(q).ok())
                .unwrap_or(0),
            reachable,
            quorum_error: quorum_reachable(&ckquorum).err(),
            failover_in_progress: m.has_flag("failover_in_progress")
                || m.get("failover-state")
                    .is_some_and(|s| s != "none" && !s.is_empty()),
        };
        groups.push((
            format!("{}/{name}", spec.name),
            GroupView {
                members,
                min_replicas,
                sentinel: Some(facts),
                source: Some(spec.name.clone()),
                labels: spec.labels.clone(),
            },
        ));
    }
    Ok((nodes, groups))
}
