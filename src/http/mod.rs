//! The HTTP side, hyper 1.x over HTTP/1.1. Endpoints:
//!
//! - `GET /health/redis/{name}`: the instance's health JSON; 200 when ok,
//!   503 otherwise, 404 JSON for an unknown name.
//! - `GET /health/redis`: the fleet; 200 only when every instance is ok.
//! - `GET /health/tcp/{name}`: 200 when the last connection attempt got in.
//! - `GET, POST /heartbeat/{name}`: record a configured heartbeat's ping.
//! - `GET /health/heartbeat/{name}`: 200 while pings arrive in time.
//! - `GET /health/cluster/{name}`: a Redis Cluster judged as a whole.
//! - `GET /health/clusters`: every cluster's status, worst first.
//! - `GET /health/group/{name}`, `GET /health/groups`: replication groups.
//! - `GET /readyz`: 200 once every instance has a verdict.
//! - `GET /`: the HTML status page.
//! - `GET /metrics`: Prometheus text format (see `metrics.rs`).
//! - `GET /healthz`: the process is alive; 200.
//!
//! HEAD works wherever GET does; another method on a known path is 405.
//! Answers come from the store and never wait on Redis.

pub mod history;
pub mod metrics;
pub mod peers;
pub mod views;

use crate::judge::outcome::Status;
use crate::shutdown::ShutdownSignal;
use crate::state::heartbeat::Heartbeats;
use crate::state::store::Store;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
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
/// Open HTTP connections at most, unless configured: past it new ones are
/// closed at once, so a flood of clients cannot exhaust descriptors the
/// poller needs.
pub const MAX_HTTP_CONNECTIONS: usize = crate::config::DEFAULT_MAX_HTTP_CONNECTIONS;
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
}

type Body = Full<Bytes>;

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
        let state = state.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            async move {
                let readable = req.method() == Method::GET || req.method() == Method::HEAD;
                if req.uri().path() == "/metrics" && readable {
                    return Ok::<_, Infallible>(metrics_off_thread(state, &req).await);
                }
                if let Some(r) = with_peers(&state, &req).await {
                    return Ok::<_, Infallible>(r);
                }
                if readable && is_history_path(req.uri().path()) {
                    return Ok::<_, Infallible>(history_off_thread(state, &req).await);
                }
                Ok::<_, Infallible>(handle(&state, &req))
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_REQUEST_HEAD)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
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

/// What other shards or regions answer: a request for another shard's
/// name, the fleet over every shard, an instance's consensus verdict. None
/// when this process answers alone.
async fn with_peers(state: &Arc<AppState>, req: &Request<Incoming>) -> Option<Response<Body>> {
    if !state.peering.active() {
        return None;
    }
    let peering = state.peering.get();
    let method = req.method();
    let path = req.uri().path();
    let path_and_query = req.uri().path_and_query().map_or(path, |p| p.as_str());
    let forwarded = req.headers().contains_key(peers::FORWARDED);
    if let Some(s) = &peering.shards {
        if let Some(r) = peers::forward(s, method, path, path_and_query, forwarded).await {
            return Some(r);
        }
    }
    let readable = method == Method::GET || method == Method::HEAD;
    if !readable {
        return None;
    }
    let query = Query::parse(req.uri().query().unwrap_or("")).ok()?;
    if let (Some(s), false, Some(view)) = (&peering.shards, forwarded, peers::Shared::of(path)) {
        let now = Instant::now().into_std();
        let local = match view {
            peers::Shared::Fleet => views::fleet(&state.store, now, query.all, &query.labels),
            peers::Shared::Clusters => views::clusters(&state.store, now),
            peers::Shared::Groups => views::groups(&state.store, now),
            peers::Shared::Bars | peers::Shared::Events => history_answer(state.clone(), req).await,
        };
        return Some(peers::gather(s, view, local, path_and_query).await);
    }
    let c = peering.consensus.as_ref()?;
    let name = path.strip_prefix("/health/redis/")?;
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

/// Route one request: parse the path into a [`Route`], then one match on
/// (method, route).
pub fn handle(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let query = match Query::parse(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            let body = serde_json::json!({ "error": e }).to_string();
            return json(StatusCode::BAD_REQUEST, body.into());
        }
    };
    route(state, req.method(), req.uri().path(), &query)
}

/// The query flags views read: `all`, and `label=k:v` filters (all must
/// match).
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    pub all: bool,
    /// `local=1`: this region's own verdict, no consensus.
    pub local: bool,
    pub labels: Vec<(String, String)>,
}

/// At most this many label filters in one request.
const MAX_LABEL_FILTERS: usize = 16;

