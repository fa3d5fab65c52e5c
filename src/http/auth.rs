//! Who may ask what: the web config's basic auth users, rate limit and
//! headers, applied once per request by route class (see
//! `route::Class`). Probes are always open; every other class (reads,
//! writes, peer calls, unknown paths) needs a valid user when any is
//! configured.
//!
//! bcrypt is slow by design, so it never runs on the threads that answer
//! requests: a check runs on the blocking pool, at most one per core but
//! one at a time (at least one), and its outcome is cached under a keyed
//! digest of user, configured hash and password with keys made at start (never
//! the password itself; a reload that changes a user's hash changes the
//! key, so the old entry is never found again). An unknown user is checked
//! against a dummy hash, so it answers like a wrong password, also in time.

use super::route::Class;
use crate::config::text::base64_decode;
use crate::config::web::{RateLimit, WebConfig};
use crate::config::Secret;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::warn;

/// The exporter-toolkit's dummy hash (cost 10): an unknown user's password
/// is checked against it, so it costs what a known user's does.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
/// Cached outcomes at most; the cache is cleared when full (a flood of
/// invented credentials cannot grow it).
const MAX_CACHED: usize = 4096;
/// Refusals are logged at most once per this long, with how many.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// Longest `Authorization` header read.
const MAX_AUTHORIZATION: usize = 4096;

/// What a request is refused with.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 401 with `WWW-Authenticate: Basic realm="redpulse"`.
    Unauthorized,
    /// 429: past the rate limit.
    TooManyRequests,
}

/// The web config in force, as the HTTP side applies it.
#[derive(Debug, Default)]
pub struct Web {
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    limiter: Option<Mutex<Bucket>>,
    /// None: plain HTTP.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Web {
    /// What `c` asks of the listener and of every request; fails when its
    /// certificate, key or client CAs do not load.
    pub fn new(c: &WebConfig) -> Result<Web, String> {
        let tls =
            match &c.tls {
                Some(t) => Some(super::tls::server_config(t).map_err(|e| {
                    format!("web config {}: {e}", crate::config::text::shown(&c.path))
                })?),
                None => None,
            };
        let headers = c
            .headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::try_from(k.as_str()).ok()?,
                    HeaderValue::try_from(v.as_str()).ok()?,
                ))
            })
            .collect();
        Ok(Web {
            users: c.users.clone(),
            headers,
            limiter: c.rate_limit.map(|r| Mutex::new(Bucket::new(r))),
            tls,
        })
    }

    /// The TLS configuration new connections use, if TLS is on.
    pub fn tls(&self) -> Option<&Arc<rustls::ServerConfig>> {
        self.tls.as_ref()
    }

    /// Whether requests are checked or changed at all.
    fn asks_anything(&self) -> bool {
        self.auth_on() || self.limiter.is_some() || !self.headers.is_empty()
    }

    /// Whether basic auth is on.
    pub fn auth_on(&self) -> bool {
        !self.users.is_empty()
    }

    /// Headers the file sets on every answer.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

/// A token bucket: `burst` tokens at most, one more every `interval`.
#[derive(Debug)]
struct Bucket {
    rate: RateLimit,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: RateLimit) -> Bucket {
        Bucket {
            rate,
            tokens: rate.burst as f64,
            at: Instant::now(),
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.at).as_secs_f64() / self.rate.interval.as_secs_f64();
        self.tokens = (self.tokens + refill).min(self.rate.burst as f64);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The live web config, swapped on reload, and what checking credentials
/// needs across requests.
#[derive(Debug)]
pub struct Gate {
    web: RwLock<Arc<Web>>,
    /// Whether the web config asks anything of requests (users, a limit,
    /// headers): one load on the path of every request of a process
    /// without one.
    active: AtomicBool,
    /// Every heartbeat's ping token, by name (other shards' included).
    tokens: RwLock<Arc<BTreeMap<String, Secret>>>,
    /// The cache's keys, drawn at start: two independent SipHash keys,
    /// for a 128-bit digest of user, hash and password.
    keys: [std::collections::hash_map::RandomState; 2],
    cache: RwLock<HashMap<[u8; 16], bool>>,
    bcrypt: Semaphore,
    /// Requests refused (401 and 429).
    pub failures: AtomicU64,
    /// 1 when the latest web config load succeeded.
    pub last_reload_ok: AtomicU64,
    last_log: Mutex<(Option<Instant>, u64)>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new(Web::default())
    }
}

impl Gate {
    /// A gate applying `web`.
    pub fn new(web: Web) -> Gate {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Gate {
            active: AtomicBool::new(web.asks_anything()),
            web: RwLock::new(Arc::new(web)),
            tokens: RwLock::default(),
            keys: Default::default(),
            cache: RwLock::new(HashMap::new()),
            bcrypt: Semaphore::new(cores.saturating_sub(1).max(1)),
            failures: AtomicU64::new(0),
            last_reload_ok: AtomicU64::new(1),
            last_log: Mutex::new((None, 0)),
        }
    }

