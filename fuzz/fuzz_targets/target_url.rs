//! Target URL and `[NAME=]URL` parsing never panics, and the outcome never
//! depends on the password: the same URL with the password swapped for
//! another of the same length gives the same error (so an error cannot
//! carry it), or parses the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redpulse::config::{parse_url, split_spec, validate_name};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else { return };
    let (name, url) = split_spec(spec);
    if let Some(name) = name {
        let _ = validate_name(name);
    }
    let parsed = parse_url(url);
    if let Ok(u) = &parsed {
        assert!(!u.host.is_empty());
        assert!(u.port != 0);
    }
    // Where the password is: between the userinfo's first ':' and the
    // last '@' after "://". Percent-encoded ones decode differently, skip.
    let Some(rest_at) = url.find("://").map(|i| i + 3) else { return };
    let rest = &url[rest_at..];
    let Some(at) = rest.rfind('@') else { return };
    let Some(colon) = rest[..at].find(':') else { return };
    let (start, end) = (rest_at + colon + 1, rest_at + at);
    let pass = &url[start..end];
    if pass.is_empty() || pass.contains('%') {
        return;
    }
    let other = if pass.starts_with('x') { "y" } else { "x" }.repeat(pass.chars().count());
    let swapped = format!("{}{}{}", &url[..start], other, &url[end..]);
    match (parsed, parse_url(&swapped)) {
        (Err(a), Err(b)) => assert_eq!(a, b, "the error depends on the password"),
        (Ok(a), Ok(b)) => assert_eq!((a.host, a.port, a.username, a.db), (b.host, b.port, b.username, b.db)),
        (a, b) => panic!("the password changed the outcome: {a:?} / {b:?}"),
    }
});