impl Query {
    fn parse(q: &str) -> Result<Query, String> {
        let mut out = Query::default();
        for kv in q.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "all" => out.all = true,
                "local" => out.local = v != "0",
                "label" => {
                    if out.labels.len() == MAX_LABEL_FILTERS {
                        return Err(format!("at most {MAX_LABEL_FILTERS} label filters"));
                    }
                    let v = percent_decode(v).ok_or("label filter: bad percent-encoding")?;
                    out.labels.push(crate::config::labels::parse_filter(&v)?);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// `%3A` and `+` decoded; None for a broken escape or non-UTF-8 bytes.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn is_history_path(path: &str) -> bool {
    path == "/events" || path.starts_with("/history/")
}

/// History reads running at once, at most (each holds a database
/// connection on the blocking pool).
static HISTORY_READS: Semaphore = Semaphore::const_new(8);

/// `/history/...` and `/events`, answered on the blocking pool.
async fn history_off_thread(state: Arc<AppState>, req: &Request<Incoming>) -> Response<Body> {
    view(history_answer(state, req).await)
}

async fn history_answer(state: Arc<AppState>, req: &Request<Incoming>) -> (StatusCode, Vec<u8>) {
    let Some(h) = state.history.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            b"{\"error\":\"no history in this process\"}".to_vec(),
        );
    };
    let Ok(_permit) = HISTORY_READS.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, b"{}".to_vec());
    };
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let answer = tokio::task::spawn_blocking(move || {
        use crate::state::record::Kind;
        if path == "/events" {
            return history::events(&h, &query);
        }
        let rest = path.strip_prefix("/history/").unwrap_or("");
        if rest == "bars" {
            return history::bars(&h, &query);
        }
        let (kind, name) = match rest.split_once('/') {
            Some(("redis", n)) => (Kind::Instance, n),
            Some(("cluster", n)) => (Kind::Cluster, n),
            Some(("group", n)) => (Kind::Group, n),
            Some(("heartbeat", n)) => (Kind::Heartbeat, n),
            _ => return (StatusCode::NOT_FOUND, b"{\"error\":\"not found\"}".to_vec()),
        };
        let known = match kind {
            Kind::Instance => state.store.get(name).is_some(),
            Kind::Cluster => state.store.clusters().iter().any(|(n, _)| n == name),
            Kind::Group => state.store.groups().iter().any(|(n, _)| n == name),
            Kind::Heartbeat => state
                .heartbeats
                .state(name, std::time::Instant::now())
                .is_some(),
        };
        history::subject(&h, kind, name, &query, known)
    })
    .await;
    answer.unwrap_or_else(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            b"{\"error\":\"history read failed\"}".to_vec(),
        )
    })
}

/// Renders of `/metrics` running at once, at most: each holds a whole
/// body, so a crowd of scrapers cannot multiply the memory.
static METRICS_RENDERS: Semaphore = Semaphore::const_new(2);

/// `/metrics` rendered (and gzipped when the scraper accepts it) on the
/// blocking pool: a 10,000-instance render never holds up an HTTP worker
/// answering health checks, nor the poller, which has a thread of its own.
async fn metrics_off_thread(state: Arc<AppState>, req: &Request<Incoming>) -> Response<Body> {
    let gzip = accepts_gzip(req);
    let Ok(_permit) = METRICS_RENDERS.acquire().await else {
        return json(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"{}"));
    };
    let now = Instant::now().into_std();
    match tokio::task::spawn_blocking(move || metrics(&state, now, gzip)).await {
        Ok(r) => r,
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from_static(b"{\"error\":\"metrics rendering failed\"}"),
        ),
    }
}

