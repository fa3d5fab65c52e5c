//! One long-lived connection to one instance.
//!
//! [`Conn::connect`] opens a socket2-tuned TCP stream (TCP_NODELAY,
//! keepalive) to the first of the target's addresses that answers, or a
//! unix socket, and completes a TLS handshake for `rediss://`; then it
//! pipelines AUTH, `CLIENT SETNAME redpulse` and `INFO server` in one write
//! to learn the version. [`Conn::poll`] is then one write carrying every
//! INFO a poll needs and one read of all replies, all under the poll's
//! deadline. Any failure is a [`Failure`] and the caller drops the
//! connection; bytes are decoded by `wire` only.

use super::bufs;
use super::checks::{KeyChecks, RoundTrip};
use super::extras::{metrics_plan, retry_generation, Extra, MetricsPlan};
use super::resolve::resolve;
use super::stream::Stream;
use super::tls;
use crate::config::{Endpoint, MetricsOptions, Target};
use crate::judge::outcome::{Failure, Reason, TlsPeer};
use crate::wire::cluster::ClusterInfo;
use crate::wire::exposition::{Beyond, Exposition};
use crate::wire::info::{info_text, ServerInfo, Snapshot};
use crate::wire::resp::{encode_command, DecodeError, Decoder, Frame};
use bytes::{Bytes, BytesMut};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UnixStream};
use tokio::time::{timeout_at, Instant};

/// The INFO sections the health rules read.
pub const POLL_SECTIONS: [&str; 5] = ["clients", "memory", "stats", "replication", "persistence"];
/// How redpulse names itself in CLIENT LIST.
pub const CLIENT_NAME: &str = "redpulse";
/// Idle time before the kernel probes a silent connection, and between
/// probes: a peer that vanished without a FIN is noticed between polls
/// even if the interval is long.
const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// A poll's replies are 1-4 KiB: the read buffer grows in steps of this
/// size, and is given back between polls (an idle instance holds none; a
/// 4 KiB allocation per poll costs far less than 4 KiB per instance).
const READ_CHUNK: usize = 4 * 1024;
/// A reply still arriving after this many bytes lets the other instances'
/// polls run before it reads on: every instance shares the poller thread,
/// and a fast sender could otherwise keep it busy up to the reply cap.
const YIELD_EVERY: usize = 256 * 1024;
/// Longest server error text kept in a failure message.
const MAX_ERROR_TEXT: usize = 200;

/// What one poll does: by when it must be done, and what it asks for.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The whole poll's deadline: connect (if needed), write and read.
    pub deadline: Instant,
    /// Ask for what `/metrics` needs (`INFO ALL`, CLUSTER INFO on a cluster
    /// node) rather than the health sections alone, and keep the samples.
    pub metrics: bool,
}

/// What one successful poll read.
#[derive(Debug)]
pub struct Polled {
    /// Shared from here on: the verdict and the tracker keep it as is, so
    /// its 600 bytes are written once, not moved through every layer.
    pub snapshot: std::sync::Arc<Snapshot>,
    /// The round trip.
    pub latency: Duration,
    /// The instance's Prometheus samples, on a metrics poll.
    pub exposition: Option<Exposition>,
    /// Bits of the metrics-only commands and key checks
    /// ([`super::extras::Refusable`]) the server refused in this poll.
    pub refused: u8,
    /// Keys matching a checked pattern left out of this poll past
    /// `check_keys_max`.
    pub keys_truncated: u64,
}

/// Why a connection could not be made, and whether TCP got in first (the
/// `/health/tcp` view's "is the process even up").
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectError {
    pub failure: Failure,
    /// True when the TCP connection was accepted and the handshake failed.
    pub tcp_connected: bool,
}

