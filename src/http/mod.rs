//! The HTTP side, hyper 1.x over HTTP/1.1. Every request is parsed once
//! into a [`route::Route`] and answered by one match in [`answer`].
//! Endpoints (HEAD works wherever GET does; another method on a known path
//! is 405 with `Allow`; an unknown path is 404):
//!
//! - `GET /health/redis/{name}`: the instance's health JSON; 200 when ok,
//!   503 otherwise, 404 JSON for an unknown name. `?local=1`: this
//!   region's own verdict, no consensus.
//! - `GET /health/redis`: the fleet; 200 only when every instance is ok
//!   (`?all=1` lists every instance, `?label=k:v` filters).
//! - `GET /health/tcp/{name}`: 200 when the last connection attempt got in.
//! - `GET, POST /heartbeat/{name}`: record a configured heartbeat's ping.
//! - `GET /health/heartbeat/{name}`: 200 while pings arrive in time.
//! - `GET /health/cluster/{name}`: a Redis Cluster judged as a whole.
//! - `GET /health/clusters`: every cluster's status, worst first.
//! - `GET /health/group/{name}`: a replication group.
//! - `GET /health/groups`: every group's status, worst first.
//! - `GET /history/redis/{name}`: uptime, transitions and minutes
//!   (`?window=24h`; also `/history/cluster/`, `/history/group/`,
//!   `/history/heartbeat/`; see `history.rs`).
//! - `GET /history/bars`: the status page's bars (`?window=&cells=&name=`).
//! - `GET /events`: fleet-wide transitions, newest first (`?since=&limit=`).
//! - `GET /metrics`: Prometheus text format (see `metrics.rs`).
//! - `GET /`: the HTML status page.
//! - `GET /readyz`, `GET /-/ready`: 200 once every instance has a verdict.
//! - `GET /healthz`, `GET /-/healthy`: the process is alive; 200.
//!
//! Headers between shards and regions (see `peers.rs`):
//! `x-redpulse-forwarded` marks a request another shard forwarded (never
//! forwarded again), `x-redpulse-shard` names the shard that answered,
//! `x-redpulse-region` the region whose verdict this is, and
//! `x-redpulse-pending` a region's answer for an instance it has not polled
//! yet. Answers come from the store and never wait on Redis.

pub mod auth;
pub mod body;
pub mod history;
pub mod metrics;
pub mod peers;
pub mod process;
pub mod route;
pub mod tls;
pub mod views;

use crate::judge::outcome::Status;
use crate::shutdown::ShutdownSignal;
use crate::state::heartbeat::Heartbeats;
use crate::state::store::Store;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use route::{Class, Query, Route, Shared};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, warn};

/// A client must send its request headers within this time, so half-open
/// connections cannot pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted; health requests are a few hundred bytes.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long in-flight requests get to finish at shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the handlers read.
#[derive(Debug)]
pub struct AppState {
    pub store: Arc<Store>,
    pub heartbeats: Arc<Heartbeats>,
    /// None where no history runs (unit tests).
    pub history: Option<Arc<crate::history::History>>,
    /// Other shards and regions.
    pub peering: Arc<peers::PeeringCell>,
    /// The web config's users, rate limit and headers.
    pub gate: Arc<auth::Gate>,
}

use body::Body;

