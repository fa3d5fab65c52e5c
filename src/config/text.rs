//! Text helpers shared by every reader of user-written text: durations,
//! bounded file reads, paths and line numbers for one-line errors, the one
//! percent decoder (target URLs' userinfo and paths, HTTP query strings),
//! the one query-string parser, and base64 (basic auth, CSP hashes). Strict: a `%` must be followed by two
//! hex digits and the result must be UTF-8, so a broken escape is an error
//! the caller can name, never a silently different string.

use std::path::Path;
use std::time::Duration;

/// Longest duration any setting accepts. Heartbeats of weekly jobs fit;
/// anything longer is a typo, and bounding it here keeps every later sum
/// and product of durations (stale limits, deadlines) far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// Parse `250ms`, `1s`, `2m`, `1h` (a whole number and a unit), at most
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let shape = || format!("duration {s:?}: expected a number and a unit, e.g. 250ms, 1s, 2m");
    if num.is_empty() {
        return Err(shape());
    }
    // A number too long for u64 is as much out of range as a large one.
    let n: u64 = num.parse().unwrap_or(u64::MAX);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("duration {s:?}: unit must be ms, s, m or h")),
    };
    let d = n
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("duration {s:?} is too long: at most 366 days"))?;
    Ok(d)
}

/// Largest config or targets file: 100,000 targets take about 5 MB.
pub(crate) const MAX_CONFIG_FILE: u64 = 64 << 20;

/// Read a whole file of at most `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(text)
}

/// A path for a one-line message: control characters escaped.
pub(crate) fn shown(path: &Path) -> String {
    path.display().to_string().escape_debug().to_string()
}

/// Line number (1-based) of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// How `+` reads in the text being decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plus {
    /// A URL's userinfo or path: `+` is itself.
    Literal,
    /// A query string (form encoding): `+` is a space.
    Space,
}

/// Percent-decode `s`; None for a broken escape or a result that is not
/// UTF-8.
pub fn percent_decode(s: &str, plus: Plus) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = hex_value(*b.get(i + 1)?)?;
                let lo = hex_value(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus == Plus::Space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A query parameter whose value is not valid percent-encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadEscape<'a>(pub &'a str);

impl std::fmt::Display for BadEscape<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: bad percent-encoding", self.0)
    }
}

/// The `key=value` pairs of a query string in order, values decoded (`+`
/// is a space); a key without `=` has an empty value, empty pieces are
/// skipped. Keys are taken as written: every key redpulse reads is plain
/// ASCII.
pub fn query_pairs(q: &str) -> impl Iterator<Item = Result<(&str, String), BadEscape<'_>>> {
    q.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        percent_decode(v, Plus::Space)
            .map(|v| (k, v))
            .ok_or(BadEscape(k))
    })
}

/// Standard base64 with padding (RFC 4648 §4); None when malformed.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, chunk) in s.chunks(4).enumerate() {
        let last = i == s.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// Standard base64 with padding, for CSP hashes.
pub fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious decoder, one byte at a time through u8::from_str_radix on
    /// checked hex digits: the oracle for the fast path above.
    fn oracle(s: &str, plus: Plus) -> Option<String> {
        let mut out = Vec::new();
        let mut it = s.bytes();
        while let Some(c) = it.next() {
            if c == b'%' {
                let h: Vec<u8> = it.by_ref().take(2).collect();
                if h.len() != 2 || !h.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(&h).ok()?, 16).ok()?);
            } else if c == b'+' && plus == Plus::Space {
                out.push(b' ');
            } else {
                out.push(c);
            }
        }
        String::from_utf8(out).ok()
    }

    #[test]
    fn decoding_is_strict_and_matches_the_oracle() {
        // from_str_radix alone takes a sign: "%+1" must not become 0x01.
        for bad in ["%+1", "%-1", "%1", "%", "%g0", "%%41", "%ff"] {
            assert_eq!(percent_decode(bad, Plus::Literal), None, "{bad}");
        }
        assert_eq!(percent_decode("%41%2b%25+", Plus::Literal).unwrap(), "A+%+");
        assert_eq!(percent_decode("a+b%3Ac", Plus::Space).unwrap(), "a b:c");
        let alphabet = ["%", "4", "1", "+", "a", "F", "g", "%c3", "%a9", "z"];
        let mut n = 0u32;
        // Every string of up to four pieces from the alphabet.
        for len in 0..=4u32 {
            for i in 0..alphabet.len().pow(len) {
                let mut s = String::new();
                let mut k = i;
                for _ in 0..len {
                    s.push_str(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                for plus in [Plus::Literal, Plus::Space] {
                    assert_eq!(percent_decode(&s, plus), oracle(&s, plus), "{s:?}");
                    n += 1;
                }
            }
        }
        assert!(n > 20_000);
    }

    #[test]
    fn query_pairs_decode_values_in_order() {
        let pairs: Vec<_> = query_pairs("all&label=team%3Apay+x&&window=1h&x=")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            pairs,
            vec![
                ("all", String::new()),
                ("label", "team:pay x".into()),
                ("window", "1h".into()),
                ("x", String::new()),
            ]
        );
        let e = query_pairs("a=1&since=%zz").find_map(Result::err).unwrap();
        assert_eq!(e.to_string(), "since: bad percent-encoding");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "1", "s", "1.5s", "-1s", "1 d", "1sec"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_past_the_bound_are_errors_not_overflows() {
        assert_eq!(parse_duration("8784h"), Ok(MAX_DURATION));
        for long in [
            "8785h",
            "6148914691236517206s",
            "18446744073709551615ms",
            "99999999999999999999999s",
            "307445734561825861m",
        ] {
            let e = parse_duration(long).unwrap_err();
            assert!(e.contains("too long"), "{long}: {e}");
        }
    }
}