/// An open, authenticated connection that knows the server's version.
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    /// The TCP peer, for following DNS changes (None for unix sockets).
    peer: Option<SocketAddr>,
    /// When the name was last looked up (connect, or a later check).
    resolved_at: Instant,
    /// Connected by a host name (not an IP literal, not a unix socket):
    /// the name is looked up again every dns_refresh.
    by_name: bool,
    /// The server certificate, on TLS.
    tls_peer: Option<TlsPeer>,
    /// The TLS settings, to word errors that surface after the handshake
    /// (boxed: inline they were 152 bytes in every plaintext connection).
    tls: Option<Box<crate::config::TlsTarget>>,
    buf: BytesMut,
    decoder: Decoder,
    /// `INFO server` as of connecting.
    pub server: ServerInfo,
    /// The whole poll, pre-encoded: sent as one write.
    poll_cmd: Bytes,
    replies_per_poll: usize,
    /// A metrics poll: `INFO ALL` (one reply on every version), CLUSTER
    /// INFO on a cluster node, and the commands beyond INFO, in one write.
    metrics_plan: Arc<MetricsPlan>,
    /// What the metrics polls ask beyond INFO.
    metrics_options: Arc<MetricsOptions>,
    /// Metrics-only commands and key checks this server refused: left
    /// out until a reconnect or a reload ([`super::extras::retry_refused`]).
    refused: u8,
    /// The retry generation `refused` belongs to.
    refused_generation: u64,
    /// The key and stream checks' state, when any are configured: the
    /// checked set lives as long as the connection.
    checks: Option<Box<KeyChecks>>,
    /// A cluster node: CLUSTER INFO rides in every poll's write.
    cluster: bool,
    /// When the handshake read `INFO server`, to age its uptime.
    connected_at: Instant,
    /// Set once a read, write or decode failed: the stream may be out of
    /// step with the replies and must not be used again.
    broken: bool,
}