/// Serve until `shutdown` fires, with at most `max_connections` open,
/// then drain open connections for at most [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    max_connections: usize,
    mut shutdown: ShutdownSignal,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: back off briefly instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!(%peer, "too many HTTP connections; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        // TLS as the web config says now: a reload applies to new
        // connections.
        let tls = state.gate.web().tls().cloned();
        let state = state.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => serve_connection(TokioIo::new(stream), state, watcher).await,
                Some(config) => {
                    // A client that does not finish its handshake in time
                    // (or speaks plain HTTP) gets no answer.
                    let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, accept).await {
                        Ok(Ok(tls)) => serve_connection(TokioIo::new(tls), state, watcher).await,
                        Ok(Err(e)) => {
                            debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("HTTP connections still open after the drain timeout; closing them");
    }
}

/// Serve HTTP/1.1 on one connection (plain or TLS) until it ends or the
/// shutdown's drain closes it.
async fn serve_connection<IO>(
    io: IO,
    state: Arc<AppState>,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), hyper::Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(answer(&state, &req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD)
        .serve_connection(io, service);
    watcher.watch(conn).await
}

/// Answer one request: the path parsed into a [`Route`] (404 when none),
/// the method checked against it (405 with `Allow`), the query parsed once
/// (400), the caller's class decided, then other shards and regions where
/// the route belongs to them, then one match over the routes.
pub async fn answer<B>(state: &Arc<AppState>, req: &Request<B>) -> Response<Body> {
    let route = Route::parse(req.uri().path());
    // Only peers and the gate care who forwarded a request: a process with
    // neither skips the header lookup.
    let forwarded = (state.peering.active() || state.gate.active())
        && req.headers().contains_key(peers::FORWARDED);
    // Access control decides here, once, per class of caller; an unknown
    // path is a read (401 before 404, so paths cannot be probed).
    let class = route.map_or(Class::Read, |r| r.class(forwarded));
    let authorization = auth::authorization(req);
    let allowed = match route {
        Some(Route::HeartbeatPing(name)) => {
            let query = req.uri().query().unwrap_or("");
            let token = query_token(query);
            state
                .gate
                .check_ping(name, authorization, token.as_deref(), forwarded)
                .await
        }
        _ => state.gate.check(class, authorization).await,
    };
    let mut r = match allowed {
        Ok(()) => match route {
            Some(route) => routed(state, req, route, forwarded).await,
            None => not_found(),
        },
        Err(refusal) => {
            let (code, body, header) = auth::refusal_body(&refusal);
            let mut r = json(code, body);
            if let Some((k, v)) = header {
                r.headers_mut().insert(k, v);
            }
            r
        }
    };
    let h = r.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if state.gate.active() {
        for (k, v) in state.gate.web().headers() {
            h.insert(k.clone(), v.clone());
        }
    }
    r
}

/// A ping's `?token=`, decoded (None when absent or malformed).
fn query_token(query: &str) -> Option<String> {
    crate::config::text::query_pairs(query)
        .filter_map(Result::ok)
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v)
}

/// Answer a request for a known route that may be answered.
async fn routed<B>(
    state: &Arc<AppState>,
    req: &Request<B>,
    route: Route<'_>,
    forwarded: bool,
) -> Response<Body> {
    let method = req.method();
    if !route.allows(method) {
        return method_not_allowed(route.allow());
    }
    let query = match Query::parse(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            let body = serde_json::json!({ "error": e }).to_string();
            return json(StatusCode::BAD_REQUEST, body.into());
        }
    };
    if let Some(r) = with_peers(state, req, route, &query, forwarded).await {
        return r;
    }
    let now = Instant::now().into_std();
    match route {
        Route::Healthz => json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}")),
        Route::Readyz => view(views::readiness(&state.store)),
        Route::Metrics => metrics_off_thread(state.clone(), req).await,
        Route::StatusPage => html(views::STATUS_PAGE),
        Route::Fleet => view(views::fleet(&state.store, now, query.all, &query.labels)),
        Route::Instance(name) => instance(state, name, now),
        Route::Tcp(name) => view(views::tcp(&state.store, name, now)),
        Route::Cluster(name) => view(views::cluster(&state.store, name, now)),
        Route::Clusters => view(views::clusters(&state.store, now)),
        Route::Group(name) => view(views::group(&state.store, name, now)),
        Route::Groups => view(views::groups(&state.store, now)),
        Route::HeartbeatHealth(name) => view(views::heartbeat(&state.heartbeats, name, now)),
        Route::HeartbeatPing(name) => view(views::ping(&state.heartbeats, name, now)),
        Route::History(..) | Route::Bars | Route::Events => {
            view(history_answer(state.clone(), route, query).await)
        }
    }
}

