//! The JSON of the less frequent endpoints: the fleet, the TCP view,
//! readiness, heartbeats, clusters and groups, plus the HTML status page.
//! Each returns the HTTP status and body; `mod.rs` only routes. The fleet
//! and list views are typed ([`FleetView`], [`ClusterList`],
//! [`GroupList`]): the same types are read back when shards' views are
//! merged (`peers/gather.rs`).

use crate::config::Labels;
use crate::judge::groups::{
    judge_cluster, judge_group, judge_sentinel_group, slots_text, ClusterVerdict, GroupVerdict,
    MemberState, NodeState,
};
use crate::judge::outcome::{Reason, Status};
use crate::state::heartbeat::Heartbeats;
use crate::state::render::rfc3339_millis;
use crate::state::store::Store;
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::time::Instant;

/// `/health/redis`: counts per status, the instances that are not ok
/// (worst first), and with `?all=1` every instance.
#[derive(Debug, Serialize, Deserialize)]
pub struct FleetView<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<Every<'a>>>,
    pub counts: Counts,
    pub instances: u64,
    #[serde(borrow)]
    pub not_ok: Vec<Listed<'a>>,
    pub status: Status,
}

/// Instances per status.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    pub critical: u64,
    pub degraded: u64,
    pub down: u64,
    pub ok: u64,
}

impl Counts {
    /// One more instance of `s`.
    pub fn add(&mut self, s: Status, n: u64) {
        *match s {
            Status::Ok => &mut self.ok,
            Status::Degraded => &mut self.degraded,
            Status::Critical => &mut self.critical,
            Status::Down => &mut self.down,
        } += n;
    }

    /// Every instance counted.
    pub fn total(&self) -> u64 {
        self.ok + self.degraded + self.critical + self.down
    }

    /// The worst status with an instance (ok when none).
    pub fn worst(&self) -> Status {
        let n = [self.ok, self.degraded, self.critical, self.down];
        Status::ALL
            .into_iter()
            .rev()
            .find(|s| n[*s as usize] > 0)
            .unwrap_or(Status::Ok)
    }
}

/// An instance in a fleet view's `not_ok` list.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listed<'a> {
    #[serde(borrow)]
    pub instance: Cow<'a, str>,
    #[serde(borrow)]
    pub reason: Option<Cow<'a, str>>,
    pub status: Status,
}

/// An instance in a fleet view's `all` list.
#[derive(Debug, Serialize, Deserialize)]
pub struct Every<'a> {
    pub age_ms: Option<u64>,
    #[serde(borrow)]
    pub instance: Cow<'a, str>,
    pub labels: Option<Cow<'a, Labels>>,
    pub latency_ms: Option<f64>,
    #[serde(borrow)]
    pub reason: Option<Cow<'a, str>>,
    pub status: Status,
}

/// `/health/clusters`: every cluster, worst first.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClusterList<'a> {
    #[serde(borrow)]
    pub clusters: Vec<ClusterEntry<'a>>,
}

/// A cluster in [`ClusterList`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterEntry<'a> {
    #[serde(borrow)]
    pub cluster: Cow<'a, str>,
    #[serde(borrow)]
    pub reason: Option<Cow<'a, str>>,
    pub status: Status,
}

/// `/health/groups`: every replication group, worst first.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct GroupList<'a> {
    #[serde(borrow)]
    pub groups: Vec<GroupEntry<'a>>,
}

/// A group in [`GroupList`].
#[derive(Debug, Serialize, Deserialize)]
pub struct GroupEntry<'a> {
    #[serde(borrow)]
    pub group: Cow<'a, str>,
    #[serde(borrow)]
    pub reason: Option<Cow<'a, str>>,
    pub status: Status,
}

/// Sort key of a listed subject: worst status first, then by name.
pub fn worst_first_key(status: Status, name: &str) -> (std::cmp::Reverse<Status>, &str) {
    (std::cmp::Reverse(status), name)
}

fn typed(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialising a view cannot fail")
}

fn body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).expect("serialising a Value cannot fail")
}