impl Conn {
    /// Connect, authenticate, name the client and learn the version, all
    /// before `deadline`.
    pub async fn connect(target: &Target, deadline: Instant) -> Result<Conn, ConnectError> {
        let before_tcp = |failure| ConnectError {
            failure,
            tcp_connected: false,
        };
        let after_tcp = |failure| ConnectError {
            failure,
            tcp_connected: true,
        };
        let (stream, peer, tls_peer) = match &target.endpoint {
            Endpoint::Unix { path } => {
                let shown = target.addr();
                let stream = match timeout_at(deadline, UnixStream::connect(path)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        return Err(before_tcp(io_failure(&format!("connect {shown}"), &e)))
                    }
                    Err(_) => {
                        return Err(before_tcp(Failure::new(
                            Reason::Timeout,
                            format!("connect {shown}: timed out"),
                        )))
                    }
                };
                (Stream::Unix(stream), None, None)
            }
            Endpoint::Tcp { host, port } => {
                let addrs = resolve(host, *port, deadline).await.map_err(before_tcp)?;
                let (tcp, peer) = connect_any(&addrs, deadline).await.map_err(before_tcp)?;
                match &target.tls {
                    None => (Stream::Tcp(tcp), Some(peer), None),
                    Some(tls) => {
                        let (stream, tls_peer) = tls::handshake(tcp, tls, &target.addr(), deadline)
                            .await
                            .map_err(after_tcp)?;
                        (Stream::Tls(Box::new(stream)), Some(peer), tls_peer)
                    }
                }
            }
        };
        let mut conn = Conn {
            stream,
            by_name: peer.is_some()
                && matches!(&target.endpoint, Endpoint::Tcp { host, .. }
                    if host.parse::<std::net::IpAddr>().is_err()),
            peer,
            resolved_at: Instant::now(),
            tls_peer,
            tls: target.tls.clone(),
            buf: BytesMut::new(),
            decoder: Decoder::new(),
            server: ServerInfo::default(),
            poll_cmd: Bytes::new(),
            replies_per_poll: 0,
            metrics_plan: Arc::new(MetricsPlan {
                cmd: Bytes::new(),
                extras: Box::new([]),
            }),
            metrics_options: target.metrics.clone(),
            refused: 0,
            refused_generation: retry_generation(),
            checks: None,
            cluster: target.cluster,
            connected_at: Instant::now(),
            broken: false,
        };
        let failure = match timeout_at(deadline, conn.handshake(target)).await {
            Ok(Ok(())) => return Ok(conn),
            Ok(Err(f)) => f,
            Err(_) => Failure::new(
                Reason::Timeout,
                "connected, but no reply to the handshake within the poll timeout",
            ),
        };
        Err(after_tcp(failure))
    }

    /// The server certificate of a TLS connection.
    pub fn tls_peer(&self) -> Option<TlsPeer> {
        self.tls_peer
    }

    /// Whether [`Conn::still_where_the_name_points`] would look the name
    /// up now: only for a host-name target, at most every `every`. Cheap
    /// (no parsing, no future), so a poll asks this first.
    pub fn lookup_due(&self, every: Duration) -> bool {
        self.by_name && self.resolved_at.elapsed() >= every
    }

    /// For a host-name target, at most every `every`: whether the
    /// name still resolves to the address this connection went to. False
    /// means the name moved (a DNS failover) and the connection should be
    /// re-made; a lookup that fails keeps the connection (a DNS outage
    /// must not take down working connections).
    pub async fn still_where_the_name_points(
        &mut self,
        target: &Target,
        deadline: Instant,
        every: Duration,
    ) -> bool {
        if !self.lookup_due(every) {
            return true;
        }
        let (Endpoint::Tcp { host, port }, Some(peer)) = (&target.endpoint, self.peer) else {
            return true;
        };
        self.resolved_at = Instant::now();
        match resolve(host, *port, deadline).await {
            Ok(addrs) => addrs.contains(&peer),
            Err(_) => true,
        }
    }

    /// AUTH, CLIENT SETNAME and INFO server in one write. The caller bounds
    /// it with the poll's deadline.
    async fn handshake(&mut self, target: &Target) -> Result<(), Failure> {
        let mut out = BytesMut::with_capacity(128);
        let authenticating = target.password.is_some();
        if let Some(password) = &target.password {
            match &target.username {
                Some(user) => encode_command(
                    &mut out,
                    &[b"AUTH", user.as_bytes(), password.expose().as_bytes()],
                ),
                None => encode_command(&mut out, &[b"AUTH", password.expose().as_bytes()]),
            }
        }
        encode_command(&mut out, &[b"CLIENT", b"SETNAME", CLIENT_NAME.as_bytes()]);
        encode_command(&mut out, &[b"INFO", b"server"]);
        self.write(&out).await?;

        if authenticating {
            let reply = self.read_frame().await?;
            if let Some(e) = reply.as_error() {
                // Any refusal of AUTH is an auth problem, unless the server
                // is refusing everyone (maxclients, loading).
                let reason = match classify_error(e) {
                    Reason::ProtocolError => Reason::AuthFailed,
                    r => r,
                };
                // The caller drops the connection, so the replies still
                // in flight need not be read.
                return Err(Failure::new(
                    reason,
                    format!("AUTH refused: {}", error_text(e)),
                ));
            }
        }
        let setname = self.read_frame().await?;
        if let Some(e) = setname.as_error() {
            // CLIENT may be renamed away; only refusals that concern
            // everyone fail the connection.
            let reason = classify_error(e);
            if reason != Reason::ProtocolError {
                return Err(Failure::new(
                    reason,
                    format!("CLIENT SETNAME: {}", error_text(e)),
                ));
            }
        }
        let info = self.read_frame().await?;
        let text = expect_info(&info, "INFO server")?;
        let mut snap = Snapshot::default();
        snap.merge_info(text);
        self.server = snap.server;
        self.connected_at = Instant::now();
        self.build_poll_command();
        Ok(())
    }

    /// Redis >= 7 and Valkey take all sections in one INFO; Redis 6.x
    /// answers that with a syntax error, so it gets one INFO per section,
    /// pipelined in the same write.
    fn build_poll_command(&mut self) {
        let multi = self.server.multi_section_info();
        self.poll_cmd = poll_command(multi, self.cluster).clone();
        self.metrics_plan = metrics_plan(multi, self.cluster, &self.metrics_options, self.refused);
        self.replies_per_poll = if multi { 1 } else { POLL_SECTIONS.len() };
    }

    /// One command and its reply before `deadline` (topology reads:
    /// CLUSTER SHARDS, SENTINEL ...). Error replies are returned as frames.
    pub async fn command(&mut self, args: &[&[u8]], deadline: Instant) -> Result<Frame, Failure> {
        let mut out = BytesMut::with_capacity(64);
        encode_command(&mut out, args);
        let result = timeout_at(deadline, async {
            self.write(&out).await?;
            self.read_frame().await
        })
        .await;
        match result {
            Ok(r) => r,
            Err(_) => {
                self.broken = true;
                Err(Failure::new(Reason::Timeout, "no reply within the timeout"))
            }
        }
    }

    /// Whether the connection can carry another poll. False after any I/O,
    /// timeout or decode failure; error replies (LOADING, BUSY...) leave it
    /// usable, since every reply was read.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// Number of INFO replies one poll reads (1, or one per section on 6.x).
    pub fn replies_per_poll(&self) -> usize {
        self.replies_per_poll
    }

    /// One poll as `plan` says: one write of every INFO, then all
    /// replies, before its deadline. Returns the merged snapshot and the
    /// round trip. A metrics poll asks for `INFO ALL` instead (still one
    /// write and one reply per command) and also returns the instance's
    /// Prometheus samples.
    pub async fn poll(&mut self, plan: Plan) -> Result<Polled, Failure> {
        // One timer for the whole poll, not one per write and read.
        self.poll_until(plan, tokio::time::sleep_until(plan.deadline))
            .await
    }

    /// [`Conn::poll`], ended by `expiry` rather than by a timer of its
    /// own at the plan's deadline. The fleet passes a sleep that shares
    /// one timer with every poll due at the same tick: a tokio timer per
    /// poll cost a timer-wheel entry and, whenever it was the earliest,
    /// a wakeup of the runtime's driver (an eventfd write) on every poll.
    pub async fn poll_until(
        &mut self,
        plan: Plan,
        expiry: impl std::future::Future<Output = ()>,
    ) -> Result<Polled, Failure> {
        let result = tokio::select! {
            biased;
            r = self.poll_inner(plan.metrics, plan.deadline) => Some(r),
            () = expiry => None,
        };
        match result {
            Some(result) => result,
            None => {
                self.broken = true;
                Err(Failure::new(
                    Reason::Timeout,
                    "no reply within the poll timeout",
                ))
            }
        }
    }

    async fn poll_inner(&mut self, metrics: bool, deadline: Instant) -> Result<Polled, Failure> {
        let started = Instant::now();
        if metrics && self.refused != 0 && self.refused_generation != retry_generation() {
            // A reload: ask once more for what was refused.
            self.refused = 0;
            self.refused_generation = retry_generation();
            self.build_poll_command();
        }
        self.broken = true;
        // Held through the metrics poll's reads; a health poll leaves the
        // plan's shared counts (a cold line) alone.
        let plan = metrics.then(|| self.metrics_plan.clone());
        let (cmd, replies) = match &plan {
            Some(plan) => (&plan.cmd, 1),
            None => (&self.poll_cmd, self.replies_per_poll),
        };
        if let Err(e) = write_flushed(&mut self.stream, cmd).await {
            return Err(self.io_failure("write", &e));
        }
        self.broken = false;
        // Made where it is published: merged in place, not carried in the
        // poll's future and copied out at the end (596 bytes).
        let mut snapshot = std::sync::Arc::new(Snapshot {
            server: self.server,
            ..Snapshot::default()
        });
        let snap = std::sync::Arc::get_mut(&mut snapshot).expect("not shared before the poll ends");
        // Read every reply even after an error reply, so the connection
        // stays in step; report the first error.
        let mut first_error = None;
        let mut info_all = None;
        for _ in 0..replies {
            let frame = self.read_frame().await?;
            if let Frame::Push(_) = frame {
                // Never asked for (no HELLO 3, no SUBSCRIBE): the stream is
                // out of step with the requests.
                self.broken = true;
                return Err(Failure::new(
                    Reason::ProtocolError,
                    "an unsolicited push arrived instead of an INFO reply",
                ));
            }
            match expect_info(&frame, "INFO") {
                Ok(text) => snap.merge_info(text),
                Err(f) => {
                    first_error.get_or_insert(f);
                }
            }
            if metrics {
                info_all = Some(frame);
            }
        }
        let mut cluster_info = None;
        if self.cluster {
            let frame = self.read_frame().await?;
            match expect_info(&frame, "CLUSTER INFO") {
                Ok(text) => snap.cluster = Some(ClusterInfo::parse(text)),
                Err(f) => {
                    first_error.get_or_insert(f);
                }
            }
            cluster_info = Some(frame);
        }
        // The metrics-only replies: an error reply (refused, unknown, ACL)
        // drops only that command's series and never reaches the verdict.
        let mut extras = Vec::new();
        let mut refused = 0u8;
        if let Some(plan) = &plan {
            for &extra in plan.extras.iter() {
                let frame = match self.read_frame().await {
                    Ok(f) => f,
                    // A metrics-only reply past the decoder's bounds (a
                    // CLIENT LIST of tens of thousands of clients): its
                    // series are left out and counted like a refusal, the
                    // verdict stands, and the stream, now out of step, is
                    // re-made before the next poll.
                    Err(f) if f.reason == Reason::ProtocolError => {
                        refused |= extra.command() as u8;
                        self.broken = true;
                        break;
                    }
                    Err(f) => return Err(f),
                };
                if frame.as_error().is_some() {
                    refused |= extra.command() as u8;
                } else if !matches!(frame, Frame::Push(_)) {
                    extras.push((extra, frame));
                }
            }
        }
        // The verdict's round trip: key checks are not part of it.
        let latency = started.elapsed();
        // Not on a stream left out of step by an oversized reply above.
        let checked = if metrics
            && first_error.is_none()
            && !self.broken
            && self.metrics_options.has_checks()
        {
            let options = self.metrics_options.clone();
            let mut checks = self.checks.take().unwrap_or_default();
            // Boxed: key checks run in metrics polls only, and their
            // state inline would be room copied into every poll's future.
            let outcome = Box::pin(checks.run(
                self,
                &options,
                self.refused,
                started,
                deadline.saturating_duration_since(started),
            ))
            .await;
            self.checks = Some(checks);
            refused |= outcome.refused;
            Some(outcome)
        } else {
            None
        };
        let exposition = match (&first_error, &info_all) {
            (None, Some(info)) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut beyond = Beyond {
                    include_config: self.metrics_options.include_config_metrics,
                    redact_config: self.metrics_options.redact_config_metrics,
                    checks: checked.as_ref().map(|c| &c.checked),
                    ..Beyond::default()
                };
                for (extra, frame) in &extras {
                    // A command partly refused (one of 6.x's CONFIG GETs)
                    // is left out whole.
                    if refused & extra.command() as u8 != 0 {
                        continue;
                    }
                    match extra {
                        Extra::SlowlogLen => beyond.slowlog_len = Some(frame),
                        Extra::SlowlogGet => beyond.slowlog_get = Some(frame),
                        Extra::LatencyLatest => beyond.latency_latest = Some(frame),
                        Extra::ConfigGet => beyond.config.push(frame),
                        Extra::ClientList => beyond.client_list = Some(frame),
                    }
                }
                Some(Exposition::from_replies(
                    info_text(info).unwrap_or_default(),
                    cluster_info.as_ref().and_then(info_text),
                    &beyond,
                    now,
                ))
            }
            _ => None,
        };
        if refused != 0 {
            self.refused |= refused;
            self.build_poll_command();
        }
        if self.buf.is_empty() {
            // An idle connection holds no buffer or decoder arrays; the
            // next poll takes them from the thread's spares.
            bufs::give(std::mem::take(&mut self.buf));
            self.decoder.release();
        } else {
            // Bytes nobody asked for follow the replies: this poll's answer
            // stands, but the stream is out of step, so it is re-made.
            self.broken = true;
        }
        match first_error {
            Some(f) => Err(f),
            None => Ok(Polled {
                snapshot,
                latency,
                exposition,
                refused,
                keys_truncated: checked.map_or(0, |c| c.truncated),
            }),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.broken = true;
        if let Err(e) = write_flushed(&mut self.stream, bytes).await {
            return Err(self.io_failure("write", &e));
        }
        self.broken = false;
        Ok(())
    }

    /// Read one whole reply. Callers bound it with the poll's deadline.
    async fn read_frame(&mut self) -> Result<Frame, Failure> {
        // Cleared only when a whole reply arrives.
        self.broken = true;
        let mut since_yield = 0;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    self.broken = false;
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(decode_failure(e)),
            }
            if self.buf.capacity() == 0 {
                self.buf = bufs::take(READ_CHUNK);
            } else if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => {
                    return Err(Failure::new(
                        Reason::ConnectionClosed,
                        "the server closed the connection",
                    ))
                }
                Ok(n) => {
                    since_yield += n;
                    if since_yield >= YIELD_EVERY {
                        since_yield = 0;
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => return Err(self.io_failure("read", &e)),
            }
        }
    }
}

