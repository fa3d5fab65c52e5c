//! INFO ALL text (and CLUSTER INFO after a NUL byte, and after a second
//! NUL the RESP replies beyond INFO: SLOWLOG LEN, SLOWLOG GET, LATENCY
//! LATEST, CONFIG GET, CLIENT LIST, in turn) into Prometheus samples: never
//! panics, stays within the sample cap, and everything it produces is
//! well-formed exposition text, whatever the server sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use bytes::BytesMut;
use redpulse::wire::exposition::{families, Beyond, Exposition, MAX_SAMPLES};
use redpulse::wire::resp::{Decoder, Frame};

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A sample's text after the instance labels: `(,key="escaped value")*} value\n`.
fn valid_line(line: &[u8]) {
    let mut i = 0;
    while line[i] == b',' {
        i += 1;
        let key_start = i;
        while line[i] != b'=' {
            assert!(line[i].is_ascii_alphanumeric() || line[i] == b'_', "{line:?}");
            i += 1;
        }
        assert!(i > key_start);
        assert_eq!(line[i + 1], b'"');
        i += 2;
        loop {
            match line[i] {
                b'\\' => {
                    assert!(matches!(line[i + 1], b'\\' | b'"' | b'n'), "{line:?}");
                    i += 2;
                }
                b'"' => break,
                b'\n' => panic!("raw newline in a label value: {line:?}"),
                _ => i += 1,
            }
        }
        i += 1;
    }
    assert_eq!(&line[i..i + 2], b"} ", "{line:?}");
    let value = std::str::from_utf8(&line[i + 2..line.len() - 1]).unwrap();
    assert!(
        value.parse::<f64>().is_ok() || matches!(value, "NaN" | "+Inf" | "-Inf"),
        "{value:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let info = parts.next().unwrap_or_default();
    let cluster = parts.next().filter(|c| !c.is_empty());
    // The replies beyond INFO, as many as decode.
    let mut frames: Vec<Frame> = Vec::new();
    if let Some(rest) = parts.next() {
        let mut buf = BytesMut::from(rest);
        let mut d = Decoder::new();
        while let Ok(Some(f)) = d.decode(&mut buf) {
            frames.push(f);
        }
    }
    let mut beyond = Beyond {
        include_config: true,
        redact_config: info.len() % 2 == 0,
        ..Beyond::default()
    };
    for (i, f) in frames.iter().enumerate() {
        match i % 5 {
            0 => beyond.slowlog_len = Some(f),
            1 => beyond.slowlog_get = Some(f),
            2 => beyond.latency_latest = Some(f),
            3 => beyond.config.push(f),
            _ => beyond.client_list = Some(f),
        }
    }
    let e = Exposition::from_replies(info, cluster, &beyond, 1_800_000_000);
    assert!(e.len() <= MAX_SAMPLES);
    let fams = families();
    let mut last = None;
    for (id, lines) in e.groups() {
        assert!(last < Some(id), "families out of order");
        last = Some(id);
        assert!(valid_name(&fams[id as usize].name), "{}", fams[id as usize].name);
        assert!(lines.ends_with(b"\n"));
        for line in lines.split_inclusive(|&b| b == b'\n') {
            valid_line(line);
        }
    }
    assert_eq!(e, Exposition::from_replies(info, cluster, &beyond, 1_800_000_000));
});
