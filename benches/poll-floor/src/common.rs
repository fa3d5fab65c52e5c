//! What both floors share: the poll request redpulse sends, a reply
//! completeness check, the handshake that picks the request, the phases.

use std::io::{Read, Write};

/// redpulse's health poll on Redis 7.0 and later: one multi-section INFO.
pub const MULTI: &[u8] = b"*6\r\n$4\r\nINFO\r\n$7\r\nclients\r\n$6\r\nmemory\r\n$5\r\nstats\r\n$11\r\nreplication\r\n$11\r\npersistence\r\n";
/// Before 7.0: one INFO per section, in the same write.
pub const SINGLE: &[u8] = b"*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n*2\r\n$4\r\nINFO\r\n$11\r\npersistence\r\n";

/// Whether `buf` holds `k` whole bulk-string replies (nothing is parsed
/// beyond their lengths: that is the floor).
pub fn complete(buf: &[u8], k: usize) -> bool {
    let mut at = 0;
    for _ in 0..k {
        let rest = &buf[at..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return false;
        };
        assert!(
            rest[0] == b'$',
            "unexpected reply {:?}",
            String::from_utf8_lossy(&rest[..nl])
        );
        let n: usize = std::str::from_utf8(&rest[1..nl - 1])
            .unwrap()
            .parse()
            .unwrap();
        if rest.len() < nl + 1 + n + 2 {
            return false;
        }
        at += nl + 1 + n + 2;
    }
    true
}

/// Connect to 127.0.0.1:`port`, read `INFO server` as redpulse's handshake
/// does, and pick the request redpulse would send: (stream, request,
/// replies per poll).
pub fn connect(port: u16) -> (std::net::TcpStream, &'static [u8], usize) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        .unwrap();
    let mut buf = vec![0u8; 16384];
    let mut n = 0;
    while !complete(&buf[..n], 1) {
        n += s.read(&mut buf[n..]).unwrap();
    }
    let text = String::from_utf8_lossy(&buf[..n]);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap();
    let major: u32 = version.split('.').next().unwrap().trim().parse().unwrap();
    if major >= 7 {
        (s, MULTI, 1)
    } else {
        (s, SINGLE, 5)
    }
}

/// FIRST_PORT N COUNT_FILE from the command line.
pub fn args() -> (u16, usize, String) {
    let a: Vec<String> = std::env::args().collect();
    assert_eq!(a.len(), 4, "usage: FIRST_PORT N COUNT_FILE");
    (a[1].parse().unwrap(), a[2].parse().unwrap(), a[3].clone())
}

/// A phase in [0, 1) per connection (splitmix64), so polls spread over
/// the second as redpulse's do.
pub fn unit(i: usize) -> f64 {
    let mut x = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Polls so far, for the script (written whole, then renamed).
pub fn write_count(path: &str, n: u64) {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, n.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