impl RoundTrip for Conn {
    async fn round_trip(&mut self, cmds: &[u8], replies: usize) -> Result<Vec<Frame>, ()> {
        self.write(cmds).await.map_err(|_| ())?;
        let mut out = Vec::with_capacity(replies.min(4096));
        for _ in 0..replies {
            out.push(self.read_frame().await.map_err(|_| ())?);
        }
        Ok(out)
    }

    fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl Conn {
    /// An I/O failure, worded as a TLS problem when rustls caused it.
    fn io_failure(&self, what: &str, e: &io::Error) -> Failure {
        self.tls
            .as_deref()
            .and_then(|t| tls::failure(&format!("TLS {what}"), e, t))
            .unwrap_or_else(|| io_failure(what, e))
    }
}

/// Write all of `bytes` and flush: a TLS stream may hold the last record
/// until flushed (for TCP and unix sockets the flush does nothing).
async fn write_flushed(stream: &mut Stream, mut bytes: &[u8]) -> io::Result<()> {
    if let Stream::Tcp(tcp) = stream {
        // Straight to the socket first: a poll's request (a few hundred
        // bytes on an idle connection) goes whole into the send buffer,
        // and the runtime's write path would first read the socket's
        // readiness record, a cache miss per poll at 10,000 instances
        // (BENCHMARKS.md, "Lean again, fifth pass"). What the socket does
        // not take goes the runtime's way, which waits for room. A peer
        // gone is an EPIPE error here as there: Rust programs start with
        // SIGPIPE ignored.
        match SockRef::from(&*tcp).send(bytes) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Connect to the first address that accepts, in the resolver's order
/// (`localhost` is often `::1` first while Redis listens on 127.0.0.1).
/// Each attempt gets an equal share of the time left, so an address that
/// swallows packets does not use up the whole poll.
async fn connect_any(
    addrs: &[SocketAddr],
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr), Failure> {
    let mut last = None;
    for (i, &addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let share = left / (addrs.len() - i) as u32;
        match open_socket(addr, Instant::now() + share).await {
            Ok(stream) => return Ok((stream, addr)),
            Err(f) => last = Some(f),
        }
    }
    Err(last.unwrap_or_else(|| Failure::new(Reason::ConnectionRefused, "no address to connect to")))
}

/// A non-blocking socket with the options set before connect.
async fn open_socket(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, Failure> {
    let setup = || -> io::Result<TcpSocket> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        let keepalive = TcpKeepalive::new()
            .with_time(KEEPALIVE_TIME)
            .with_interval(KEEPALIVE_INTERVAL);
        socket.set_tcp_keepalive(&keepalive)?;
        Ok(TcpSocket::from_std_stream(socket.into()))
    };
    let socket = setup().map_err(|e| io_failure(&format!("socket for {addr}"), &e))?;
    match timeout_at(deadline, socket.connect(addr)).await {
        Ok(Ok(stream)) => {
            // Options set on the unconnected socket stay; check one cheaply
            // in debug builds.
            debug_assert!(SockRef::from(&stream).nodelay().unwrap_or(true));
            Ok(stream)
        }
        Ok(Err(e)) => Err(io_failure(&format!("connect {addr}"), &e)),
        Err(_) => Err(Failure::new(
            Reason::Timeout,
            format!("connect {addr}: timed out"),
        )),
    }
}

/// The INFO text of a reply, or the failure it stands for.
fn expect_info<'a>(frame: &'a Frame, what: &str) -> Result<&'a [u8], Failure> {
    if let Some(text) = info_text(frame) {
        return Ok(text);
    }
    match frame.as_error() {
        Some(e) => {
            let reason = classify_error(e);
            let detail = if reason == Reason::ProtocolError && is_unknown_command(e) {
                format!("{what}: INFO is disabled or renamed: {}", error_text(e))
            } else {
                format!("{what}: {}", error_text(e))
            };
            Err(Failure::new(reason, detail))
        }
        None => Err(Failure::new(
            Reason::ProtocolError,
            format!("{what}: expected a bulk string, got {}", kind(frame)),
        )),
    }
}

/// Map an error reply to a reason by its first word, so Redis's and
/// Valkey's wordings both work.
pub fn classify_error(e: &[u8]) -> Reason {
    let word = e.split(|&b| b == b' ').next().unwrap_or(b"");
    match word {
        b"LOADING" => Reason::Loading,
        b"BUSY" => Reason::Busy,
        b"NOAUTH" | b"WRONGPASS" | b"NOPERM" => Reason::AuthFailed,
        // Sent to a new connection at maxclients, which is then closed.
        _ if contains(e, b"max number of clients") => Reason::ConnectionClosed,
        _ => Reason::ProtocolError,
    }
}

fn is_unknown_command(e: &[u8]) -> bool {
    contains(e, b"unknown command")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Server error text, printable and bounded.
fn error_text(e: &[u8]) -> String {
    let cut = &e[..e.len().min(MAX_ERROR_TEXT)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn kind(frame: &Frame) -> &'static str {
    match frame {
        Frame::Simple(_) => "a simple string",
        Frame::Error(_) | Frame::BulkError(_) => "an error",
        Frame::Integer(_) => "an integer",
        Frame::Bulk(_) => "a bulk string",
        Frame::Null => "null",
        Frame::Array(_) => "an array",
        Frame::Verbatim { .. } => "a verbatim string",
        Frame::Boolean(_) => "a boolean",
        Frame::Double(_) => "a double",
        Frame::BigNumber(_) => "a big number",
        Frame::Map(_) => "a map",
        Frame::Set(_) => "a set",
        Frame::Push(_) => "a push",
    }
}

fn decode_failure(e: DecodeError) -> Failure {
    Failure::new(Reason::ProtocolError, format!("invalid reply: {e}"))
}

fn io_failure(what: &str, e: &io::Error) -> Failure {
    let reason = match e.kind() {
        io::ErrorKind::ConnectionRefused => Reason::ConnectionRefused,
        io::ErrorKind::TimedOut => Reason::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Reason::ConnectionClosed,
        // Unreachable networks, no route, and the like: nothing answers.
        _ => Reason::ConnectionRefused,
    };
    let text = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_string(),
        io::ErrorKind::BrokenPipe => "the server closed the connection".to_string(),
        _ => e.to_string(),
    };
    Failure::new(reason, format!("{what}: {text}"))
}

/// The poll command for a kind of server (one INFO with every section,
/// or one per section; cluster node or not), built once and shared by
/// every connection: a fleet's poll commands are four byte strings, not
/// one per instance.
fn poll_command(multi_section: bool, cluster: bool) -> &'static Bytes {
    static COMMANDS: std::sync::OnceLock<[Bytes; 4]> = std::sync::OnceLock::new();
    let all = COMMANDS.get_or_init(|| {
        let build = |multi: bool, cluster: bool| {
            let mut out = BytesMut::with_capacity(160);
            if multi {
                let mut args: Vec<&[u8]> = vec![b"INFO"];
                args.extend(POLL_SECTIONS.iter().map(|s| s.as_bytes()));
                encode_command(&mut out, &args);
            } else {
                for section in POLL_SECTIONS {
                    encode_command(&mut out, &[b"INFO", section.as_bytes()]);
                }
            }
            if cluster {
                // Same write, one more reply: still one round trip.
                encode_command(&mut out, &[b"CLUSTER", b"INFO"]);
            }
            out.freeze()
        };
        [
            build(false, false),
            build(false, true),
            build(true, false),
            build(true, true),
        ]
    });
    &all[usize::from(multi_section) * 2 + usize::from(cluster)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_larger_than_the_send_buffer_arrives_whole_and_in_order() {
        // The direct send takes what fits; the rest must go the runtime's
        // way and wait for room while the peer reads.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        SockRef::from(&client).set_send_buffer_size(4096).unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let sent: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut stream = Stream::Tcp(client);
        write_flushed(&mut stream, &sent).await.unwrap();
        drop(stream);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "the bytes arrived out of order");
    }

    fn corpus_error(name: &str) -> Vec<u8> {
        crate::testdata::frames(name)[0]
            .as_error()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn corpus_errors_map_to_contract_reasons() {
        for (name, reason) in [
            ("redis-7.0_loading_ping", Reason::Loading),
            ("redis-7.0_busy_script_info", Reason::Busy),
            ("redis-7.0_busy_script_ping", Reason::Busy),
            ("redis-7.0_noauth_info", Reason::AuthFailed),
            ("redis-7.0_wrongpass_auth", Reason::AuthFailed),
            (
                "redis-7.0_maxclients_reached_connect",
                Reason::ConnectionClosed,
            ),
            (
                "redis-7.0_info_renamed_unknown_command",
                Reason::ProtocolError,
            ),
            ("redis-6.2_master_info_multi", Reason::ProtocolError),
            ("redis-7.0_oom_write_error", Reason::ProtocolError),
        ] {
            assert_eq!(classify_error(&corpus_error(name)), reason, "{name}");
        }
        assert_eq!(
            classify_error(b"NOPERM this user has no permissions to run the 'info' command"),
            Reason::AuthFailed
        );
    }

    #[test]
    fn renamed_info_is_reported_as_disabled() {
        let e = Frame::Error(Bytes::from(corpus_error(
            "redis-7.0_info_renamed_unknown_command",
        )));
        let f = expect_info(&e, "INFO").unwrap_err();
        assert_eq!(f.reason, Reason::ProtocolError);
        assert!(f.error.contains("disabled or renamed"), "{}", f.error);
        let f = expect_info(&Frame::Integer(1), "INFO").unwrap_err();
        assert!(f.error.contains("an integer"));
    }

    #[test]
    fn error_text_is_bounded_and_printable() {
        let long = [b"ERR x\r\n".as_slice(), &[b'a'; 500]].concat();
        let t = error_text(&long);
        assert!(t.len() <= MAX_ERROR_TEXT && !t.contains('\r'));
    }
}
