//! The source tree follows the data flow: a module imports only from
//! modules earlier in it (config, wire, judge::outcome, net, judge::rules,
//! state, history, poll, http, sim, app). This reads every `crate::` path
//! in `src/` and fails naming the file and line of any import that points
//! later in the flow, so the layout cannot drift back into cycles. Inside
//! one module, the files beside each other must not form a cycle either
//! (a.rs uses b.rs and b.rs uses a.rs): each idea builds on the ones
//! before it.

use std::path::{Path, PathBuf};

/// Position in the flow of a module path such as `judge::outcome` or `http`.
/// `None` for paths outside the checked layout (the test-only corpus
/// helpers may be used from anywhere in unit tests).
fn rank(module: &str) -> Option<u8> {
    let mut parts = module.split("::");
    let top = parts.next()?;
    Some(match top {
        // The crate root's build facts (lib.rs) and the leaf helpers
        // (descriptor limits, cache hints, shutdown) are usable everywhere.
        "config" | "limits" | "cache" | "shutdown" | "VERSION" | "REVISION" | "RUSTC_VERSION"
        | "LONG_VERSION" => 0,
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
        "app" => 10,
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

/// The sibling files (by stem) that `text`, a file of the directory whose
/// module path is `dir_path` (`config`, `http::peers`), names through
/// `super::NAME` or `crate::DIR::NAME`, including inside `{...}` lists.
fn sibling_uses(text: &str, dir_path: &str, siblings: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let prefixes = ["super::".to_string(), format!("crate::{dir_path}::")];
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for prefix in &prefixes {
            let mut rest = code;
            while let Some(at) = rest.find(prefix.as_str()) {
                let after = &rest[at + prefix.len()..];
                // `super::super::x` leaves the directory.
                if after.starts_with("super::") {
                    rest = after.trim_start_matches("super::");
                    continue;
                }
                let heads: Vec<&str> = if let Some(list) = after.strip_prefix('{') {
                    let end = list.find('}').unwrap_or(list.len());
                    list[..end].split(',').map(str::trim).collect()
                } else {
                    vec![after]
                };
                for head in heads {
                    let name: String = head
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let is_module = head[name.len()..].starts_with("::");
                    if is_module && siblings.contains(&name) && !out.contains(&name) {
                        out.push(name);
                    }
                }
                rest = after;
            }
        }
    }
    out
}

/// A cycle among `uses` (file -> files it uses), as the files in order
/// with the first repeated at the end; None when there is none.
fn find_cycle(uses: &std::collections::BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        uses: &std::collections::BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in uses.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, uses, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    uses.keys()
        .find_map(|k| visit(k, uses, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_files_of_one_module_use_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut dirs = std::collections::BTreeMap::<PathBuf, Vec<PathBuf>>::new();
    for f in files {
        let dir = f.parent().unwrap().to_path_buf();
        if dir != src && f.file_stem().is_some_and(|s| s != "mod") {
            dirs.entry(dir).or_default().push(f);
        }
    }
    let mut report = Vec::new();
    for (dir, files) in &dirs {
        let dir_path = dir
            .strip_prefix(&src)
            .unwrap()
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("::");
        let stems: Vec<String> = files
            .iter()
            .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        let uses = files
            .iter()
            .zip(&stems)
            .map(|(f, stem)| {
                let text = std::fs::read_to_string(f).unwrap();
                // A file's unit tests may use any sibling.
                let code = text.split("\n#[cfg(test)]\nmod tests").next().unwrap();
                let mut used = sibling_uses(code, &dir_path, &stems);
                used.retain(|u| u != stem);
                (stem.clone(), used)
            })
            .collect();
        if let Some(cycle) = find_cycle(&uses) {
            report.push(format!(
                "src/{}: {}",
                dir_path.replace("::", "/"),
                cycle.join(" -> ")
            ));
        }
    }
    assert!(dirs.len() >= 8, "only {} module directories", dirs.len());
    assert!(
        report.is_empty(),
        "files that use each other:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_cycle_checker_catches_two_files_that_use_each_other() {
    let siblings: Vec<String> = ["info", "cluster", "resp"].map(String::from).to_vec();
    assert_eq!(
        sibling_uses(
            "use super::{resp::Frame, cluster::Slots};\nuse crate::wire::info::x; // super::zz::a\n",
            "wire",
            &siblings
        ),
        ["resp", "cluster", "info"]
    );
    assert!(sibling_uses(
        "use super::super::info::x;\nuse super::Body;\n",
        "wire",
        &siblings
    )
    .is_empty());
    let graph = |edges: &[(&str, &[&str])]| {
        edges
            .iter()
            .map(|(a, b)| (a.to_string(), b.iter().map(|s| s.to_string()).collect()))
            .collect::<std::collections::BTreeMap<String, Vec<String>>>()
    };
    assert_eq!(
        find_cycle(&graph(&[
            ("cluster", &["info"]),
            ("info", &["resp", "cluster"]),
            ("resp", &[])
        ])),
        Some(["cluster", "info", "cluster"].map(String::from).to_vec())
    );
    assert_eq!(
        find_cycle(&graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])])).map(|c| c.len()),
        Some(4)
    );
    assert_eq!(
        find_cycle(&graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])])),
        None
    );
}
