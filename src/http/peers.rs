//! Other redpulse processes: the shards that own the rest of the fleet,
//! and the regions that vote on a verdict.
//!
//! - Sharding: a request naming another shard's instance (or cluster,
//!   group, heartbeat, history) is forwarded to that shard, once: the
//!   forwarded request carries `x-redpulse-forwarded`, and a request that
//!   carries it is always answered where it lands. The answer says which
//!   shard gave it in `x-redpulse-shard`. Shard-wide views (`/health/redis`,
//!   clusters, groups, status bars, events) gather every shard's own view
//!   and merge them.
//! - Consensus: `/health/redis/{name}` asks each region's peer for its own
//!   verdict (`?local=1`, which is never passed on to more regions) and
//!   reports the worst status that at least `quorum` pollers see. Each
//!   peer's answer is kept for one poll interval and shared by every
//!   request that wants it meanwhile, so lookups never fan out per request.
//!
//! Every peer call is bounded: at most [`MAX_IN_FLIGHT`] at once per peer,
//! kept-alive connections reused, a budget per call (`peer_timeout`, or
//! `[consensus] timeout`), and a cap on the answer's size.

use super::route::{Route, Shared};
use super::{json, Body};
use crate::config::shard::{ConsensusSpec, PeerUrl, ShardMap};
use crate::judge::outcome::Status;
use crate::state::store::Answer;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

/// Marks a request that another shard forwarded: never forwarded again.
pub const FORWARDED: &str = "x-redpulse-forwarded";
/// On forwarded answers: the shard that answered.
pub const SHARD: &str = "x-redpulse-shard";
/// On answers of a process with `[consensus]`: its region.
pub const REGION: &str = "x-redpulse-region";
/// On a region's own answer for an instance it has not polled yet: it has
/// seen nothing, so it casts no vote.
pub const PENDING: &str = "x-redpulse-pending";
/// Calls in flight to one peer at most; more wait within their budget.
pub const MAX_IN_FLIGHT: usize = 64;
/// Idle kept-alive connections kept per peer at most: as many as may be in
/// flight, so a steady load never closes and reopens connections.
const MAX_IDLE: usize = MAX_IN_FLIGHT;
/// Largest single answer read from a peer (an instance's JSON is < 2 KiB).
const MAX_ANSWER: usize = 256 * 1024;
/// Largest merged view or history answer read from a peer (`?all=1` at
/// 10,000 instances is about 1.5 MB).
const MAX_FLEET_ANSWER: usize = 32 * 1024 * 1024;

type Sender = SendRequest<Empty<Bytes>>;

/// Kept-alive connections to one peer.
#[derive(Debug)]
pub struct Peer {
    pub url: PeerUrl,
    idle: Mutex<Vec<Sender>>,
    in_flight: Semaphore,
    /// Calls answered, and calls that failed (refused, timed out, cut off).
    pub answered: AtomicU64,
    pub failed: AtomicU64,
}

/// Which kind of peer a call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// Another shard of this fleet: marked as forwarded, answered there.
    Shard,
    /// Another region (asked with `?local=1`).
    Region,
}

/// A peer's answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub region: Option<String>,
    /// The peer has not polled the instance yet.
    pub pending: bool,
    pub body: Bytes,
}

