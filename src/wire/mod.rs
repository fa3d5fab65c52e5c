//! Bytes in, values out: [`resp`] decodes RESP2/RESP3 replies from a read
//! buffer without copies, [`info`] reads INFO text into a `Snapshot`,
//! [`cluster`] reads CLUSTER and SENTINEL replies into topology values. No
//! sockets here; every length from the wire is bounded before use.

pub mod cluster;
pub mod exposition;
pub mod info;
pub mod resp;
