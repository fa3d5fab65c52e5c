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

/// Write what [`write_value`] writes for `value()`, the decimal `text`
/// read as an f64 and divided by 10^`shift` (a microsecond count in
/// seconds is shift 6), copying the digits instead of formatting the float
/// when that gives the same bytes; `value` is called only when it does
/// not. That holds for a plain decimal of at most 15 digits, a whole
/// number when `shift` is not 0: reading it rounds once (the parse, or one
/// division of an exact whole number by an exact power of ten) to the f64
/// nearest the decimal, any decimal of at most 15 significant digits
/// survives that trip, so the shortest form that reads back as the same
/// f64 has its digits, and `write_value` writes them without an exponent.
/// The rest of the form: no leading zero, a point only between digits.
/// Trailing zeros after the point are dropped, as the shortest form has
/// none, and a zero of either sign is written `0`, as `write_value` does.
pub fn write_decimal(out: &mut Vec<u8>, text: &[u8], shift: usize, value: impl FnOnce() -> f64) {
    if !copy_decimal(out, text, shift) {
        write_value(out, value());
    }
}

/// [`write_decimal`]'s copy: false, and nothing written, when `text` is
/// not of the form it proves.
fn copy_decimal(out: &mut Vec<u8>, text: &[u8], shift: usize) -> bool {
    let (negative, unsigned) = match text.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = match unsigned.iter().position(|&b| b == b'.') {
        Some(point) => (&unsigned[..point], &unsigned[point + 1..]),
        None => (unsigned, &[][..]),
    };
    let has_point = int.len() != unsigned.len();
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let well_formed = match int {
        [] | [b'0', _, ..] => false,
        _ => all_digits(int) && all_digits(frac),
    };
    if !well_formed
        || (has_point && (frac.is_empty() || shift != 0))
        || int.len() + frac.len() > 15
        || shift > 15
    {
        return false;
    }
    let trim = |s: &'_ [u8]| -> usize { s.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1) };
    if int == b"0" && trim(frac) == 0 {
        // Zero, of any sign, is written as a whole number.
        out.push(b'0');
        return true;
    }
    // The digits before the point, and after it: `zeros`, then `part`.
    let (whole, zeros, part): (&[u8], usize, &[u8]) = if shift == 0 {
        (int, 0, frac)
    } else if int.len() > shift {
        let (whole, part) = int.split_at(int.len() - shift);
        (whole, 0, part)
    } else {
        (b"0", shift - int.len(), int)
    };
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(whole);
    let part = &part[..trim(part)];
    if !part.is_empty() {
        out.push(b'.');
        out.resize(out.len() + zeros, b'0');
        out.extend_from_slice(part);
    }
    true
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

    /// The oracle: the text parsed by std, divided as the builder divides
    /// (`usec / 1e6`), and written by `write_value`.
    fn rewritten(text: &str, shift: usize) -> String {
        const POWERS: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
        let mut out = Vec::new();
        write_value(&mut out, text.parse::<f64>().unwrap() / POWERS[shift]);
        String::from_utf8(out).unwrap()
    }

    fn copied(text: &str, shift: usize) -> Option<String> {
        let mut out = b"x".to_vec();
        if !copy_decimal(&mut out, text.as_bytes(), shift) {
            assert_eq!(out, b"x", "{text:?}: written though refused");
            return None;
        }
        Some(String::from_utf8(out[1..].to_vec()).unwrap())
    }

    #[test]
    fn copied_decimals_are_what_write_value_writes_for_them() {
        // Shapes at the edges, with what they must become (by hand).
        for (text, shift, want) in [
            ("0", 0, "0"),
            ("7", 0, "7"),
            ("-7", 0, "-7"),
            ("0.5", 0, "0.5"),
            ("-0.5", 0, "-0.5"),
            ("-0", 0, "0"),
            ("-0.000", 0, "0"),
            ("1.50", 0, "1.5"),
            ("4.000", 0, "4"),
            ("0.213780", 0, "0.21378"),
            ("99.9", 0, "99.9"),
            ("10.047", 0, "10.047"),
            ("0.00000000000001", 0, "0.00000000000001"),
            ("999999999999999", 0, "999999999999999"),
            ("99999999999999.9", 0, "99999999999999.9"),
            ("123456.789012345", 0, "123456.789012345"),
            ("0.1", 0, "0.1"),
            ("0.3", 0, "0.3"),
            ("90856", 6, "0.090856"),
            ("2000000", 6, "2"),
            ("2500000", 6, "2.5"),
            ("5", 6, "0.000005"),
            ("-5", 6, "-0.000005"),
            ("0", 6, "0"),
            ("100", 6, "0.0001"),
            ("123456789012345", 6, "123456789.012345"),
            ("123", 3, "0.123"),
            ("1230", 3, "1.23"),
        ] {
            assert_eq!(
                copied(text, shift).as_deref(),
                Some(want),
                "{text} shift {shift}"
            );
            assert_eq!(
                rewritten(text, shift),
                want,
                "{text} shift {shift}: the oracle"
            );
        }
        // And many decimals drawn from a fixed-seed xorshift: 1-17 digits
        // with the point anywhere, some negative, some with zeros at the
        // ends, each at shifts 0, 3 and 6.
        let mut next = crate::testdata::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut texts = Vec::new();
        for _ in 0..200_000 {
            let len = 1 + (next() % 17) as usize;
            let mut digits: String = (0..len)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            if next() % 4 == 0 {
                digits.replace_range(0..1, "0");
            }
            if next() % 4 == 0 {
                digits.replace_range(len - 1..len, "0");
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
        for shift in [0, 3, 6] {
            let mut n = 0;
            for text in &texts {
                if let Some(out) = copied(text, shift) {
                    assert_eq!(out, rewritten(text, shift), "{text} shift {shift}");
                    n += 1;
                }
            }
            // Not vacuous: whole numbers (a third of the draws) qualify at
            // every shift, and decimals too at shift 0.
            let least = if shift == 0 {
                texts.len() / 2
            } else {
                texts.len() / 5
            };
            assert!(n > least, "shift {shift}: {n} of {}", texts.len());
        }
        for (not, shift) in [
            ("", 0),
            ("-", 0),
            (".5", 0),
            ("5.", 0),
            ("01", 0),
            ("00", 0),
            ("-01", 0),
            ("+1", 0),
            (" 1", 0),
            ("1 ", 0),
            ("1e5", 0),
            ("1E5", 0),
            ("0x10", 0),
            ("inf", 0),
            ("NaN", 0),
            ("ok", 0),
            ("1.2.3", 0),
            ("--1", 0),
            ("1234567890123456", 0),
            ("0.000000000000001", 0),
            ("1,5", 0),
            ("1_000", 0),
            ("1.5", 6),
            ("1.0", 3),
            ("1234567890123456", 6),
        ] {
            assert_eq!(copied(not, shift), None, "{not:?} shift {shift}");
        }
    }
}