/// What other shards or regions answer: a request for another shard's
/// name, a shard-wide view over every shard, an instance's consensus
/// verdict. None when this process answers alone.
async fn with_peers<B>(
    state: &Arc<AppState>,
    req: &Request<B>,
    route: Route<'_>,
    query: &Query,
    forwarded: bool,
) -> Option<Response<Body>> {
    if !state.peering.active() {
        return None;
    }
    let peering = state.peering.get();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path(), |p| p.as_str());
    if let Some(s) = &peering.shards {
        let bearer = auth::authorization(req).filter(|v| v.as_bytes().starts_with(b"Bearer "));
        if let Some(r) =
            peers::forward(s, req.method(), route, path_and_query, forwarded, bearer).await
        {
            return Some(r);
        }
        if let (false, Some(view)) = (forwarded, route.gathers()) {
            let now = Instant::now().into_std();
            let local = match view {
                Shared::Fleet => views::fleet(&state.store, now, query.all, &query.labels),
                Shared::Clusters => views::clusters(&state.store, now),
                Shared::Groups => views::groups(&state.store, now),
                Shared::Bars | Shared::Events => {
                    history_answer(state.clone(), route, query.clone()).await
                }
            };
            return Some(peers::gather(s, view, local, path_and_query, query).await);
        }
    }
    let c = peering.consensus.as_ref()?;
    let Route::Instance(name) = route else {
        return None;
    };
    let answer = state.store.answer(name, Instant::now().into_std())?;
    if query.local {
        let mut r = json(code_for(answer.status == Status::Ok), answer.body);
        if let Ok(v) = HeaderValue::try_from(c.spec.region.as_str()) {
            r.headers_mut().insert(peers::REGION, v);
        }
        if answer.pending {
            r.headers_mut()
                .insert(peers::PENDING, HeaderValue::from_static("1"));
        }
        return Some(r);
    }
    Some(c.verdict(name, answer).await)
}

/// History reads running at once, at most (each holds a database
/// connection on the blocking pool).
static HISTORY_READS: Semaphore = Semaphore::const_new(8);

/// `/history/...`, `/history/bars` and `/events`, answered on the
/// blocking pool.
async fn history_answer(
    state: Arc<AppState>,
    route: Route<'_>,
    query: Query,
) -> (StatusCode, Vec<u8>) {
    let Some(h) = state.history.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            b"{\"error\":\"no history in this process\"}".to_vec(),
        );
    };
    let Ok(_permit) = HISTORY_READS.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, b"{}".to_vec());
    };
    // The blocking task outlives the borrow of the request.
    let subject = match route {
        Route::History(kind, name) => Some((kind, name.to_string())),
        _ => None,
    };
    let events = route == Route::Events;
    let answer = tokio::task::spawn_blocking(move || {
        use crate::state::record::Kind;
        let Some((kind, name)) = subject else {
            return if events {
                history::events(&h, &query)
            } else {
                history::bars(&h, &query)
            };
        };
        // An instance's minutes still in its slot: the minute in progress
        // (and one the writer has not taken yet), so the detail view
        // draws a point within seconds of a start.
        let mut unwritten = Vec::new();
        let known = match kind {
            Kind::Instance => match state.store.get(&name) {
                Some(slot) => {
                    unwritten = slot
                        .minute
                        .lock()
                        .expect("slot lock is never held across a panic")
                        .unwritten();
                    true
                }
                None => false,
            },
            Kind::Cluster => state.store.clusters().iter().any(|(n, _)| *n == name),
            Kind::Group => state.store.groups().iter().any(|(n, _)| *n == name),
            Kind::Heartbeat => state
                .heartbeats
                .state(&name, std::time::Instant::now())
                .is_some(),
        };
        history::subject(&h, kind, &name, &query, known, &unwritten)
    })
    .await;
    answer.unwrap_or_else(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            b"{\"error\":\"history read failed\"}".to_vec(),
        )
    })
}

/// Renders of `/metrics` running at once, at most: each holds its rows
/// and a few chunks, and a crowd of scrapers cannot take every core.
static METRICS_RENDERS: Semaphore = Semaphore::const_new(2);

