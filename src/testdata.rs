//! Test helpers over the captured replies in `testdata/info/` (unit tests
//! only).

use crate::wire::info::{info_text, Snapshot};
use crate::wire::resp::{Decoder, Frame};
use bytes::BytesMut;

/// The raw bytes of `testdata/info/{name}.resp`.
pub fn bytes(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/info/{name}.resp", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The name of every capture in `testdata/info/`, sorted.
pub fn names() -> Vec<String> {
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
    let mut buf = BytesMut::from(&bytes(name)[..]);
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
