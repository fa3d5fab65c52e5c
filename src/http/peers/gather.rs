//! Shard-wide views (`/health/redis`, clusters, groups, status bars,
//! events): every shard's own answer gathered and merged, with the shards
//! that did not answer named.

use super::{futures_join_all, Hop, Sharding, MAX_FLEET_ANSWER};
use crate::http::route::{Query, Shared};
use crate::http::views::{
    worst_first_key, ClusterEntry, ClusterList, Counts, FleetView, GroupEntry, GroupList, Listed,
};
use crate::http::{json, Body};
use crate::judge::outcome::Status;
use bytes::Bytes;
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// Shard-wide views being gathered at once, at most; more wait their turn.
static GATHERS: Semaphore = Semaphore::const_new(8);

/// Every shard's own answer to a [`Shared`] view, this shard's `local`
/// one included, merged; `partial` with the shards that did not answer.
/// A local answer that is an error (a bad query) is returned as it is.
pub async fn gather(
    sharding: &Sharding,
    view: Shared,
    local: (StatusCode, Vec<u8>),
    path_and_query: &str,
    query: &Query,
) -> Response<Body> {
    if local.0 != StatusCode::OK && !view.is_health() {
        return json(local.0, local.1.into());
    }
    // Each gather may hold every shard's whole view at once.
    let Ok(_permit) = GATHERS.acquire().await else {
        return json(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"{}"));
    };
    let me = sharding.map.me as usize;
    let calls = sharding
        .peers
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != me)
        .map(|(k, p)| async move {
            let r = p
                .call(
                    &Method::GET,
                    path_and_query,
                    Hop::Shard,
                    sharding.map.timeout,
                    MAX_FLEET_ANSWER,
                )
                .await;
            (k, r)
        });
    let replies = futures_join_all(calls).await;
    // Every answer's body, this shard's own first; a peer whose answer is
    // not its view of this kind is missing.
    let mut bodies: Vec<(Option<usize>, Bytes)> = vec![(None, Bytes::from(local.1))];
    let mut missing = Vec::new();
    for (k, r) in replies {
        match r {
            Ok(r) => bodies.push((Some(k), r.body)),
            Err(_) => missing.push(k),
        }
    }
    let mut merged = match view {
        Shared::Fleet => to_value(merge_fleets(parsed(&bodies, &mut missing, |_| true))),
        Shared::Clusters => merge_clusters(parsed(&bodies, &mut missing, |_| true)),
        Shared::Groups => merge_groups(parsed(&bodies, &mut missing, |_| true)),
        Shared::Bars => merge_bars(parsed(&bodies, &mut missing, |v: &Value| {
            v.get("instances").is_some()
        })),
        Shared::Events => {
            let limit = query
                .get("limit")
                .and_then(|n| n.parse().ok())
                .unwrap_or(DEFAULT_EVENTS);
            merge_events(
                parsed(&bodies, &mut missing, |v: &Value| v.get("events").is_some()),
                limit,
            )
        }
    };
    missing.sort_unstable();
    merged["shards"] = sharding.map.count.into();
    if !missing.is_empty() {
        merged["partial"] = true.into();
        merged["missing_shards"] = missing.clone().into();
    }
    // A fleet cannot be called healthy while part of it is unseen.
    let ok = !view.is_health() || (merged["status"] == "ok" && missing.is_empty());
    json(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        merged.to_string().into(),
    )
}

/// The views of kind `T` among `bodies` that parse and pass `ok`; the
/// peers whose body does not are added to `missing` (this shard's own
/// view, `None`, always counts).
fn parsed<'b, T: Deserialize<'b>>(
    bodies: &'b [(Option<usize>, Bytes)],
    missing: &mut Vec<usize>,
    ok: impl Fn(&T) -> bool,
) -> Vec<T> {
    let mut out = Vec::new();
    for (k, body) in bodies {
        match (serde_json::from_slice::<T>(body), k) {
            (Ok(v), _) if ok(&v) => out.push(v),
            (_, Some(k)) => missing.push(*k),
            (_, None) => {}
        }
    }
    out
}

fn to_value(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("a view serialises")
}

/// A merged list view with the worst status among its entries.
fn with_status(mut v: Value, worst: Status) -> Value {
    v["status"] = worst.as_str().into();
    v
}

/// Per-shard cluster lists joined, worst first, with the worst status.
fn merge_clusters(lists: Vec<ClusterList<'_>>) -> Value {
    let mut clusters: Vec<ClusterEntry> = lists.into_iter().flat_map(|l| l.clusters).collect();
    clusters.sort_by(|a, b| {
        worst_first_key(a.status, &a.cluster).cmp(&worst_first_key(b.status, &b.cluster))
    });
    let worst = clusters.first().map_or(Status::Ok, |c| c.status);
    with_status(to_value(ClusterList { clusters }), worst)
}

/// Per-shard group lists joined, worst first, with the worst status.
fn merge_groups(lists: Vec<GroupList<'_>>) -> Value {
    let mut groups: Vec<GroupEntry> = lists.into_iter().flat_map(|l| l.groups).collect();
    groups.sort_by(|a, b| {
        worst_first_key(a.status, &a.group).cmp(&worst_first_key(b.status, &b.group))
    });
    let worst = groups.first().map_or(Status::Ok, |g| g.status);
    with_status(to_value(GroupList { groups }), worst)
}

