//! The one HTTP/1.1 client, for every call redpulse makes over HTTP: to
//! other shards and regions, and to notification receivers. A [`Client`]
//! talks to one origin (host, port, TLS or not) and keeps its connections
//! alive: at most `max_in_flight` calls at once (more wait within their
//! budget), idle connections reused, every call bounded by a budget and
//! its answer's body by a cap. Headers are the caller's per call, so what
//! one caller sends (a peer marker, a receiver's path) never reaches
//! another's origin: each origin has its own `Client`.

use crate::config::TlsTarget;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;

type Sender = SendRequest<Full<Bytes>>;

/// Where a [`Client`] connects.
#[derive(Clone)]
pub struct Origin {
    /// Host name or IP literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// None for plain HTTP.
    pub tls: Option<TlsTarget>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Origin({}, tls: {})",
            self.authority(),
            self.tls.is_some()
        )
    }
}

impl Origin {
    /// `host:port`, an IPv6 literal in brackets: the `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// An answer: status, headers, and a body of at most the call's cap.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The body, at most the call's cap.
    pub body: Bytes,
}

/// Kept-alive connections to one origin.
#[derive(Debug)]
pub struct Client {
    origin: Origin,
    idle: Mutex<Vec<Sender>>,
    max_idle: usize,
    in_flight: Semaphore,
    /// Calls answered, and calls that failed (refused, timed out, cut off).
    pub answered: AtomicU64,
    /// Calls that failed (refused, timed out, cut off, too large).
    pub failed: AtomicU64,
}

impl Client {
    /// A client of `origin` with at most `max_in_flight` calls at once and
    /// as many idle connections kept.
    pub fn new(origin: Origin, max_in_flight: usize) -> Client {
        Client {
            origin,
            idle: Mutex::new(Vec::new()),
            max_idle: max_in_flight,
            in_flight: Semaphore::new(max_in_flight),
            answered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The origin this client calls.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// `method path_and_query` with `headers` and `body`, answered within
    /// `budget` (waiting for a free slot included) with a body of at most
    /// `max_body` bytes. The error says what failed, naming the origin.
    pub async fn call(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        budget: Duration,
        max_body: usize,
    ) -> Result<Answer, String> {
        let call = self.call_unbounded(method, path_and_query, headers, body, max_body);
        let r = tokio::time::timeout(budget, call).await;
        let counter = match r {
            Ok(Ok(_)) => &self.answered,
            _ => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let who = self.origin.authority();
        match r {
            Ok(r) => r.map_err(|e| format!("{who}: {e}")),
            Err(_) => Err(format!("{who}: no answer within {} ms", budget.as_millis())),
        }
    }

    async fn call_unbounded(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        max_body: usize,
    ) -> Result<Answer, String> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| "client closed".to_string())?;
        let mut sender = match self.take_idle().await {
            Some(s) => s,
            None => self.connect().await?,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, self.origin.authority());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        if !sender.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < self.max_idle {
                idle.push(sender);
            }
        }
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
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
        let o = &self.origin;
        let tcp = tokio::net::TcpStream::connect((o.host.as_str(), o.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match &o.tls {
            None => handshake(TokioIo::new(tcp)).await,
            Some(tls) => {
                let stream = tokio_rustls::TlsConnector::from(tls.client.clone())
                    .connect(tls.server_name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                handshake(TokioIo::new(stream)).await
            }
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request on a connection with `answer`
    /// and counts the connections it accepted and the heads it read.
    async fn server(
        answer: &'static [u8],
    ) -> (
        u16,
        std::sync::Arc<AtomicU64>,
        tokio::sync::mpsc::Receiver<String>,
    ) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(AtomicU64::new(0));
        let (heads_tx, heads) = tokio::sync::mpsc::channel(16);
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let heads_tx = heads_tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head: Vec<u8> = buf.drain(..end + 4).collect();
                            let _ = heads_tx
                                .send(String::from_utf8_lossy(&head).into_owned())
                                .await;
                            if s.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (port, accepted, heads)
    }

    fn origin(port: u16) -> Origin {
        Origin {
            host: "127.0.0.1".into(),
            port,
            tls: None,
        }
    }

    #[tokio::test]
    async fn calls_reuse_a_kept_connection_and_send_only_their_own_headers() {
        let (port, accepted, mut heads) =
            server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a: 1\r\n\r\nok").await;
        let c = Client::new(origin(port), 4);
        let marker = (
            HeaderName::from_static("x-marker"),
            HeaderValue::from_static("1"),
        );
        let budget = Duration::from_secs(5);
        let a = c
            .call(&Method::GET, "/one", &[marker], Bytes::new(), budget, 1024)
            .await
            .unwrap();
        assert_eq!((a.status, &a.body[..]), (StatusCode::OK, &b"ok"[..]));
        assert_eq!(a.headers["x-a"], "1");
        let b = c
            .call(
                &Method::POST,
                "/two",
                &[],
                Bytes::from_static(b"{}"),
                budget,
                1024,
            )
            .await
            .unwrap();
        assert_eq!(b.status, StatusCode::OK);
        assert_eq!(
            accepted.load(Ordering::Relaxed),
            1,
            "one kept-alive connection"
        );
        let first = heads.recv().await.unwrap().to_ascii_lowercase();
        let second = heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(
            first.starts_with("get /one ") && first.contains("x-marker: 1"),
            "{first}"
        );
        assert!(
            first.contains(&format!("host: 127.0.0.1:{port}")),
            "{first}"
        );
        assert!(
            second.starts_with("post /two ") && !second.contains("x-marker"),
            "{second}"
        );
        assert_eq!(
            (
                c.answered.load(Ordering::Relaxed),
                c.failed.load(Ordering::Relaxed)
            ),
            (2, 0)
        );
    }

    /// A GET of `/` to `port` within `budget`, its answer capped at 9 bytes:
    /// the error.
    async fn failed_get(port: u16, budget: Duration) -> (String, Client) {
        let c = Client::new(origin(port), 1);
        let e = c
            .call(&Method::GET, "/", &[], Bytes::new(), budget, 9)
            .await
            .unwrap_err();
        (e, c)
    }

    #[tokio::test]
    async fn a_large_answer_a_silent_origin_and_a_closed_port_fail_with_a_reason() {
        let (port, _, _) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789").await;
        let (e, _) = failed_get(port, Duration::from_secs(5)).await;
        assert!(e.contains("reading the answer"), "{e}");
        // Accepts and never answers: the budget ends the call.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (e, _) = failed_get(
            silent.local_addr().unwrap().port(),
            Duration::from_millis(200),
        )
        .await;
        assert!(e.contains("no answer within 200 ms"), "{e}");
        // A port held here, bound but not listening: connecting is refused,
        // and no other process can take the port meanwhile.
        let held =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let port = held.local_addr().unwrap().as_socket().unwrap().port();
        let (e, c) = failed_get(port, Duration::from_secs(5)).await;
        assert!(e.starts_with(&format!("127.0.0.1:{port}: connect:")), "{e}");
        assert_eq!(c.failed.load(Ordering::Relaxed), 1);
    }
}
