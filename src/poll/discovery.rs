//! Cluster discovery: one task per `[[cluster]]` reads the topology from
//! any node that answers (the nodes it already knows first, then the
//! seeds) every `refresh`, and hands the node list to the fleet as targets
//! named `{cluster}/{host}:{port}`. The fleet applies it through the same
//! diff as a reload, so nodes that stay keep their connection and history.
//!
//! `CLUSTER SHARDS` where the server has it (Redis >= 7, Valkey), `CLUSTER
//! NODES` otherwise. A read that fails keeps the last known topology and
//! says so; it never empties the node list.

use crate::config::{ClusterSpec, Target};
use crate::net::conn::Conn;
use crate::shutdown::ShutdownSignal;
use crate::wire::cluster::{parse_cluster_nodes, parse_cluster_shards, ClusterNode};
use crate::wire::info::info_text;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

/// One topology read's result for a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovery {
    pub cluster: String,
    /// The nodes to poll: the new topology, or the last known one when
    /// this read failed.
    pub nodes: Vec<Target>,
    /// Why this read failed, when it did.
    pub error: Option<String>,
}

/// Read `spec`'s topology now and every `refresh` until `shutdown`,
/// sending each result on `tx`. `timeout` bounds each node's read.
pub async fn run(
    spec: ClusterSpec,
    timeout: Duration,
    tx: mpsc::Sender<Discovery>,
    mut shutdown: ShutdownSignal,
) {
    let mut known: Vec<Target> = Vec::new();
    loop {
        let discovery = match discover_once(&spec, &known, timeout).await {
            Ok(nodes) => {
                if nodes != known {
                    info!(cluster = %spec.name, nodes = nodes.len(), "cluster topology read");
                }
                known = nodes;
                Discovery {
                    cluster: spec.name.clone(),
                    nodes: known.clone(),
                    error: None,
                }
            }
            Err(e) => {
                warn!(cluster = %spec.name, error = %e, nodes = known.len(), "cluster topology read failed; keeping the last known nodes");
                Discovery {
                    cluster: spec.name.clone(),
                    nodes: known.clone(),
                    error: Some(e),
                }
            }
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

/// Ask the known nodes, then the seeds, until one answers with a topology.
async fn discover_once(
    spec: &ClusterSpec,
    known: &[Target],
    timeout: Duration,
) -> Result<Vec<Target>, String> {
    let mut last_error = String::from("no seed or known node to ask");
    for candidate in known.iter().chain(&spec.seeds) {
        match read_topology(candidate, timeout).await {
            Ok(nodes) if !nodes.is_empty() => {
                return nodes
                    .iter()
                    .map(|n| spec.node(&n.host, n.port))
                    .collect::<Result<Vec<_>, _>>();
            }
            Ok(_) => last_error = format!("{}: the topology lists no nodes", candidate.addr()),
            Err(e) => last_error = format!("{}: {e}", candidate.addr()),
        }
    }
    Err(last_error)
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