/// Merge per-shard fleet views: counts added, lists joined (worst first),
/// the worst status.
pub fn merge_fleets(views: Vec<FleetView<'_>>) -> FleetView<'_> {
    let mut counts = Counts::default();
    let mut not_ok = Vec::new();
    let mut all: Option<Vec<_>> = None;
    for v in views {
        for s in Status::ALL {
            let n = match s {
                Status::Ok => v.counts.ok,
                Status::Degraded => v.counts.degraded,
                Status::Critical => v.counts.critical,
                Status::Down => v.counts.down,
            };
            counts.add(s, n);
        }
        not_ok.extend(v.not_ok);
        if let Some(list) = v.all {
            all.get_or_insert_with(Vec::new).extend(list);
        }
    }
    not_ok.sort_by(|a: &Listed, b: &Listed| {
        worst_first_key(a.status, &a.instance).cmp(&worst_first_key(b.status, &b.instance))
    });
    FleetView {
        all,
        instances: counts.total(),
        status: counts.worst(),
        counts,
        not_ok,
    }
}

/// Per-shard status bars: each shard knows the names it owns.
fn merge_bars(views: Vec<Value>) -> Value {
    let mut views = views.into_iter();
    let mut out = views.next().unwrap_or(Value::Null);
    if !out.is_object() {
        out = json!({"instances": {}});
    }
    for v in views {
        if let (Some(into), Value::Object(from)) =
            (out["instances"].as_object_mut(), &v["instances"])
        {
            into.extend(from.clone());
        }
    }
    out
}

/// Events a list holds unless the request says `limit`: each shard's own
/// default too.
const DEFAULT_EVENTS: usize = 100;

/// Per-shard event lists, newest first, cut to the request's `limit`.
fn merge_events(views: Vec<Value>, limit: usize) -> Value {
    let mut views = views.into_iter();
    let mut out = views.next().unwrap_or(Value::Null);
    if !out.is_object() {
        out = json!({"events": []});
    }
    let mut events: Vec<Value> = out["events"].as_array().cloned().unwrap_or_default();
    for v in views {
        events.extend(v["events"].as_array().into_iter().flatten().cloned());
    }
    // RFC 3339 UTC with milliseconds sorts as text.
    events.sort_by(|a, b| b["at"].as_str().cmp(&a["at"].as_str()));
    events.truncate(limit);
    out["events"] = events.into();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleets_merge_with_missing_shards_named() {
        let a = r#"{"status":"ok","instances":2,"counts":{"ok":2,"degraded":0,"critical":0,"down":0},"not_ok":[]}"#;
        let b = r#"{"status":"down","instances":3,"counts":{"ok":1,"degraded":1,"critical":0,"down":1},
            "not_ok":[{"instance":"b","status":"degraded","reason":"low_hit_rate"},{"instance":"z","status":"down","reason":"timeout"}]}"#;
        let bodies = [
            (None, Bytes::from(a)),
            (Some(1), Bytes::from(b)),
            (Some(2), Bytes::from("{}")),
        ];
        let mut missing = Vec::new();
        let m = to_value(merge_fleets(parsed(&bodies, &mut missing, |_| true)));
        assert_eq!(missing, [2], "a body that is no fleet view");
        assert_eq!(m["status"], "down");
        assert_eq!(m["instances"], 5);
        assert_eq!(m["counts"]["ok"], 3);
        assert_eq!(m["not_ok"][0]["instance"], "z");
        assert_eq!(m["not_ok"][1]["instance"], "b");
        assert_eq!(m["not_ok"][1]["reason"], "low_hit_rate");
        assert!(m.get("all").is_none());
        let e = merge_events(
            vec![
                json!({"since": "x", "events": [{"at": "2026-11-30T10:00:00.000Z"}, {"at": "2026-11-30T08:00:00.000Z"}]}),
                json!({"since": "x", "events": [{"at": "2026-11-30T09:00:00.000Z"}]}),
            ],
            2,
        );
        assert_eq!(
            e["events"],
            json!([{"at": "2026-11-30T10:00:00.000Z"}, {"at": "2026-11-30T09:00:00.000Z"}])
        );
        let lists = [
            r#"{"groups": [{"group": "x", "status": "ok", "reason": null}]}"#,
            r#"{"groups": [{"group": "y", "status": "critical", "reason": "no_master"}, {"group": "a", "status": "ok", "reason": null}]}"#,
        ];
        let lists = lists
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let c = merge_groups(lists);
        assert_eq!(c["status"], "critical");
        let order: Vec<&str> = c["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["group"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["y", "a", "x"]);
        let b = merge_bars(vec![
            json!({"window": "24h", "instances": {"a": {"cells": "oo"}}}),
            json!({"window": "24h", "instances": {"b": {"cells": "dd"}}}),
        ]);
        assert_eq!(b["instances"]["b"]["cells"], "dd");
        assert_eq!(b["window"], "24h");
    }
}
