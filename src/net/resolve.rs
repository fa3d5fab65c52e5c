//! Host names to addresses: every address a name resolves to, in the
//! resolver's order, with lookups bounded so a stalled resolver cannot take
//! the whole blocking pool or hold up other instances.
//!
//! IP literals never reach the resolver. A lookup runs on a blocking thread
//! (getaddrinfo has no async form) holding one of [`MAX_LOOKUPS`] slots
//! until it returns, even after the poll that asked has given up, so a
//! resolver that hangs costs at most that many threads; other host-name
//! targets then wait for a slot within their own deadline.

use crate::judge::outcome::{Failure, Reason};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

/// Lookups in flight at once, process-wide. A healthy resolver answers in
/// milliseconds, so a few slots serve thousands of host-name targets.
pub const MAX_LOOKUPS: usize = 8;

static LOOKUP_SLOTS: Semaphore = Semaphore::const_new(MAX_LOOKUPS);

/// Every address of `host`, or the failure to report.
pub async fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let timed_out = || {
        Failure::new(
            Reason::Timeout,
            format!("resolve {host}: no answer within the poll timeout"),
        )
    };
    let slot = match timeout_at(deadline, LOOKUP_SLOTS.acquire()).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) => return Err(Failure::new(Reason::ConnectionRefused, "resolver closed")),
        Err(_) => {
            return Err(Failure::new(
                Reason::Timeout,
                format!("resolve {host}: the resolver is busy ({MAX_LOOKUPS} lookups still waiting for an answer)"),
            ))
        }
    };
    let name = host.to_string();
    let lookup = tokio::task::spawn_blocking(move || {
        // Held until getaddrinfo returns, whoever is still waiting.
        let _slot = slot;
        (name.as_str(), port)
            .to_socket_addrs()
            .map(|addrs| addrs.collect::<Vec<_>>())
    });
    match timeout_at(deadline, lookup).await {
        Err(_) => Err(timed_out()),
        Ok(Err(_)) => Err(Failure::new(
            Reason::ConnectionRefused,
            format!("resolve {host}: the lookup failed"),
        )),
        Ok(Ok(Err(e))) => Err(Failure::new(
            Reason::ConnectionRefused,
            format!("resolve {host}: {e}"),
        )),
        Ok(Ok(Ok(mut addrs))) => {
            // getaddrinfo lists an address once per socket type.
            let mut seen = std::collections::HashSet::new();
            addrs.retain(|a| seen.insert(*a));
            if addrs.is_empty() {
                return Err(Failure::new(
                    Reason::ConnectionRefused,
                    format!("resolve {host}: no addresses"),
                ));
            }
            Ok(addrs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn literals_skip_the_resolver_and_localhost_has_loopback_addresses() {
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            resolve("::1", 7, soon).await.unwrap(),
            vec!["[::1]:7".parse().unwrap()]
        );
        let local = resolve("localhost", 7, soon).await.unwrap();
        assert!(
            local.iter().all(|a| a.ip().is_loopback() && a.port() == 7),
            "{local:?}"
        );
        let e = resolve("no-such-host.invalid", 7, soon).await.unwrap_err();
        assert!(e.error.contains("no-such-host.invalid"), "{}", e.error);
    }
}
