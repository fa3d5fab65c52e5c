//! The network side of a poll: [`conn`] holds one long-lived connection per
//! instance and turns a poll into one write and one read, over a
//! [`stream`] that is TCP, TLS ([`tls`]) or a unix socket, to addresses
//! from [`resolve`].

pub mod conn;
pub mod resolve;
pub mod stream;
pub mod tls;