impl Peer {
    pub fn new(url: PeerUrl) -> Peer {
        Peer {
            url,
            idle: Mutex::new(Vec::new()),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            answered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// `method path_and_query` on this peer within `budget`; the answer's
    /// body is at most `max_body` bytes. `hop` says whether the peer is
    /// another shard (the request is marked [`FORWARDED`] and answered
    /// there) or another region (unmarked, so that region's front may still
    /// pass it to the shard that owns the name).
    pub async fn call(
        &self,
        method: &Method,
        path_and_query: &str,
        hop: Hop,
        budget: Duration,
        max_body: usize,
    ) -> Result<Reply, String> {
        let call = self.call_unbounded(method, path_and_query, hop, max_body);
        let r = tokio::time::timeout(budget, call).await;
        let counter = match r {
            Ok(Ok(_)) => &self.answered,
            _ => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(r) => r,
            Err(_) => Err(format!(
                "{}: no answer within {} ms",
                self.url,
                budget.as_millis()
            )),
        }
    }

    async fn call_unbounded(
        &self,
        method: &Method,
        path_and_query: &str,
        hop: Hop,
        max_body: usize,
    ) -> Result<Reply, String> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| "peer closed".to_string())?;
        let mut sender = match self.take_idle().await {
            Some(s) => s,
            None => self.connect().await?,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.url.prefix))
            .header(hyper::header::HOST, self.url.authority());
        if hop == Hop::Shard {
            req = req.header(FORWARDED, "1");
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| format!("{}: {e}", self.url))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{}: {e}", self.url))?;
        let status = resp.status();
        let region = resp
            .headers()
            .get(REGION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let pending = resp.headers().contains_key(PENDING);
        let body = Limited::new(resp.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| format!("{}: reading the answer: {e}", self.url))?
            .to_bytes();
        if !sender.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
        Ok(Reply {
            status,
            region,
            pending,
            body,
        })
    }

    /// An idle connection that is still open and ready for a request.
    async fn take_idle(&self) -> Option<Sender> {
        loop {
            let mut s = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            if !s.is_closed() && s.ready().await.is_ok() {
                return Some(s);
            }
        }
    }

    async fn connect(&self) -> Result<Sender, String> {
        let url = &self.url;
        let addr = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("{url}: resolve: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: resolve: no address"))?;
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{url}: connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// What this process knows of its peers; replaced whole on a reload that
/// changes them.
#[derive(Debug, Default)]
pub struct Peering {
    pub shards: Option<Sharding>,
    pub consensus: Option<Consensus>,
}

#[derive(Debug)]
pub struct Sharding {
    pub map: Arc<ShardMap>,
    /// Index = shard; this shard's own entry is unused.
    pub peers: Vec<Peer>,
}

#[derive(Debug)]
pub struct Consensus {
    pub spec: Arc<ConsensusSpec>,
    pub peers: Vec<Peer>,
    /// How long a peer's answer is reused: the poll interval.
    pub fresh_for: Duration,
    /// (peer, name) → when asked, and the answer (or why there is none),
    /// shared by every request that wants it while fresh.
    cache: Mutex<HashMap<(usize, Box<str>), Asked>>,
    /// What each peer's calls have shown so far.
    seen: Mutex<Vec<Seen>>,
}

/// What one consensus peer's calls have shown.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// Its region, from an answer, to name its vote when it is missing.
    region: Option<String>,
    /// A call that failed, and until when the peer is not asked again (one
    /// poll interval), so an unreachable region costs one budget per
    /// interval, not one per instance looked up.
    unreachable: Option<(Instant, String)>,
}

/// When a peer was asked, and its answer once it arrives.
type Asked = (Instant, Arc<OnceCell<Vote>>);

/// One peer's view of one instance.
#[derive(Clone, Debug)]
pub enum Vote {
    Cast {
        region: String,
        status: Status,
        body: Bytes,
    },
    Missing(String),
}

/// Entries in the consensus cache at most before it is cleared; names are
/// checked against the store first, so this only bounds churn.
const MAX_CACHED_VOTES: usize = 200_000;

impl Peering {
    pub fn new(
        shard: Option<&Arc<ShardMap>>,
        consensus: Option<&Arc<ConsensusSpec>>,
        interval: Duration,
    ) -> Peering {
        Peering {
            shards: shard.map(|m| Sharding {
                map: m.clone(),
                peers: m.peers.iter().cloned().map(Peer::new).collect(),
            }),
            consensus: consensus.map(|c| Consensus {
                spec: c.clone(),
                peers: c.peers.iter().cloned().map(Peer::new).collect(),
                fresh_for: interval,
                cache: Mutex::new(HashMap::new()),
                seen: Mutex::new(vec![Seen::default(); c.peers.len()]),
            }),
        }
    }

