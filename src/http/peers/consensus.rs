//! Multi-region consensus: an instance's verdict is the worst status at
//! least `quorum` pollers (this region and its peers) see. Each peer's
//! vote is cached for one poll interval and shared by every request
//! waiting on it; an unreachable region is asked again only after one
//! interval.

use super::{encode_path, futures_join_all, Hop, Peer, PeerReason, MAX_ANSWER, REGION};
use crate::config::shard::ConsensusSpec;
use crate::http::{json, Body};
use crate::judge::outcome::Status;
use crate::state::store::Answer;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// This region's peers and the votes they cast.
#[derive(Debug)]
pub struct Consensus {
    /// The `[consensus]` settings.
    pub spec: Arc<ConsensusSpec>,
    /// The other regions, in `spec.peers` order.
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
    /// The peer's verdict: its region, status and its JSON body.
    Cast {
        /// The region that voted.
        region: String,
        /// What it sees.
        status: Status,
        /// Its instance JSON.
        body: Bytes,
    },
    /// No vote, and why (unreachable, not polled yet, not a verdict).
    Missing(String),
}

/// Entries in the consensus cache at most before it is cleared; names are
/// checked against the store first, so this only bounds churn.
const MAX_CACHED_VOTES: usize = 200_000;

impl Consensus {
    /// The peers of `spec`; a vote is reused for `fresh_for`.
    pub fn new(spec: &Arc<ConsensusSpec>, fresh_for: Duration) -> Consensus {
        Consensus {
            spec: spec.clone(),
            peers: spec.peers.iter().cloned().map(Peer::new).collect(),
            fresh_for,
            cache: Mutex::new(HashMap::new()),
            seen: Mutex::new(vec![Seen::default(); spec.peers.len()]),
        }
    }

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
                    "reason": PeerReason::NoQuorum.as_str(),
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

#[cfg(test)]
mod tests {
    use super::super::testing::fake_peer;
    use super::super::Peering;
    use super::*;
    use std::sync::atomic::Ordering;

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
        // Other names within the interval: no new call, so none of them
        // waits a budget (200 ms) for the silent peer.
        let t = Instant::now();
        for name in ["b", "c", "d"] {
            match c.vote(0, name).await {
                Vote::Missing(e) => assert!(e.contains("asked again"), "{e}"),
                v => panic!("{v:?}"),
            }
        }
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(total.load(Ordering::SeqCst), 1);
        // After the interval it is asked again.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(matches!(c.vote(0, "e").await, Vote::Missing(_)));
        assert_eq!(total.load(Ordering::SeqCst), 2);
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
    fn a_tail_is_spliced_before_the_closing_brace() {
        assert_eq!(&splice(b"{\"a\":1}", ",\"b\":2")[..], b"{\"a\":1,\"b\":2}");
    }
}
