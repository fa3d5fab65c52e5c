//! redpulse watches a fleet of Redis and Valkey servers and answers, per
//! instance and over HTTP, "is it healthy, and if not, why?".
//!
//! Modules in the order data flows through them (a module imports only from
//! modules listed before it; `tests/layout.rs` checks this):
//!
//! - [`config`]: TOML file, command line, target URLs, secrets and
//!   thresholds, validated into a `Config`. [`limits`]: open-file limits.
//!   [`shutdown`]: the one process-wide stop signal.
//! - [`wire`]: RESP decoding (`resp`), INFO text into a `Snapshot`
//!   (`info`) and into redis_exporter's samples (`exposition`), topology
//!   replies (`cluster`), the Prometheus text writer (`prom_text`), sans
//!   I/O.
//! - [`judge::outcome`]: statuses, reasons, failures: the words `net` and
//!   the rules share.
//! - [`net`]: one pooled connection per instance; a poll is one pipelined
//!   write and one read. The one HTTP client (`http_client`).
//! - [`judge::rules`]: snapshots and failures into damped `Health` verdicts.
//! - [`state`]: the latest verdict per instance with its JSON pre-rendered,
//!   poll counters, heartbeats, and what the history is handed (`record`).
//! - [`history`]: transitions and minutes in SQLite under `data_dir`,
//!   uptime, notifications.
//! - [`poll`]: one task per instance on the poller thread; reloads apply as
//!   a diff.
//! - [`http`]: hyper server; one route table, every answer a lookup in
//!   `state`, never a wait on Redis. `/metrics`, fleet views, the status
//!   page, and the calls to other shards and regions live here.
//! - [`sim`]: a simulated fleet for `demo` and load tests.
//! - [`app`]: the running service wired together (config to poller,
//!   history and HTTP), its reloads, and the command line; `main.rs` keeps
//!   only the runtime, signals and exit codes.
// One exception, measured: a cache prefetch in the /metrics render
// (`http::metrics::prefetch`), with its safety argument there.
#![deny(unsafe_code)]

/// This build's version (Cargo's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision this build was made from ("unknown" outside a git
/// checkout unless `REDPULSE_REVISION` was set at build time).
pub const REVISION: &str = env!("REDPULSE_REVISION");
/// The compiler that built it, e.g. "1.95.0".
pub const RUSTC_VERSION: &str = env!("REDPULSE_RUSTC_VERSION");
/// What `--version` prints after the name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("REDPULSE_REVISION"),
    ", rustc ",
    env!("REDPULSE_RUSTC_VERSION"),
    ")"
);

pub mod app;
pub mod cache;
pub mod config;
pub mod history;
pub mod http;
pub mod judge;
pub mod limits;
pub mod net;
pub mod poll;
pub mod shutdown;
pub mod sim;
pub mod state;
#[cfg(test)]
mod testdata;
pub mod wire;