/// Whether `Accept-Encoding` lists gzip with a non-zero weight.
fn accepts_gzip(req: &Request<Incoming>) -> bool {
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

/// A known path, with the name it carries. Parsing the path is separate
/// from answering it, so which methods a path takes is said once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route<'a> {
    Healthz,
    Readyz,
    Metrics,
    StatusPage,
    Fleet,
    Instance(&'a str),
    Tcp(&'a str),
    HeartbeatHealth(&'a str),
    HeartbeatPing(&'a str),
    Cluster(&'a str),
    Clusters,
    Group(&'a str),
    Groups,
}

impl<'a> Route<'a> {
    fn parse(path: &'a str) -> Option<Route<'a>> {
        Some(match path {
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            "/" => Route::StatusPage,
            "/health/redis" => Route::Fleet,
            "/health/clusters" => Route::Clusters,
            "/health/groups" => Route::Groups,
            _ => {
                // A name is everything after its prefix, slashes included
                // (an unknown name is the handler's 404, with the name).
                if let Some(name) = path.strip_prefix("/health/redis/") {
                    Route::Instance(name)
                } else if let Some(name) = path.strip_prefix("/health/tcp/") {
                    Route::Tcp(name)
                } else if let Some(name) = path.strip_prefix("/health/heartbeat/") {
                    Route::HeartbeatHealth(name)
                } else if let Some(name) = path.strip_prefix("/health/cluster/") {
                    Route::Cluster(name)
                } else if let Some(name) = path.strip_prefix("/health/group/") {
                    Route::Group(name)
                } else {
                    Route::HeartbeatPing(path.strip_prefix("/heartbeat/")?)
                }
            }
        })
    }

    /// The methods this path answers, for a 405's `allow` header.
    fn allow(self) -> &'static str {
        match self {
            Route::HeartbeatPing(_) => "GET, HEAD, POST",
            _ => "GET, HEAD",
        }
    }
}

/// `all` is the fleet view's `?all` query flag.
fn route(state: &AppState, method: &Method, path: &str, query: &Query) -> Response<Body> {
    let Some(route) = Route::parse(path) else {
        return json(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"{\"error\":\"not found\"}"),
        );
    };
    let now = Instant::now().into_std();
    let readable = *method == Method::GET || *method == Method::HEAD;
    match (readable, route) {
        (true, Route::Healthz) => json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}")),
        (true, Route::Readyz) => view(views::readiness(&state.store)),
        (true, Route::Metrics) => metrics(state, now, false),
        (true, Route::StatusPage) => html(views::STATUS_PAGE),
        (true, Route::Fleet) => view(views::fleet(&state.store, now, query.all, &query.labels)),
        (true, Route::Instance(name)) => instance(state, name, now),
        (true, Route::Tcp(name)) => view(views::tcp(&state.store, name, now)),
        (true, Route::Cluster(name)) => view(views::cluster(&state.store, name, now)),
        (true, Route::Clusters) => view(views::clusters(&state.store, now)),
        (true, Route::Group(name)) => view(views::group(&state.store, name, now)),
        (true, Route::Groups) => view(views::groups(&state.store, now)),
        (true, Route::HeartbeatHealth(name)) => {
            view(views::heartbeat(&state.heartbeats, name, now))
        }
        (_, Route::HeartbeatPing(name)) if readable || *method == Method::POST => {
            view(views::ping(&state.heartbeats, name, now))
        }
        (_, route) => method_not_allowed(route.allow()),
    }
}

fn instance(state: &AppState, name: &str, now: std::time::Instant) -> Response<Body> {
    match state.store.answer(name, now) {
        Some(a) => json(code_for(a.status == Status::Ok), a.body),
        None => view((StatusCode::NOT_FOUND, views::unknown_instance(name))),
    }
}

fn metrics(state: &AppState, now: std::time::Instant, gzip: bool) -> Response<Body> {
    let mut body = metrics::render(&state.store, now);
    if let Some(h) = &state.history {
        let dropped = state
            .store
            .recorder
            .get()
            .map_or(0, |r| r.dropped.load(std::sync::atomic::Ordering::Relaxed));
        metrics::history_series(&mut body, h, dropped);
    }
    metrics::peer_series(&mut body, &state.peering.get());
    let (body, encoded) = if gzip {
        match metrics::gzip(&body) {
            Ok(z) => (z, true),
            Err(_) => (body, false),
        }
    } else {
        (body, false)
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    if encoded {
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
    let mut r = Response::new(Full::new(Bytes::from_static(page.as_bytes())));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
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
    let mut r = Response::new(Full::new(body));
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

    fn state() -> AppState {
        let store = Store::new(Duration::from_secs(3));
        store.insert("cache-1", "127.0.0.1:6379");
        AppState {
            store: Arc::new(store),
            heartbeats: Arc::new(Heartbeats::default()),
            history: None,
            peering: Arc::default(),
        }
    }

    async fn body(r: Response<Body>) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn routes_answer_with_json_and_no_store() {
        let s = state();
        let r = route(&s, &Method::GET, "/healthz", &Query::default());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let r = route(&s, &Method::GET, "/health/redis/cache-1", &Query::default());
        assert_eq!(
            r.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "not polled yet"
        );
        let r = route(&s, &Method::HEAD, "/health/redis/nope", &Query::default());
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = route(&s, &Method::GET, "/health/redis/no\"pe", &Query::default());
        assert_eq!(
            body(r).await,
            r#"{"error":"unknown instance","instance":"no\"pe"}"#
        );
        let r = route(
            &s,
            &Method::POST,
            "/health/redis/cache-1",
            &Query::default(),
        );
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        assert_eq!(
            route(&s, &Method::DELETE, "/healthz", &Query::default()).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            route(&s, &Method::GET, "/nothing", &Query::default()).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            route(
                &s,
                &Method::GET,
                "/health/redis/../healthz",
                &Query::default()
            )
            .status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn queries_and_accept_encoding_are_read() {
        let q = Query::parse("all&label=team%3Apay+x&label=env:prod").unwrap();
        assert!(q.all);
        assert_eq!(
            q.labels,
            vec![
                ("team".into(), "pay x".into()),
                ("env".into(), "prod".into())
            ]
        );
        assert!(Query::parse("label=team").is_err());
        assert!(Query::parse("label=%zz").is_err());
        assert!(Query::parse(&"label=a:b&".repeat(17)).is_err());
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
