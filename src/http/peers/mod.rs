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
//! `[consensus] timeout`), and a cap on the answer's size. Files: this one
//! holds the peers and their calls (over `net::http_client`), `forward`
//! the hop to an owner, `gather` the shard-wide views, `consensus` the
//! regions' votes.

pub mod consensus;
pub mod forward;
pub mod gather;

pub use consensus::Consensus;
pub use forward::forward;
pub use gather::gather;

use crate::config::shard::{ConsensusSpec, PeerUrl, ShardMap};
use crate::net::http_client::{Client, Origin};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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
/// Largest single answer read from a peer (an instance's JSON is < 2 KiB).
pub(super) const MAX_ANSWER: usize = 256 * 1024;
/// Largest merged view or history answer read from a peer (`?all=1` at
/// 10,000 instances is about 1.5 MB).
pub(super) const MAX_FLEET_ANSWER: usize = 32 * 1024 * 1024;

/// Why a request about an instance got no verdict from the peers: the
/// `reason` of a 503 with status `unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerReason {
    /// The owning shard refused or did not answer in time.
    ShardUnavailable,
    /// A forwarded request landed on a shard whose config gives the name
    /// to another shard.
    ShardMismatch,
    /// Fewer region votes arrived than the quorum.
    NoQuorum,
}

impl PeerReason {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerReason::ShardUnavailable => "shard_unavailable",
            PeerReason::ShardMismatch => "shard_mismatch",
            PeerReason::NoQuorum => "no_quorum",
        }
    }
}

/// One other redpulse: a shard or a region, called over the one HTTP
/// client with kept-alive connections.
#[derive(Debug)]
pub struct Peer {
    /// Where the peer answers.
    pub url: PeerUrl,
    client: Client,
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
    /// The peer's HTTP status.
    pub status: StatusCode,
    /// The region whose verdict this is (`x-redpulse-region`).
    pub region: Option<String>,
    /// The peer has not polled the instance yet.
    pub pending: bool,
    /// The answer's body, at most the call's cap.
    pub body: Bytes,
}

impl Peer {
    /// A peer at `url`, with at most [`MAX_IN_FLIGHT`] calls at once.
    pub fn new(url: PeerUrl) -> Peer {
        let origin = Origin {
            host: url.host.clone(),
            port: url.port,
            tls: url.tls.clone(),
        };
        Peer {
            url,
            client: Client::new(origin, MAX_IN_FLIGHT),
        }
    }

    /// Calls answered, and calls that failed (refused, timed out, cut off).
    pub fn outcomes(&self) -> (u64, u64) {
        (
            self.client.answered.load(Ordering::Relaxed),
            self.client.failed.load(Ordering::Relaxed),
        )
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
        self.call_with(method, path_and_query, hop, None, budget, max_body)
            .await
    }

    /// [`Peer::call`] passing a heartbeat's `Authorization: Bearer` token
    /// on (the owner checks it too).
    pub async fn call_with(
        &self,
        method: &Method,
        path_and_query: &str,
        hop: Hop,
        bearer: Option<&HeaderValue>,
        budget: Duration,
        max_body: usize,
    ) -> Result<Reply, String> {
        let mut headers = Vec::with_capacity(2);
        if hop == Hop::Shard {
            headers.push((
                HeaderName::from_static(FORWARDED),
                HeaderValue::from_static("1"),
            ));
        }
        // This process's own credential toward its peers; without one, a
        // ping's bearer token travels on so the owner can check it.
        let own = self
            .url
            .authorization
            .as_ref()
            .and_then(|a| HeaderValue::try_from(a.expose()).ok())
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        if let Some(v) = own.or_else(|| bearer.cloned()) {
            headers.push((hyper::header::AUTHORIZATION, v));
        }
        let path = format!("{}{path_and_query}", self.url.prefix);
        let a = self
            .client
            .call(method, &path, &headers, Bytes::new(), budget, max_body)
            .await?;
        Ok(Reply {
            status: a.status,
            region: a
                .headers
                .get(REGION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            pending: a.headers.contains_key(PENDING),
            body: a.body,
        })
    }
}

/// What this process knows of its peers; replaced whole on a reload that
/// changes them.
#[derive(Debug, Default)]
pub struct Peering {
    /// This process as a shard, with the shards it forwards to.
    pub shards: Option<Sharding>,
    /// The regions that vote on verdicts.
    pub consensus: Option<Consensus>,
}

/// This process as one shard of a fleet, and the shards it forwards to.
#[derive(Debug)]
pub struct Sharding {
    /// Which shard owns which name.
    pub map: Arc<ShardMap>,
    /// Index = shard; this shard's own entry is unused.
    pub peers: Vec<Peer>,
}

impl Peering {
    /// Peers for `shard` and `consensus`; `interval` is how long a
    /// region's vote is reused.
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
            consensus: consensus.map(|c| Consensus::new(c, interval)),
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
    /// A cell holding `p`.
    pub fn new(p: Peering) -> PeeringCell {
        let cell = PeeringCell::default();
        cell.set(p);
        cell
    }
    /// The peering in force now.
    pub fn get(&self) -> Arc<Peering> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Replace the peering (a reload changed it).
    pub fn set(&self, p: Peering) {
        let active = p.shards.is_some() || p.consensus.is_some();
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
        self.active.store(active, Ordering::Release);
    }
    /// Whether there is any peer to ask (shards or regions).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }
}

/// Run futures side by side and collect their outputs in order; each peer
/// call is bounded by its own budget, so this takes as long as the slowest.
pub(super) async fn futures_join_all<F: std::future::Future>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output> {
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

/// Percent-encode what may not appear raw in a path segment.
pub(super) fn encode_path(name: &str) -> String {
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

/// A fake peer for the unit tests of this module's files.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::AsyncReadExt;

    /// A peer on loopback that reads a request head and then runs `answer`
    /// on the connection; counts connections open at once (peak) and in all.
    pub async fn fake_peer<F, Fut>(answer: F) -> (Peer, Arc<AtomicUsize>, Arc<AtomicUsize>)
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
}

#[cfg(test)]
mod tests {
    use super::testing::fake_peer;
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    fn names_are_percent_encoded_for_a_path() {
        assert_eq!(encode_path("a b/c"), "a%20b/c");
    }
}
