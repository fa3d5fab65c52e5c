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

/// Whether `text` is, byte for byte, what [`write_value`] writes for the
/// number it reads as, so it can be copied as it came instead of parsed
/// and formatted again. That holds for a plain decimal of at most 15
/// digits: any such decimal survives the trip through an f64, so the
/// shortest form that reads back as the same f64 has its digits, and
/// `write_value` writes it without an exponent. The rest of the form: no
/// leading zero, a sign only before a digit 1-9, a point only between
/// digits, no trailing zero after it. Most INFO values are such numbers.
pub fn is_canonical_number(text: &[u8]) -> bool {
    let unsigned = text.strip_prefix(b"-").unwrap_or(text);
    let (int, frac) = match unsigned.iter().position(|&b| b == b'.') {
        Some(point) => (&unsigned[..point], &unsigned[point + 1..]),
        None => (unsigned, &[][..]),
    };
    let has_point = int.len() != unsigned.len();
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match int {
        [] => return false,
        [b'0'] if unsigned.len() != text.len() => return false,
        [b'0', _, ..] => return false,
        _ => {}
    }
    all_digits(int)
        && all_digits(frac)
        && (!has_point || frac.last().is_some_and(|&d| d != b'0'))
        && int.len() + frac.len() <= 15
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

    /// The oracle: the text parsed by std and written by `write_value`.
    fn rewritten(text: &str) -> String {
        let mut out = Vec::new();
        write_value(&mut out, text.parse::<f64>().unwrap());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn canonical_numbers_are_what_write_value_writes_for_them() {
        // Shapes at the edges: lengths, zeros, the magnitude's ends.
        let mut texts: Vec<String> = [
            "0",
            "7",
            "-7",
            "10",
            "0.5",
            "-12.25",
            "0.000000000000001",
            "999999999999999",
            "-999999999999999",
            "99999999999999.9",
            "0.1",
            "0.2",
            "0.3",
            "1.15",
            "123456.789012345",
            "4503599627370496",
            "0.30000000000000004",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // And many decimals drawn from a fixed-seed xorshift: 1-17 digits
        // with the point anywhere, some negative, some with zeros at the
        // ends (which the check must refuse, not mis-copy).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let len = 1 + (next() % 17) as usize;
            let mut digits: String = (0..len)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            if next() % 4 == 0 {
                digits.replace_range(0..1, "0");
            }
            let point = (next() % (len as u64 + 1)) as usize;
            let mut text = if point > 0 && point < len && next() % 3 != 0 {
                format!("{}.{}", &digits[..point], &digits[point..])
            } else {
                digits
            };
            if next() % 5 == 0 {
                text.insert(0, '-');
            }
            texts.push(text);
        }
        let mut copied = 0;
        for text in &texts {
            if is_canonical_number(text.as_bytes()) {
                assert_eq!(&rewritten(text), text, "{text} is called canonical");
                copied += 1;
            }
        }
        // The check is not vacuous: over a third of the drawn decimals
        // qualify, and the texts that must not, do not.
        assert!(copied > texts.len() / 3, "{copied} of {}", texts.len());
        for not in [
            "",
            "-",
            ".5",
            "5.",
            "1.50",
            "01",
            "00",
            "-0",
            "-0.5",
            "+1",
            " 1",
            "1 ",
            "1e5",
            "1E5",
            "0x10",
            "inf",
            "NaN",
            "1.2.3",
            "--1",
            "1234567890123456",
            "0.0000000000000001",
            "1,5",
            "1_000",
        ] {
            assert!(!is_canonical_number(not.as_bytes()), "{not:?}");
        }
    }
}
