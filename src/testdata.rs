//! Test helpers over the captured replies in `testdata/info/` and
//! `testdata/metrics/`, and a generator for drawn inputs (unit tests
//! only).

use crate::wire::info::{info_text, Snapshot};
use crate::wire::resp::{Decoder, Frame};
use bytes::BytesMut;

/// The raw bytes of `testdata/info/{name}.resp` (`metrics/{name}`:
/// `testdata/metrics/{name}.resp`).
pub fn bytes(name: &str) -> Vec<u8> {
    match name.strip_prefix("metrics/") {
        Some(name) => bytes_in("metrics", name),
        None => bytes_in("info", name),
    }
}

/// The raw bytes of `testdata/{dir}/{name}.resp`.
fn bytes_in(dir: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/{dir}/{name}.resp", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The name of every INFO capture, sorted: every file in `testdata/info/`
/// and the `INFO ALL` replies in `testdata/metrics/` (as `metrics/NAME`).
pub fn names() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/metrics");
    let mut more: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix("_info_all.resp")
                .map(|n| format!("metrics/{n}_info_all"))
        })
        .collect();
    assert!(more.len() >= 4, "metrics captures incomplete");
    let mut names = info_names();
    names.append(&mut more);
    names.sort();
    names
}

/// The name of every capture in `testdata/info/`, sorted.
fn info_names() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/info");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".resp").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 37,
        "corpus incomplete: {} files",
        names.len()
    );
    names
}

/// Every reply in the file, decoded; the file must hold nothing else.
pub fn frames(name: &str) -> Vec<Frame> {
    decode_all(name, &bytes(name))
}

/// Every reply in `testdata/metrics/{name}.resp`, decoded.
pub fn metrics_frames(name: &str) -> Vec<Frame> {
    decode_all(name, &bytes_in("metrics", name))
}

/// The raw bytes of `testdata/metrics/{name}.resp`.
pub fn metrics_bytes(name: &str) -> Vec<u8> {
    bytes_in("metrics", name)
}

fn decode_all(name: &str, bytes: &[u8]) -> Vec<Frame> {
    let mut buf = BytesMut::from(bytes);
    let mut d = Decoder::new();
    let mut out = Vec::new();
    while let Some(f) = d.decode(&mut buf).unwrap() {
        out.push(f);
    }
    assert!(buf.is_empty(), "{name}: trailing bytes");
    out
}

/// Every INFO reply in the file merged into one snapshot.
pub fn snapshot(name: &str) -> Snapshot {
    let mut s = Snapshot::default();
    for f in frames(name) {
        if let Some(text) = info_text(&f) {
            s.merge_info(text);
        }
    }
    s
}

/// A fixed-seed xorshift: the same drawn inputs on every run, so a test
/// that fails on one fails again.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
