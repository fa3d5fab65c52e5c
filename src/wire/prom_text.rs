//! The one writer of Prometheus text exposition: family headers, label
//! pairs with escaped values, and sample values as Prometheus reads them.
//! Used by the exposition builder, the state's label rendering and
//! `/metrics`.

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
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
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
