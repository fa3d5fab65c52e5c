//! The floor for redpulse's health answers: bare hyper on a multi-thread
//! tokio runtime, HTTP/1.1 keep-alive, answering every request with the
//! same pre-rendered bytes and the headers redpulse sends with a health
//! answer. No routing, no lookup, no access control. `scripts/bench-http-floor.sh`
//! runs wrk against this and against redpulse, alternating, and compares
//! the CPU each spends per request.
//!   cargo build --release --example bare-hyper
//!   target/release/examples/bare-hyper 127.0.0.1:9481 body.json

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: bare-hyper ADDR BODY_FILE");
        std::process::exit(2);
    };
    let body = Bytes::from(std::fs::read(&file).expect("the body file"));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("listen");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let mut r = Response::new(Full::new(body.clone()));
                let h = r.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                h.insert(
                    "x-content-type-options",
                    HeaderValue::from_static("nosniff"),
                );
                h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
