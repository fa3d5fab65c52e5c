//! Watching the config and targets files: a thread looks at them every
//! `watch_interval` and says when any changed, so edits apply without a
//! signal. A change is a different file behind the path (a Kubernetes
//! ConfigMap swaps its `..data` symlink to a new directory), or the same
//! file with another size or modification time (an edit in place).
//!
//! A thread, not a task: looking at a file on a hung network mount blocks,
//! and nothing else may wait on that.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::Sender;

/// What identifies one version of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Where the path leads once every symlink is followed.
    real: Option<PathBuf>,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

/// The fingerprint of `path`; a missing file has one too (all empty), so
/// its appearing counts as a change.
pub fn fingerprint(path: &Path) -> Fingerprint {
    let real = std::fs::canonicalize(path).ok();
    match std::fs::metadata(path) {
        Ok(m) => Fingerprint {
            real,
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        },
        Err(_) => Fingerprint {
            real,
            dev: 0,
            ino: 0,
            size: 0,
            mtime_ns: 0,
        },
    }
}

/// Start the watching thread: every `every`, fingerprint the paths in
/// `files` (which a reload may replace) and send `()` on `changed` when any
/// differs from the last look. Ends when the receiver is dropped.
pub fn start(files: Arc<Mutex<Vec<PathBuf>>>, every: Duration, changed: Sender<()>) {
    let spawned = std::thread::Builder::new()
        .name("redpulse-watch".into())
        .spawn(move || {
            let look = |files: &Mutex<Vec<PathBuf>>| -> Vec<(PathBuf, Fingerprint)> {
                let paths = files
                    .lock()
                    .expect("watch list lock is never held across a panic")
                    .clone();
                paths
                    .into_iter()
                    .map(|p| {
                        let f = fingerprint(&p);
                        (p, f)
                    })
                    .collect()
            };
            let mut last = look(&files);
            loop {
                std::thread::sleep(every);
                if changed.is_closed() {
                    return;
                }
                let now = look(&files);
                // A new list of paths (after a reload) is a new baseline,
                // not a change.
                let same_paths = now.iter().map(|x| &x.0).eq(last.iter().map(|x| &x.0));
                if same_paths && now != last {
                    // Full means a reload is already on its way.
                    let _ = changed.try_send(());
                }
                last = now;
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the file watcher; reload with SIGHUP");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_and_symlink_swaps_change_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("redpulse-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("v1")).unwrap();
        std::fs::create_dir_all(dir.join("v2")).unwrap();
        std::fs::write(dir.join("v1/fleet.txt"), "a=redis://h:1\n").unwrap();
        std::fs::write(dir.join("v2/fleet.txt"), "a=redis://h:2\n").unwrap();
        // The ConfigMap layout: fleet.txt -> ..data/fleet.txt, ..data -> v1.
        std::os::unix::fs::symlink("v1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/fleet.txt", dir.join("fleet.txt")).unwrap();
        let path = dir.join("fleet.txt");
        let a = fingerprint(&path);
        assert_eq!(a, fingerprint(&path), "nothing changed");
        // Swap ..data atomically, as the kubelet does.
        std::os::unix::fs::symlink("v2", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        let b = fingerprint(&path);
        assert_ne!(a, b);
        // An edit in place that keeps the size still moves the mtime.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.join("v2/fleet.txt"), "a=redis://h:3\n").unwrap();
        assert_ne!(b, fingerprint(&path));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_ne!(a, fingerprint(&path), "a file that vanished changed");
    }
}
