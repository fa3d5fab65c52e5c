//! Target URL and `[NAME=]URL` parsing (redis, rediss, valkey(s), unix,
//! bracketed IPv6) never panics, what it shows parses back to the same
//! address, and the outcome never
//! depends on the password: the same URL with the password swapped for
//! another of the same length gives the same error (so an error cannot
//! carry it), or parses the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redpulse::config::{parse_url, split_spec, validate_name, Endpoint};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else { return };
    let (name, url) = split_spec(spec);
    if let Some(name) = name {
        let _ = validate_name(name);
    }
    let parsed = parse_url(url);
    if let Ok(u) = &parsed {
        match &u.endpoint {
            Endpoint::Tcp { host, port } => {
                assert!(!host.is_empty());
                assert!(*port != 0);
                // What operators are shown parses back to the same place.
                let again = parse_url(&format!("redis://{}", u.endpoint.display()))
                    .expect("a shown address parses");
                assert_eq!(again.endpoint, u.endpoint);
            }
            Endpoint::Unix { path } => assert!(path.is_absolute()),
        }
        assert!(!u.tls || matches!(u.endpoint, Endpoint::Tcp { .. }));
    }
    // Where the password is: between the userinfo's first ':' and the
    // last '@' after "://". Percent-encoded ones decode differently, skip.
    let Some(rest_at) = url.find("://").map(|i| i + 3) else { return };
    let rest = &url[rest_at..];
    // A unix URL that starts with its path has no userinfo at all.
    if url[..rest_at].contains("unix") && rest.starts_with('/') {
        return;
    }
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
        (Ok(a), Ok(b)) => assert_eq!((a.endpoint, a.tls, a.username, a.db), (b.endpoint, b.tls, b.username, b.db)),
        (a, b) => panic!("the password changed the outcome: {a:?} / {b:?}"),
    }
});
