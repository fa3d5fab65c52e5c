//! redpulse watches a fleet of Redis and Valkey servers and answers, per
//! instance and over HTTP, "is it healthy, and if not, why?".
//!
//! Data flow: [`config`] yields targets; [`poller`] runs one task per
//! instance over one long-lived [`conn`] each; a poll is one write of
//! pipelined INFO commands whose replies [`resp`] decodes without copies and
//! [`info`] reads into a `Snapshot`; [`health`] turns snapshots into a
//! `Health` verdict; [`store`] keeps the latest rendered JSON per instance,
//! and [`http`] serves it without ever waiting on Redis.
#![forbid(unsafe_code)]

pub mod config;
pub mod conn;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod info;
pub mod limits;
pub mod metrics;
pub mod poller;
pub mod resp;
pub mod sim;
pub mod store;
#[cfg(test)]
mod testdata;
pub mod views;