/// Chunks of [`metrics::CHUNK`] queued between a render and its
/// connection at most: with the one being written, what a scrape holds
/// beyond the instances' rows, however large the fleet.
const METRICS_QUEUE: usize = 4;

/// A scraper that takes no chunk for this long is dropped: a stalled
/// client must not hold a render (and a blocking-pool thread) forever.
const METRICS_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// `/metrics`, rendered (and gzipped when the scraper accepts it) on the
/// blocking pool and sent chunk by chunk while it renders: a
/// 10,000-instance render never holds up an HTTP worker answering health
/// checks, nor the poller, which has a thread of its own, and never sits
/// in memory whole.
async fn metrics_off_thread<B>(state: Arc<AppState>, req: &Request<B>) -> Response<Body> {
    let gzip = accepts_gzip(req);
    let body = if req.method() == hyper::Method::HEAD {
        // A probe, not a scrape: the headers only, nothing rendered.
        Body::from(Bytes::new())
    } else {
        let Ok(permit) = METRICS_RENDERS.acquire().await else {
            return json(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"{}"));
        };
        let now = Instant::now().into_std();
        // A scrape is a GET answered 200: pollers keep fetching the
        // metrics sections while scrapes come.
        state.store.note_scrape(now);
        let (tx, rx) = tokio::sync::mpsc::channel(METRICS_QUEUE);
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let send = |chunk: Vec<u8>| -> std::io::Result<()> {
                let sent = handle.block_on(tokio::time::timeout(
                    METRICS_SEND_TIMEOUT,
                    tx.send(Bytes::from(chunk)),
                ));
                match sent {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(std::io::ErrorKind::BrokenPipe.into()),
                    Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                }
            };
            if let Err(e) = render_metrics(&state, now, gzip, send) {
                debug!(error = %e, "a /metrics scrape ended before its body was sent");
            }
        });
        Body::Chunks(rx)
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    if gzip {
        h.insert(
            hyper::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
    }
    h.insert(
        hyper::header::VARY,
        HeaderValue::from_static("accept-encoding"),
    );
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Every series into `send`, chunk by chunk, through a streaming gzip
/// encoder when `gzip`; an error is the scraper gone.
fn render_metrics(
    state: &AppState,
    now: std::time::Instant,
    gzip: bool,
    mut send: impl FnMut(Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if !gzip {
        return all_series(state, now, &mut send);
    }
    use std::io::Write;
    let mut z = metrics::gzip_encoder(Vec::with_capacity(metrics::CHUNK));
    {
        let mut deflate = |chunk: Vec<u8>| -> std::io::Result<()> {
            z.write_all(&chunk)?;
            if z.get_ref().len() >= metrics::CHUNK {
                send(std::mem::take(z.get_mut()))?;
            }
            Ok(())
        };
        all_series(state, now, &mut deflate)?;
    }
    let rest = z.finish()?;
    if !rest.is_empty() {
        send(rest)?;
    }
    Ok(())
}

/// The store's series, then the history's, the peers', the web config's
/// and the process's own.
fn all_series(
    state: &AppState,
    now: std::time::Instant,
    sink: &mut dyn FnMut(Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = metrics::Out::new(sink);
    metrics::render_to(&state.store, now, &mut out)?;
    if let Some(h) = &state.history {
        let dropped = state
            .store
            .recorder
            .get()
            .map_or(0, |r| r.dropped.load(std::sync::atomic::Ordering::Relaxed));
        metrics::history_series(&mut out.b, h, dropped);
    }
    metrics::peer_series(&mut out.b, &state.peering.get());
    metrics::web_series(&mut out.b, &state.gate);
    process::build_info_series(&mut out.b);
    process::process_series(&mut out.b);
    out.finish()
}

/// Whether `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip<B>(req: &Request<B>) -> bool {
    accepts_gzip_header(
        req.headers()
            .get_all(hyper::header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

fn accepts_gzip_header<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    values.flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let q_zero = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
    })
}

fn instance(state: &AppState, name: &str, now: std::time::Instant) -> Response<Body> {
    match state.store.answer(name, now) {
        Some(a) => json(code_for(a.status == Status::Ok), a.body),
        None => view((StatusCode::NOT_FOUND, views::unknown_instance(name))),
    }
}

fn code_for(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn view((code, body): (StatusCode, Vec<u8>)) -> Response<Body> {
    json(code, body.into())
}

fn html(page: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(Bytes::from_static(page.as_bytes())));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        status_page_policy().clone(),
    );
    r
}

/// The status page's content security policy: nothing from elsewhere,
/// no framing, and only its own inline script and style, by hash.
fn status_page_policy() -> &'static HeaderValue {
    static POLICY: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        let page = views::STATUS_PAGE;
        let hash_of = |open: &str, close: &str| {
            let start = page.find(open).map_or(0, |i| i + open.len());
            let end = page[start..].find(close).map_or(start, |i| start + i);
            let digest = ring::digest::digest(&ring::digest::SHA256, &page.as_bytes()[start..end]);
            format!(
                "'sha256-{}'",
                crate::config::text::base64_encode(digest.as_ref())
            )
        };
        let policy = format!(
            "default-src 'self'; frame-ancestors 'none'; script-src {}; style-src {}",
            hash_of("<script>", "</script>"),
            hash_of("<style>", "</style>")
        );
        HeaderValue::try_from(policy).expect("a policy of ASCII text")
    })
}

