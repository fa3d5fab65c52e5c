//! Shard-wide views (`/health/redis`, clusters, groups, status bars,
//! events): every shard's own answer gathered and merged, with the shards
//! that did not answer named.

use super::{futures_join_all, Hop, Sharding, MAX_FLEET_ANSWER};
use crate::http::route::Shared;
use crate::http::{json, Body};
use crate::judge::outcome::Status;
use bytes::Bytes;
use hyper::{Method, Response, StatusCode};
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
    let mut views = vec![serde_json::from_slice::<Value>(&local.1).unwrap_or(Value::Null)];
    let mut missing = Vec::new();
    let key = match view {
        Shared::Fleet => "counts",
        Shared::Clusters => "clusters",
        Shared::Groups => "groups",
        Shared::Bars => "instances",
        Shared::Events => "events",
    };
    for (k, r) in replies {
        match r.map(|r| serde_json::from_slice::<Value>(&r.body)) {
            Ok(Ok(v)) if v.get(key).is_some() => views.push(v),
            _ => missing.push(k),
        }
    }
    let mut merged = match view {
        Shared::Fleet => merge_fleets(&views),
        Shared::Clusters => merge_worst_first(&views, "clusters", "cluster"),
        Shared::Groups => merge_worst_first(&views, "groups", "group"),
        Shared::Bars => merge_bars(views),
        Shared::Events => merge_events(views, path_and_query),
    };
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

/// Merge per-shard fleet views: counts added, lists joined (worst first),
/// the worst status.
pub fn merge_fleets(views: &[Value]) -> Value {
    let mut counts = [0u64; 4];
    let mut not_ok: Vec<Value> = Vec::new();
    let mut all: Option<Vec<Value>> = None;
    for v in views {
        for (i, s) in Status::ALL.iter().enumerate() {
            counts[i] += v["counts"][s.as_str()].as_u64().unwrap_or(0);
        }
        if let Some(list) = v["not_ok"].as_array() {
            not_ok.extend(list.iter().cloned());
        }
        if let Some(list) = v["all"].as_array() {
            all.get_or_insert_with(Vec::new)
                .extend(list.iter().cloned());
        }
    }
    not_ok.sort_by(|a, b| {
        rank(b)
            .cmp(&rank(a))
            .then_with(|| a["instance"].as_str().cmp(&b["instance"].as_str()))
    });
    let worst = (0..4).rev().find(|&i| counts[i] > 0).unwrap_or(0);
    let mut out = json!({
        "status": Status::ALL[worst].as_str(),
        "instances": counts.iter().sum::<u64>(),
        "counts": {"ok": counts[0], "degraded": counts[1], "critical": counts[2], "down": counts[3]},
        "not_ok": not_ok,
    });
    if let Some(all) = all {
        out["all"] = all.into();
    }
    out
}

/// Rank of a JSON entry's `status` (ok 0 .. down 3).
fn rank(v: &Value) -> usize {
    Status::ALL
        .iter()
        .position(|s| v["status"] == s.as_str())
        .unwrap_or(0)
}

/// Per-shard `{"<list>":[{"<key>":NAME,"status":...}]}` lists joined,
/// worst first, with the worst status.
fn merge_worst_first(views: &[Value], list: &str, key: &str) -> Value {
    let mut all: Vec<Value> = views
        .iter()
        .flat_map(|v| v[list].as_array().cloned().unwrap_or_default())
        .collect();
    all.sort_by(|a, b| {
        rank(b)
            .cmp(&rank(a))
            .then_with(|| a[key].as_str().cmp(&b[key].as_str()))
    });
    let worst = all.first().map_or(0, rank);
    json!({ list: all, "status": Status::ALL[worst].as_str() })
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

/// Per-shard event lists, newest first, cut to the request's `limit`
/// (default 100, as each shard's own list).
fn merge_events(views: Vec<Value>, path_and_query: &str) -> Value {
    let limit = path_and_query
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(100);
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
        let a = json!({"status":"ok","instances":2,"counts":{"ok":2,"degraded":0,"critical":0,"down":0},"not_ok":[]});
        let b = json!({"status":"down","instances":3,"counts":{"ok":1,"degraded":1,"critical":0,"down":1},
            "not_ok":[{"instance":"b","status":"degraded","reason":"low_hit_rate"},{"instance":"z","status":"down","reason":"timeout"}]});
        let m = merge_fleets(&[a, b]);
        assert_eq!(m["status"], "down");
        assert_eq!(m["instances"], 5);
        assert_eq!(m["counts"]["ok"], 3);
        assert_eq!(m["not_ok"][0]["instance"], "z");
        assert_eq!(m["not_ok"][1]["instance"], "b");
        let e = merge_events(
            vec![
                json!({"since": "x", "events": [{"at": "2026-11-30T10:00:00.000Z"}, {"at": "2026-11-30T08:00:00.000Z"}]}),
                json!({"since": "x", "events": [{"at": "2026-11-30T09:00:00.000Z"}]}),
            ],
            "/events?limit=2",
        );
        assert_eq!(
            e["events"],
            json!([{"at": "2026-11-30T10:00:00.000Z"}, {"at": "2026-11-30T09:00:00.000Z"}])
        );
        let c = merge_worst_first(
            &[
                json!({"groups": [{"group": "x", "status": "ok"}]}),
                json!({"groups": [{"group": "y", "status": "critical"}, {"group": "a", "status": "ok"}]}),
            ],
            "groups",
            "group",
        );
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