    /// Whether the web config asks anything of requests; when not, a
    /// request needs no look at it (heartbeat tokens aside).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    fn install(&self, web: Web) {
        let active = web.asks_anything();
        *self.web.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(web);
        self.active.store(active, Ordering::Release);
    }

    /// The web config in force.
    pub fn web(&self) -> Arc<Web> {
        self.web.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Apply a reloaded web config, or keep the running one when it failed
    /// to load (and say so in the metric).
    pub fn reload(&self, loaded: Result<&WebConfig, &str>) {
        let web = match loaded {
            Ok(c) => Web::new(c),
            Err(e) => Err(e.to_string()),
        };
        match web {
            Ok(web) => {
                self.install(web);
                self.last_reload_ok.store(1, Ordering::Relaxed);
            }
            Err(e) => {
                warn!(error = %e, "web config reload failed; keeping the running one");
                self.last_reload_ok.store(0, Ordering::Relaxed);
            }
        }
    }

    /// The heartbeat tokens in force from now on (start, reload).
    pub fn set_tokens(&self, tokens: Arc<BTreeMap<String, Secret>>) {
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = tokens;
    }

    /// A ping to heartbeat `name`: with a token configured, the request
    /// must carry it (`Authorization: Bearer` or `?token=`), and nothing
    /// else is asked, except that a peer that authenticated with basic
    /// auth may pass a ping it checked; without one, the ping is a write
    /// like any other.
    pub async fn check_ping(
        &self,
        name: &str,
        authorization: Option<&HeaderValue>,
        query_token: Option<&str>,
        forwarded: bool,
    ) -> Result<(), Refusal> {
        let token = self
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        let Some(token) = token else {
            return self.check(Class::Write, authorization).await;
        };
        self.limit()?;
        let bearer = authorization
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .map(<[u8]>::trim_ascii);
        let given = bearer.or(query_token.map(str::as_bytes));
        if given.is_some_and(|g| same(g, token.expose().as_bytes())) {
            return Ok(());
        }
        let web = self.web();
        if forwarded && web.auth_on() {
            if let Some((user, password)) = authorization.and_then(basic_credentials) {
                if self.verify(&web, &user, &password).await {
                    return Ok(());
                }
            }
        }
        self.refused("heartbeat token");
        Err(Refusal::Unauthorized)
    }

    /// The rate limit, for every request but the probes.
    fn limit(&self) -> Result<(), Refusal> {
        if let Some(l) = &self.web().limiter {
            if !l
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allow(Instant::now())
            {
                self.refused("rate limit");
                return Err(Refusal::TooManyRequests);
            }
        }
        Ok(())
    }

    /// No web config any more: no auth, no limit, no extra headers.
    pub fn clear(&self) {
        self.install(Web::default());
        self.last_reload_ok.store(1, Ordering::Relaxed);
    }

    /// Whether a request of `class` with `authorization` may go on.
    pub async fn check(
        &self,
        class: Class,
        authorization: Option<&HeaderValue>,
    ) -> Result<(), Refusal> {
        if class == Class::Probe || !self.active() {
            return Ok(());
        }
        self.limit()?;
        let web = self.web();
        if !web.auth_on() {
            return Ok(());
        }
        let ok = match authorization.and_then(basic_credentials) {
            Some((user, password)) => self.verify(&web, &user, &password).await,
            None => false,
        };
        if ok {
            Ok(())
        } else {
            self.refused("unauthorized");
            Err(Refusal::Unauthorized)
        }
    }

    /// bcrypt-check `password` for `user`, from the cache when it has the
    /// outcome.
    async fn verify(&self, web: &Web, user: &str, password: &[u8]) -> bool {
        let (known, hash) = match web.users.get(user) {
            Some(h) => (true, h.as_str()),
            None => (false, DUMMY_HASH),
        };
        // A keyed digest, never the password: SipHash under two keys the
        // process drew from the OS at start. No one can compute it without
        // the keys, and every guess that misses the cache costs a bcrypt
        // check on the one-at-a-time pool, so finding a colliding
        // password is out of reach. It costs a fraction of an HMAC, which
        // matters: an authenticated scraper pays it on every request.
        let digest = {
            use std::hash::BuildHasher;
            let mut d = [0u8; 16];
            for (i, k) in self.keys.iter().enumerate() {
                let h = k.hash_one((user, hash, password));
                d[i * 8..i * 8 + 8].copy_from_slice(&h.to_le_bytes());
            }
            d
        };
        if let Some(&ok) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
        {
            return ok && known;
        }
        let Ok(_permit) = self.bcrypt.acquire().await else {
            return false;
        };
        let (password, hash) = (password.to_vec(), hash.to_string());
        let matched =
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let ok = matched && known;
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(digest, ok);
        ok
    }

    /// Count a refusal and log it at a bounded rate, never with the
    /// credential.
    fn refused(&self, why: &'static str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_log.lock().unwrap_or_else(|e| e.into_inner());
        last.1 += 1;
        let now = Instant::now();
        if last
            .0
            .is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_EVERY)
        {
            warn!(
                reason = why,
                refused = last.1,
                "HTTP requests refused since the last report"
            );
            *last = (Some(now), 0);
        }
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths
/// only (a token compared byte by byte would say how much of it matched).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to a refused request.
pub fn refusal_body(r: &Refusal) -> (hyper::StatusCode, Bytes, Option<(HeaderName, HeaderValue)>) {
    match r {
        Refusal::Unauthorized => (
            hyper::StatusCode::UNAUTHORIZED,
            Bytes::from_static(b"{\"error\":\"unauthorized\"}"),
            Some((
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"redpulse\""),
            )),
        ),
        Refusal::TooManyRequests => (
            hyper::StatusCode::TOO_MANY_REQUESTS,
            Bytes::from_static(b"{\"error\":\"too many requests\"}"),
            None,
        ),
    }
}

