//! The one writer of Prometheus text exposition: family headers, label
//! pairs with escaped values, and sample values as Prometheus reads them.
//! Used by the exposition builder, the state's label rendering and
//! `/metrics`.

use crate::wire::resp::put_decimal;
use std::io::Write;

/// `# HELP` and `# TYPE` lines of a family.
pub fn header(b: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    let _ = writeln!(b, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A sample value: whole numbers without a fraction, others in Rust's
/// shortest round-trip form; NaN and infinities as Prometheus spells them.
pub fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        write_integer(out, v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A whole number in decimal: most samples are counts, and the
/// formatting machinery cost more than the digits.
fn write_integer(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    put_decimal(out, v.unsigned_abs());
}

/// `,key="value"`, the value escaped.
pub fn push_label(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.push(b',');
    out.extend_from_slice(key);
    out.extend_from_slice(b"=\"");
    escape_label_value(out, value);
    out.push(b'"');
}

/// A label value with `\`, `"` and newlines escaped as the text format
/// requires.
pub fn escape_label_value(out: &mut Vec<u8>, v: &[u8]) {
    for &b in v {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_written_as_the_formatter_writes_them() {
        let mut edges = vec![0i64, 1, -1, 9, 10, -10, 99, 100, i64::MAX, i64::MIN];
        let mut x = 1i64;
        while let Some(next) = x.checked_mul(10) {
            edges.extend([x - 1, x, x + 1, -x, next / 3]);
            x = next;
        }
        for v in edges {
            let mut out = Vec::new();
            write_integer(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
        // And through write_value, for the whole numbers it takes there.
        for v in [0.0, -0.0, 3.0, -42.0, 9_007_199_254_740_991.0] {
            let mut out = Vec::new();
            write_value(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), (v as i64).to_string());
        }
    }
}
