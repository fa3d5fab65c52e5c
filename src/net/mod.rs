//! The network side of a poll: [`conn`] holds one long-lived connection per
//! instance and turns a poll into one write and one read, over a
//! [`stream`] that is TCP, TLS ([`tls`]) or a unix socket, to addresses
//! from [`resolve`]; [`extras`] pre-encodes a metrics poll's commands
//! beyond INFO and [`checks`] runs the opt-in key and stream checks;
//! [`bufs`] keeps the poller thread's read buffers for reuse. [`http_client`] is the one HTTP client, for peers and
//! notification receivers.

pub mod bufs;
pub mod checks;
pub mod conn;
pub mod extras;
pub mod http_client;
pub mod resolve;
pub mod stream;
pub mod tls;
