//! INFO parsing never panics on any text, and parsing is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redpulse::wire::info::Snapshot;

fuzz_target!(|data: &[u8]| {
    let mut a = Snapshot::default();
    a.merge_info(data);
    let mut b = Snapshot::default();
    b.merge_info(data);
    assert_eq!(a, b);
    let _ = a.max_replica_lag_bytes();
});
