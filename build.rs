//! Build-time facts for `--version` and `redpulse_build_info`: the git
//! revision of the tree (or `REDPULSE_REVISION` when set, e.g. by a build
//! from a tarball; "unknown" without either) and the compiler's version.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=REDPULSE_REVISION");
    let revision = std::env::var("REDPULSE_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=REDPULSE_REVISION={}", revision.trim());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=REDPULSE_RUSTC_VERSION={rustc_version}");
}

/// The commit checked out, 12 hex digits; rebuilt when HEAD or the branch
/// it names moves. (No "-dirty" mark: the script does not rerun on every
/// edit, so it could not be kept true.)
fn git_revision() -> Option<String> {
    let git_dir = run("git", &["rev-parse", "--git-dir"])?;
    let head = std::path::Path::new(git_dir.trim()).join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    if let Some(reference) = run("git", &["symbolic-ref", "-q", "HEAD"]) {
        let common = run("git", &["rev-parse", "--git-common-dir"])?;
        let path = std::path::Path::new(common.trim()).join(reference.trim());
        println!("cargo:rerun-if-changed={}", path.display());
    }
    run("git", &["rev-parse", "--short=12", "HEAD"]).map(|r| r.trim().to_string())
}

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
