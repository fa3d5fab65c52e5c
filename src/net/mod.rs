//! The network side of a poll: [`conn`] holds one long-lived connection per
//! instance and turns a poll into one write and one read.

pub mod conn;