    /// Whether a reload with these settings changes anything here.
    pub fn same_as(
        &self,
        shard: Option<&Arc<ShardMap>>,
        consensus: Option<&Arc<ConsensusSpec>>,
        interval: Duration,
    ) -> bool {
        let s = match (&self.shards, shard) {
            (None, None) => true,
            (Some(a), Some(b)) => *a.map == **b,
            _ => false,
        };
        let c = match (&self.consensus, consensus) {
            (None, None) => true,
            (Some(a), Some(b)) => *a.spec == **b && a.fresh_for == interval,
            _ => false,
        };
        s && c
    }
}

/// The live peering, swapped on reload.
#[derive(Debug, Default)]
pub struct PeeringCell {
    inner: RwLock<Arc<Peering>>,
    /// Whether there is anything to ask: one load on the path of every
    /// request of a process without peers.
    active: AtomicBool,
}

impl PeeringCell {
    pub fn new(p: Peering) -> PeeringCell {
        let cell = PeeringCell::default();
        cell.set(p);
        cell
    }
    pub fn get(&self) -> Arc<Peering> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn set(&self, p: Peering) {
        let active = p.shards.is_some() || p.consensus.is_some();
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
        self.active.store(active, Ordering::Release);
    }
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }
}

/// Forward a request for another shard's name to its owner. None when the
/// request is this shard's to answer.
pub async fn forward(
    sharding: &Sharding,
    method: &Method,
    route: Route<'_>,
    path_and_query: &str,
    forwarded: bool,
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
            "reason": "shard_mismatch",
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
    let reply = peer
        .call(
            method,
            path_and_query,
            Hop::Shard,
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
            body.insert("reason".into(), "shard_unavailable".into());
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

/// Run futures side by side and collect their outputs in order; each peer
/// call is bounded by its own budget, so this takes as long as the slowest.
async fn futures_join_all<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futs: Vec<std::pin::Pin<Box<F>>> = fs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
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

impl Consensus {
    /// This region's own answer for `name` merged with every peer's vote.
    pub async fn verdict(&self, name: &str, local: Answer) -> Response<Body> {
        let asks = (0..self.peers.len()).map(|i| self.vote(i, name));
        let votes = futures_join_all(asks).await;
        let mut cast: Vec<(String, Status, Bytes)> = Vec::new();
        let mut missing = Vec::new();
        if local.pending {
            missing.push(json!({"region": self.spec.region, "error": "not polled yet"}));
        } else {
            cast.push((self.spec.region.clone(), local.status, local.body));
        }
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            for (i, v) in votes.into_iter().enumerate() {
                match v {
                    Vote::Cast {
                        region,
                        status,
                        body,
                    } => {
                        seen[i].region = Some(region.clone());
                        cast.push((region, status, body));
                    }
                    Vote::Missing(error) => {
                        let who = seen[i]
                            .region
                            .clone()
                            .unwrap_or_else(|| self.peers[i].url.to_string());
                        missing.push(json!({"region": who, "error": error}));
                    }
                }
            }
        }
        let statuses: Vec<Status> = cast.iter().map(|c| c.1).collect();
        let verdict = consensus(&statuses, self.spec.quorum);
        let mut votes = serde_json::Map::new();
        for (region, status, _) in &cast {
            votes.insert(region.clone(), status.as_str().into());
        }
        let mut tail = format!(
            ",\"votes\":{},\"quorum\":{}",
            Value::Object(votes),
            self.spec.quorum
        );
        if !missing.is_empty() {
            tail.push_str(&format!(",\"missing_votes\":{}", Value::Array(missing)));
        }
        let (code, body) = match verdict {
            Some(status) => {
                // The details of a poller that saw the verdict, this
                // region's own when it agrees.
                let (region, _, body) = cast
                    .iter()
                    .find(|c| c.1 == status)
                    .expect("a verdict is some voter's status");
                tail.push_str(&format!(
                    ",\"details_from\":{}",
                    Value::from(region.as_str())
                ));
                let code = if status == Status::Ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, splice(body, &tail))
            }
            None => {
                let head = json!({
                    "status": "unknown",
                    "reason": "no_quorum",
                    "instance": name,
                    "error": format!(
                        "{} of {} votes arrived; {} needed",
                        cast.len(),
                        self.peers.len() + 1,
                        self.spec.quorum
                    ),
                })
                .to_string();
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    splice(head.as_bytes(), &tail),
                )
            }
        };
        let mut r = json(code, body);
        if let Ok(v) = HeaderValue::try_from(self.spec.region.as_str()) {
            r.headers_mut().insert(REGION, v);
        }
        r
    }

    /// Peer `i`'s vote on `name`: from the cache while fresh, else asked
    /// once for everyone waiting.
    async fn vote(&self, i: usize, name: &str) -> Vote {
        let now = Instant::now();
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_CACHED_VOTES {
                cache.clear();
            }
            let key = (i, Box::<str>::from(name));
            match cache.get(&key) {
                Some((at, cell)) if now.duration_since(*at) < self.fresh_for => cell.clone(),
                _ => {
                    let cell = Arc::new(OnceCell::new());
                    cache.insert(key, (now, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_init(|| self.ask(i, name)).await.clone()
    }

    async fn ask(&self, i: usize, name: &str) -> Vote {
        let seen = || self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((until, error)) = &seen()[i].unreachable {
            if Instant::now() < *until {
                return Vote::Missing(format!("{error} (asked again after one interval)"));
            }
        }
        let path = format!("/health/redis/{}?local=1", encode_path(name));
        let reply = self.peers[i]
            .call(
                &Method::GET,
                &path,
                Hop::Region,
                self.spec.timeout,
                MAX_ANSWER,
            )
            .await;
        let reply = match reply {
            Ok(r) => {
                seen()[i].unreachable = None;
                r
            }
            Err(e) => {
                seen()[i].unreachable = Some((Instant::now() + self.fresh_for, e.clone()));
                return Vote::Missing(e);
            }
        };
        let Some(region) = reply.region else {
            return Vote::Missing(format!(
                "{}: answered {} without a region: not a redpulse with [consensus]?",
                self.peers[i].url, reply.status
            ));
        };
        if reply.pending {
            return Vote::Missing(format!("{region}: not polled yet"));
        }
        let status = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|v| v["status"].as_str().and_then(Status::parse));
        match status {
            Some(status) => Vote::Cast {
                region,
                status,
                body: reply.body,
            },
            None => Vote::Missing(format!(
                "{region}: no verdict ({} {})",
                reply.status,
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
            )),
        }
    }
}

/// The worst status that at least `quorum` of `votes` see (a vote for
/// `down` also sees `critical` and better); None with fewer votes than
/// `quorum`.
pub fn consensus(votes: &[Status], quorum: u32) -> Option<Status> {
    Status::ALL
        .into_iter()
        .rev()
        .find(|s| votes.iter().filter(|v| *v >= s).count() >= quorum as usize)
}

/// `body` (a JSON object) with `tail` (`,"k":v...`) before its closing brace.
fn splice(body: &[u8], tail: &str) -> Bytes {
    let end = body.iter().rposition(|&b| b == b'}').unwrap_or(body.len());
    let mut out = Vec::with_capacity(body.len() + tail.len());
    out.extend_from_slice(&body[..end]);
    out.extend_from_slice(tail.as_bytes());
    out.push(b'}');
    out.into()
}

/// Percent-encode what may not appear raw in a path segment.
fn encode_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A peer on loopback that reads a request head and then runs `answer`
    /// on the connection; counts connections open at once (peak) and in all.
    async fn fake_peer<F, Fut>(answer: F) -> (Peer, Arc<AtomicUsize>, Arc<AtomicUsize>)
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let answer = Arc::new(answer);
        let (peak2, total) = (peak.clone(), Arc::new(AtomicUsize::new(0)));
        let total2 = total.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                total2.fetch_add(1, Ordering::SeqCst);
                let (open, peak, answer) = (open.clone(), peak2.clone(), answer.clone());
                tokio::spawn(async move {
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    answer(s).await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        let url = PeerUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        (Peer::new(url), peak, total)
    }

    #[tokio::test]
    async fn a_peer_that_says_too_much_or_nothing_is_cut_off_in_budget() {
        // An endless body: refused past the cap, not buffered.
        let (peer, _, _) = fake_peer(|mut s| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
            for _ in 0..10_000 {
                if s.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
        })
        .await;
        let r = peer
            .call(
                &Method::GET,
                "/",
                Hop::Shard,
                Duration::from_secs(5),
                64 * 1024,
            )
            .await;
        assert!(r.unwrap_err().contains("reading the answer"));
        // Silence: an error once the budget is spent, not later.
        let (peer, _, _) = fake_peer(|s| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        })
        .await;
        let t = Instant::now();
        let r = peer
            .call(
                &Method::GET,
                "/",
                Hop::Shard,
                Duration::from_millis(300),
                1024,
            )
            .await;
        assert!(r.unwrap_err().contains("no answer within 300 ms"));
        assert!(
            t.elapsed() < Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
    }

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
        let r = forward(s, &Method::GET, route, &health, false)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let history = format!("/history/redis/{name}");
        let route = Route::parse(&history).unwrap();
        let r = forward(s, &Method::GET, route, &history, false)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[SHARD], "1");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 1 << 20);
    }

    #[tokio::test]
    async fn an_unreachable_region_costs_one_budget_per_interval() {
        let (peer, _, total) = fake_peer(|s| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        })
        .await;
        let spec = Arc::new(ConsensusSpec {
            peers: vec![peer.url.clone()],
            region: "eu".into(),
            quorum: 1,
            timeout: Duration::from_millis(200),
        });
        let p = Peering::new(None, Some(&spec), Duration::from_millis(700));
        let c = p.consensus.as_ref().unwrap();
        let t = Instant::now();
        assert!(matches!(c.vote(0, "a").await, Vote::Missing(_)));
        assert!(t.elapsed() >= Duration::from_millis(200));
        // Other names within the interval: no new call, no wait.
        let t = Instant::now();
        for name in ["b", "c", "d"] {
            match c.vote(0, name).await {
                Vote::Missing(e) => assert!(e.contains("asked again"), "{e}"),
                v => panic!("{v:?}"),
            }
        }
        assert!(t.elapsed() < Duration::from_millis(50), "{:?}", t.elapsed());
        assert_eq!(total.load(Ordering::SeqCst), 1);
        // After the interval it is asked again.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(matches!(c.vote(0, "e").await, Vote::Missing(_)));
        assert_eq!(total.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_to_one_peer_are_capped_and_connections_reused() {
        let (peer, peak, total) = fake_peer(|mut s| async move {
            // Keep-alive: answer every request on this connection slowly.
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                if s.write_all(ok).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 1024];
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        let peer = Arc::new(peer);
        let calls = (0..3 * MAX_IN_FLIGHT).map(|_| {
            let peer = peer.clone();
            tokio::spawn(async move {
                peer.call(&Method::GET, "/", Hop::Shard, Duration::from_secs(10), 1024)
                    .await
            })
        });
        for c in calls.collect::<Vec<_>>() {
            assert_eq!(c.await.unwrap().unwrap().status, StatusCode::OK);
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= MAX_IN_FLIGHT, "{peak} connections at once");
        // 192 calls over at most 64 connections: kept alive and reused.
        let total = total.load(Ordering::SeqCst);
        assert!(total <= MAX_IN_FLIGHT, "{total} connections made");
    }

    #[test]
    fn the_worst_status_a_quorum_sees_wins() {
        use Status::*;
        // By hand: quorum 2 of 3.
        assert_eq!(consensus(&[Down, Ok, Ok], 2), Some(Ok));
        assert_eq!(consensus(&[Down, Down, Ok], 2), Some(Down));
        assert_eq!(consensus(&[Down, Critical, Ok], 2), Some(Critical));
        assert_eq!(consensus(&[Down, Degraded, Critical], 2), Some(Critical));
        assert_eq!(consensus(&[Down, Ok], 2), Some(Ok));
        assert_eq!(consensus(&[Down], 2), None);
        assert_eq!(consensus(&[Down], 1), Some(Down));
        assert_eq!(consensus(&[Ok, Degraded, Down], 3), Some(Ok));
        assert_eq!(consensus(&[], 1), None);
    }

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

    #[test]
    fn splices_and_encodes_paths() {
        assert_eq!(&splice(b"{\"a\":1}", ",\"b\":2")[..], b"{\"a\":1,\"b\":2}");
        assert_eq!(encode_path("a b/c"), "a%20b/c");
    }
}
