//! Config loading never panics on any file contents: it loads or returns
//! a one-line error. The same bytes as a web config (the exporter-toolkit
//! YAML) too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redpulse::config::{load, Overrides};
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    // Paths into special files could block on a read (/dev/stdin, a FIFO)
    // and say nothing about the parser.
    if [&b"/dev"[..], b"/proc", b"/sys"].iter().any(|p| data.windows(p.len()).any(|w| w == *p)) {
        return;
    }
    // load() reads a path; a per-process scratch file keeps this a plain
    // library call.
    let path = std::env::temp_dir().join(format!("redpulse-fuzz-config-{}.toml", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("temp dir is writable");
    f.write_all(data).expect("temp dir is writable");
    drop(f);
    if let Err(e) = load(&Overrides { config: Some(path), ..Overrides::default() }) {
        assert!(!e.0.contains('\n'), "multi-line error: {e}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let dir = std::path::Path::new("/nonexistent");
        if let Err(e) = redpulse::config::web::parse(text, dir, &dir.join("web.yml")) {
            assert!(!e.contains('\n'), "multi-line web config error: {e}");
        }
    }
});
