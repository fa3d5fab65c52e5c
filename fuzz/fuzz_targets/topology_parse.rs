//! Topology replies never panic the parsers: the bytes are read as RESP
//! replies (CLUSTER SHARDS, SENTINEL tables, CKQUORUM) and as text
//! (CLUSTER INFO, CLUSTER NODES), and whatever parses stays within bounds.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use redpulse::wire::cluster::{self, ClusterInfo, CLUSTER_SLOTS, MAX_NODES};
use redpulse::wire::resp::Decoder;

fuzz_target!(|data: &[u8]| {
    let _ = ClusterInfo::parse(data);
    if let Ok(nodes) = cluster::parse_cluster_nodes(data) {
        assert!(nodes.len() <= MAX_NODES);
        assert!(nodes.iter().all(|n| n.port != 0 && n.slots.iter().all(|&(a, b)| a <= b && (b as u32) < CLUSTER_SLOTS)));
    }
    let mut buf = BytesMut::from(data);
    let mut decoder = Decoder::new();
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        if let Ok(nodes) = cluster::parse_cluster_shards(&frame) {
            assert!(nodes.len() <= MAX_NODES);
        }
        let _ = cluster::parse_sentinel_table(&frame);
        let _ = cluster::quorum_reachable(&frame);
    }
});
