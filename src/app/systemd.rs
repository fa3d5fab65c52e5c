//! The systemd notify protocol (`Type=notify`), a few datagrams on the
//! socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace): READY=1 once every target has its first verdict (at the
//! latest [`READY_AT_THE_LATEST`] after start), RELOADING=1 and READY=1
//! around a reload, STOPPING=1 at shutdown, and WATCHDOG=1 every half
//! `WATCHDOG_USEC` while the poller keeps up. Without `NOTIFY_SOCKET`
//! nothing is sent; a failed send is logged once and never stops anything.

use crate::shutdown::ShutdownSignal;
use crate::state::store::Store;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// READY=1 goes out this long after start even if some target has no
/// verdict yet: systemd's start timeout must not hang on one slow server
/// (the contract's 60 s).
pub const READY_AT_THE_LATEST: Duration = Duration::from_secs(60);
/// How often the start waits check for the first verdicts.
const READY_CHECK: Duration = Duration::from_millis(50);

/// Where systemd listens, from `NOTIFY_SOCKET`.
#[derive(Debug)]
pub struct Systemd {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
    /// `WATCHDOG_USEC`, when it is meant for this process.
    watchdog: Option<Duration>,
    /// READY=1 was sent once (a reload before it must not send READY=1
    /// early).
    ready: AtomicBool,
    /// A send failed and was logged; later failures are quiet.
    failed: AtomicBool,
}

impl Systemd {
    /// The notify socket from the environment; `None` when redpulse does
    /// not run under a `Type=notify` unit (or the variable is malformed,
    /// which is logged).
    pub fn from_env() -> Option<Arc<Systemd>> {
        let socket = std::env::var_os("NOTIFY_SOCKET")?;
        let watchdog = watchdog_from(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        match Systemd::new(socket.as_encoded_bytes(), watchdog) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                warn!(error = %e, "NOTIFY_SOCKET is set but cannot be used; not notifying systemd");
                None
            }
        }
    }

    fn new(socket: &[u8], watchdog: Option<Duration>) -> std::io::Result<Systemd> {
        use std::os::linux::net::SocketAddrExt;
        let addr = match socket {
            [] => return Err(std::io::Error::other("empty")),
            [b'@', name @ ..] => std::os::unix::net::SocketAddr::from_abstract_name(name)?,
            path => {
                use std::os::unix::ffi::OsStrExt;
                std::os::unix::net::SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(path))?
            }
        };
        Ok(Systemd {
            socket: UnixDatagram::unbound()?,
            addr,
            watchdog,
            ready: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        })
    }

    /// Send one state string, e.g. `READY=1`.
    pub fn notify(&self, state: &str) {
        debug!(state, "notifying systemd");
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                warn!(error = %e, "cannot notify systemd");
            }
        }
    }

    /// READY=1 for the start, once.
    fn ready(&self, status: &str) {
        if !self.ready.swap(true, Ordering::Relaxed) {
            self.notify(&format!("READY=1\nSTATUS={status}"));
        }
    }

    /// A reload begins: RELOADING=1 with the monotonic clock, as systemd
    /// asks of `Type=notify-reload` services (and accepts from `notify`).
    pub fn reloading(&self) {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let usec = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000;
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    /// A reload ended (applied or refused): READY=1 again, unless the
    /// start's READY=1 is still waiting for the first verdicts.
    pub fn reloaded(&self) {
        if self.ready.load(Ordering::Relaxed) {
            self.notify("READY=1");
        }
    }

    /// Shutdown begins.
    pub fn stopping(&self) {
        self.notify("STOPPING=1");
    }

    /// Send READY=1 once the store has a verdict for every instance, or
    /// after [`READY_AT_THE_LATEST`]; then ping the watchdog, if systemd
    /// asked for it, every half period while the poller keeps up.
    pub async fn run(self: Arc<Self>, store: Arc<Store>, mut shutdown: ShutdownSignal) {
        let start = Instant::now();
        loop {
            let pending = store.pending();
            if pending == 0 {
                self.ready(&format!("watching {} instances", store.slots().len()));
                break;
            }
            if start.elapsed() >= READY_AT_THE_LATEST {
                self.ready(&format!(
                    "{pending} instances still without a first verdict after {}s",
                    READY_AT_THE_LATEST.as_secs()
                ));
                break;
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(READY_CHECK) => {}
            }
        }
        let Some(period) = self.watchdog else {
            return;
        };
        let mut tick = tokio::time::interval(period / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut behind = false;
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            // The bound that marks a verdict stale: 3 x interval (or interval
            // + timeout when longer). Past it the poller is stuck or far
            // behind, and systemd should restart the service.
            let lag = store.poll_lag(Instant::now());
            let limit = store.stale_after();
            if lag < limit {
                self.notify("WATCHDOG=1");
                behind = false;
            } else if !behind {
                behind = true;
                warn!(
                    lag_ms = lag.as_millis() as u64,
                    limit_ms = limit.as_millis() as u64,
                    "the poller is behind; not pinging the systemd watchdog"
                );
            }
        }
    }
}

/// `WATCHDOG_USEC` when it is for this process (`WATCHDOG_PID` unset or
/// equal to `pid`) and a positive number.
fn watchdog_from(usec: Option<&str>, watchdog_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if watchdog_pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(pid)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_only_for_the_process_it_names() {
        let s = Some(Duration::from_secs(30));
        assert_eq!(watchdog_from(Some("30000000"), None, 7), s);
        assert_eq!(watchdog_from(Some("30000000"), Some("7"), 7), s);
        assert_eq!(watchdog_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_from(Some("soon"), None, 7), None);
        assert_eq!(watchdog_from(None, None, 7), None);
    }

    #[test]
    fn datagrams_reach_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("redpulse-sd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        let sd = Systemd::new(path.to_str().unwrap().as_bytes(), None).unwrap();
        sd.stopping();
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();

        use std::os::linux::net::SocketAddrExt;
        let name = format!("redpulse-sd-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        let sd = Systemd::new(format!("@{name}").as_bytes(), None).unwrap();
        sd.reloaded(); // nothing: the start's READY=1 has not gone out
        sd.ready("x");
        sd.reloaded();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=x");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(Systemd::new(b"", None).is_err());
    }
}