fn not_found() -> Response<Body> {
    json(
        StatusCode::NOT_FOUND,
        Bytes::from_static(b"{\"error\":\"not found\"}"),
    )
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = json(
        StatusCode::METHOD_NOT_ALLOWED,
        Bytes::from_static(b"{\"error\":\"method not allowed\"}"),
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

fn json(code: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::Method;

    fn state() -> AppState {
        let store = Store::new(Duration::from_secs(3));
        store.insert("cache-1", "127.0.0.1:6379");
        AppState {
            store: Arc::new(store),
            heartbeats: Arc::new(Heartbeats::default()),
            history: None,
            peering: Arc::default(),
            gate: Arc::default(),
        }
    }

    async fn body(r: Response<Body>) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    fn req(method: Method, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
    }

    #[tokio::test]
    async fn routes_answer_with_json_and_no_store() {
        let s = Arc::new(state());
        let r = answer(&s, &req(Method::GET, "/healthz")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let r = answer(&s, &req(Method::GET, "/health/redis/cache-1")).await;
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "not polled yet"
        );
        let r = answer(&s, &req(Method::HEAD, "/health/redis/nope")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = answer(&s, &req(Method::GET, "/health/redis/no%22pe")).await;
        assert_eq!(
            body(r).await,
            r#"{"error":"unknown instance","instance":"no%22pe"}"#
        );
        let r = answer(&s, &req(Method::POST, "/health/redis/cache-1")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        let r = answer(&s, &req(Method::POST, "/events")).await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        for (method, path, code) in [
            (Method::DELETE, "/healthz", StatusCode::METHOD_NOT_ALLOWED),
            (Method::GET, "/nothing", StatusCode::NOT_FOUND),
            (
                Method::GET,
                "/health/redis/../healthz",
                StatusCode::NOT_FOUND,
            ),
            (
                Method::GET,
                "/health/redis?label=x",
                StatusCode::BAD_REQUEST,
            ),
            (Method::GET, "/-/healthy", StatusCode::OK),
            (Method::GET, "/events", StatusCode::SERVICE_UNAVAILABLE),
        ] {
            let r = answer(&s, &req(method.clone(), path)).await;
            assert_eq!(r.status(), code, "{method} {path}");
        }
    }

    #[test]
    fn accept_encoding_is_read() {
        for (header, want) in [
            ("gzip", true),
            ("deflate, gzip;q=0.5", true),
            ("GZIP", true),
            ("*", true),
            ("gzip;q=0", false),
            ("identity", false),
            ("", false),
        ] {
            assert_eq!(accepts_gzip_header([header].into_iter()), want, "{header}");
        }
    }
}
