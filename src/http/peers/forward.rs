//! A request naming another shard's instance, cluster, group, heartbeat
//! or history is passed to that shard once and its answer returned,
//! marked with the shard that gave it.

use super::{Hop, PeerReason, Sharding, MAX_ANSWER, MAX_FLEET_ANSWER, PENDING, REGION, SHARD};
use crate::http::route::Route;
use crate::http::{json, Body};
use hyper::header::HeaderValue;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

/// Forward a request for another shard's name to its owner. None when the
/// request is this shard's to answer.
pub async fn forward(
    sharding: &Sharding,
    method: &Method,
    route: Route<'_>,
    path_and_query: &str,
    forwarded: bool,
    bearer: Option<&HeaderValue>,
) -> Option<Response<Body>> {
    let name = route.owner_key()?;
    let owner = sharding.map.owner_of(name);
    if owner == sharding.map.me {
        return None;
    }
    if forwarded {
        // Loop-proof: answered here whatever it says, and this shard's
        // config disagrees with the sender's.
        let body = json!({
            "status": "unknown",
            "reason": PeerReason::ShardMismatch.as_str(),
            "name": name,
            "shard": owner,
            "error": format!(
                "forwarded to shard {} but its config gives {name:?} to shard {owner}; are all shards on the same config?",
                sharding.map.me
            ),
        });
        return Some(json(
            StatusCode::SERVICE_UNAVAILABLE,
            body.to_string().into(),
        ));
    }
    let peer = &sharding.peers[owner as usize];
    // A history answer (spans, events, minute buckets) can be much larger
    // than a health one.
    let limit = if route.is_large() {
        MAX_FLEET_ANSWER
    } else {
        MAX_ANSWER
    };
    // Only a heartbeat's token travels on, for a ping: the owner checks it.
    let bearer = bearer.filter(|_| matches!(route, Route::HeartbeatPing(_)));
    let reply = peer
        .call_with(
            method,
            path_and_query,
            Hop::Shard,
            bearer,
            sharding.map.timeout,
            limit,
        )
        .await;
    let mut r = match reply {
        Ok(reply) => {
            let mut r = json(reply.status, reply.body);
            if let Some(region) = reply.region.and_then(|v| HeaderValue::try_from(v).ok()) {
                r.headers_mut().insert(REGION, region);
            }
            if reply.pending {
                r.headers_mut()
                    .insert(PENDING, HeaderValue::from_static("1"));
            }
            r
        }
        Err(error) => {
            let key = if route.names_instance() {
                "instance"
            } else {
                "name"
            };
            let mut body = serde_json::Map::new();
            body.insert("status".into(), "unknown".into());
            body.insert(
                "reason".into(),
                PeerReason::ShardUnavailable.as_str().into(),
            );
            body.insert(key.into(), name.into());
            body.insert("shard".into(), owner.into());
            body.insert("error".into(), error.into());
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                Value::Object(body).to_string().into(),
            )
        }
    };
    r.headers_mut().insert(SHARD, HeaderValue::from(owner));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::super::testing::fake_peer;
    use super::super::{PeerUrl, Peering};
    use super::*;
    use crate::config::shard::ShardMap;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn history_answers_may_be_larger_than_health_answers() {
        // The owner answers 1 MiB for anything: too much for a health
        // answer, fine for a history one.
        let (peer, _, _) = fake_peer(|mut s| async move {
            let body = "x".repeat(1 << 20);
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
        })
        .await;
        let spec = crate::config::shard::ShardSpec { index: 0, count: 2 };
        let urls = vec![
            PeerUrl::parse("http://127.0.0.1:1").unwrap(),
            peer.url.clone(),
        ];
        let map = Arc::new(ShardMap::new(spec, urls, Duration::from_secs(2), &[]).unwrap());
        let name = (0..)
            .map(|i| format!("n{i}"))
            .find(|n| map.owner_of(n) == 1)
            .unwrap();
        let p = Peering::new(Some(&map), None, Duration::from_secs(1));
        let s = p.shards.as_ref().unwrap();
        let health = format!("/health/redis/{name}");
        let route = Route::parse(&health).unwrap();
        let r = forward(s, &Method::GET, route, &health, false, None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let history = format!("/history/redis/{name}");
        let route = Route::parse(&history).unwrap();
        let r = forward(s, &Method::GET, route, &history, false, None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[SHARD], "1");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 1 << 20);
    }
}
