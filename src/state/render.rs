//! The contract's per-instance JSON, rendered once per poll by hand (no
//! `fmt` on the hot path), and RFC 3339 UTC timestamps with milliseconds.
//!
//! The JSON is split around `age_ms`, the one field that changes between
//! polls, so serving a request only splices that number in.

use crate::judge::rules::{cert_days_left, Health};
use crate::wire::info::Role;
use crate::wire::resp::put_decimal;
use bytes::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};

/// `,"instance":...,"addr":...[,"tls":true]` for a slot, escaped once.
pub fn ident_json(name: &str, addr: &str, tls: bool) -> Box<[u8]> {
    let mut b = Vec::with_capacity(48 + name.len() + addr.len());
    b.extend_from_slice(b",\"instance\":");
    json_str(&mut b, name);
    b.extend_from_slice(b",\"addr\":");
    json_str(&mut b, addr);
    if tls {
        b.extend_from_slice(b",\"tls\":true");
    }
    b.into_boxed_slice()
}

/// Render the contract's JSON for one verdict, split around `age_ms`.
/// Runs once per poll, so it writes digits by hand instead of going
/// through `fmt`.
pub fn render(ident: &[u8], h: &Health) -> (Bytes, Bytes) {
    let mut b = Vec::with_capacity(512);
    b.extend_from_slice(b"{\"status\":\"");
    b.extend_from_slice(h.status.as_str().as_bytes());
    b.push(b'"');
    if let Some(r) = h.reason() {
        b.extend_from_slice(b",\"reason\":\"");
        b.extend_from_slice(r.as_str().as_bytes());
        b.push(b'"');
    }
    b.extend_from_slice(ident);
    if let Some(s) = &h.snapshot {
        match s.role {
            Some(Role::Master) => b.extend_from_slice(b",\"role\":\"master\""),
            Some(Role::Replica) => b.extend_from_slice(b",\"role\":\"replica\""),
            None => {}
        }
        if let Some(v) = s.server.version() {
            b.extend_from_slice(b",\"version\":\"");
            put_decimal(&mut b, v.major as u64);
            b.push(b'.');
            put_decimal(&mut b, v.minor as u64);
            b.push(b'.');
            put_decimal(&mut b, v.patch as u64);
            b.push(b'"');
        }
        if let (Some(used), Some(max)) = (s.used_memory, s.maxmemory) {
            let ratio = if max == 0 {
                0.0
            } else {
                used as f64 / max as f64
            };
            milli(&mut b, "mem_ratio", ratio);
        }
        num(&mut b, "used_memory", s.used_memory);
        num(&mut b, "maxmemory", s.maxmemory);
        if let Some(rate) = h.hit_rate {
            milli(&mut b, "hit_rate", rate);
        }
        num(&mut b, "ops_per_sec", s.instantaneous_ops_per_sec);
        num(&mut b, "connected_clients", s.connected_clients);
        num(&mut b, "maxclients", s.maxclients);
        num(&mut b, "blocked_clients", s.blocked_clients);
        match s.role {
            Some(Role::Master) => {
                num(&mut b, "connected_replicas", s.connected_slaves);
                num(&mut b, "max_replica_lag_bytes", s.max_replica_lag_bytes());
            }
            Some(Role::Replica) => {
                match s.master_link_up {
                    Some(true) => b.extend_from_slice(b",\"master_link_status\":\"up\""),
                    Some(false) => b.extend_from_slice(b",\"master_link_status\":\"down\""),
                    None => {}
                }
                if let Some(io) = s.master_last_io_seconds_ago {
                    key(&mut b, "master_last_io_seconds_ago");
                    if io < 0 {
                        b.push(b'-');
                    }
                    put_decimal(&mut b, io.unsigned_abs());
                }
            }
            None => {}
        }
    }
    if let Some(l) = h.latency {
        milli(&mut b, "latency_ms", l.as_secs_f64() * 1000.0);
    }
    if let Some(peer) = h.tls {
        key(&mut b, "tls_cert_expires_in_days");
        tenths(&mut b, cert_days_left(peer, h.checked_at));
    }
    if let Some(e) = &h.error {
        b.extend_from_slice(b",\"error\":");
        json_str(&mut b, e);
    }
    b.extend_from_slice(b",\"checked_at\":\"");
    push_rfc3339_millis(&mut b, h.checked_at);
    b.push(b'"');
    let head = Bytes::from(b);

    let mut t = Vec::with_capacity(16 + 24 * h.reasons.len());
    t.extend_from_slice(b",\"reasons\":[");
    for (i, r) in h.reasons.iter().enumerate() {
        if i > 0 {
            t.push(b',');
        }
        t.push(b'"');
        t.extend_from_slice(r.as_str().as_bytes());
        t.push(b'"');
    }
    t.extend_from_slice(b"]}");
    (head, Bytes::from(t))
}