fn ok_or_503(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// `{"error":"unknown instance","instance":...}`
pub fn unknown_instance(name: &str) -> Vec<u8> {
    body(json!({"error": "unknown instance", "instance": name}))
}

/// `GET /health/redis`: counts per status, the instances that are not ok
/// (worst first), and 200 only when every instance is ok. With `all`, also
/// every instance's status, reason, age and latency (for the status page).
pub fn fleet(
    store: &Store,
    now: Instant,
    all: bool,
    labels: &[(String, String)],
) -> (StatusCode, Vec<u8>) {
    let mut v = FleetView {
        all: all.then(Vec::new),
        counts: Counts::default(),
        instances: 0,
        not_ok: Vec::new(),
        status: Status::Ok,
    };
    for slot in store.slots() {
        let ident = slot.ident();
        let matches = labels.iter().all(|(k, v)| ident.labels.get(k) == Some(v));
        if !matches {
            continue;
        }
        let c = store.current(&slot, now);
        v.counts.add(c.status, 1);
        let reason = c.reason.map(|r| Cow::Borrowed(r.as_str()));
        if let Some(every) = &mut v.all {
            let latency = c.published.as_ref().and_then(|p| p.health.latency);
            every.push(Every {
                age_ms: c.age.map(|a| a.as_millis() as u64),
                instance: Cow::Owned(slot.name.to_string()),
                labels: (!ident.labels.is_empty()).then(|| Cow::Owned((*ident.labels).clone())),
                latency_ms: latency.map(|l| (l.as_secs_f64() * 1e6).round() / 1e3),
                reason: reason.clone(),
                status: c.status,
            });
        }
        if c.status != Status::Ok {
            v.not_ok.push(Listed {
                instance: Cow::Owned(slot.name.to_string()),
                reason,
                status: c.status,
            });
        }
    }
    v.not_ok.sort_by(|a, b| {
        worst_first_key(a.status, &a.instance).cmp(&worst_first_key(b.status, &b.instance))
    });
    v.instances = v.counts.total();
    v.status = v.counts.worst();
    (ok_or_503(v.status == Status::Ok), typed(&v))
}

/// `GET /health/tcp/{name}`: did the poller's last connection attempt get
/// in ("is the process even up"), independent of what INFO said.
pub fn tcp(store: &Store, name: &str, now: Instant) -> (StatusCode, Vec<u8>) {
    let Some(slot) = store.get(name) else {
        return (StatusCode::NOT_FOUND, unknown_instance(name));
    };
    let c = store.current(&slot, now);
    let (up, error) = match (&c.published, c.stale_error()) {
        (Some(p), None) if p.health.tcp_ok => (true, None),
        (Some(p), None) => (
            false,
            Some(
                p.health
                    .error
                    .clone()
                    .unwrap_or_else(|| "connection failed".into()),
            ),
        ),
        (_, stale) => (false, stale),
    };
    let mut v = json!({"status": if up { "up" } else { "down" }, "instance": &*slot.name, "addr": &*slot.addr});
    if let Some(p) = &c.published {
        v["checked_at"] = json!(rfc3339_millis(p.health.checked_at));
        v["age_ms"] = json!(c.age.unwrap_or_default().as_millis() as u64);
    }
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    (ok_or_503(up), body(v))
}

/// `GET /readyz`: 200 once every instance has a verdict (ok or not).
pub fn readiness(store: &Store) -> (StatusCode, Vec<u8>) {
    let instances = store.slots().len();
    let pending = store.pending();
    let v = json!({
        "status": if pending == 0 { "ready" } else { "not ready" },
        "instances": instances,
        "pending": pending,
    });
    (ok_or_503(pending == 0), body(v))
}

/// `GET, POST /heartbeat/{name}`: record a ping.
pub fn ping(heartbeats: &Heartbeats, name: &str, now: Instant) -> (StatusCode, Vec<u8>) {
    if heartbeats.ping(name, now, std::time::SystemTime::now()) {
        (StatusCode::OK, body(json!({"status": "ok"})))
    } else {
        (
            StatusCode::NOT_FOUND,
            body(json!({"error": "unknown heartbeat", "heartbeat": name})),
        )
    }
}

/// `GET /health/heartbeat/{name}`: 200 while the last ping is within
/// interval + grace, else 503 with `heartbeat_missed`.
pub fn heartbeat(heartbeats: &Heartbeats, name: &str, now: Instant) -> (StatusCode, Vec<u8>) {
    let Some(b) = heartbeats.state(name, now) else {
        return (
            StatusCode::NOT_FOUND,
            body(json!({"error": "unknown heartbeat", "heartbeat": name})),
        );
    };
    let mut v = json!({
        "status": if b.alive { "ok" } else { "down" },
        "heartbeat": name,
        "interval_ms": b.interval.as_millis() as u64,
        "grace_ms": b.grace.as_millis() as u64,
        "last_ping": b.last_ping.map(|(wall, _)| rfc3339_millis(wall)),
        "age_ms": b.last_ping.map(|(_, age)| age.as_millis() as u64),
    });
    if !b.alive {
        v["reason"] = json!(Reason::HeartbeatMissed.as_str());
    }
    (ok_or_503(b.alive), body(v))
}

/// Judge one cluster from its view and its nodes' current verdicts.
pub fn cluster_verdict(
    store: &Store,
    view: &crate::state::store::ClusterView,
    now: Instant,
) -> ClusterVerdict {
    let nodes: Vec<NodeState> = view
        .nodes
        .iter()
        .map(|name| {
            let (status, snapshot) = match store.get(name) {
                Some(slot) => {
                    let c = store.current(&slot, now);
                    let snap = c
                        .published
                        .as_ref()
                        .and_then(|p| p.health.snapshot.as_deref().copied());
                    (c.status, snap)
                }
                None => (Status::Down, None),
            };
            NodeState {
                name: name.clone(),
                status,
                role: snapshot.and_then(|s| s.role),
                cluster: snapshot.and_then(|s| s.cluster),
            }
        })
        .collect();
    judge_cluster(&view.shards, &nodes, view.min_replicas)
}

/// `GET /health/cluster/{name}`: the cluster judged as a whole; 200 when
/// ok, else 503; 404 for an unknown cluster.
pub fn cluster(store: &Store, name: &str, now: Instant) -> (StatusCode, Vec<u8>) {
    let Some((_, view)) = store.clusters().into_iter().find(|(n, _)| n == name) else {
        return (
            StatusCode::NOT_FOUND,
            body(json!({"error": "unknown cluster", "cluster": name})),
        );
    };
    let v = cluster_verdict(store, &view, now);
    let info = v.info.unwrap_or_default();
    let mut out = json!({
        "status": v.status.as_str(),
        "cluster": name,
        "reasons": v.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "state": info.state_ok.map(|ok| if ok { "ok" } else { "fail" }),
        "slots_assigned": info.slots_assigned,
        "slots_ok": info.slots_ok,
        "slots_pfail": info.slots_pfail,
        "slots_fail": info.slots_fail,
        "known_nodes": info.known_nodes,
        "nodes_down": v.nodes_down,
        "shards": v.shards.iter().map(|s| json!({
            "slots": slots_text(&s.slots),
            "master": s.master,
            "replicas": s.replicas,
            "replicas_online": s.replicas_online,
        })).collect::<Vec<_>>(),
    });
    if !view.labels.is_empty() {
        out["labels"] = json!(view.labels);
    }
    if let Some(r) = v.reasons.first() {
        out["reason"] = json!(r.as_str());
    }
    if let Some(e) = &view.error {
        out["discovery_error"] = json!(e);
    }
    (ok_or_503(v.status == Status::Ok), body(out))
}

/// `GET /health/clusters`: every cluster with its status, worst first.
pub fn clusters(store: &Store, now: Instant) -> (StatusCode, Vec<u8>) {
    let mut clusters: Vec<ClusterEntry> = store
        .clusters()
        .into_iter()
        .map(|(name, view)| {
            let v = cluster_verdict(store, &view, now);
            ClusterEntry {
                cluster: Cow::Owned(name),
                reason: v.reasons.first().map(|r| Cow::Borrowed(r.as_str())),
                status: v.status,
            }
        })
        .collect();
    clusters.sort_by(|a, b| {
        worst_first_key(a.status, &a.cluster).cmp(&worst_first_key(b.status, &b.cluster))
    });
    let ok = clusters.first().is_none_or(|c| c.status == Status::Ok);
    (ok_or_503(ok), typed(&ClusterList { clusters }))
}

/// Judge one static group from its members' current verdicts.
pub fn group_verdict(
    store: &Store,
    view: &crate::state::store::GroupView,
    now: Instant,
) -> GroupVerdict {
    let members: Vec<MemberState> = view
        .members
        .iter()
        .map(|name| {
            let slot = store.get(name);
            let c = slot.as_ref().map(|s| store.current(s, now));
            let snap = c
                .as_ref()
                .and_then(|c| c.published.as_ref()?.health.snapshot.as_deref().copied());
            MemberState {
                name: name.clone(),
                status: c.as_ref().map_or(Status::Down, |c| c.status),
                addr: slot.as_ref().and_then(|s| s.addr.parse().ok()),
                role: snap.and_then(|s| s.role),
                follows: snap
                    .and_then(|s| Some(std::net::SocketAddr::new(s.master_ip?, s.master_port?))),
                link_up: snap.and_then(|s| s.master_link_up),
            }
        })
        .collect();
    match &view.sentinel {
        Some(facts) => judge_sentinel_group(&members, view.min_replicas, facts),
        None => judge_group(&members, view.min_replicas),
    }
}

/// `GET /health/group/{name}`: a replication group judged as a whole.
pub fn group(store: &Store, name: &str, now: Instant) -> (StatusCode, Vec<u8>) {
    let Some((_, view)) = store.groups().into_iter().find(|(n, _)| n == name) else {
        return (
            StatusCode::NOT_FOUND,
            body(json!({"error": "unknown group", "group": name})),
        );
    };
    let v = group_verdict(store, &view, now);
    let mut out = json!({
        "status": v.status.as_str(),
        "group": name,
        "reasons": v.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "master": v.master,
        "masters": v.masters,
        "replicas": v.replicas.iter().map(|(n, s, link)| json!({
            "instance": n,
            "status": s.as_str(),
            "master_link_status": link.map(|up| if up { "up" } else { "down" }),
        })).collect::<Vec<_>>(),
    });
    if !view.labels.is_empty() {
        out["labels"] = json!(view.labels);
    }
    if let Some(r) = v.reasons.first() {
        out["reason"] = json!(r.as_str());
    }
    if let Some(f) = &view.sentinel {
        out["sentinels_reachable"] = json!(f.reachable);
        out["quorum"] = json!(f.quorum);
        out["sentinel_status"] = json!(if f.odown {
            "odown"
        } else if f.master.is_none() {
            "sdown"
        } else {
            "ok"
        });
        out["failover_in_progress"] = json!(f.failover_in_progress);
    }
    (ok_or_503(v.status == Status::Ok), body(out))
}

/// `GET /health/groups`: every group with its status, worst first.
pub fn groups(store: &Store, now: Instant) -> (StatusCode, Vec<u8>) {
    let mut groups: Vec<GroupEntry> = store
        .groups()
        .into_iter()
        .map(|(name, view)| {
            let v = group_verdict(store, &view, now);
            GroupEntry {
                group: Cow::Owned(name),
                reason: v.reasons.first().map(|r| Cow::Borrowed(r.as_str())),
                status: v.status,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        worst_first_key(a.status, &a.group).cmp(&worst_first_key(b.status, &b.group))
    });
    let ok = groups.first().is_none_or(|g| g.status == Status::Ok);
    (ok_or_503(ok), typed(&GroupList { groups }))
}

/// `GET /`: the fleet, worst first, refreshed every 2 s from
/// `/health/redis` and each listed instance. No build step, no external
/// assets.
pub const STATUS_PAGE: &str = include_str!("status.html");
