//! The vocabulary of verdicts: [`Status`], [`Reason`], and what one poll
//! produced ([`Outcome`], or a [`Failure`] on the way to one).
//!
//! Sits between the wire and the rules: `net` reports failures in these
//! terms and `judge::rules` folds outcomes into verdicts, so neither has to
//! import the other. Reasons are fixed names from the contract.

use crate::wire::info::Snapshot;
use std::time::Duration;

/// Ordered from best to worst. In JSON, its [`Status::as_str`] name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Degraded,
    Critical,
    Down,
}

impl Status {
    /// The name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Critical => "critical",
            Status::Down => "down",
        }
    }

    /// The status named `s` (as [`Status::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Every status, best first.
    pub const ALL: [Status; 4] = [Status::Ok, Status::Degraded, Status::Critical, Status::Down];
}

/// Why an instance is not ok. Declaration order is the tie-break between
/// reasons of equal status: the earlier is reported as `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Stale,
    ConnectionRefused,
    Timeout,
    ConnectionClosed,
    TlsError,
    AuthFailed,
    ProtocolError,
    Loading,
    Busy,
    /// A heartbeat's pings stopped arriving within interval + grace.
    HeartbeatMissed,
    PersistenceFailing,
    MemoryPressure,
    SystemMemoryPressure,
    SlowResponseCritical,
    ReplicaDisconnected,
    ReplicationLag,
    ClientsNearLimit,
    RejectedConnections,
    BlockedClients,
    TlsCertExpiring,
    BackupStale,
    LowHitRate,
    SlowResponseWarn,
}

impl Reason {
    /// The status this reason implies.
    pub fn status(self) -> Status {
        use Reason::*;
        match self {
            Stale | ConnectionRefused | Timeout | ConnectionClosed | TlsError | AuthFailed
            | ProtocolError | Loading | Busy | HeartbeatMissed => Status::Down,
            PersistenceFailing | MemoryPressure | SystemMemoryPressure | SlowResponseCritical => {
                Status::Critical
            }
            ReplicaDisconnected | ReplicationLag | ClientsNearLimit | RejectedConnections
            | BlockedClients | TlsCertExpiring | BackupStale | LowHitRate | SlowResponseWarn => {
                Status::Degraded
            }
        }
    }

    /// The name used in JSON (both slow_response levels share one name).
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            Stale => "stale",
            ConnectionRefused => "connection_refused",
            Timeout => "timeout",
            ConnectionClosed => "connection_closed",
            TlsError => "tls_error",
            AuthFailed => "auth_failed",
            ProtocolError => "protocol_error",
            Loading => "loading",
            Busy => "busy",
            HeartbeatMissed => "heartbeat_missed",
            PersistenceFailing => "persistence_failing",
            MemoryPressure => "memory_pressure",
            SystemMemoryPressure => "system_memory_pressure",
            SlowResponseCritical | SlowResponseWarn => "slow_response",
            ReplicaDisconnected => "replica_disconnected",
            ReplicationLag => "replication_lag",
            ClientsNearLimit => "clients_near_limit",
            RejectedConnections => "rejected_connections",
            BlockedClients => "blocked_clients",
            TlsCertExpiring => "tls_cert_expiring",
            BackupStale => "backup_stale",
            LowHitRate => "low_hit_rate",
        }
    }

    /// Sort key: status first, then declaration order (earlier ranks higher).
    pub fn rank(self) -> (Status, std::cmp::Reverse<u8>) {
        (self.status(), std::cmp::Reverse(self as u8))
    }
}

/// A poll that did not produce a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// One of the down reasons.
    pub reason: Reason,
    /// What failed, for operators. Never contains a secret.
    pub error: String,
}

impl Failure {
    /// A failure with the given reason and message.
    pub fn new(reason: Reason, error: impl Into<String>) -> Self {
        Failure {
            reason,
            error: error.into(),
        }
    }
}

/// What redpulse knows of a TLS server's certificate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TlsPeer {
    /// The leaf certificate's notAfter.
    pub not_after: std::time::SystemTime,
}

/// What one poll produced.
// The snapshot is inline on purpose: an outcome lives for one poll on the
// poller's stack, and boxing it would cost an allocation per poll.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Outcome {
    /// INFO answered: the merged snapshot and the round trip.
    Polled {
        snapshot: std::sync::Arc<Snapshot>,
        latency: Duration,
        /// The server's certificate, on a TLS connection.
        tls: Option<TlsPeer>,
    },
    /// Connect, auth, I/O or protocol failure.
    Failed {
        failure: Failure,
        tcp_connected: bool,
    },
}
