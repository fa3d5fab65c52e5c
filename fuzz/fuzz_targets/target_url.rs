//! Target URL and `[NAME=]URL` parsing never panics, and an error message
//! never repeats the password part of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redpulse::config::{parse_url, split_spec, validate_name};

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else { return };
    let (name, url) = split_spec(spec);
    if let Some(name) = name {
        let _ = validate_name(name);
    }
    match parse_url(url) {
        Ok(u) => {
            assert!(!u.host.is_empty());
            assert!(u.port != 0);
        }
        Err(e) => {
            // A password long enough to be recognisable must not be echoed.
            if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
                if let Some((userinfo, _)) = rest.rsplit_once('@') {
                    if let Some((_, pass)) = userinfo.split_once(':') {
                        if pass.len() >= 8 && !pass.contains(['/', '?', '#', '[', ']']) {
                            assert!(!e.contains(pass), "error {e:?} repeats the password");
                        }
                    }
                }
            }
        }
    }
});