fn key(b: &mut Vec<u8>, key: &str) {
    b.extend_from_slice(b",\"");
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(b"\":");
}

fn num(b: &mut Vec<u8>, k: &str, v: Option<u64>) {
    if let Some(v) = v {
        key(b, k);
        put_decimal(b, v);
    }
}

/// A non-negative number rounded to three decimals, written as the
/// shortest decimal (0.42, not 0.420; 1, not 1.000). Non-finite is 0.
fn milli(b: &mut Vec<u8>, k: &str, x: f64) {
    key(b, k);
    let m = if x.is_finite() && x > 0.0 {
        (x * 1000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    };
    put_decimal(b, m / 1000);
    let mut frac = m % 1000;
    if frac != 0 {
        b.push(b'.');
        let mut digits = 3;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let text = [
            b'0' + (frac / 100 % 10) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        b.extend_from_slice(&text[3 - digits..]);
    }
}

/// A number rounded to one decimal, sign kept (`3.2`, `-0.5`, `14`).
fn tenths(b: &mut Vec<u8>, x: f64) {
    let t = if x.is_finite() {
        (x * 10.0).round().clamp(-1e15, 1e15) as i64
    } else {
        0
    };
    if t < 0 {
        b.push(b'-');
    }
    let t = t.unsigned_abs();
    put_decimal(b, t / 10);
    if t % 10 != 0 {
        b.push(b'.');
        b.push(b'0' + (t % 10) as u8);
    }
}

/// Append `s` as a JSON string with escapes.
pub fn json_str(b: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(b, s).expect("writing a str into a Vec cannot fail");
}

/// `2026-11-26T12:00:00.123Z`
pub fn rfc3339_millis(t: SystemTime) -> String {
    let mut b = Vec::with_capacity(24);
    push_rfc3339_millis(&mut b, t);
    String::from_utf8(b).expect("only ASCII digits and separators are written")
}

/// Append `2026-11-26T12:00:00.123Z` (UTC, milliseconds).
pub fn push_rfc3339_millis(b: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    push_digits(b, y.clamp(0, 9999) as u64, 4, b'-');
    push_digits(b, m as u64, 2, b'-');
    push_digits(b, day as u64, 2, b'T');
    push_digits(b, rem / 3600, 2, b':');
    push_digits(b, rem % 3600 / 60, 2, b':');
    push_digits(b, rem % 60, 2, b'.');
    push_digits(b, d.subsec_millis() as u64, 3, b'Z');
}

/// `v` zero-padded to `width` digits (v must fit), then `after`.
fn push_digits(b: &mut Vec<u8>, mut v: u64, width: usize, after: u8) {
    let start = b.len();
    b.resize(start + width, b'0');
    for i in (start..start + width).rev() {
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    b.push(after);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn milli_matches_the_rounded_float_printed_by_std() {
        let mut values = vec![
            0.0, 0.0004, 0.0005, 0.001, 0.1, 0.31, 0.42, 0.999, 0.9995, 1.0, 2.5, 123.456789, 1e9,
        ];
        let mut x = 0.000_123_f64;
        while x < 5000.0 {
            values.push(x);
            x *= 1.37;
        }
        for v in values {
            let mut b = Vec::new();
            milli(&mut b, "k", v);
            let ours: f64 = std::str::from_utf8(&b[5..]).unwrap().parse().unwrap();
            assert_eq!(
                ours,
                (v * 1000.0).round() / 1000.0,
                "{v} rendered as {}",
                String::from_utf8_lossy(&b)
            );
            assert!(
                !b.ends_with(b"0") || !b.contains(&b'.'),
                "trailing zero in {}",
                String::from_utf8_lossy(&b)
            );
        }
        let mut b = Vec::new();
        milli(&mut b, "k", f64::NAN);
        assert_eq!(b, b",\"k\":0");
    }

    #[test]
    fn tenths_match_the_rounded_float_printed_by_std() {
        for v in [
            0.0, 0.04, 0.05, 2.96, 3.0, 13.99, -0.5, -2.96, 1234.56, -0.04,
        ] {
            let mut b = Vec::new();
            tenths(&mut b, v);
            let ours: f64 = std::str::from_utf8(&b).unwrap().parse().unwrap();
            assert_eq!(ours, (v * 10.0_f64).round() / 10.0, "{v}");
            assert!(!b.ends_with(b".0"), "{}", String::from_utf8_lossy(&b));
        }
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        let t = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(rfc3339_millis(t(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(t(951_782_400, 5)),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            rfc3339_millis(t(1_795_694_400, 123)),
            "2026-11-26T12:00:00.123Z"
        );
        assert_eq!(
            rfc3339_millis(t(4_102_444_799, 999)),
            "2099-12-31T23:59:59.999Z"
        );
    }
}
