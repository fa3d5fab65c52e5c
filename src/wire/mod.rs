//! Bytes in, values out: [`resp`] decodes RESP2/RESP3 replies from a read
//! buffer without copies, [`info`] reads INFO text into a `Snapshot`,
//! [`cluster`] reads CLUSTER and SENTINEL replies into topology values,
//! [`exposition`] INFO into redis_exporter's samples, all over the one
//! line walker in [`lines`]; [`prom_text`] is the one writer of
//! Prometheus text. No
//! sockets here; every length from the wire is bounded before use.

pub mod cluster;
pub mod exposition;
pub mod info;
pub mod lines;
pub mod prom_text;
pub mod resp;
