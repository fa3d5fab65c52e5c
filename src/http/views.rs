//! The JSON of the less frequent endpoints: the fleet, the TCP view,
//! readiness and heartbeats, plus the HTML status page. Each returns the
//! HTTP status and body; `http.rs` only routes.

use crate::judge::groups::{
    judge_cluster, judge_group, judge_sentinel_group, slots_text, ClusterVerdict, GroupVerdict,
    MemberState, NodeState,
};
use crate::judge::outcome::Status;
use crate::state::heartbeat::Heartbeats;
use crate::state::render::rfc3339_millis;
use crate::state::store::Store;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::time::Instant;

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
    let mut counts = [0usize; 4];
    let mut not_ok = Vec::new();
    let mut every = Vec::new();
    for slot in store.slots() {
        let ident = slot.ident();
        let matches = labels.iter().all(|(k, v)| ident.labels.get(k) == Some(v));
        if !matches {
            continue;
        }
        let c = store.current(&slot, now);
        counts[c.status as usize] += 1;
        if all {
            let latency = c.published.as_ref().and_then(|p| p.health.latency);
            every.push(json!({
                "instance": &*slot.name,
                "status": c.status.as_str(),
                "reason": c.reason.map(|r| r.as_str()),
                "age_ms": c.age.map(|a| a.as_millis() as u64),
                "latency_ms": latency.map(|l| (l.as_secs_f64() * 1e6).round() / 1e3),
                "labels": (!ident.labels.is_empty()).then_some(&*ident.labels),
            }));
        }
        if c.status != Status::Ok {
            not_ok.push((c.status, slot.name.clone(), c.reason.map(|r| r.as_str())));
        }
    }
    not_ok.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let worst = Status::ALL
        .into_iter()
        .rev()
        .find(|s| counts[*s as usize] > 0)
        .unwrap_or(Status::Ok);
    let list: Vec<Value> = not_ok
        .iter()
        .map(|(status, name, reason)| json!({"instance": &**name, "status": status.as_str(), "reason": reason}))
        .collect();
    let mut v = json!({
        "status": worst.as_str(),
        "instances": counts.iter().sum::<usize>(),
        "counts": {"ok": counts[0], "degraded": counts[1], "critical": counts[2], "down": counts[3]},
        "not_ok": list,
    });
    if all {
        v["all"] = Value::Array(every);
    }
    (ok_or_503(worst == Status::Ok), body(v))
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
    let slots = store.slots();
    let pending = slots.iter().filter(|s| s.latest().is_none()).count();
    let v = json!({
        "status": if pending == 0 { "ready" } else { "not ready" },
        "instances": slots.len(),
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
        v["reason"] = json!("heartbeat_missed");
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
                    let snap = c.published.as_ref().and_then(|p| p.health.snapshot);
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
    let judged = store.clusters().into_iter().map(|(name, view)| {
        let v = cluster_verdict(store, &view, now);
        (v.status, name, v.reasons.first().map(|r| r.as_str()))
    });
    worst_first("clusters", "cluster", judged)
}

/// `{"<list>":[{"<key>":NAME,"status":...,"reason":...}]}`, worst first,
/// 200 only when every entry is ok.
fn worst_first(
    list: &str,
    key: &str,
    judged: impl Iterator<Item = (Status, String, Option<&'static str>)>,
) -> (StatusCode, Vec<u8>) {
    let mut all: Vec<_> = judged.collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let worst = all.first().map_or(Status::Ok, |e| e.0);
    let entries: Vec<Value> = all
        .iter()
        .map(|(status, name, reason)| json!({key: name, "status": status.as_str(), "reason": reason}))
        .collect();
    (ok_or_503(worst == Status::Ok), body(json!({list: entries})))
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
                .and_then(|c| c.published.as_ref()?.health.snapshot);
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
    let judged = store.groups().into_iter().map(|(name, view)| {
        let v = group_verdict(store, &view, now);
        (v.status, name, v.reasons.first().map(|r| r.as_str()))
    });
    worst_first("groups", "group", judged)
}

/// `GET /`: the fleet, worst first, refreshed every 2 s from
/// `/health/redis` and each listed instance. No build step, no external
/// assets.
pub const STATUS_PAGE: &str = include_str!("status.html");
