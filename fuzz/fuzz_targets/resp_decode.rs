//! RESP decoding never panics, and feeding the same bytes in chunks chosen
//! by the fuzzer gives the same frames (or the same error) as feeding them
//! whole.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use redpulse::wire::resp::Decoder;

/// Decode everything; frames are compared by Debug text so NaN doubles
/// compare equal to themselves.
fn decode(pieces: &[&[u8]]) -> (Vec<String>, Option<String>) {
    let mut d = Decoder::new();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(f)) => frames.push(format!("{f:?}")),
                Ok(None) => break,
                Err(e) => return (frames, Some(format!("{e:?}"))),
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, the rest is the wire data.
    let Some((&chunk, wire)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let whole = decode(&[wire]);
    let pieces: Vec<&[u8]> = wire.chunks(chunk).collect();
    let split = decode(&pieces);
    assert_eq!(whole, split);
});
