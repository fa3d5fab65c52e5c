//! The source tree follows the data flow: a module imports only from
//! modules earlier in it (config, wire, judge::outcome, net, judge::rules,
//! state, history, poll, http, sim). This reads every `crate::` path in `src/` and
//! fails naming the file and line of any import that points later in the
//! flow, so the layout cannot drift back into cycles.

use std::path::{Path, PathBuf};

/// Position in the flow of a module path such as `judge::outcome` or `http`.
/// `None` for paths outside the checked layout (the test-only corpus
/// helpers may be used from anywhere in unit tests).
fn rank(module: &str) -> Option<u8> {
    let mut parts = module.split("::");
    let top = parts.next()?;
    Some(match top {
        "config" | "limits" | "shutdown" => 0,
        "wire" => 1,
        "judge" => match parts.next() {
            Some("outcome") => 2,
            _ => 4,
        },
        "net" => 3,
        "state" => 5,
        "history" => 6,
        "poll" => 7,
        "http" => 8,
        "sim" => 9,
        "testdata" => return None,
        other => panic!("module {other} has no place in the flow: add it to tests/layout.rs"),
    })
}

/// The module a source file belongs to: `src/judge/outcome.rs` is
/// `judge::outcome`, `src/http/views.rs` is `http`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" || one == "main" => None,
        [one] => Some(one.clone()),
        [dir, file] if dir == "judge" && file != "mod" => Some(format!("judge::{file}")),
        [dir, ..] => Some(dir.clone()),
        [] => None,
    }
}

/// Every `crate::a::b` path in a line, as `a::b`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        out.push(after[..end].trim_end_matches(':').to_string());
        rest = &after[end..];
    }
    out
}

/// Imports in `text` (the file of `module`) that point later in the flow.
fn violations(module: &str, text: &str) -> Vec<(usize, String)> {
    let own = rank(module).expect("a checked module");
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for path in crate_paths(code) {
            if rank(&path).is_some_and(|r| r > own) {
                bad.push((i + 1, path));
            }
        }
    }
    bad
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_one_later_in_the_data_flow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut checked = 0;
    let mut report = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        if rank(&module).is_none() {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for (line, path) in violations(&module, &text) {
            report.push(format!(
                "{}:{line}: {module} imports crate::{path}, which comes later in the flow",
                file.display()
            ));
        }
    }
    assert!(
        checked >= 20,
        "only {checked} files checked: is src/ laid out as expected?"
    );
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn the_checker_catches_an_import_against_the_flow() {
    let text = "use crate::wire::resp::Frame;\nuse crate::http::metrics::render; // late\n";
    assert_eq!(
        violations("state", text),
        vec![(2, "http::metrics::render".to_string())]
    );
    assert_eq!(
        violations("net", "use crate::judge::rules::Tracker;\n"),
        vec![(1, "judge::rules::Tracker".to_string())]
    );
    assert!(violations("net", "use crate::judge::outcome::{Failure, Reason};\n").is_empty());
    assert!(violations("config", "// see crate::http for the server\n").is_empty());
    let src = Path::new("/x/src");
    assert_eq!(
        module_of(src, Path::new("/x/src/judge/outcome.rs")).as_deref(),
        Some("judge::outcome")
    );
    assert_eq!(
        module_of(src, Path::new("/x/src/http/views.rs")).as_deref(),
        Some("http")
    );
    assert_eq!(module_of(src, Path::new("/x/src/main.rs")), None);
}