/// The `Authorization` header of a request, if any.
pub fn authorization<B>(req: &hyper::Request<B>) -> Option<&HeaderValue> {
    req.headers().get(AUTHORIZATION)
}

/// `Basic base64(user:password)` decoded; None for anything else.
pub fn basic_credentials(v: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let v = v.as_bytes();
    if v.len() > MAX_AUTHORIZATION {
        return None;
    }
    let rest = v
        .strip_prefix(b"Basic ")
        .or_else(|| v.strip_prefix(b"basic "))?;
    let decoded = base64_decode(rest.trim_ascii())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::text::base64_encode;
    use crate::config::web;
    use std::path::Path;

    fn gate(yaml: &str) -> Gate {
        let c = web::parse(yaml, Path::new("/"), Path::new("/web.yml")).unwrap();
        Gate::new(Web::new(&c).unwrap())
    }

    fn basic(user: &str, pass: &str) -> HeaderValue {
        HeaderValue::try_from(format!(
            "Basic {}",
            base64_encode(format!("{user}:{pass}").as_bytes())
        ))
        .unwrap()
    }

    #[test]
    fn base64_round_trips_against_known_vectors() {
        // RFC 4648 §10.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), coded);
            assert_eq!(base64_decode(coded.as_bytes()).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Z!==", "Zm9"] {
            assert_eq!(base64_decode(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(
            basic_credentials(&basic("alice", "p:w")),
            Some(("alice".into(), b"p:w".to_vec()))
        );
        assert_eq!(
            basic_credentials(&HeaderValue::from_static("Bearer x")),
            None
        );
    }

    #[tokio::test]
    async fn users_need_their_password_and_probes_need_nothing() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let g = gate(&format!("basic_auth_users:\n  alice: {hash}\n"));
        let good = basic("alice", "right");
        for _ in 0..2 {
            // The second time from the cache.
            assert_eq!(g.check(Class::Read, Some(&good)).await, Ok(()));
        }
        for bad in [
            basic("alice", "wrong"),
            basic("bob", "right"),
            HeaderValue::from_static("Basic !!"),
        ] {
            assert_eq!(
                g.check(Class::Read, Some(&bad)).await,
                Err(Refusal::Unauthorized)
            );
        }
        assert_eq!(
            g.check(Class::Write, None).await,
            Err(Refusal::Unauthorized)
        );
        assert_eq!(g.check(Class::Peer, None).await, Err(Refusal::Unauthorized));
        assert_eq!(g.check(Class::Probe, None).await, Ok(()));
        assert_eq!(g.failures.load(Ordering::Relaxed), 5);
        // A reload that changes alice's hash: the cached outcome is not used.
        let other = bcrypt::hash("new", 4).unwrap();
        let c = web::parse(
            &format!("basic_auth_users:\n  alice: {other}\n"),
            Path::new("/"),
            Path::new("/w"),
        )
        .unwrap();
        g.reload(Ok(&c));
        assert_eq!(
            g.check(Class::Read, Some(&good)).await,
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            g.check(Class::Read, Some(&basic("alice", "new"))).await,
            Ok(())
        );
        g.reload(Err("broken"));
        assert_eq!(g.last_reload_ok.load(Ordering::Relaxed), 0);
        assert_eq!(
            g.check(Class::Read, Some(&basic("alice", "new"))).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn the_rate_limit_spares_probes_and_refills() {
        let g = gate("rate_limit:\n  interval: 100ms\n  burst: 2\n");
        assert_eq!(g.check(Class::Read, None).await, Ok(()));
        assert_eq!(g.check(Class::Read, None).await, Ok(()));
        assert_eq!(
            g.check(Class::Read, None).await,
            Err(Refusal::TooManyRequests)
        );
        assert_eq!(g.check(Class::Probe, None).await, Ok(()));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(g.check(Class::Read, None).await, Ok(()));
        // burst 0, as in the toolkit's own case: nothing passes.
        let g = gate("rate_limit:\n  interval: 1s\n  burst: 0\n");
        assert_eq!(
            g.check(Class::Read, None).await,
            Err(Refusal::TooManyRequests)
        );
    }
}
